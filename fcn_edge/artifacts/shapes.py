"""Sizes and shapes as people type and read them: ``256x320`` (HEIGHTxWIDTH), ``1x3x256x320``, ``2G``.

Network and frame sizes are HEIGHTxWIDTH everywhere (as ModelMeta stores them); only
camera sizes are WIDTHxHEIGHT, the way cameras are described, and they say so.
"""

from __future__ import annotations

import re
from typing import Optional, Sequence, Tuple

from fcn_edge.errors import UsageError

Size = Tuple[int, int]
Shape = Tuple[int, ...]

_PAIR = re.compile(r"\s*(\d+)\s*[xX]\s*(\d+)\s*")
_SHAPE = re.compile(r"^\d+(x\d+)*$")
_BYTES = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)(?:i?B)?\s*")


def format_shape(shape: Sequence[Optional[int]]) -> str:
    """(1, 3, -1, None) -> "1x3x?x?": dynamic dims (negative or None) print as '?'."""
    return "x".join("?" if d is None or d < 0 else str(d) for d in shape)


def format_hw(size: Sequence[int]) -> str:
    """(256, 320) -> "256x320"."""
    return f"{size[0]}x{size[1]}"


def parse_hw(text: str, what: str = "size", smallest: int = 1) -> Size:
    """"256x320" (HEIGHTxWIDTH) -> (256, 320); both at least ``smallest``."""
    match = _PAIR.fullmatch(str(text))
    if not match:
        raise UsageError(f"{what} {text!r} is not HEIGHTxWIDTH, e.g. 256x320")
    h, w = int(match.group(1)), int(match.group(2))
    if min(h, w) < smallest:
        raise UsageError(f"{what} {text!r} must be at least {smallest}x{smallest}")
    return h, w


def parse_shape(text: str) -> Shape:
    """"1x3x256x320" -> (1, 3, 256, 320): a tensor shape in the tensor's own layout."""
    text = text.strip().lower()
    if not _SHAPE.match(text):
        raise UsageError(
            f"shape {text!r} is not like 1x3x256x320 (dimensions joined by 'x', in the input's "
            "own layout: NxHxWx3 for a fused uint8 NHWC input)"
        )
    shape = tuple(int(d) for d in text.split("x"))
    if any(d < 1 for d in shape):
        raise UsageError(f"shape {text!r} has a dimension < 1")
    return shape


def parse_byte_size(text: str) -> int:
    """"2G", "512M", "1048576" -> bytes (binary multiples)."""
    match = _BYTES.fullmatch(str(text))
    if not match:
        raise UsageError(f"memory size {text!r} is not like 2G, 512M or 1048576")
    scale = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[match.group(2).lower()]
    value = int(float(match.group(1)) * scale)
    if value <= 0:
        raise UsageError(f"memory size {text!r} must be positive")
    return value
