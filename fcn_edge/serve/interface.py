"""What a model file takes and gives, in Triton's terms: :class:`~.model_config.ModelInterface`.

Names and dtypes come from ModelMeta; dims and the batch limit from the file itself (the
ONNX graph's declared shapes, the engine's optimisation profile and I/O tensors in its
sidecar), and the two are checked against each other, because Triton refuses a config
whose tensors do not match the model it loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from fcn_edge.artifacts import EngineRecord, ModelMeta
from fcn_edge.artifacts.dtypes import ort_dtype_name
from fcn_edge.errors import MetaError
from fcn_edge.serve.model_config import ModelInterface, TensorSpec, interface_from_meta


@dataclass(frozen=True)
class _GraphTensor:
    name: str
    dtype: str
    shape: Tuple[Optional[int], ...]  # None: symbolic


def _onnx_tensors(path: Path) -> Tuple[List[_GraphTensor], List[_GraphTensor]]:
    """The graph's inputs and outputs as ONNX Runtime reads them (the runtime's own reader)."""
    from fcn_edge.optional import require

    ort = require("onnxruntime", "reading an ONNX model's inputs and outputs")
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT's own Fail/InvalidGraph types
        raise MetaError(f"{path}: ONNX Runtime cannot load the model: {exc}") from exc

    def read(args) -> List[_GraphTensor]:
        return [_GraphTensor(a.name, ort_dtype_name(a.type), tuple(d if isinstance(d, int) and d > 0 else None
                                                                    for d in a.shape)) for a in args]

    return read(session.get_inputs()), read(session.get_outputs())


def _pick(tensors: Sequence[_GraphTensor], name: str, dtype: str, role: str, source: str) -> _GraphTensor:
    found = next((t for t in tensors if t.name == name), None)
    if found is None:
        raise MetaError(f"{source}: ModelMeta names {role} {name!r} but the model's {role}s are "
                        f"{[t.name for t in tensors]}; fix the meta or re-export")
    if found.dtype != dtype:
        raise MetaError(f"{source}: {role} {name!r} is {found.dtype} in the model but {dtype} in its ModelMeta")
    return found


def _merge_dims(graph: Sequence[Optional[int]], meta: Sequence[int], what: str, source: str) -> Tuple[int, ...]:
    """The graph's dims (-1 where symbolic), refusing a fixed dim the meta contradicts."""
    if len(graph) != len(meta):
        raise MetaError(f"{source}: {what} has rank {len(graph)} in the model but {len(meta)} by its ModelMeta")
    out = []
    for g, m in zip(graph, meta):
        if g is not None and m != -1 and g != m:
            raise MetaError(f"{source}: {what} dims {list(graph)} in the model contradict {list(meta)} "
                            "from its ModelMeta")
        out.append(-1 if g is None else g)
    return tuple(out)


def _checked(meta: ModelMeta, inp: _GraphTensor, out: _GraphTensor, batching: bool, max_batch: int,
             opt_batch: int, source: str) -> ModelInterface:
    """Per-item dims checked against the meta: the input's fully (its spatial dims are fixed
    when the meta's size is); the output's rank and class count (outputs may be strided)."""
    expected_in = interface_from_meta(meta, 1).inputs[0].dims
    expected_out = (-1, -1) if meta.fused_argmax else (meta.num_classes, -1, -1)
    in_item = _merge_dims(inp.shape[1:], expected_in, f"input {inp.name}", source)
    out_item = _merge_dims(out.shape[1:], expected_out, f"output {out.name}", source)
    if batching:  # Triton's dims are per item when it batches
        in_dims, out_dims = in_item, out_item
    else:
        fixed = inp.shape[0] or 1
        in_dims, out_dims = (fixed,) + in_item, (fixed,) + out_item
    return ModelInterface((TensorSpec(inp.name, inp.dtype, in_dims),), (TensorSpec(out.name, out.dtype, out_dims),),
                          max_batch if batching else 0, opt_batch)


def onnx_interface(path: Path, meta: ModelMeta) -> ModelInterface:
    """A symbolic batch dim batches up to the meta's ``max_batch``; a fixed one does not batch."""
    inputs, outputs = _onnx_tensors(path)
    inp = _pick(inputs, meta.input_name, meta.input_dtype, "input", str(path))
    out = _pick(outputs, meta.output_name, meta.output_dtype, "output", str(path))
    batching = bool(inp.shape) and inp.shape[0] is None
    return _checked(meta, inp, out, batching, meta.max_batch, 1, str(path))


def engine_interface(path: Path, meta: ModelMeta, record: EngineRecord) -> ModelInterface:
    """``max_batch_size`` from the engine's optimisation profile; dims from its I/O tensors."""
    profile = next((p for p in record.profiles if p.input_name == meta.input_name), None)
    if profile is None:
        raise MetaError(f"{path}: the sidecar has no optimisation profile for input {meta.input_name!r}; "
                        "rebuild the engine with `fcn-edge build-engine`")
    low, opt, high = profile.min[0], profile.opt[0], profile.max[0]
    batching = high > low or (high == 1 and meta.dynamic_batch)
    if batching and low > 1:
        raise MetaError(f"{path}: the engine's profile takes batches {low}..{high}, but Triton sends any batch "
                        "from 1 up; rebuild with a minimum batch of 1")
    tensors: Dict[str, Dict[str, Any]] = {t.get("name"): t for t in record.io_tensors}

    def graph(name: str, dtype: str, fallback: Tuple[int, ...]) -> _GraphTensor:
        info = tensors.get(name)
        shape = tuple(info["shape"]) if info and "shape" in info else fallback
        return _GraphTensor(name, str(info.get("dtype", dtype)) if info else dtype,
                            tuple(None if d is None or d < 0 else int(d) for d in shape))

    varying = tuple(-1 if lo != hi else lo for lo, hi in zip(profile.min, profile.max))
    inp = graph(meta.input_name, meta.input_dtype, varying)
    out_rank = 3 if meta.fused_argmax else 4
    out = graph(meta.output_name, meta.output_dtype, (-1,) * out_rank)
    for tensor, want, role in ((inp, meta.input_dtype, "input"), (out, meta.output_dtype, "output")):
        if tensor.dtype != want:
            raise MetaError(f"{path}: {role} {tensor.name!r} is {tensor.dtype} in the engine but {want} in its ModelMeta")
    if not batching and inp.shape and inp.shape[0] is None:  # a profile that fixes the batch
        inp = _GraphTensor(inp.name, inp.dtype, (low,) + inp.shape[1:])
        out = _GraphTensor(out.name, out.dtype, (low,) + out.shape[1:])
    return _checked(meta, inp, out, batching, high, opt, str(path))


def checkpoint_interface(meta: ModelMeta) -> ModelInterface:
    """A checkpoint runs at any batch and size in its meta's range: the meta is the whole story."""
    return interface_from_meta(meta, meta.max_batch if meta.dynamic_batch else 0)


def model_interface(path: Path, kind: str, meta: ModelMeta, record: Optional[EngineRecord] = None) -> ModelInterface:
    """The interface of a model file of ``kind`` (engine, onnx, checkpoint) described by ``meta``."""
    if kind == "onnx":
        return onnx_interface(path, meta)
    if kind == "engine":
        if record is None:
            from fcn_edge.artifacts import read_engine_sidecar

            record = read_engine_sidecar(path)[1]
        return engine_interface(path, meta, record)
    return checkpoint_interface(meta)
