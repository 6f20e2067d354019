"""Torch-free image and label-mask loading, shared by training, calibration and evaluation.

Images come back as OpenCV gives them and as the runtime expects frames: (H, W, 3) uint8
BGR. Masks come back as (H, W) uint8 class indices, with the dataset's ignore index (255 in
VOC and Cityscapes) left as it is. Three mask encodings are understood:

* palette PNG (VOC ``SegmentationClass``): indices recovered exactly from the PNG palette;
* 8-bit greyscale PNG: the pixel value is the index (Cityscapes ``labelIds``, most tools);
* RGB colour PNG: each colour is looked up in the class palette given by the caller.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from fcn_edge.atomic import write_bytes_atomic
from fcn_edge.classes import default_palette
from fcn_edge.data.png import COLOUR_GREY, COLOUR_PALETTE, read_png_info, write_palette_png
from fcn_edge.errors import DataError
from fcn_edge.paths import PathLike

RGB = Tuple[int, int, int]
IGNORE_COLOUR: RGB = (224, 224, 192)  # VOC's colour for index 255 (object borders, "void")


def read_image(path: PathLike) -> np.ndarray:
    """(H, W, 3) uint8 BGR; greyscale is expanded and alpha dropped, as a camera frame would be."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: image file not found")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(f"{path}: not a readable image (OpenCV could not decode it)")
    return image


def write_image(path: PathLike, image: np.ndarray, jpeg_quality: int = 92) -> Path:
    """Encode by extension and write atomically (temporary name, then rename)."""
    path = Path(path)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if path.suffix.lower() in (".jpg", ".jpeg") else []
    ok, encoded = cv2.imencode(path.suffix, image, params)
    if not ok:
        raise DataError(f"{path}: OpenCV could not encode the image as {path.suffix}")
    return write_bytes_atomic(path, encoded.tobytes())


def full_palette(class_palette: Sequence[RGB], ignore_index: int = 255) -> Tuple[RGB, ...]:
    """A 256-entry palette: class colours first, VOC's grey-beige at ``ignore_index``, and
    distinct unused colours elsewhere, so that a stray index is never mistaken for a class."""
    colours = [tuple(int(c) for c in colour) for colour in class_palette]
    if len(colours) > 256:
        raise DataError(f"a palette PNG holds at most 256 classes, got {len(colours)}")
    taken = set(colours)
    if 0 <= ignore_index < 256:
        taken.add(IGNORE_COLOUR)
    spare = (c for c in default_palette(256) + tuple((i, 255 - i, i // 2) for i in range(256)) if c not in taken)
    out = []
    for index in range(256):
        if index < len(colours):
            out.append(colours[index])
        elif index == ignore_index:
            out.append(IGNORE_COLOUR)
        else:
            colour = next(spare)
            taken.add(colour)
            out.append(colour)
    return tuple(out)


def write_label_png(path: PathLike, mask: np.ndarray, class_palette: Sequence[RGB], ignore_index: int = 255) -> Path:
    """Write an index mask as a palette PNG coloured by ``class_palette`` (VOC style)."""
    return write_palette_png(path, mask, full_palette(class_palette, ignore_index))


def _colour_keys(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.uint32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def colours_to_indices(
    bgr: np.ndarray, palette: Sequence[RGB], source: str, values: Optional[Sequence[int]] = None
) -> np.ndarray:
    """Map each BGR pixel to the index of its colour in ``palette`` (RGB).

    ``values[i]`` is the index given to ``palette[i]`` (default ``i``). A colour that is not
    in the palette, or that the palette lists twice with different indices, is an error.
    """
    pal = np.asarray(palette, np.uint8).reshape(-1, 3)
    values = np.arange(len(pal)) if values is None else np.asarray(values)
    keys = _colour_keys(pal)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    pixels = _colour_keys(bgr[..., ::-1])
    pos = np.minimum(np.searchsorted(sorted_keys, pixels), len(sorted_keys) - 1)
    found = sorted_keys[pos] == pixels
    if not found.all():
        bad = bgr[~found][0][::-1]
        raise DataError(
            f"{source}: {int((~found).sum())} pixels have colours outside the class palette, "
            f"e.g. RGB {tuple(int(c) for c in bad)}; expected one of the {len(pal)} class colours"
        )
    indices = values[order[pos]]
    duplicated = np.flatnonzero(np.diff(sorted_keys) == 0)
    used = np.unique(pixels) if len(duplicated) else pixels[:0]
    for d in duplicated:
        if values[order[d]] != values[order[d + 1]] and np.isin(sorted_keys[d], used):
            raise DataError(
                f"{source}: palette colour RGB {tuple(int(c) for c in pal[order[d]])} stands for "
                f"indices {values[order[d]]} and {values[order[d + 1]]}; the mask is ambiguous"
            )
    return indices.astype(np.uint8)


def read_label_png(
    path: PathLike, class_palette: Optional[Sequence[RGB]] = None, ignore_index: int = 255
) -> np.ndarray:
    """(H, W) uint8 class indices from a palette, greyscale or colour PNG (see module doc).

    Values are returned as stored; checking them against the class count is the
    dataset's job, which knows the count and reports the file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: mask file not found")
    info = read_png_info(path) if path.suffix.lower() == ".png" else None
    if info is not None and info.bit_depth == 16:
        raise DataError(f"{path}: 16-bit masks are not supported; store class indices as 8-bit PNG")
    if info is not None and info.colour_type == COLOUR_PALETTE:
        if info.palette is None:
            raise DataError(f"{path}: palette PNG without a PLTE chunk")
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise DataError(f"{path}: not a readable PNG (OpenCV could not decode it)")
        return _palette_indices(path, bgr, info.palette)
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise DataError(f"{path}: not a readable mask image (OpenCV could not decode it)")
    if raw.ndim == 2 or (info is not None and info.colour_type == COLOUR_GREY):
        if raw.dtype != np.uint8:
            raise DataError(f"{path}: expected an 8-bit mask, got {raw.dtype}")
        return raw if raw.ndim == 2 else raw[..., 0]
    if class_palette is None:
        raise DataError(
            f"{path}: a colour mask needs the dataset's class palette to map colours to classes; "
            "store masks as palette or greyscale PNGs, or give the palette"
        )
    bgr = raw[..., :3]
    colours = list(class_palette)
    values = list(range(len(colours)))
    if 0 <= ignore_index < 256 and IGNORE_COLOUR not in colours:
        colours.append(IGNORE_COLOUR)
        values.append(ignore_index)
    return colours_to_indices(bgr, colours, str(path), values)


def _palette_indices(path: Path, bgr: np.ndarray, palette: np.ndarray) -> np.ndarray:
    try:
        return colours_to_indices(bgr, palette, str(path))
    except DataError:
        pass
    # A palette listing one colour under two indices (rare, but legal PNG) cannot be
    # inverted from colours; only a real PNG decoder that keeps indices can read it.
    try:
        from PIL import Image
    except ImportError:
        raise DataError(
            f"{path}: its PNG palette lists the same colour under several indices, so the "
            "indices cannot be recovered from OpenCV's decoded colours; install Pillow "
            "(pip install pillow) or re-save the mask with distinct palette colours"
        ) from None
    with Image.open(path) as image:
        return np.asarray(image, dtype=np.uint8)


__all__ = [
    "IGNORE_COLOUR",
    "colours_to_indices",
    "full_palette",
    "read_image",
    "read_label_png",
    "write_image",
    "write_label_png",
]
