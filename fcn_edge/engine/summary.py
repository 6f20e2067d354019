"""What is inside a built engine: I/O tensors and per-layer precision, from TensorRT's
engine inspector. Used by the ``build-engine`` summary and by ``fcn-edge info ENGINE``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from fcn_edge.artifacts.dtypes import trt_dtype_name
from fcn_edge.artifacts.shapes import format_shape
from fcn_edge.errors import EngineMismatchError

if TYPE_CHECKING:  # annotations only; tensorrt is imported by the caller
    import tensorrt as trt  # noqa: F401


# The element-type words of the inspector's "Format/Datatype" text ("Row major linear FP32",
# "Channel major FP16 format where channel % 8 == 0", "Row major linear UInt8 format", or a
# bare "Half" / "BFloat16"), matched as whole words: "Int8" must not count "UInt8" and
# "Float" must not count "BFloat16".
_PRECISION_WORDS = {
    "UInt8": "uint8", "UINT8": "uint8", "BFloat16": "bf16", "BF16": "bf16", "FP8": "fp8", "FP4": "fp4",
    "Int4": "int4", "INT4": "int4", "Int8": "int8", "INT8": "int8", "Half": "fp16", "FP16": "fp16",
    "Int32": "int32", "INT32": "int32", "Int64": "int64", "INT64": "int64", "Bool": "bool", "BOOL": "bool",
    "Float": "fp32", "FP32": "fp32", "Double": "fp64",
}
_WORD = re.compile(r"[A-Za-z0-9]+")


@dataclass(frozen=True)
class TensorInfo:
    name: str
    mode: str  # "input" / "output"
    shape: Tuple[int, ...]
    dtype: str
    profile: Optional[Tuple[Tuple[int, ...], Tuple[int, ...], Tuple[int, ...]]] = None

    def to_dict(self) -> Dict[str, Any]:
        data: Dict[str, Any] = {"name": self.name, "mode": self.mode, "shape": list(self.shape), "dtype": self.dtype}
        if self.profile is not None:
            data["profile"] = {k: list(v) for k, v in zip(("min", "opt", "max"), self.profile)}
        return data


@dataclass(frozen=True)
class EngineSummary:
    size_bytes: int
    io_tensors: Tuple[TensorInfo, ...]
    layer_count: Optional[int]
    layer_precisions: Dict[str, int] = field(default_factory=dict)  # empty without DETAILED
    layer_types: Dict[str, int] = field(default_factory=dict)

    def describe(self) -> List[str]:
        lines = [f"engine size       {self.size_bytes / (1 << 20):.2f} MiB"]
        if self.layer_count is not None:
            lines.append(f"layers            {self.layer_count}")
        if self.layer_precisions:
            counts = ", ".join(f"{k} {v}" for k, v in sorted(self.layer_precisions.items(), key=lambda kv: -kv[1]))
            lines.append(f"layer precision   {counts}  (by each layer's first output)")
        for tensor in self.io_tensors:
            extra = ""
            if tensor.profile:
                extra = "  profile " + " / ".join(format_shape(s) for s in tensor.profile)
            lines.append(f"{tensor.mode:<7} {tensor.name}: {tensor.dtype} {format_shape(tensor.shape)}{extra}")
        return lines


def precision_of(format_text: str) -> str:
    """The precision the inspector's format text names, by its first element-type word."""
    for word in _WORD.findall(format_text):
        if word in _PRECISION_WORDS:
            return _PRECISION_WORDS[word]
    return "other"


def io_tensors(trt: Any, engine: "trt.ICudaEngine") -> Tuple[TensorInfo, ...]:
    """The engine's I/O tensors through the name-based API (TensorRT 8.5+)."""
    tensors = []
    profiles = int(engine.num_optimization_profiles)
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
        shape = tuple(int(d) for d in engine.get_tensor_shape(name))
        profile = None
        if is_input and profiles > 0 and any(d < 0 for d in shape):
            profile = tuple(tuple(int(d) for d in s) for s in engine.get_tensor_profile_shape(name, 0))
        tensors.append(TensorInfo(
            name, "input" if is_input else "output", shape,
            trt_dtype_name(engine.get_tensor_dtype(name)), profile,
        ))
    return tuple(tensors)


def deserialize(trt: Any, engine_bytes: bytes, source: str = "engine",
                host_code_allowed: bool = False) -> "Tuple[trt.Runtime, trt.ICudaEngine]":
    """The engine in ``engine_bytes``. ``host_code_allowed``: it is a version-compatible engine
    with its lean runtime embedded, trusted (fcn-edge built it, or its SHA-256 matches its sidecar)."""
    logger = trt.Logger(trt.Logger.ERROR)
    runtime = trt.Runtime(logger)
    if host_code_allowed:
        runtime.engine_host_code_allowed = True
    engine = runtime.deserialize_cuda_engine(engine_bytes)
    if engine is None:
        raise EngineMismatchError(
            f"{source}: TensorRT {getattr(trt, '__version__', '?')} cannot deserialise this engine "
            "(built by another TensorRT version or for another GPU, or not an engine); rebuild it "
            "with `fcn-edge build-engine`"
        )
    return runtime, engine


def summarize_engine(trt: Any, engine_bytes: bytes, source: str = "engine",
                     host_code_allowed: bool = False) -> EngineSummary:
    """Deserialise ``engine_bytes`` and ask the engine inspector what it holds."""
    runtime, engine = deserialize(trt, engine_bytes, source, host_code_allowed)
    layer_count: Optional[int] = int(engine.num_layers)
    precisions: Counter = Counter()
    types: Counter = Counter()
    inspector = engine.create_engine_inspector()
    text = inspector.get_engine_information(trt.LayerInformationFormat.JSON)
    try:
        info = json.loads(text)
    except (TypeError, ValueError):
        info = {}
    layers = info.get("Layers", []) if isinstance(info, dict) else []
    for layer in layers:
        if not isinstance(layer, dict):
            continue  # names only: the engine was built without ProfilingVerbosity.DETAILED
        types[str(layer.get("LayerType", "unknown"))] += 1
        outputs = layer.get("Outputs") or []
        if outputs and isinstance(outputs[0], dict):
            precisions[precision_of(str(outputs[0].get("Format/Datatype", "")))] += 1
    return EngineSummary(
        size_bytes=len(engine_bytes),
        io_tensors=io_tensors(trt, engine),
        layer_count=layer_count,
        layer_precisions=dict(precisions),
        layer_types=dict(types),
    )
