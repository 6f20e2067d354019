"""The plain folder pair most labelling tools export::

    root/images/<name>.<jpg|png|...>
    root/masks/<name>.png           palette, greyscale (value = class) or colour PNG
    root/classes.txt                one class per line (optionally "name R G B")
    root/train.txt, root/val.txt    optional split lists of names (stems)

Without split lists, ``split="all"`` (the default) takes every image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Tuple

from fcn_edge.classes import default_palette
from fcn_edge.data.classfile import CLASS_FILE, read_class_file
from fcn_edge.data.dataset import SamplePaths, SegmentationDataset
from fcn_edge.data.images import read_label_png
from fcn_edge.errors import DataError
from fcn_edge.paths import PathLike

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def is_folder_root(root: Path) -> bool:
    return (root / "images").is_dir() and (root / "masks").is_dir()


def open_folder(
    root: PathLike,
    split: str = "all",
    class_names: Optional[Sequence[str]] = None,
    palette: Optional[Sequence[Tuple[int, int, int]]] = None,
    ignore_index: int = 255,
) -> SegmentationDataset:
    root = Path(root)
    if not is_folder_root(root):
        raise DataError(f"{root}: not an images/ + masks/ dataset (expected both folders)")
    if class_names is None:
        if not (root / CLASS_FILE).is_file():
            raise DataError(
                f"{root}: no {CLASS_FILE}; list the classes one per line there "
                "(index 0 first), or pass class names"
            )
        class_names, file_palette = read_class_file(root / CLASS_FILE)
        palette = palette or file_palette
    palette = tuple(palette or default_palette(len(class_names)))
    images = {p.stem: p for p in sorted((root / "images").iterdir()) if p.suffix.lower() in IMAGE_EXTENSIONS}
    if split == "all":
        names = sorted(images)
    else:
        listing = root / f"{split}.txt"
        if not listing.is_file():
            raise DataError(f"{listing}: split list not found; without split lists use split 'all'")
        names = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
    pairs = [
        SamplePaths(name, images.get(name, root / "images" / f"{name}.jpg"), root / "masks" / f"{name}.png")
        for name in names
    ]

    def read_mask(path: Path):
        return read_label_png(path, palette, ignore_index)

    return SegmentationDataset(
        root, pairs, class_names, palette, read_mask,
        format_name="folder", split=split, ignore_index=ignore_index,
    )
