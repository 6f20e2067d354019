"""Procedural street scenes: a small 3-D world seen through a pinhole camera.

A scene is sampled once from a random generator (road layout, buildings, trees, poles,
vehicles, people, weather) and can then be rendered at any time ``t`` and camera pan, which
is how the video clip gets moving objects, a panning camera and a lighting change from the
same code that makes the still images. Everything is drawn into an image and a label map
at once (:class:`~fcn_edge.data.canvas.Canvas`), far to near, so occlusion and the labels
agree by construction.

What keeps colour alone from separating the classes: cars come in greens, greys and sky
blues; buildings in greys, beiges and greens; the sky may be overcast grey or dusk orange;
distant objects fade into haze; shadows darken road, sidewalk and objects alike; windows
reflect the sky; then blur, sensor noise, vignetting and exposure changes on top.

World units are metres: X to the right, Y up, Z forward from the camera.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from fcn_edge.data.canvas import Canvas, NoiseFields, ellipse_points
from fcn_edge.errors import DataError

BACKGROUND, SKY, ROAD, BUILDING, VEGETATION, VEHICLE, PERSON = range(7)
NEAR = 1.0  # metres: nothing closer than this is drawn
FAR = 400.0
BGR = Tuple[float, float, float]


def _bgr(rgb) -> np.ndarray:
    return np.asarray(rgb[::-1], np.float32)


# Colour pools (RGB), deliberately overlapping between classes.
CAR_PAINTS = [(235, 235, 235), (160, 163, 168), (95, 98, 104), (30, 30, 34), (150, 20, 24), (30, 60, 140),
              (40, 90, 50), (110, 160, 70), (225, 190, 40), (120, 170, 200), (90, 60, 40), (200, 200, 190)]
FACADES = [(150, 150, 150), (115, 112, 110), (190, 175, 150), (160, 95, 70), (205, 200, 185), (95, 110, 95),
           (120, 140, 160), (170, 160, 120), (80, 80, 85), (140, 160, 120)]
CLOTHES = [(20, 20, 25), (40, 50, 90), (200, 200, 200), (150, 30, 30), (60, 100, 60), (120, 120, 125),
           (190, 170, 130), (30, 90, 160), (220, 180, 40), (100, 70, 50), (100, 140, 80), (170, 90, 150)]
SKIN = [(240, 200, 170), (210, 160, 120), (160, 110, 75), (100, 70, 50)]
FOLIAGE = [(60, 110, 40), (40, 80, 30), (100, 130, 50), (130, 140, 60), (160, 120, 40), (80, 100, 60)]
ROADS = [(90, 90, 95), (70, 70, 72), (110, 108, 105), (60, 60, 66), (120, 115, 110)]
SIDEWALKS = [(160, 155, 150), (130, 128, 125), (175, 165, 150), (120, 125, 130)]
DIRT = [(130, 115, 90), (110, 105, 95), (150, 140, 120), (100, 110, 80)]
GRASS = [(80, 120, 50), (110, 130, 60), (140, 140, 80), (70, 100, 50)]


@dataclass(frozen=True)
class Camera:
    focal: float  # pixels
    horizon: float  # image row of the horizon
    centre_x: float  # image column of straight ahead
    height: float  # metres above the road

    def project(self, x, y, z):
        z = np.maximum(np.asarray(z, np.float64), NEAR * 0.5)
        return self.centre_x + self.focal * np.asarray(x) / z, self.horizon + self.focal * (self.height - np.asarray(y)) / z

    def points(self, xyz: Sequence[Sequence[float]]) -> np.ndarray:
        arr = np.asarray(xyz, np.float64)
        u, v = self.project(arr[:, 0], arr[:, 1], arr[:, 2])
        return np.stack([u, v], axis=1)


@dataclass(frozen=True)
class Lighting:
    exposure: float  # overall gain
    tint: Tuple[float, float, float]  # BGR multipliers (colour temperature)
    shadow: float  # multiplier inside hard shadows (1 = no shadows, overcast)
    sun_x: float  # shadow direction on the ground, per metre of object height
    sun_z: float
    sky_top: Tuple[float, float, float]  # BGR
    sky_horizon: Tuple[float, float, float]
    haze: float  # metres at which distant objects are ~63% haze

    def blend(self, other: "Lighting", w: float) -> "Lighting":
        """Linear interpolation towards ``other`` (the clip's lighting change)."""
        mix = lambda a, b: tuple(float(x * (1 - w) + y * w) for x, y in zip(a, b))  # noqa: E731
        return Lighting(
            self.exposure * (1 - w) + other.exposure * w, mix(self.tint, other.tint),
            self.shadow * (1 - w) + other.shadow * w, self.sun_x, self.sun_z,
            mix(self.sky_top, other.sky_top), mix(self.sky_horizon, other.sky_horizon),
            self.haze * (1 - w) + other.haze * w,
        )

    def fog(self, colour: np.ndarray, z: float) -> np.ndarray:
        a = 1.0 - np.exp(-max(z, 0.0) / self.haze)
        return colour * (1 - a) + np.asarray(self.sky_horizon, np.float32) * a


@dataclass(frozen=True)
class RoadLayout:
    centre: float  # X of the road's centre line
    half_width: float
    sidewalk: float
    verge: Tuple[float, float]  # width beyond each sidewalk (left, right)
    verge_grass: Tuple[bool, bool]
    road_colour: np.ndarray
    sidewalk_colour: np.ndarray
    ground_colour: np.ndarray
    grass_colour: np.ndarray
    marking: np.ndarray
    dash: float  # 0 = solid centre line

    def edge(self, side: int) -> float:
        """X of the kerb on ``side`` (-1 left, +1 right)."""
        return self.centre + side * self.half_width

    def facade_x(self, side: int) -> float:
        i = 0 if side < 0 else 1
        return self.edge(side) + side * (self.sidewalk + self.verge[i])


@dataclass(eq=False)
class Mover:
    """Anything placed on the ground that may move: x, z at t = 0 plus a velocity."""

    x: float
    z: float
    vx: float = 0.0
    vz: float = 0.0

    def at(self, t: float) -> Tuple[float, float]:
        return self.x + self.vx * t, self.z + self.vz * t


@dataclass(eq=False)
class Building:
    side: int
    x_face: float
    z0: float
    z1: float
    height: float
    depth: float
    colour: np.ndarray
    window_colour: np.ndarray
    floor: float  # storey height
    bay: float  # window spacing along the street
    windows: bool


@dataclass(eq=False)
class Tree(Mover):
    trunk: float = 3.0
    radius: float = 2.0
    colour: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    blobs: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))  # dx, dy, r, tone


