"""Checks and clean-up of an exported graph: onnx.checker, output dtypes, onnxslim."""

from __future__ import annotations

import logging
from typing import List, Tuple

from fcn_edge.artifacts.dtypes import onnx_dtype_name
from fcn_edge.errors import ExportError
from fcn_edge.optional import require

log = logging.getLogger(__name__)


def check_model(model, source: str) -> None:
    """onnx.checker with full shape inference on the in-memory proto."""
    onnx = require("onnx", "checking the exported graph")
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:
        raise ExportError(f"{source}: onnx.checker rejected the exported graph: {exc}") from exc


def check_boundary(model, source: str, input_dtype: str, output_dtype: str) -> None:
    """The graph's input/output dtypes are the ones promised; no int64 crosses the boundary."""
    problems: List[str] = []
    for value, expected in [(v, input_dtype) for v in model.graph.input] + [(v, output_dtype) for v in model.graph.output]:
        actual = onnx_dtype_name(value.type.tensor_type.elem_type)
        if actual == "int64":
            problems.append(f"{value.name} is int64, which TensorRT 8.x cannot return")
        elif actual != expected:
            problems.append(f"{value.name} is {actual}, expected {expected}")
    if problems:
        raise ExportError(f"{source}: " + "; ".join(problems))


def dims(value) -> Tuple:
    """A graph input's/output's shape, with symbolic dims as names and unknown ones as '?'."""
    return tuple(d.dim_param if d.dim_param else int(d.dim_value) if d.HasField("dim_value") else "?"
                 for d in value.type.tensor_type.shape.dim)


def simplify(model, source: str):
    """onnxslim: constant folding and dead-node removal. Returns the simplified proto."""
    onnxslim = require("onnxslim", "simplifying the exported graph (or pass --no-simplify)")
    try:
        slim = onnxslim.slim(model)
    except Exception as exc:
        raise ExportError(f"{source}: onnxslim failed ({exc}); export again with --no-simplify") from exc
    if slim is None:
        raise ExportError(f"{source}: onnxslim returned no model; export again with --no-simplify")
    return slim
