"""A paired image + label canvas for the procedural scenes.

Every shape is filled in both at once, so the label mask is exact by construction. Fills
are textured from noise fields that belong to the *world* rather than the screen: when
the camera pans, textures move with the objects instead of swimming over them.
"""

from __future__ import annotations

from typing import Sequence, Tuple

import cv2
import numpy as np

BGR = Tuple[float, float, float]
SUBPIXEL_BITS = 4  # cv2.fillPoly fixed point: vertices to 1/16 pixel
_SCALE = 1 << SUBPIXEL_BITS


def fractal_noise(height: int, width: int, rng: np.random.Generator, cell: float, octaves: int = 4) -> np.ndarray:
    """Zero-mean, unit-ish-variance value noise: random grids upsampled and summed by octave."""
    out = np.zeros((height, width), np.float32)
    amplitude, total = 1.0, 0.0
    for _ in range(octaves):
        gh, gw = max(2, int(height / cell) + 2), max(2, int(width / cell) + 2)
        grid = rng.standard_normal((gh, gw)).astype(np.float32)
        out += amplitude * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        total += amplitude
        amplitude *= 0.5
        cell = max(1.0, cell / 2)
    out /= total
    return out / max(float(out.std()), 1e-6)


class NoiseFields:
    """Two texture fields, wider than the frame by ``margin`` so a pan can slide over them."""

    def __init__(self, height: int, width: int, margin: int, rng: np.random.Generator, scale: float):
        self.margin = margin
        w = width + margin
        grain = rng.standard_normal((height, w)).astype(np.float32)
        self.fine = cv2.GaussianBlur(grain, (0, 0), 0.6 * scale)
        self.fine /= max(float(self.fine.std()), 1e-6)
        self.blotch = fractal_noise(height, w, rng, cell=24 * scale)


class Canvas:
    """An (H, W, 3) float32 BGR image and an (H, W) uint8 label map, drawn in step."""

    def __init__(self, height: int, width: int, noise: NoiseFields, offset: int = 0):
        self.height, self.width = height, width
        self.image = np.zeros((height, width, 3), np.float32)
        self.label = np.zeros((height, width), np.uint8)
        self.noise = noise
        self.offset = offset  # first noise column visible at screen x = 0

    # -- low level -------------------------------------------------------------------------
    def _region(self, points: np.ndarray):
        x0 = max(int(np.floor(points[:, 0].min())), 0)
        y0 = max(int(np.floor(points[:, 1].min())), 0)
        x1 = min(int(np.ceil(points[:, 0].max())) + 1, self.width)
        y1 = min(int(np.ceil(points[:, 1].max())) + 1, self.height)
        return x0, y0, x1, y1

    def polygon_mask(self, points: np.ndarray):
        """(bool mask of the polygon inside its clipped bounding box, (x0, y0, x1, y1)) or None."""
        points = np.asarray(points, np.float64).reshape(-1, 2)
        if len(points) < 3 or not np.isfinite(points).all():
            return None
        x0, y0, x1, y1 = self._region(points)
        if x1 <= x0 or y1 <= y0:
            return None
        local = np.zeros((y1 - y0, x1 - x0), np.uint8)
        fixed = np.round((points - (x0, y0)) * _SCALE).clip(-(2**27), 2**27).astype(np.int32)
        cv2.fillPoly(local, [fixed], 1, lineType=cv2.LINE_8, shift=SUBPIXEL_BITS)
        return local.astype(bool), (x0, y0, x1, y1)

    def texture(self, box, colour: BGR, grain: float, blotch: float) -> np.ndarray:
        x0, y0, x1, y1 = box
        a, b = x0 + self.offset, x1 + self.offset
        tone = 1.0 + grain * self.noise.fine[y0:y1, a:b] + blotch * self.noise.blotch[y0:y1, a:b]
        return tone[..., None] * np.asarray(colour, np.float32)

    # -- drawing ---------------------------------------------------------------------------
    def fill(self, points, label: int, colour: BGR, grain: float = 0.04, blotch: float = 0.08) -> None:
        """Fill a polygon with a textured colour and set its pixels to ``label``."""
        found = self._paint(points, colour, grain, blotch)
        if found is not None:
            mask, (x0, y0, x1, y1) = found
            np.copyto(self.label[y0:y1, x0:x1], np.uint8(label), where=mask)

    def paint(self, points, colour: BGR, grain: float = 0.02, blotch: float = 0.0) -> None:
        """Paint over existing pixels without changing their label (windows, markings, lights)."""
        self._paint(points, colour, grain, blotch)

    def _paint(self, points, colour: BGR, grain: float, blotch: float):
        """Texture the polygon's pixels; returns (mask, box) of what it covered, or None."""
        found = self.polygon_mask(points)
        if found is None:
            return None
        mask, box = found
        x0, y0, x1, y1 = box
        np.copyto(self.image[y0:y1, x0:x1], self.texture(box, colour, grain, blotch), where=mask[..., None])
        return found

    def shade(self, points, factor: float, feather: float = 0.0) -> None:
        """Multiply the pixels under a polygon by ``factor`` (a shadow); labels stay."""
        found = self.polygon_mask(points)
        if found is None:
            return
        mask, (x0, y0, x1, y1) = found
        weight = mask.astype(np.float32)
        if feather > 0.3:
            pad = int(3 * feather) + 1
            big = np.pad(weight, pad)
            weight = cv2.GaussianBlur(big, (0, 0), feather)[pad:-pad, pad:-pad]
        gain = 1.0 - (1.0 - factor) * weight
        self.image[y0:y1, x0:x1] *= gain[..., None]

    def ellipse(self, centre, axes, label: int, colour: BGR, angle: float = 0.0, **texture) -> None:
        self.fill(ellipse_points(centre, axes, angle), label, colour, **texture)


def ellipse_points(centre: Sequence[float], axes: Sequence[float], angle: float = 0.0, n: int = 24) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    ax, ay = max(float(axes[0]), 0.3), max(float(axes[1]), 0.3)
    c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    x, y = ax * np.cos(t), ay * np.sin(t)
    return np.stack([centre[0] + c * x - s * y, centre[1] + s * x + c * y], axis=1)
