"""Still images -> pictures and masks on disk: the library call behind ``fcn-edge segment``.

:func:`segment_images` collects image files (named, or inside folders), segments them in
batches with one Segmenter, and writes ``<stem>.<mode>.png`` (overlay, colour mask, or both
side by side, with the class legend by default) and, when asked, ``<stem>.mask.png`` with
the raw class indices evaluation tools read. It returns one record per image: the stage
timings, the share of pixels per class, and the paths written. Every file is written under
a temporary name and renamed when complete.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from fcn_edge.errors import DataError, UsageError
from fcn_edge.paths import PathLike
from fcn_edge.runtime import DecodeConfig, LoadOptions, RenderConfig, Renderer, Segmenter, StageTimings
from fcn_edge.video.sources import list_images
from fcn_edge.video.uri import IMAGE_EXTENSIONS


@dataclass(frozen=True)
class SegmentImagesConfig:
    """What ``fcn-edge segment`` does, as one value. ``model`` None: the default model."""

    model: Optional[Path] = None
    load: LoadOptions = field(default_factory=LoadOptions)
    filter_mode: str = "point"
    render: RenderConfig = field(default_factory=lambda: RenderConfig(legend=True))
    save_mask: bool = False
    recursive: bool = False
    batch: int = 1

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise UsageError(f"batch {self.batch} must be >= 1")


@dataclass(frozen=True)
class ImageRecord:
    """One segmented image: what was read, what was written, and where the time went."""

    image: Path
    picture: Path
    mask: Optional[Path]
    height: int
    width: int
    timings: StageTimings
    class_shares: Dict[str, float]  # ignored class left out of the total

    def top_classes(self, count: int) -> List[Tuple[str, float]]:
        """The ``count`` classes covering the most pixels, largest first (absent ones left out)."""
        ranked = sorted(self.class_shares.items(), key=lambda kv: -kv[1])
        return [(name, share) for name, share in ranked[:count] if share > 0]

    def to_dict(self) -> Dict[str, object]:
        return {"image": str(self.image), "output": str(self.picture),
                "mask": str(self.mask) if self.mask else None, "width": self.width, "height": self.height,
                "timings": self.timings.as_dict(), "class_shares": dict(self.class_shares)}


@dataclass(frozen=True)
class SegmentImagesReport:
    model: str
    backend: str
    description: str
    out_dir: Path
    images: Tuple[ImageRecord, ...]

    def to_dict(self) -> Dict[str, object]:
        return {"model": self.model, "backend": self.backend, "description": self.description,
                "out_dir": str(self.out_dir), "images": [r.to_dict() for r in self.images]}


def collect_images(inputs: Sequence[PathLike], recursive: bool = False) -> List[Path]:
    """Image files named or inside the given folders, in natural order (img2 before img10).

    Raises DataError for a name that is neither, for a set without images, and for two
    images with the same stem, whose pictures would overwrite each other.
    """
    images: List[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            folders = [path] + (sorted(p for p in path.rglob("*") if p.is_dir()) if recursive else [])
            for folder in folders:
                images.extend(Path(p) for p in list_images(str(folder)))
        elif path.is_file():
            images.append(path)
        else:
            raise DataError(f"{path}: no such image file or folder")
    if not images:
        raise DataError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in {', '.join(map(str, inputs))}")
    seen: Dict[str, Path] = {}
    for image in images:
        other = seen.setdefault(image.stem, image)
        if other != image:
            raise DataError(f"{other} and {image} have the same name stem, so their pictures would overwrite "
                            "each other in one output folder; segment them into separate folders")
    return images


def segment_images(
    inputs: Sequence[PathLike],
    out_dir: PathLike,
    config: SegmentImagesConfig = SegmentImagesConfig(),
    segmenter: Optional[Segmenter] = None,
    on_image: Optional[Callable[[ImageRecord], None]] = None,
) -> SegmentImagesReport:
    """Segment every image of ``inputs`` into ``out_dir`` (created).

    ``segmenter``: use this one (the caller keeps it open) instead of loading
    ``config.model``. ``on_image`` is called with each record as soon as its files are
    written, for progress output.
    """
    from fcn_edge.data.images import read_image, write_image

    images = collect_images(inputs, config.recursive)  # a typo fails before a model loads
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    owned = segmenter is None
    if segmenter is None:
        segmenter = config.load.load(config.model, DecodeConfig(config.filter_mode))
    try:
        meta = segmenter.meta
        renderer = Renderer(meta.palette, config.render, meta.class_names)
        mode = config.render.mode
        records: List[ImageRecord] = []
        for start in range(0, len(images), config.batch):
            chunk = images[start : start + config.batch]
            frames = [read_image(p) for p in chunk]
            for path, frame, result in zip(chunk, frames, segmenter.segment_batch(frames)):
                picture = write_image(out / f"{path.stem}.{mode}.png", renderer(frame, result.mask))
                mask = write_image(out / f"{path.stem}.mask.png", result.mask) if config.save_mask else None
                record = ImageRecord(path, picture, mask, frame.shape[0], frame.shape[1], result.timings,
                                     result.class_shares(renderer.ignore_class))
                records.append(record)
                if on_image is not None:
                    on_image(record)
        model = str(segmenter.path or config.model or "")
        return SegmentImagesReport(model, segmenter.backend.name, segmenter.description, out, tuple(records))
    finally:
        if owned:
            segmenter.close()
