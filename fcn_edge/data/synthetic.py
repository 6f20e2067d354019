"""The built-in dataset: procedural street scenes written as a VOC-format dataset, plus a
short video clip, regenerated deterministically from a seed and cached.

Our machines cannot download a public dataset, so the default model, the calibration set,
the demo and the tests all use these scenes (see :mod:`fcn_edge.data.streetscene` for what
is drawn and why colour alone does not give the classes away). Nothing generated is
committed: ``ensure_dataset()`` and ``ensure_clip()`` build on first use and afterwards
return the cached copy, keyed by the config and the generator version.

Layout of a cache entry (``$FCN_EDGE_CACHE`` or ``~/.cache/fcn-edge``)::

    synthetic-<key>/
        JPEGImages/train_00000.jpg ...      480x640 by default
        SegmentationClass/train_00000.png   palette PNGs, SYNTHETIC_PALETTE
        ImageSets/Segmentation/{train,val}.txt
        classes.txt                         class names and colours
        synthetic.json                      the config that made it
    synthetic-clip-<key>/
        street.mp4                          640x480, moving objects, pan, lighting change
        masks/000000.png ...                the ground truth of every clip frame
        clip.json

Generation holds a file lock (``<entry>.lock``), so concurrent callers wait for one
writer instead of racing; each entry is built under a temporary name and renamed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Tuple

import numpy as np

from fcn_edge.classes import SYNTHETIC_CLASSES, SYNTHETIC_PALETTE
from fcn_edge.data.classfile import CLASS_FILE, write_class_file
from fcn_edge.data.images import write_image, write_label_png
from fcn_edge.data.streetscene import Person, Vehicle, render, sample_lighting, sample_scene
from fcn_edge.errors import DataError, VideoError
from fcn_edge.paths import CACHE_ENV, cache_root
from fcn_edge.paths import PathLike

GENERATOR_VERSION = 1  # bump when the rendering changes, so that caches are rebuilt
SPLITS = ("train", "val")
CLIP_NAME = "street.mp4"
_SPLIT_STREAM = {"train": 1, "val": 2, "clip": 3}


@dataclass(frozen=True)
class SyntheticConfig:
    """What to generate. The same config always produces the same pixels."""

    seed: int = 0
    train_images: int = 400
    val_images: int = 100
    height: int = 480
    width: int = 640
    jpeg_quality: int = 92
    clip_seconds: float = 10.0
    clip_fps: float = 15.0
    clip_pan: float = 0.35  # camera pan over the clip, as a fraction of the frame width

    def key(self) -> str:
        """Cache key of the still images: every field but the clip's."""
        fields = {k: v for k, v in dataclasses.asdict(self).items() if not k.startswith("clip_")}
        return _digest(fields)

    def clip_key(self) -> str:
        fields = {k: v for k, v in dataclasses.asdict(self).items() if k.startswith("clip_") or k in ("seed", "height", "width")}
        return _digest(fields)

    def count(self, split: str) -> int:
        return {"train": self.train_images, "val": self.val_images}[split]


