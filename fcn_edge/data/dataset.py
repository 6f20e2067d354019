"""A segmentation dataset: file pairs, a class list, and checked loading. Torch-free.

Every reader (VOC, Cityscapes, folder pair, the synthetic set) produces a
:class:`SegmentationDataset`; training wraps it for torch, while calibration and evaluation
iterate it directly. Files are listed and checked for existence when the dataset is
opened, so a missing mask fails at once, not an hour into training; pixel contents are
checked when each sample is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from fcn_edge.classes import DATASETS
from fcn_edge.data.images import read_image
from fcn_edge.errors import DataError
from fcn_edge.paths import PathLike

RGB = Tuple[int, int, int]
MaskReader = Callable[[Path], np.ndarray]

MAX_LISTED = 5  # how many offending files an error message names


@dataclass(frozen=True)
class SamplePaths:
    name: str
    image: Path
    mask: Path


@dataclass(frozen=True)
class Sample:
    """One image and its mask, at the image's own size."""

    name: str
    image: np.ndarray  # (H, W, 3) uint8 BGR
    mask: np.ndarray  # (H, W) uint8 class indices; ignore_index where unlabelled
    image_path: Path
    mask_path: Path


def _listing(paths: Sequence[Path]) -> str:
    shown = ", ".join(str(p) for p in paths[:MAX_LISTED])
    more = f" and {len(paths) - MAX_LISTED} more" if len(paths) > MAX_LISTED else ""
    return shown + more


class SegmentationDataset:
    """An indexable, iterable list of :class:`Sample` with the dataset's class list."""

    def __init__(
        self,
        root: PathLike,
        pairs: Sequence[SamplePaths],
        class_names: Sequence[str],
        palette: Sequence[RGB],
        read_mask: MaskReader,
        *,
        format_name: str,
        split: Optional[str] = None,
        ignore_index: int = 255,
    ):
        self.root = Path(root)
        self.pairs: List[SamplePaths] = list(pairs)
        self.class_names: Tuple[str, ...] = tuple(class_names)
        self.palette: Tuple[RGB, ...] = tuple(tuple(int(c) for c in colour) for colour in palette)
        self.format_name = format_name
        self.split = split
        self.ignore_index = ignore_index
        self._read_mask = read_mask
        where = f"{self.root}" + (f" (split '{split}')" if split else "")
        if not self.class_names:
            raise DataError(f"{where}: the dataset has no classes")
        if len(self.palette) != len(self.class_names):
            raise DataError(f"{where}: {len(self.palette)} palette colours for {len(self.class_names)} classes")
        if not self.pairs:
            raise DataError(f"{where}: no samples found")
        missing_images = [p.image for p in self.pairs if not p.image.is_file()]
        if missing_images:
            raise DataError(f"{where}: {len(missing_images)} image files are missing: {_listing(missing_images)}")
        missing_masks = [p.mask for p in self.pairs if not p.mask.is_file()]
        if missing_masks:
            raise DataError(
                f"{where}: {len(missing_masks)} images have no mask; expected "
                f"{_listing(missing_masks)}"
            )

    # -- facts -----------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def dataset_key(self) -> str:
        """The built-in dataset name whose classes these are ("voc", "synthetic"...), or ""."""
        for key, (names, _palette) in DATASETS.items():
            if tuple(names) == self.class_names:
                return key
        return ""

    def describe(self) -> str:
        split = f", split {self.split}" if self.split else ""
        return f"{self.format_name} dataset at {self.root}{split}: {len(self)} images, {self.num_classes} classes"

    def __repr__(self) -> str:
        return f"<SegmentationDataset {self.describe()}>"

    # -- access ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> Sample:
        paths = self.pairs[index]
        image = read_image(paths.image)
        mask = self.load_mask(index)
        if image.shape[:2] != mask.shape:
            raise DataError(
                f"{paths.mask}: mask is {mask.shape[1]}x{mask.shape[0]} (WxH) but its image "
                f"{paths.image} is {image.shape[1]}x{image.shape[0]}; they must be the same size"
            )
        return Sample(paths.name, image, mask, paths.image, paths.mask)

    def __iter__(self) -> Iterator[Sample]:
        for index in range(len(self)):
            yield self[index]

    def load_mask(self, index: int) -> np.ndarray:
        """The checked class-index mask of sample ``index``, without decoding its image."""
        path = self.pairs[index].mask
        mask = self._read_mask(path)
        self.check_mask(mask, path)
        return mask

    def check_mask(self, mask: np.ndarray, source: Path) -> None:
        """Raise :class:`DataError` naming ``source`` if a value is no class and not ignore."""
        if mask.ndim != 2 or mask.dtype != np.uint8:
            raise DataError(f"{source}: a mask must be (H, W) uint8, got {mask.shape} {mask.dtype}")
        counts = np.bincount(mask.ravel(), minlength=256)
        bad = [v for v in np.flatnonzero(counts) if v >= self.num_classes and v != self.ignore_index]
        if bad:
            raise DataError(
                f"{source}: mask values {[int(v) for v in bad[:8]]} are beyond the class count "
                f"({self.num_classes} classes, indices 0..{self.num_classes - 1}; "
                f"{self.ignore_index} = ignore)"
            )
