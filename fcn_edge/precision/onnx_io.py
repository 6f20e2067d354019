"""Loading and atomically saving ONNX models for the precision steps."""

from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

from fcn_edge.artifacts import file_sha256, model_kind
from fcn_edge.atomic import atomic_path
from fcn_edge.errors import PrecisionError
from fcn_edge.optional import require
from fcn_edge.paths import PathLike

PROTOBUF_LIMIT = 2 ** 31 - 1


def load_model(path: PathLike):
    onnx = require("onnx", "FP16/INT8 conversion")
    path = Path(path)
    if not path.is_file():
        raise PrecisionError(f"{path}: no such ONNX file")
    model_kind(path).require_onnx("FP16 and INT8 variants are made from ONNX models")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # DecodeError, missing external data, ...
        raise PrecisionError(f"{path}: not a readable ONNX model: {exc}") from exc
    if not model.graph.node:
        raise PrecisionError(f"{path}: the ONNX graph has no nodes")
    return model


def model_sha256(path: PathLike) -> str:
    """SHA-256 of the ONNX file and of its external-data files, if any."""
    import hashlib

    path = Path(path)
    digest = hashlib.sha256(file_sha256(path).encode())
    for extra in sorted(_external_files(path)):
        digest.update(file_sha256(extra).encode())
    return digest.hexdigest()


def _external_files(path: Path) -> List[Path]:
    onnx = require("onnx", "hashing an ONNX model")
    model = onnx.load(str(path), load_external_data=False)
    files = set()
    for init in model.graph.initializer:
        for entry in init.external_data:
            if entry.key == "location":
                files.add(path.parent / entry.value)
    return [f for f in files if f.is_file()]


def io_signature(model) -> Tuple[Tuple[str, int], ...]:
    """(name, elem_type) of every graph input and output: what a variant must keep."""
    graph = model.graph
    inits = {i.name for i in graph.initializer}
    return tuple((v.name, v.type.tensor_type.elem_type) for v in list(graph.input) + list(graph.output)
                 if v.name not in inits)


def save_model_atomic(model, path: PathLike) -> Path:
    """Write to a temporary name beside ``path`` and rename; external data past 2 GB."""
    onnx = require("onnx", "writing ONNX")
    path = Path(path)
    with atomic_path(path) as tmp:
        if model.ByteSize() > PROTOBUF_LIMIT - (64 << 20):
            data_name = path.name + ".data"
            onnx.save_model(model, str(tmp), save_as_external_data=True, all_tensors_to_one_file=True,
                            location=data_name)
        else:
            onnx.save_model(model, str(tmp))
    return path


def check_model(model, where: str) -> None:
    onnx = require("onnx", "checking ONNX")
    try:
        if model.ByteSize() < PROTOBUF_LIMIT - (64 << 20):
            onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise PrecisionError(f"{where}: the converted graph fails onnx.checker: {exc}") from exc
