"""PASCAL VOC segmentation layout.

::

    root/JPEGImages/<id>.jpg
    root/SegmentationClass/<id>.png        palette PNG, 255 = ignore (object borders)
    root/ImageSets/Segmentation/<split>.txt

``root`` may be ``VOCdevkit/VOC2012`` or ``VOCdevkit`` (holding one VOC20xx folder). The
classes are VOC's 21 unless ``root/classes.txt`` lists others (the synthetic set does).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Tuple

from fcn_edge.classes import VOC_CLASSES, VOC_IGNORE_INDEX, VOC_PALETTE, default_palette
from fcn_edge.data.classfile import CLASS_FILE, read_class_file
from fcn_edge.data.dataset import SamplePaths, SegmentationDataset
from fcn_edge.data.images import read_label_png
from fcn_edge.errors import DataError
from fcn_edge.paths import PathLike

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def is_voc_root(root: Path) -> bool:
    return (root / "JPEGImages").is_dir() and (root / "SegmentationClass").is_dir()


def resolve_voc_root(root: PathLike) -> Path:
    root = Path(root)
    if is_voc_root(root):
        return root
    candidates = sorted(p for p in root.glob("VOC*") if is_voc_root(p)) if root.is_dir() else []
    if len(candidates) == 1:
        return candidates[0]
    raise DataError(
        f"{root}: not a VOC dataset (expected JPEGImages/ and SegmentationClass/"
        + (f"; found several candidates {[str(c) for c in candidates]}, name one" if candidates else "")
        + ")"
    )


def split_file(root: Path, split: str) -> Path:
    return root / "ImageSets" / "Segmentation" / f"{split}.txt"


def read_split(path: Path) -> Sequence[str]:
    if not path.is_file():
        available = sorted(p.stem for p in path.parent.glob("*.txt")) if path.parent.is_dir() else []
        raise DataError(f"{path}: split list not found" + (f"; available splits: {available}" if available else ""))
    ids = [line.split()[0] for line in path.read_text().splitlines() if line.strip()]
    if not ids:
        raise DataError(f"{path}: the split list is empty")
    return ids


def _image_path(root: Path, image_id: str) -> Path:
    for ext in IMAGE_EXTENSIONS:
        candidate = root / "JPEGImages" / f"{image_id}{ext}"
        if candidate.is_file():
            return candidate
    return root / "JPEGImages" / f"{image_id}.jpg"  # reported as missing by the dataset


def open_voc(
    root: PathLike,
    split: str = "val",
    class_names: Optional[Sequence[str]] = None,
    palette: Optional[Sequence[Tuple[int, int, int]]] = None,
) -> SegmentationDataset:
    """The VOC-layout dataset at ``root``, restricted to ``split``."""
    root = resolve_voc_root(root)
    if class_names is None:
        if (root / CLASS_FILE).is_file():
            class_names, file_palette = read_class_file(root / CLASS_FILE)
            palette = palette or file_palette
        else:
            class_names, palette = VOC_CLASSES, palette or VOC_PALETTE
    elif palette is None:
        palette = default_palette(len(class_names))
    pairs = [
        SamplePaths(image_id, _image_path(root, image_id), root / "SegmentationClass" / f"{image_id}.png")
        for image_id in read_split(split_file(root, split))
    ]
    class_palette = tuple(palette)

    def read_mask(path: Path):
        return read_label_png(path, class_palette, VOC_IGNORE_INDEX)

    return SegmentationDataset(
        root, pairs, class_names, class_palette, read_mask,
        format_name="voc", split=split, ignore_index=VOC_IGNORE_INDEX,
    )