@dataclass(eq=False)
class Hedge:
    side: int
    x: float
    z0: float
    z1: float
    height: float
    colour: np.ndarray


@dataclass(eq=False)
class Pole(Mover):
    height: float = 7.0
    kind: str = "lamp"  # lamp | sign
    colour: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    sign_colour: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    side: int = 1


@dataclass(eq=False)
class Vehicle(Mover):
    width: float = 1.8
    height: float = 1.45
    length: float = 4.3
    kind: str = "car"  # car | van | bus
    colour: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    oncoming: bool = False


@dataclass(eq=False)
class Person(Mover):
    height: float = 1.75
    top: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    legs: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    skin: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    hair: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    phase: float = 0.0
    bag: bool = False


@dataclass(frozen=True)
class PostFX:
    blur_sigma: float
    motion_blur: int  # kernel length in pixels, 0 = none
    noise_sigma: float
    vignette: float


@dataclass(eq=False)
class Scene:
    height: int
    width: int
    camera: Camera
    lighting: Lighting
    lighting_end: Lighting  # the clip fades towards this; stills use ``lighting``
    road: RoadLayout
    hills: np.ndarray  # hill height in pixels above the horizon, per noise column
    hill_colour: np.ndarray
    skyline: List[Tuple[int, int, int]]  # (noise column start, end, height px): distant towers
    buildings: List[Building]
    hedges: List[Hedge]
    props: List[Mover]
    post: PostFX
    noise: NoiseFields
    pan_margin: int
    seed: int


# -- sampling --------------------------------------------------------------------------------
def _choice(rng: np.random.Generator, pool) -> np.ndarray:
    base = _bgr(pool[int(rng.integers(len(pool)))])
    return np.clip(base * rng.uniform(0.85, 1.15, 3), 0, 255).astype(np.float32)


def sample_lighting(rng: np.random.Generator, weather: Optional[str] = None) -> Lighting:
    weather = weather or str(rng.choice(["sunny", "sunny", "overcast", "dusk"]))
    side = 1.0 if rng.random() < 0.5 else -1.0
    if weather == "sunny":
        top, horizon = (rng.uniform(170, 230), rng.uniform(110, 150), rng.uniform(40, 80)), (235, 215, 190)
        return Lighting(rng.uniform(0.9, 1.2), (1.0, 1.0, 1.0), rng.uniform(0.4, 0.6), side * rng.uniform(0.4, 1.2),
                        rng.uniform(-0.6, 0.6), top, horizon, rng.uniform(250, 700))
    if weather == "overcast":
        grey = rng.uniform(150, 215)
        return Lighting(rng.uniform(0.75, 1.0), (1.03, 1.0, 0.97), rng.uniform(0.85, 0.95), side * 0.5, 0.0,
                        (grey, grey - 5, grey - 10), (grey + 20, grey + 18, grey + 15), rng.uniform(120, 300))
    return Lighting(rng.uniform(0.55, 0.8), (0.85, 0.95, 1.15), rng.uniform(0.5, 0.7), side * rng.uniform(1.5, 3.0),
                    rng.uniform(-0.4, 0.4), (rng.uniform(110, 150), rng.uniform(60, 90), rng.uniform(70, 110)),
                    (rng.uniform(100, 150), rng.uniform(150, 190), rng.uniform(220, 250)), rng.uniform(200, 500))