def _digest(fields) -> str:
    blob = json.dumps({"version": GENERATOR_VERSION, **fields}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


@contextlib.contextmanager
def _cache_lock(entry: Path):
    """An exclusive lock on ``<entry>.lock`` (a no-op where fcntl does not exist)."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no concurrent writers expected
        yield
        return
    with open(entry.with_name(entry.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _partial_dir(final: Path) -> Path:
    import tempfile

    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=str(final.parent)))


def _move_into_place(partial: Path, final: Path) -> None:
    if final.exists():
        shutil.rmtree(final)
    os.replace(partial, final)




def dataset_dir(config: SyntheticConfig = SyntheticConfig(), cache_dir: Optional[PathLike] = None) -> Path:
    return Path(cache_dir or cache_root()) / f"synthetic-{config.key()}"


def clip_dir(config: SyntheticConfig = SyntheticConfig(), cache_dir: Optional[PathLike] = None) -> Path:
    return Path(cache_dir or cache_root()) / f"synthetic-clip-{config.clip_key()}"


# -- stills -------------------------------------------------------------------------------------
def render_sample(config: SyntheticConfig, split: str, index: int) -> Tuple[np.ndarray, np.ndarray]:
    """(BGR image, label mask) of image ``index`` of ``split``; independent of every other image."""
    if split not in SPLITS:
        raise DataError(f"synthetic split {split!r} is not one of {SPLITS}")
    seed = (config.seed, _SPLIT_STREAM[split], index)
    noise_seed = int(np.random.SeedSequence(seed).generate_state(1)[0])
    scene = sample_scene(np.random.default_rng(seed), config.height, config.width, seed=noise_seed)
    return render(scene)


def sample_name(split: str, index: int) -> str:
    return f"{split}_{index:05d}"


def generate_dataset(
    root: PathLike, config: SyntheticConfig = SyntheticConfig(), progress: bool = True, workers: int = 1
) -> Path:
    """Write the VOC-format dataset to ``root`` (built beside it, then renamed into place).

    Each image depends only on (seed, split, index), so ``workers`` processes produce the
    same files as one."""
    root = Path(root)
    partial = _partial_dir(root)
    try:
        _write_dataset(partial, config, progress, workers)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    _move_into_place(partial, root)
    return root


def _render_to(partial: Path, config: SyntheticConfig, split: str, index: int) -> str:
    image, mask = render_sample(config, split, index)
    name = sample_name(split, index)
    write_image(partial / "JPEGImages" / f"{name}.jpg", image, config.jpeg_quality)
    write_label_png(partial / "SegmentationClass" / f"{name}.png", mask, SYNTHETIC_PALETTE)
    return name


def _write_dataset(partial: Path, config: SyntheticConfig, progress: bool, workers: int) -> None:
    from tqdm import tqdm

    (partial / "ImageSets" / "Segmentation").mkdir(parents=True)
    jobs = [(split, index) for split in SPLITS for index in range(config.count(split))]
    bar = tqdm(total=len(jobs), desc="synthetic scenes", unit="img", disable=not progress)
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            futures = [pool.submit(_render_to, partial, config, split, index) for split, index in jobs]
            for future in futures:
                future.result()
                bar.update(1)
    else:
        for split, index in jobs:
            _render_to(partial, config, split, index)
            bar.update(1)
    bar.close()
    for split in SPLITS:
        names = [sample_name(split, i) for i in range(config.count(split))]
        (partial / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("".join(n + "\n" for n in names))
    write_class_file(partial / CLASS_FILE, SYNTHETIC_CLASSES, SYNTHETIC_PALETTE)
    record = {"generator_version": GENERATOR_VERSION, "config": dataclasses.asdict(config),
              "classes": list(SYNTHETIC_CLASSES)}
    (partial / "synthetic.json").write_text(json.dumps(record, indent=2) + "\n")


def _is_complete(root: Path) -> bool:
    return (root / "synthetic.json").is_file() and all(
        (root / "ImageSets" / "Segmentation" / f"{s}.txt").is_file() for s in SPLITS
    )


def ensure_dataset(
    config: SyntheticConfig = SyntheticConfig(),
    cache_dir: Optional[PathLike] = None,
    progress: bool = True,
    workers: Optional[int] = None,
) -> Path:
    """The cached dataset's root, generating it first if needed (a few minutes on 2 cores).

    ``workers`` defaults to the CPU count (at most 8)."""
    root = dataset_dir(config, cache_dir)
    if not _is_complete(root):
        with _cache_lock(root):
            if not _is_complete(root):  # another process may have made it while we waited
                generate_dataset(root, config, progress, workers or min(os.cpu_count() or 1, 8))
    return root


# -- the video clip -----------------------------------------------------------------------------
def _smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3 - 2 * x)


@dataclass(frozen=True)
class ClipPlan:
    """What happens when: pan over the whole clip, lighting change in its middle."""

    frames: int
    fps: float
    pan_pixels: int
    light_start: float = 0.4  # fraction of the clip where the lighting starts to change
    light_end: float = 0.75

    def pan(self, frame: int) -> float:
        return self.pan_pixels * _smoothstep(frame / max(self.frames - 1, 1))

    def lighting(self, frame: int) -> float:
        x = frame / max(self.frames - 1, 1)
        return _smoothstep((x - self.light_start) / (self.light_end - self.light_start))


def clip_scene(config: SyntheticConfig):
    """The clip's street: sunny at first, with traffic and pedestrians that really move."""
    rng = np.random.default_rng((config.seed, _SPLIT_STREAM["clip"]))
    margin = int(round(config.clip_pan * config.width))
    scene = sample_scene(rng, config.height, config.width, pan_margin=margin, seed=config.seed)
    end = sample_lighting(rng, "dusk")
    start = sample_lighting(rng, "sunny")
    scene.lighting = start
    scene.lighting_end = dataclasses.replace(end, sun_x=start.sun_x, sun_z=start.sun_z)
    scene.post = dataclasses.replace(scene.post, motion_blur=0)
    road = scene.road
    # guaranteed movers: an oncoming car, one pulling away, people walking and crossing
    scene.props += [
        Vehicle(road.centre - road.half_width * 0.5, 60.0, 0.0, -9.0, colour=np.float32([40, 40, 160]),
                oncoming=True),
        Vehicle(road.centre + road.half_width * 0.5, 7.0, 0.0, 5.0, kind="van", width=2.0, height=1.95, length=4.9,
                colour=np.float32([200, 200, 200])),
        Person(road.edge(1) + 1.0, 9.0, 0.0, 1.3, top=np.float32([40, 40, 170]), legs=np.float32([60, 40, 30]),
               skin=np.float32([150, 180, 220]), hair=np.float32([20, 20, 30])),
        Person(road.centre - road.half_width, 14.0, 1.2, 0.0, top=np.float32([60, 160, 60]),
               legs=np.float32([40, 40, 40]), skin=np.float32([110, 150, 200]), hair=np.float32([30, 40, 60])),
    ]
    return scene


def render_clip(config: SyntheticConfig = SyntheticConfig()) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """Yield (BGR frame, label mask) for every frame of the clip."""
    scene = clip_scene(config)
    plan = clip_plan(config)
    for frame in range(plan.frames):
        yield render(scene, t=frame / plan.fps, pan=plan.pan(frame), lighting_mix=plan.lighting(frame),
                     noise_seed=frame)


def clip_plan(config: SyntheticConfig) -> ClipPlan:
    return ClipPlan(int(round(config.clip_seconds * config.clip_fps)), config.clip_fps,
                    int(round(config.clip_pan * config.width)))


def write_clip(directory: PathLike, config: SyntheticConfig = SyntheticConfig(), progress: bool = True) -> Path:
    """Write ``street.mp4`` (mp4v), its per-frame masks and ``clip.json``; returns the video path."""
    directory = Path(directory)
    partial = _partial_dir(directory)
    try:
        _write_clip(partial, config, progress)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    _move_into_place(partial, directory)
    return directory / CLIP_NAME


def _write_clip(partial: Path, config: SyntheticConfig, progress: bool) -> None:
    import cv2
    from tqdm import tqdm

    (partial / "masks").mkdir()
    plan = clip_plan(config)
    video = partial / CLIP_NAME
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), plan.fps, (config.width, config.height))
    if not writer.isOpened():
        raise VideoError(f"{video}: OpenCV cannot open an mp4v writer (is this OpenCV built with FFmpeg?)")
    try:
        for index, (frame, mask) in enumerate(tqdm(render_clip(config), total=plan.frames, desc="synthetic clip",
                                                   unit="frame", disable=not progress)):
            if writer.write(frame) is False:  # OpenCV >= 5 reports a failed write (a full disk)
                raise VideoError(f"{video}: writing frame {index + 1} failed (is the disk full?)")
            write_label_png(partial / "masks" / f"{index:06d}.png", mask, SYNTHETIC_PALETTE)
    finally:
        writer.release()
    check = cv2.VideoCapture(str(video))
    written = int(check.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    check.release()
    if written != plan.frames:  # never cache a clip that does not hold every frame
        raise VideoError(f"{video}: the finished clip holds {written} of its {plan.frames} frames (is the disk full?)")
    info = {
        "generator_version": GENERATOR_VERSION, "video": CLIP_NAME, "frames": plan.frames, "fps": plan.fps,
        "width": config.width, "height": config.height, "pan_pixels": plan.pan_pixels,
        "lighting_change": [plan.light_start * config.clip_seconds, plan.light_end * config.clip_seconds],
        "classes": list(SYNTHETIC_CLASSES), "masks": "masks/%06d.png", "config": dataclasses.asdict(config),
    }
    (partial / "clip.json").write_text(json.dumps(info, indent=2) + "\n")


def ensure_clip(
    config: SyntheticConfig = SyntheticConfig(), cache_dir: Optional[PathLike] = None, progress: bool = True
) -> Path:
    """Path of the cached clip video, writing it first if needed (its masks lie beside it)."""
    directory = clip_dir(config, cache_dir)
    if not (directory / "clip.json").is_file():
        with _cache_lock(directory):
            if not (directory / "clip.json").is_file():
                write_clip(directory, config, progress)
    video = directory / CLIP_NAME
    if not video.is_file():
        raise DataError(f"{video}: the cached clip is incomplete; delete {directory} to regenerate it")
    return video


__all__ = [
    "CACHE_ENV",
    "ClipPlan",
    "GENERATOR_VERSION",
    "SyntheticConfig",
    "cache_root",
    "clip_dir",
    "clip_plan",
    "dataset_dir",
    "ensure_clip",
    "ensure_dataset",
    "generate_dataset",
    "render_clip",
    "render_sample",
    "write_clip",
]
