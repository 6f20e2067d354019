"""Just enough PNG to keep class indices exact without Pillow.

OpenCV expands a palette ("P" mode) PNG to BGR colours, losing the indices that VOC-style
masks store. Reading the header and the ``PLTE`` chunk (a few hundred bytes, no pixel
decoding) lets :mod:`fcn_edge.data.images` map the decoded colours back to indices, and
:func:`write_palette_png` writes palette masks that every viewer shows in class colours.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np

from fcn_edge.atomic import write_bytes_atomic
from fcn_edge.errors import DataError
from fcn_edge.paths import PathLike

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOUR_GREY, COLOUR_RGB, COLOUR_PALETTE, COLOUR_GREY_ALPHA, COLOUR_RGBA = 0, 2, 3, 4, 6



@dataclass(frozen=True)
class PngInfo:
    width: int
    height: int
    bit_depth: int
    colour_type: int
    palette: Optional[np.ndarray]  # (N, 3) uint8 RGB for palette images, else None


def read_png_info(path: PathLike) -> PngInfo:
    """Parse the IHDR and PLTE chunks of a PNG file; no pixel data is decoded."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            if handle.read(8) != PNG_SIGNATURE:
                raise DataError(f"{path}: not a PNG file (bad signature)")
            header = None
            palette = None
            while True:
                head = handle.read(8)
                if len(head) < 8:
                    break
                length, kind = struct.unpack(">I4s", head)
                if kind == b"IDAT" or kind == b"IEND":
                    break
                body = handle.read(length)
                handle.read(4)  # CRC
                if kind == b"IHDR":
                    header = struct.unpack(">IIBB", body[:10])
                elif kind == b"PLTE":
                    palette = np.frombuffer(body, np.uint8).reshape(-1, 3).copy()
    except OSError as exc:
        raise DataError(f"{path}: cannot read PNG: {exc}") from exc
    if header is None:
        raise DataError(f"{path}: PNG has no IHDR chunk")
    width, height, bit_depth, colour_type = header
    return PngInfo(width, height, bit_depth, colour_type, palette)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def encode_palette_png(indices: np.ndarray, palette: Sequence[Tuple[int, int, int]], level: int = 6) -> bytes:
    """An 8-bit palette PNG of ``indices`` (H, W uint8) with ``palette`` (<= 256 RGB colours)."""
    indices = np.ascontiguousarray(indices)
    if indices.ndim != 2 or indices.dtype != np.uint8:
        raise DataError(f"a palette PNG needs an (H, W) uint8 array, got {indices.shape} {indices.dtype}")
    colours = np.asarray(palette, np.uint8).reshape(-1, 3)
    if not 1 <= len(colours) <= 256:
        raise DataError(f"a PNG palette holds 1..256 colours, got {len(colours)}")
    height, width = indices.shape
    # Each scanline starts with its filter type; 0 (none) is what palette images want.
    raw = np.zeros((height, width + 1), np.uint8)
    raw[:, 1:] = indices
    header = struct.pack(">IIBBBBB", width, height, 8, COLOUR_PALETTE, 0, 0, 0)
    return b"".join(
        (
            PNG_SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"PLTE", colours.tobytes()),
            _chunk(b"IDAT", zlib.compress(raw.tobytes(), level)),
            _chunk(b"IEND", b""),
        )
    )


def write_palette_png(path: PathLike, indices: np.ndarray, palette: Sequence[Tuple[int, int, int]]) -> Path:
    """Write a palette PNG atomically (temporary name, then rename)."""
    return write_bytes_atomic(path, encode_palette_png(indices, palette))