def sample_scene(
    rng: np.random.Generator, height: int, width: int, pan_margin: int = 0, seed: int = 0
) -> Scene:
    """A random street: layout, weather, buildings, vegetation, poles, vehicles and people."""
    scale = width / 640.0
    camera = Camera(
        focal=width * rng.uniform(0.75, 1.1),
        horizon=height * rng.uniform(0.36, 0.52),
        centre_x=width * rng.uniform(0.4, 0.6),
        height=rng.uniform(1.3, 2.2),
    )
    lighting = sample_lighting(rng)
    lighting_end = dataclasses.replace(
        sample_lighting(rng, "overcast" if rng.random() < 0.5 else "dusk"), sun_x=lighting.sun_x, sun_z=lighting.sun_z
    )
    half = rng.choice([3.5, 5.25, 7.0]) * rng.uniform(0.9, 1.1)
    road = RoadLayout(
        centre=rng.uniform(-0.6, 0.3) * half,
        half_width=half,
        sidewalk=rng.uniform(1.5, 4.0),
        verge=(rng.uniform(0, 4) * (rng.random() < 0.6), rng.uniform(0, 4) * (rng.random() < 0.6)),
        verge_grass=(bool(rng.random() < 0.6), bool(rng.random() < 0.6)),
        road_colour=_choice(rng, ROADS),
        sidewalk_colour=_choice(rng, SIDEWALKS),
        ground_colour=_choice(rng, DIRT),
        grass_colour=_choice(rng, GRASS),
        marking=_choice(rng, [(230, 230, 225), (230, 200, 60)]),
        dash=float(rng.choice([0.0, 3.0, 6.0])),
    )
    columns = width + pan_margin
    hills = np.zeros(columns, np.float32)
    if rng.random() < 0.7:
        profile = cv2.resize(rng.random((1, 8)).astype(np.float32), (columns, 1), interpolation=cv2.INTER_CUBIC)[0]
        hills = np.clip(profile, 0, None) * height * rng.uniform(0.04, 0.16)
    skyline = []
    if rng.random() < 0.35:
        x = int(rng.integers(0, 40))
        while x < columns:
            w = int(rng.integers(10, 50) * scale)
            skyline.append((x, x + w, int(rng.uniform(0.03, 0.2) * height)))
            x += w + int(rng.integers(0, 30) * scale)

    buildings: List[Building] = []
    hedges: List[Hedge] = []
    props: List[Mover] = []
    for side in (-1, 1):
        i = 0 if side < 0 else 1
        if rng.random() < 0.85:
            z = rng.uniform(1.0, 15.0)
            while z < 220:
                length = rng.uniform(8, 30)
                if rng.random() < 0.15:
                    z += length * 0.5  # a gap between buildings
                    continue
                buildings.append(Building(
                    side, road.facade_x(side) + rng.uniform(0, 3) * (rng.random() < 0.3), z, z + length,
                    rng.uniform(5, 35), rng.uniform(8, 16), _choice(rng, FACADES),
                    _choice(rng, [(40, 50, 60), (70, 90, 110), (150, 170, 190), (20, 25, 30), (110, 100, 80)]),
                    rng.uniform(2.8, 3.6), rng.uniform(2.5, 4.0), bool(rng.random() < 0.85),
                ))
                z += length
        if road.verge[i] > 0.8 and road.verge_grass[i] and rng.random() < 0.5:
            z0 = rng.uniform(2, 20)
            hedges.append(Hedge(side, road.edge(side) + side * (road.sidewalk + road.verge[i] * 0.3), z0,
                                z0 + rng.uniform(5, 40), rng.uniform(0.5, 1.4), _choice(rng, FOLIAGE)))
        # trees along the sidewalk or verge
        z = rng.uniform(2, 12)
        spacing = rng.uniform(7, 20)
        tree_prob = rng.uniform(0.2, 0.9)
        while z < 120:
            if rng.random() < tree_prob:
                x = road.edge(side) + side * (road.sidewalk * rng.uniform(0.5, 0.85) + road.verge[i] * 0.5)
                radius = rng.uniform(1.2, 3.5)
                n = int(rng.integers(5, 11))
                blobs = np.stack([rng.normal(0, 0.45, n) * radius, rng.normal(0, 0.35, n) * radius,
                                  rng.uniform(0.45, 0.8, n) * radius, rng.uniform(0.75, 1.2, n)], axis=1)
                props.append(Tree(x, z, trunk=rng.uniform(1.8, 4.0), radius=radius,
                                  colour=_choice(rng, FOLIAGE), blobs=blobs.astype(np.float32)))
            z += spacing * rng.uniform(0.7, 1.3)
        # poles: street lamps and signs at the kerb
        z = rng.uniform(3, 25)
        while z < 100:
            kind = "lamp" if rng.random() < 0.6 else "sign"
            props.append(Pole(road.edge(side) + side * 0.4, z, height=rng.uniform(5, 9) if kind == "lamp" else 2.6,
                              kind=kind, colour=_choice(rng, [(90, 95, 100), (60, 70, 60), (150, 150, 150)]),
                              sign_colour=_choice(rng, [(200, 30, 30), (30, 70, 170), (230, 200, 40), (240, 240, 240)]),
                              side=side))
            z += rng.uniform(15, 40)

    # vehicles in lanes: the right half drives away, the left half comes towards the camera
    lanes = max(1, int(round(road.half_width / 3.5)))
    lane_width = road.half_width / lanes
    for _ in range(int(rng.integers(2, 9))):
        lane = int(rng.integers(0, 2 * lanes))
        x = road.centre - road.half_width + (lane + 0.5) * lane_width + rng.normal(0, 0.2)
        oncoming = x < road.centre
        kind = str(rng.choice(["car", "car", "car", "van", "bus"]))
        w, h, length = {"car": (1.8, 1.45, 4.3), "van": (2.0, 1.95, 4.9), "bus": (2.5, 3.2, 11.0)}[kind]
        speed = rng.uniform(4, 12)
        props.append(Vehicle(x, 3.5 + 70 * rng.random() ** 1.5, 0.0, -speed if oncoming else speed * 0.4,
                             width=w * rng.uniform(0.95, 1.05), height=h * rng.uniform(0.95, 1.08),
                             length=length, kind=kind, colour=_choice(rng, CAR_PAINTS), oncoming=bool(oncoming)))
    # parked cars along a kerb
    for _ in range(int(rng.integers(0, 4))):
        side = 1 if rng.random() < 0.5 else -1
        props.append(Vehicle(road.edge(side) - side * 1.2, rng.uniform(4, 60), width=1.8, height=1.45, length=4.3,
                             colour=_choice(rng, CAR_PAINTS)))
    # people on the sidewalks, some crossing
    for _ in range(int(rng.integers(2, 11))):
        side = 1 if rng.random() < 0.5 else -1
        crossing = rng.random() < 0.2
        if crossing:
            x = road.centre + rng.uniform(-1, 1) * road.half_width
            vx, vz = side * rng.uniform(0.8, 1.5), 0.0
        else:
            x = road.edge(side) + side * rng.uniform(0.3, max(road.sidewalk - 0.3, 0.4))
            vx, vz = 0.0, rng.choice([-1, 1]) * rng.uniform(0.8, 1.6)
        props.append(Person(x, 3.5 + 40 * rng.random() ** 1.7, vx, vz, height=rng.uniform(1.5, 1.95),
                            top=_choice(rng, CLOTHES), legs=_choice(rng, CLOTHES[:8]), skin=_choice(rng, SKIN),
                            hair=_choice(rng, [(20, 15, 10), (70, 45, 25), (150, 120, 70), (200, 200, 200)]),
                            phase=rng.uniform(0, 2 * np.pi), bag=bool(rng.random() < 0.3)))
    post = PostFX(
        blur_sigma=rng.uniform(0.3, 1.4) * scale if rng.random() < 0.6 else 0.0,
        motion_blur=int(rng.integers(3, 10) * scale) if rng.random() < 0.15 else 0,
        noise_sigma=rng.uniform(1.5, 9.0),
        vignette=rng.uniform(0.0, 0.35),
    )
    noise = NoiseFields(height, width, pan_margin, rng, scale)
    hill_colour = _choice(rng, [(90, 110, 90), (110, 115, 125), (80, 95, 70), (130, 125, 115)])
    return Scene(height, width, camera, lighting, lighting_end, road, hills, hill_colour, skyline, buildings,
                 hedges, props, post, noise, pan_margin, seed)


