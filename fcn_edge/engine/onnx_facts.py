"""What an ONNX file already decides before TensorRT sees it: I/O tensors, precision, casts.

Precision is set at the ONNX level (DESIGN.md): a Q/DQ graph is INT8, a graph with casts to
float16 or float16 weights is FP16. The builder reads that here, with onnx, so the same
facts drive both a real build and ``--dry-run`` on a machine without TensorRT. So do the
Cast nodes and the element types on both sides of each: TensorRT converts ``uint8`` only
from and to float32/float16 (its ``DataType.UINT8`` documentation, 8.6 to 11.x), and a graph
that casts int32 to uint8 fails minutes into the build; the plan refuses it first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from fcn_edge.artifacts.dtypes import onnx_dtype_name
from fcn_edge.artifacts import ModelMeta, file_sha256, meta_from_props, model_kind
from fcn_edge.errors import EngineBuildError, MetaError
from fcn_edge.optional import require
from fcn_edge.paths import PathLike

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


@dataclass(frozen=True)
class TensorFacts:
    name: str
    shape: Tuple[int, ...]  # -1 for a dynamic dimension
    dtype: str  # numpy-style name: float32, float16, uint8, int32, ...

    @property
    def dynamic(self) -> bool:
        return any(d < 0 for d in self.shape)

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class CastFacts:
    """One Cast node: where it is and the element types it converts between."""

    index: int  # position in graph.node
    name: str
    source: str  # numpy-style dtype name of the input, "" when the graph does not say
    target: str

    def to_dict(self) -> Dict[str, Any]:
        return {"node": self.name, "index": self.index, "from": self.source, "to": self.target}


@dataclass(frozen=True)
class OnnxFacts:
    path: Path
    sha256: str
    inputs: Tuple[TensorFacts, ...]
    outputs: Tuple[TensorFacts, ...]
    node_names: Tuple[str, ...]
    node_ops: Tuple[str, ...]
    qdq_nodes: int
    fp16_casts: int
    fp16_initializers: int
    meta: Optional[ModelMeta]
    meta_error: str = ""
    casts: Tuple[CastFacts, ...] = ()
    opset: Optional[int] = None  # of the default ONNX domain

    @property
    def has_qdq(self) -> bool:
        return self.qdq_nodes > 0

    @property
    def has_fp16(self) -> bool:
        return self.fp16_casts > 0 or self.fp16_initializers > 0

    @property
    def precision(self) -> str:
        """The precision the graph itself carries: int8 > fp16 > fp32."""
        if self.has_qdq:
            return "int8"
        if self.has_fp16:
            return "fp16"
        return "fp32"

    def describe_precision(self) -> str:
        parts = []
        def count(n: int, what: str) -> str:
            return f"{n} {what}" + ("" if n == 1 else "s")

        if self.qdq_nodes:
            parts.append(count(self.qdq_nodes, "Q/DQ node"))
        if self.fp16_casts:
            parts.append(count(self.fp16_casts, "cast") + " to float16")
        if self.fp16_initializers:
            parts.append(count(self.fp16_initializers, "float16 weight"))
        return ", ".join(parts) if parts else "no Q/DQ nodes, no float16 casts or weights"

    def require_meta(self, why: str = "the engine's sidecar needs it") -> ModelMeta:
        """The ONNX's ModelMeta, or the refusal that says how to get one."""
        if self.meta is None:
            problem = self.meta_error or f"{self.path}: no ModelMeta"
            raise EngineBuildError(f"{problem}; {why}: export the model with `fcn-edge export`")
        return self.meta

    def node_label(self, index: int) -> str:
        """"'name' (Op)" for the node at ``index`` of the graph, for parser errors."""
        if 0 <= index < len(self.node_names):
            name = self.node_names[index] or f"#{index}"
            return f"'{name}' ({self.node_ops[index]})"
        return f"#{index}"


def _tensor_facts(onnx, value_info) -> TensorFacts:
    tensor_type = value_info.type.tensor_type
    dims = tuple(
        d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1
        for d in tensor_type.shape.dim
    )
    return TensorFacts(value_info.name, dims, onnx_dtype_name(tensor_type.elem_type))


def _element_types(onnx, model) -> Dict[str, int]:
    """Every tensor's ONNX element type that the graph states or ONNX shape inference finds."""
    graph = model.graph
    try:
        graph = onnx.shape_inference.infer_shapes(model).graph
    except Exception:  # noqa: BLE001 - inference is a help: the declared types remain
        pass
    types: Dict[str, int] = {init.name: init.data_type for init in graph.initializer}
    for value in list(graph.input) + list(graph.value_info) + list(graph.output):
        elem_type = value.type.tensor_type.elem_type
        if elem_type:
            types[value.name] = elem_type
    return types


def _cast_facts(onnx, model) -> Tuple[CastFacts, ...]:
    types = _element_types(onnx, model)
    casts = []
    for index, node in enumerate(model.graph.node):
        if node.op_type != "Cast" or not node.input:
            continue
        target = next((a.i for a in node.attribute if a.name == "to"), 0)
        source = types.get(node.input[0], 0)
        casts.append(CastFacts(index, node.name or f"#{index}",
                               onnx_dtype_name(source) if source else "", onnx_dtype_name(target)))
    return tuple(casts)


def read_onnx_facts(path: PathLike) -> OnnxFacts:
    """Read I/O tensors, precision markers and ModelMeta of an ONNX file (weights not loaded)."""
    path = Path(path)
    if not path.is_file():
        raise EngineBuildError(f"{path}: no such ONNX file")
    # an empty or foreign file is bad input (MetaError, exit 2), named for what it is and how
    # to make an ONNX of it, never "an ONNX model with 0 nodes"
    model_kind(path).require_onnx("an engine is built from an ONNX model")
    onnx = require("onnx", "reading the ONNX graph for an engine build")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # DecodeError and friends
        raise MetaError(f"{path}: not a readable ONNX model: {exc}") from exc
    graph = model.graph
    if not graph.node:
        raise MetaError(f"{path}: the ONNX graph has no nodes (a truncated or placeholder file?)")
    initializer_names = {init.name for init in graph.initializer}
    float16 = onnx.TensorProto.FLOAT16
    qdq = 0
    casts = 0
    for node in graph.node:
        if node.op_type in QDQ_OPS:
            qdq += 1
        elif node.op_type == "Cast":
            casts += any(a.name == "to" and a.i == float16 for a in node.attribute)
    fp16_weights = sum(init.data_type == float16 for init in graph.initializer)
    meta: Optional[ModelMeta] = None
    meta_error = ""
    try:
        meta = meta_from_props({p.key: p.value for p in model.metadata_props}, str(path))
    except MetaError as exc:
        meta_error = str(exc)
    return OnnxFacts(
        path=path,
        sha256=file_sha256(path),
        inputs=tuple(_tensor_facts(onnx, v) for v in graph.input if v.name not in initializer_names),
        outputs=tuple(_tensor_facts(onnx, v) for v in graph.output),
        node_names=tuple(n.name for n in graph.node),
        node_ops=tuple(n.op_type for n in graph.node),
        qdq_nodes=qdq,
        fp16_casts=casts,
        fp16_initializers=fp16_weights,
        meta=meta,
        meta_error=meta_error,
        casts=_cast_facts(onnx, model),
        opset=next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None),
    )
