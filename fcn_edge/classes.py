"""Built-in class lists and palettes (RGB), so that nobody retypes them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Tuple

from fcn_edge.errors import UsageError

RGB = Tuple[int, int, int]


def _voc_palette(n: int) -> Tuple[RGB, ...]:
    """The PASCAL VOC colour map: bit-interleaved class index, as in the VOC devkit."""
    colours = []
    for index in range(n):
        r = g = b = 0
        c = index
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        colours.append((r, g, b))
    return tuple(colours)


VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)
VOC_PALETTE = _voc_palette(256)[: len(VOC_CLASSES)]
VOC_IGNORE_INDEX = 255

# Cityscapes' 19 evaluation classes, in train-id order, with the official colours.
CITYSCAPES_CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle",
)
CITYSCAPES_PALETTE: Tuple[RGB, ...] = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
    (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
    (0, 80, 100), (0, 0, 230), (119, 11, 32),
)
# Cityscapes label id -> train id; every id not listed maps to 255 (ignore).
CITYSCAPES_LABEL_TO_TRAIN_ID = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11,
    25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}

# The procedural street scenes of fcn_edge.data.synthetic.
SYNTHETIC_CLASSES = ("background", "sky", "road", "building", "vegetation", "vehicle", "person")
SYNTHETIC_PALETTE: Tuple[RGB, ...] = (
    (0, 0, 0), (70, 130, 180), (128, 64, 128), (70, 70, 70), (107, 142, 35), (0, 0, 142),
    (220, 20, 60),
)

DATASETS = {
    "voc": (VOC_CLASSES, VOC_PALETTE),
    "cityscapes": (CITYSCAPES_CLASSES, CITYSCAPES_PALETTE),
    "synthetic": (SYNTHETIC_CLASSES, SYNTHETIC_PALETTE),
}


def default_palette(num_classes: int) -> Tuple[RGB, ...]:
    """A distinct colour per class for user datasets without their own palette."""
    return _voc_palette(max(num_classes, 1))[:num_classes]


@dataclass(frozen=True)
class ClassList:
    """Class names and their RGB colours; ``dataset`` names a built-in list ("" otherwise)."""

    names: Tuple[str, ...]
    palette: Tuple[RGB, ...]
    dataset: str = ""


def builtin_classes(name: str) -> ClassList:
    """A built-in class list by name: voc, cityscapes or synthetic."""
    key = name.lower()
    if key not in DATASETS:
        raise UsageError(f"classes {name!r}: not a built-in list; built-in ones are {', '.join(sorted(DATASETS))}")
    names, palette = DATASETS[key]
    return ClassList(tuple(names), tuple(palette), key)


def numbered_classes(count: int) -> ClassList:
    """``class_0`` .. ``class_{count-1}`` with the default palette, for models that name none."""
    if count < 1:
        raise UsageError(f"a class list needs at least one class, got {count}")
    return ClassList(tuple(f"class_{i}" for i in range(count)), default_palette(count))


def classes_for_count(count: int) -> ClassList:
    """The class list of a model that names none: PASCAL VOC's for 21 classes, Cityscapes'
    for 19, else ``class_0``... with the default palette."""
    builtin = {21: "voc", 19: "cityscapes"}.get(count)
    return builtin_classes(builtin) if builtin else numbered_classes(count)


def resolve_classes(spec: str) -> ClassList:
    """``--classes``: a built-in list (voc, cityscapes, synthetic), a classes.txt, or a count."""
    text = str(spec).strip()
    if text.lower() in DATASETS:
        return builtin_classes(text)
    if Path(text).is_file():
        from fcn_edge.data.classfile import read_class_file

        names, palette = read_class_file(text)
        return ClassList(tuple(names), tuple(palette))
    if text.isdigit() and int(text) > 0:
        return numbered_classes(int(text))
    raise UsageError(
        f"classes {spec!r}: not a built-in list ({', '.join(sorted(DATASETS))}), an existing "
        "classes.txt, or a positive count"
    )