# -- rendering -------------------------------------------------------------------------------
def _ground_quad(cam: Camera, x0: float, x1: float, z0: float, z1: float) -> np.ndarray:
    z0, z1 = max(z0, NEAR), min(z1, FAR)
    return cam.points([(x0, 0, z0), (x1, 0, z0), (x1, 0, z1), (x0, 0, z1)])


def _draw_sky(c: Canvas, scene: Scene, cam: Camera, light: Lighting) -> None:
    rows = max(int(np.ceil(cam.horizon)) + 1, 1)
    rows = min(rows, c.height)
    w = np.linspace(0, 1, rows, dtype=np.float32)[:, None] ** 0.8
    grad = np.asarray(light.sky_top, np.float32) * (1 - w) + np.asarray(light.sky_horizon, np.float32) * w
    a = c.offset
    clouds = np.clip(c.noise.blotch[:rows, a : a + c.width] - 0.3, 0, None)[..., None]
    c.image[:rows] = grad[:, None, :] + clouds * 55.0 + c.noise.fine[:rows, a : a + c.width, None] * 2.0
    c.label[:rows] = SKY


def _draw_distance(c: Canvas, scene: Scene, cam: Camera, light: Lighting) -> None:
    a = c.offset
    xs = np.arange(0, c.width + 4, 4, dtype=np.float64)
    cols = np.clip(xs.astype(int) + a, 0, len(scene.hills) - 1)
    if scene.hills.max() > 1:
        top = cam.horizon - scene.hills[cols]
        poly = np.concatenate([np.stack([xs, top], 1), [[xs[-1], cam.horizon + 1], [0, cam.horizon + 1]]])
        c.fill(poly, BACKGROUND, light.fog(scene.hill_colour, 250.0), grain=0.03, blotch=0.12)
    tower = light.fog(_bgr((120, 120, 125)), 300.0)
    for start, end, h in scene.skyline:
        x0, x1 = start - a, end - a
        c.fill([(x0, cam.horizon - h), (x1, cam.horizon - h), (x1, cam.horizon + 1), (x0, cam.horizon + 1)],
               BUILDING, tower, grain=0.02, blotch=0.05)


