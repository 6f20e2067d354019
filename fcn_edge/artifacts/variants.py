"""Variant file names: ``model.onnx`` -> ``model.fp16.onnx`` / ``model.int8.onnx`` / ``model.int8-ort.onnx``.

``fcn-edge quantize`` writes a variant under these names and ``benchmark --precision``
finds it by the same rule: one function each way, so the two can never drift apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Tuple

from fcn_edge.errors import MetaError
from fcn_edge.paths import PathLike

# int8-ort: `fcn-edge quantize --target onnxruntime` (uint8 activations, fast on ORT CPU)
VARIANT_TAGS: Tuple[str, ...] = ("fp32", "fp16", "int8", "int8-ort")


def variant_tag(precision: str, target: str = "tensorrt") -> str:
    """The tag of a variant in its file name: fp16, int8 (TensorRT flavour) or int8-ort."""
    if precision == "int8" and target == "onnxruntime":
        return "int8-ort"
    if precision not in VARIANT_TAGS:
        raise MetaError(f"precision {precision!r} is not one of {VARIANT_TAGS}")
    return precision


def split_variant(path: PathLike) -> Tuple[str, str, str]:
    """(base stem, tag or "", suffix): ``runs/m.int8.onnx`` -> ("m", "int8", ".onnx")."""
    path = Path(path)
    stem, suffix = path.stem, path.suffix
    for tag in sorted(VARIANT_TAGS, key=len, reverse=True):
        if stem.endswith("." + tag):
            return stem[: -len(tag) - 1], tag, suffix
    return stem, "", suffix


def variant_path(model: PathLike, tag: str) -> Path:
    """The file of variant ``tag`` beside ``model``; fp32 is the untagged base name."""
    if tag not in VARIANT_TAGS:
        raise MetaError(f"variant {tag!r} is not one of {VARIANT_TAGS}")
    model = Path(model)
    stem, _, suffix = split_variant(model)
    return model.with_name(f"{stem}{suffix}" if tag == "fp32" else f"{stem}.{tag}{suffix}")
