"""Argument types and model/class resolution shared by the subcommands.

Network sizes are HEIGHTxWIDTH everywhere (as ModelMeta stores them); only camera sizes
are WIDTHxHEIGHT, the way cameras are described. ``--alpha`` is 0-255 in every command,
as in jetson-inference's segnet.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence, Tuple

from fcn_edge.errors import FcnEdgeError


def _two_ints(text: str, what: str, example: str, smallest: int = 1) -> Tuple[int, int]:
    try:
        a, b = (int(v) for v in text.lower().replace(",", "x").split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what} such as {example}, got {text!r}") from None
    if a < smallest or b < smallest:
        raise argparse.ArgumentTypeError(f"size must be at least {smallest}x{smallest}, got {text!r}")
    return a, b


def size_hw(text: str) -> Tuple[int, int]:
    """'256x320' (HEIGHTxWIDTH) -> (256, 320): network input sizes."""
    return _two_ints(text, "HEIGHTxWIDTH", "256x320")


def crop_size_hw(text: str) -> Tuple[int, int]:
    """Like :func:`size_hw`, but '0x0' is allowed: no crop, the whole input."""
    return _two_ints(text, "HEIGHTxWIDTH", "128x160", smallest=0)


def camera_size_wh(text: str) -> Tuple[int, int]:
    """'1280x720' (WIDTHxHEIGHT, as cameras are described) -> (height, width)."""
    w, h = _two_ints(text, "WIDTHxHEIGHT", "1280x720")
    return h, w


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text}")
    return value


def overlay_alpha(text: str) -> float:
    """segnet's --alpha: 0 (frame only) to 255 (mask only); returned as a 0-1 weight."""
    value = float(text)
    if not 0 <= value <= 255:
        raise argparse.ArgumentTypeError(f"--alpha is 0-255 as in segnet, got {text}")
    return value / 255.0


def default_model() -> Path:
    """The shipped default model, for commands run without --model."""
    from fcn_edge import weights

    for name in ("default_onnx", "default_checkpoint"):
        getter = getattr(weights, name, None)
        if getter is not None:
            return Path(getter())
    raise FcnEdgeError("no --model given and fcn_edge.weights offers no default model; pass --model")


def resolve_ignore_class(value: Optional[str], class_names: Sequence[str]) -> Optional[int]:
    """--ignore-class as a class index, from a name (any case) or an index."""
    if value is None:
        return None
    if value.lstrip("-").isdigit():
        index = int(value)
        if not 0 <= index < len(class_names):
            raise FcnEdgeError(f"--ignore-class {index} is outside 0..{len(class_names) - 1}")
        return index
    lowered = [n.lower() for n in class_names]
    if value.lower() not in lowered:
        raise FcnEdgeError(f"--ignore-class {value!r} is not a class of this model: {', '.join(class_names)}")
    return lowered.index(value.lower())