def _draw_ground(c: Canvas, scene: Scene, cam: Camera, light: Lighting) -> None:
    r = scene.road
    top = int(np.floor(cam.horizon))
    c.fill([(0, top), (c.width, top), (c.width, c.height), (0, c.height)], BACKGROUND, r.ground_colour,
           grain=0.08, blotch=0.15)
    for side in (-1, 1):
        i = 0 if side < 0 else 1
        kerb, walk = r.edge(side), r.edge(side) + side * r.sidewalk
        if r.verge[i] > 0:
            outer = walk + side * (r.verge[i] + 40.0)
            label, colour = (VEGETATION, r.grass_colour) if r.verge_grass[i] else (BACKGROUND, r.ground_colour)
            c.fill(_ground_quad(cam, walk, outer, NEAR, FAR), label, colour, grain=0.12, blotch=0.2)
        c.fill(_ground_quad(cam, kerb, walk, NEAR, FAR), BACKGROUND, r.sidewalk_colour, grain=0.05, blotch=0.1)
    c.fill(_ground_quad(cam, r.edge(-1), r.edge(1), NEAR, FAR), ROAD, r.road_colour, grain=0.06, blotch=0.08)
    # lane markings: painted on the road, still road
    width = 0.15
    lanes = max(1, int(round(r.half_width / 3.5)))
    for k in range(-lanes + 1, lanes):
        x = r.centre + k * r.half_width / lanes
        if k == 0 and r.dash == 0:
            c.paint(_ground_quad(cam, x - width, x + width, NEAR, FAR), r.marking, grain=0.05)
            continue
        dash = r.dash or 3.0
        z = NEAR + (k % 2) * dash * 0.5
        while z < 120:
            c.paint(_ground_quad(cam, x - width / 2, x + width / 2, z, z + dash), r.marking, grain=0.05)
            z += dash * 2.5
    for side in (-1, 1):  # edge lines
        x = r.edge(side) - side * 0.3
        c.paint(_ground_quad(cam, x - 0.07, x + 0.07, NEAR, FAR), r.marking * 0.9, grain=0.05)


def _building_shadows(scene: Scene, light: Lighting) -> List[Tuple[float, float, float, float]]:
    """Ground rectangles (x0, x1, z0, z1) shaded by the buildings on the side the sun is on."""
    out = []
    side = -1 if light.sun_x > 0 else 1  # shadows fall in +sun_x direction: from the other side
    for b in scene.buildings:
        if b.side != side:
            continue
        length = min(b.height * abs(light.sun_x), 40.0)
        x_far = b.x_face - side * length
        out.append((min(b.x_face, x_far), max(b.x_face, x_far), b.z0 + b.height * light.sun_z,
                    b.z1 + b.height * light.sun_z))
    return out


def _in_shadow(rects, x: float, z: float) -> bool:
    return any(x0 <= x <= x1 and z0 <= z <= z1 for x0, x1, z0, z1 in rects)


def _draw_building(c: Canvas, cam: Camera, b: Building, light: Lighting) -> None:
    s, xf = b.side, b.x_face
    lit = (light.sun_x > 0) == (s < 0)  # the facade faces the sun
    face_gain = 1.0 if lit else 0.55 + 0.45 * light.shadow
    z0 = max(b.z0, NEAR)
    if z0 >= b.z1:
        return
    colour = light.fog(b.colour * face_gain, (z0 + b.z1) / 2)
    c.fill(cam.points([(xf, 0, z0), (xf, b.height, z0), (xf, b.height, b.z1), (xf, 0, b.z1)]), BUILDING, colour,
           grain=0.05, blotch=0.12)
    if b.windows and cam.focal * b.bay / b.z1 > 2.0:
        glass = light.fog(b.window_colour, (z0 + b.z1) / 2)
        zw = b.z0 + b.bay * 0.5
        while zw + b.bay * 0.5 < b.z1:
            if zw - b.bay * 0.3 > NEAR:
                y = b.floor * 0.3 if zw > b.z0 + 1 else b.floor
                while y + b.floor * 0.55 < b.height - 0.5:
                    wz0, wz1 = zw - b.bay * 0.28, zw + b.bay * 0.28
                    c.paint(cam.points([(xf, y, wz0), (xf, y + b.floor * 0.5, wz0), (xf, y + b.floor * 0.5, wz1),
                                        (xf, y, wz1)]), glass, grain=0.05)
                    y += b.floor
            zw += b.bay
    if b.z0 >= NEAR:
        xb = xf + s * b.depth
        front = light.fog(b.colour * (0.8 if lit else 0.7), b.z0)
        c.fill(cam.points([(xf, 0, b.z0), (xf, b.height, b.z0), (xb, b.height, b.z0), (xb, 0, b.z0)]), BUILDING,
               front, grain=0.05, blotch=0.12)


