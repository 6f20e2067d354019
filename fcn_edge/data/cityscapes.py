"""Cityscapes fine annotations, mapped from label ids to the 19 train ids.

::

    root/leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    root/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png

Label ids 0..33 are mapped with the official table (``CITYSCAPES_LABEL_TO_TRAIN_ID``);
every id that is not evaluated (void, license plate, rail track, ...) becomes 255.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fcn_edge.classes import CITYSCAPES_CLASSES, CITYSCAPES_LABEL_TO_TRAIN_ID, CITYSCAPES_PALETTE
from fcn_edge.data.dataset import SamplePaths, SegmentationDataset
from fcn_edge.data.images import read_label_png
from fcn_edge.errors import DataError
from fcn_edge.paths import PathLike

IGNORE_INDEX = 255
MAX_LABEL_ID = 33
IMAGE_SUFFIX = "_leftImg8bit.png"
MASK_SUFFIX = "_gtFine_labelIds.png"


def label_to_train_id_lut() -> np.ndarray:
    lut = np.full(256, IGNORE_INDEX, np.uint8)
    for label_id, train_id in CITYSCAPES_LABEL_TO_TRAIN_ID.items():
        lut[label_id] = train_id
    return lut


LABEL_TO_TRAIN_ID = label_to_train_id_lut()


def labelids_to_trainids(label_ids: np.ndarray, source: str = "mask") -> np.ndarray:
    """Map a labelIds mask to train ids; ids above 33 are not Cityscapes labels."""
    if label_ids.max(initial=0) > MAX_LABEL_ID:
        bad = sorted(int(v) for v in np.unique(label_ids[label_ids > MAX_LABEL_ID]))[:8]
        raise DataError(
            f"{source}: label ids {bad} are not Cityscapes label ids (0..{MAX_LABEL_ID}); "
            "is this a labelIds mask (not color or instanceIds)?"
        )
    return LABEL_TO_TRAIN_ID[label_ids]


def is_cityscapes_root(root: Path) -> bool:
    return (root / "leftImg8bit").is_dir() and (root / "gtFine").is_dir()


def open_cityscapes(root: PathLike, split: str = "val") -> SegmentationDataset:
    root = Path(root)
    if not is_cityscapes_root(root):
        raise DataError(f"{root}: not a Cityscapes dataset (expected leftImg8bit/ and gtFine/)")
    image_dir = root / "leftImg8bit" / split
    if not image_dir.is_dir():
        available = sorted(p.name for p in (root / "leftImg8bit").iterdir() if p.is_dir())
        raise DataError(f"{image_dir}: split '{split}' not found; available: {available}")
    pairs = []
    for image in sorted(image_dir.glob(f"*/*{IMAGE_SUFFIX}")):
        stem = image.name[: -len(IMAGE_SUFFIX)]
        mask = root / "gtFine" / split / image.parent.name / f"{stem}{MASK_SUFFIX}"
        pairs.append(SamplePaths(stem, image, mask))

    def read_mask(path: Path) -> np.ndarray:
        return labelids_to_trainids(read_label_png(path), str(path))

    return SegmentationDataset(
        root, pairs, CITYSCAPES_CLASSES, CITYSCAPES_PALETTE, read_mask,
        format_name="cityscapes", split=split, ignore_index=IGNORE_INDEX,
    )