def _draw_hedge(c: Canvas, cam: Camera, h: Hedge, light: Lighting) -> None:
    z0 = max(h.z0, NEAR)
    if z0 >= h.z1:
        return
    colour = light.fog(h.colour, (z0 + h.z1) / 2)
    x_in, x_out = h.x, h.x + h.side * 0.8
    c.fill(cam.points([(x_in, 0, z0), (x_in, h.height, z0), (x_in, h.height, h.z1), (x_in, 0, h.z1)]), VEGETATION,
           colour * 0.85, grain=0.25, blotch=0.25)
    c.fill(cam.points([(x_in, h.height, z0), (x_out, h.height, z0), (x_out, h.height, h.z1),
                       (x_in, h.height, h.z1)]), VEGETATION, colour, grain=0.25, blotch=0.25)


def _draw_tree(c: Canvas, cam: Camera, tree: Tree, x: float, z: float, light: Lighting, gain: float) -> None:
    trunk = light.fog(_bgr((80, 60, 45)) * gain, z)
    r = 0.15 + tree.radius * 0.04
    c.fill(cam.points([(x - r, 0, z), (x - r * 0.7, tree.trunk + tree.radius * 0.5, z),
                       (x + r * 0.7, tree.trunk + tree.radius * 0.5, z), (x + r, 0, z)]), VEGETATION, trunk,
           grain=0.1, blotch=0.1)
    centre_y = tree.trunk + tree.radius * 0.8
    for dx, dy, radius, tone in tree.blobs:
        u, v = cam.project(x + dx, centre_y + dy, z)
        px = cam.focal * radius / z
        colour = light.fog(tree.colour * tone * gain, z)
        c.fill(ellipse_points((u, v), (px, px * 0.9)), VEGETATION, colour, grain=0.3, blotch=0.3)


def _draw_pole(c: Canvas, cam: Camera, p: Pole, x: float, z: float, light: Lighting, gain: float) -> None:
    colour = light.fog(p.colour * gain, z)
    w = 0.08
    c.fill(cam.points([(x - w, 0, z), (x - w, p.height, z), (x + w, p.height, z), (x + w, 0, z)]), BACKGROUND, colour,
           grain=0.03, blotch=0.05)
    if p.kind == "lamp":
        arm = -p.side * 1.8
        c.fill(cam.points([(x, p.height - 0.1, z), (x + arm, p.height + 0.1, z), (x + arm, p.height - 0.1, z),
                           (x, p.height - 0.25, z)]), BACKGROUND, colour, grain=0.03)
        u, v = cam.project(x + arm, p.height - 0.15, z)
        c.fill(ellipse_points((u, v), (cam.focal * 0.35 / z, cam.focal * 0.12 / z)), BACKGROUND,
               light.fog(_bgr((230, 230, 210)), z), grain=0.02)
    else:
        u, v = cam.project(x, p.height, z)
        px = cam.focal * 0.35 / z
        c.fill(ellipse_points((u, v), (px, px), n=16 if p.sign_colour[0] > 100 else 4), BACKGROUND,
               light.fog(p.sign_colour * gain, z), grain=0.03)
        c.paint(ellipse_points((u, v), (px * 0.6, px * 0.6), n=16), light.fog(_bgr((240, 240, 240)) * gain, z))


def _draw_vehicle(c: Canvas, cam: Camera, v: Vehicle, x: float, z: float, light: Lighting, gain: float) -> None:
    w, h, L = v.width / 2, v.height, v.length
    paint = light.fog(v.colour * gain, z)
    dark = light.fog(_bgr((25, 25, 28)) * gain, z)
    glass = light.fog(_bgr((60, 70, 80)) * gain + np.asarray(light.sky_horizon, np.float32) * 0.2, z)
    body_top = h * (0.55 if v.kind == "car" else 0.85)
    # the side facing the camera, from the near face back along Z
    sx = x - w if x > 0 else x + w
    c.fill(cam.points([(sx, 0.25, z), (sx, body_top, z), (sx, body_top, z + L), (sx, 0.25, z + L)]), VEHICLE,
           paint * 0.8, grain=0.03, blotch=0.05)
    cabin0, cabin1 = (z + L * 0.25, z + L * 0.8) if v.kind == "car" else (z, z + L)
    c.fill(cam.points([(sx, body_top, cabin0), (sx, h, cabin0 + L * 0.05), (sx, h, cabin1), (sx, body_top, cabin1)]),
           VEHICLE, paint * 0.8, grain=0.03)
    c.paint(cam.points([(sx, body_top + 0.05, cabin0 + 0.2), (sx, h - 0.1, cabin0 + L * 0.1),
                        (sx, h - 0.1, cabin1 - 0.2), (sx, body_top + 0.05, cabin1 - 0.2)]), glass * 0.9)
    for wz in (z + L * 0.18, z + L * 0.8):  # wheels on the visible side
        u, vv = cam.project(sx, 0.33, wz)
        r = cam.focal * 0.33 / wz
        c.fill(ellipse_points((u, vv), (r * 0.35, r)), VEHICLE, dark, grain=0.03)
    # the face towards the camera (rear, or front of an oncoming vehicle)
    c.fill(cam.points([(x - w, 0.25, z), (x - w, body_top, z), (x + w, body_top, z), (x + w, 0.25, z)]), VEHICLE,
           paint, grain=0.03, blotch=0.05)
    inset = w * (0.18 if v.kind == "car" else 0.02)
    c.fill(cam.points([(x - w + inset * 0.3, body_top, z + 0.3), (x - w + inset, h, z + 0.6),
                       (x + w - inset, h, z + 0.6), (x + w - inset * 0.3, body_top, z + 0.3)]), VEHICLE, paint * 0.95,
           grain=0.03)
    c.paint(cam.points([(x - w + inset * 0.5, body_top + 0.06, z + 0.32), (x - w + inset * 1.1, h - 0.08, z + 0.58),
                        (x + w - inset * 1.1, h - 0.08, z + 0.58), (x + w - inset * 0.5, body_top + 0.06, z + 0.32)]),
            glass)
    for wx in (x - w + 0.05, x + w - 0.35):  # wheels below the body
        c.fill(cam.points([(wx, 0, z + 0.3), (wx, 0.3, z + 0.3), (wx + 0.3, 0.3, z + 0.3), (wx + 0.3, 0, z + 0.3)]),
               VEHICLE, dark, grain=0.03)
    lamp = _bgr((250, 240, 200)) if v.oncoming else _bgr((200, 20, 20))
    for lx in (x - w + 0.1, x + w - 0.4):
        c.paint(cam.points([(lx, body_top - 0.25, z), (lx, body_top - 0.08, z), (lx + 0.3, body_top - 0.08, z),
                            (lx + 0.3, body_top - 0.25, z)]), light.fog(lamp, z))
    c.paint(cam.points([(x - 0.25, 0.35, z), (x - 0.25, 0.48, z), (x + 0.25, 0.48, z), (x + 0.25, 0.35, z)]),
            light.fog(_bgr((230, 230, 230)) * gain, z))


def _draw_person(c: Canvas, cam: Camera, p: Person, x: float, z: float, t: float, light: Lighting, gain: float) -> None:
    h = p.height
    swing = 0.12 * np.sin(p.phase + t * 2 * np.pi * 0.9 * (1.0 if (p.vx or p.vz) else 0.0))
    skin, top, legs = (light.fog(col * gain, z) for col in (p.skin, p.top, p.legs))
    hip, shoulder = 0.5 * h, 0.81 * h
    for d in (-1, 1):  # legs
        foot = x + d * 0.06 + d * swing
        c.fill(cam.points([(x + d * 0.02, hip, z), (x + d * 0.17, hip, z), (foot + d * 0.07, 0, z),
                           (foot - d * 0.06, 0, z)]), PERSON, legs, grain=0.05, blotch=0.05)
    for d in (-1, 1):  # arms
        hand = x + d * 0.27 - d * swing * 0.6
        c.fill(cam.points([(x + d * 0.17, shoulder, z), (x + d * 0.25, shoulder - 0.02, z),
                           (hand + d * 0.04, hip - 0.02, z), (hand - d * 0.04, hip, z)]), PERSON, top * 0.9, grain=0.05)
    c.fill(cam.points([(x - 0.2, shoulder, z), (x + 0.2, shoulder, z), (x + 0.17, hip - 0.05, z),
                       (x - 0.17, hip - 0.05, z)]), PERSON, top, grain=0.05, blotch=0.08)
    if p.bag:
        c.fill(cam.points([(x + 0.15, hip + 0.2, z - 0.05), (x + 0.32, hip + 0.2, z - 0.05), (x + 0.32, hip - 0.1, z - 0.05),
                           (x + 0.15, hip - 0.1, z - 0.05)]), PERSON, light.fog(_bgr((70, 50, 35)) * gain, z))
    u, v = cam.project(x, 0.92 * h, z)
    r = cam.focal * 0.1 * h / z
    c.fill(cam.points([(x - 0.05, shoulder, z), (x + 0.05, shoulder, z), (x + 0.05, 0.87 * h, z),
                       (x - 0.05, 0.87 * h, z)]), PERSON, skin)
    c.ellipse((u, v), (r * 0.8, r), PERSON, skin, grain=0.03)
    c.ellipse((u, v - r * 0.45), (r * 0.85, r * 0.6), PERSON, light.fog(p.hair * gain, z), grain=0.05)


def _cast_shadow(c: Canvas, cam: Camera, obj: Mover, x: float, z: float, light: Lighting) -> None:
    """A soft dark patch on the ground beside an object, away from the sun."""
    if light.shadow > 0.97:
        return
    if isinstance(obj, Vehicle):
        w, hgt, length = obj.width / 2 + 0.1, obj.height, obj.length
        dx, dz = light.sun_x * hgt * 0.7, light.sun_z * hgt * 0.7
        pts = [(x - w, 0, z), (x + w, 0, z), (x + w + dx, 0, z + length + dz), (x - w + dx, 0, z + length + dz)]
        xs = [p[0] for p in pts]
        poly = _ground_quad(cam, min(xs), max(xs), z - 0.1, z + length + max(dz, 0))
        c.shade(poly, 0.25 + 0.6 * light.shadow, feather=1.5)
        return
    if isinstance(obj, (Person, Pole)):
        hgt, w = (obj.height, 0.2) if isinstance(obj, Person) else (obj.height, 0.08)
    elif isinstance(obj, Tree):
        hgt, w = obj.trunk + obj.radius, obj.radius
    else:
        return
    dx, dz = light.sun_x * hgt, light.sun_z * hgt
    if isinstance(obj, Tree):
        cx, cz = x + dx * 0.7, z + dz * 0.7
        pts = np.asarray([(cx + w * np.cos(a), 0, max(cz + w * 0.8 * np.sin(a), NEAR))
                          for a in np.linspace(0, 2 * np.pi, 16, endpoint=False)])
    else:
        pts = np.asarray([(x - w, 0, z), (x + w, 0, z), (x + dx + w, 0, max(z + dz, NEAR)),
                          (x + dx - w, 0, max(z + dz, NEAR))])
    c.shade(cam.points(pts), light.shadow, feather=1.0)


def _post(image: np.ndarray, scene: Scene, light: Lighting, rng: np.random.Generator) -> np.ndarray:
    fx = scene.post
    image *= light.exposure
    image *= np.asarray(light.tint, np.float32)
    if fx.vignette > 0:
        h, w = image.shape[:2]
        yy, xx = np.ogrid[:h, :w]
        r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
        image *= (1.0 - fx.vignette * np.clip(r2 / 2, 0, 1)).astype(np.float32)[..., None]
    if fx.blur_sigma > 0.25:
        image = cv2.GaussianBlur(image, (0, 0), fx.blur_sigma)
    if fx.motion_blur > 1:
        kernel = np.zeros((fx.motion_blur, fx.motion_blur), np.float32)
        kernel[fx.motion_blur // 2, :] = 1.0 / fx.motion_blur
        image = cv2.filter2D(image, -1, kernel)
    noise = rng.standard_normal(image.shape[:2], dtype=np.float32)[..., None] * fx.noise_sigma
    noise = noise + rng.standard_normal(image.shape, dtype=np.float32) * (fx.noise_sigma * 0.4)
    image += noise
    return np.clip(image, 0, 255).astype(np.uint8)


def render(
    scene: Scene, t: float = 0.0, pan: float = 0.0, lighting_mix: float = 0.0, noise_seed: Optional[int] = None
) -> Tuple[np.ndarray, np.ndarray]:
    """Draw ``scene`` at time ``t`` (s) with the camera turned by ``pan`` pixels (0 ..
    ``scene.pan_margin``) and the lighting ``lighting_mix`` of the way to its end state.
    Returns (BGR uint8 image, uint8 label mask)."""
    if not 0 <= pan <= scene.pan_margin:
        raise DataError(f"pan {pan} is outside 0..{scene.pan_margin}")
    cam = dataclasses.replace(scene.camera, centre_x=scene.camera.centre_x - pan)
    light = scene.lighting.blend(scene.lighting_end, lighting_mix) if lighting_mix else scene.lighting
    c = Canvas(scene.height, scene.width, scene.noise, offset=int(round(pan)))
    _draw_sky(c, scene, cam, light)
    _draw_distance(c, scene, cam, light)
    _draw_ground(c, scene, cam, light)
    shadows = _building_shadows(scene, light) if light.shadow < 0.97 else []
    for x0, x1, z0, z1 in shadows:
        c.shade(_ground_quad(cam, x0, x1, z0, z1), light.shadow, feather=1.5)
    placed = []
    for obj in scene.props:
        x, z = obj.at(t)
        if NEAR * 2 < z < FAR:
            placed.append((z, x, obj))
    placed.sort(key=lambda item: -item[0])
    for z, x, obj in placed:
        _cast_shadow(c, cam, obj, x, z, light)
    for b in sorted(scene.buildings, key=lambda b: -b.z0):
        _draw_building(c, cam, b, light)
    for hedge in sorted(scene.hedges, key=lambda h: -h.z0):
        _draw_hedge(c, cam, hedge, light)
    for z, x, obj in placed:
        gain = light.shadow if _in_shadow(shadows, x, z) else 1.0
        if isinstance(obj, Tree):
            _draw_tree(c, cam, obj, x, z, light, gain)
        elif isinstance(obj, Pole):
            _draw_pole(c, cam, obj, x, z, light, gain)
        elif isinstance(obj, Vehicle):
            _draw_vehicle(c, cam, obj, x, z, light, gain)
        elif isinstance(obj, Person):
            _draw_person(c, cam, obj, x, z, t, light, gain)
    rng = np.random.default_rng([scene.seed, 7919, 0 if noise_seed is None else noise_seed])
    return _post(c.image, scene, light, rng), c.label
