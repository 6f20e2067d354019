"""FP32 ONNX -> FP16 ONNX for strongly typed TensorRT builds (and TensorRT 11, which has no
FP16 builder flag), keeping the graph's inputs and outputs exactly as they were.

The conversion is our own (onnxconverter-common's ``keep_io_types`` leaves an FP16 output
when the node producing it is kept in FP32, and it needs a separate package). Every node
runs in FP16 except a block list of ops that stay FP32:
- ops that overflow FP16 (max 65504) on real activations: Exp, Pow, Softmax and the
  reductions that sum many values (ReduceSum/Mean/L2, GlobalAveragePool is safe: it
  averages), plus anything ONNX Runtime has no FP16 kernel for (Resize, Range, TopK...);
- ArgMax, and by default the output path (the last upsampling layer and the crop after it),
  because the mask is only as stable as the logits it compares: FP16 logits flip near-ties;
- by default the input path: fused preprocessing and the first conv, which reads the image.
  Rounding every input pixel to FP16 was the largest single source of argmax flips on the
  default model (99.9896% -> 99.9913% pixel agreement with FP32 when kept FP32), and a
  3-channel conv costs next to nothing.
Inputs and outputs keep their types: a fused uint8 frame input stays uint8, FP32 logits stay
FP32 (a Cast is added at the boundary), a uint8/int32 mask stays as it was.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

from fcn_edge.artifacts import ModelMeta, meta_from_props, write_onnx_meta
from fcn_edge.artifacts.variants import variant_path
from fcn_edge.errors import PrecisionError
from fcn_edge.precision.graph import GraphIndex, input_path_nodes, output_path_nodes
from fcn_edge.precision.onnx_io import (check_model, io_signature, load_model, model_sha256,
                                        save_model_atomic)
from fcn_edge.paths import PathLike

log = logging.getLogger(__name__)

FP32_OPS = (
    "ArgMax", "ArgMin", "Softmax", "LogSoftmax", "Exp", "Pow", "ReduceSum", "ReduceMean",
    "ReduceL2", "ReduceSumSquare", "ReduceLogSumExp", "CumSum", "Range", "TopK", "Resize",
    "Upsample", "NonMaxSuppression", "RoiAlign", "Min", "Max", "Einsum",
    # ops whose output type comes from an attribute, not from their inputs
    "ConstantOfShape", "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
    "EyeLike", "Multinomial", "Bernoulli",
)
FP16_MAX = 65504.0


@dataclass(frozen=True)
class FP16Config:
    """What stays FP32, in the words of :class:`fcn_edge.precision.quantize.QuantizeConfig`
    (the CLI's ``--keep-float``, ``--include-input-path``, ``--include-output-path``).

    ``keep_float``: node names kept in FP32; ``keep_float_ops``: op types kept in FP32
    besides :data:`FP32_OPS`. ``include_input_path``: convert fused preprocessing and the
    first conv too (FP32 by default); ``include_output_path``: convert the last upsampling
    and the crop/argmax after it too (FP32 by default).
    """

    keep_float: Tuple[str, ...] = ()
    include_input_path: bool = False
    include_output_path: bool = False
    keep_float_ops: Tuple[str, ...] = ()


@dataclass(frozen=True)
class FP16Result:
    path: Path
    meta: ModelMeta
    kept_float: Tuple[str, ...]  # nodes left in FP32 by name or by path (not by op type)


def convert_fp16(model_path: PathLike, output_path: Optional[PathLike] = None,
                 config: FP16Config = FP16Config()) -> FP16Result:
    """Write the FP16 variant of ``model_path`` and return where, with its ModelMeta."""
    model_path = Path(model_path)
    output_path = Path(output_path) if output_path else variant_path(model_path, "fp16")
    if output_path.resolve() == model_path.resolve():
        raise PrecisionError(f"{output_path}: the output would overwrite the input model")
    model = load_model(model_path)
    meta = meta_from_props({p.key: p.value for p in model.metadata_props}, str(model_path))
    if meta.precision != "fp32":
        raise PrecisionError(f"{model_path} is already {meta.precision}; convert the FP32 model")
    signature = io_signature(model)
    for i, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{i}"
    index = GraphIndex.build(model.graph)
    keep = set(config.keep_float)
    if not config.include_output_path:
        keep |= _output_path_names(index)
    if not config.include_input_path:
        keep |= {n.name for n in input_path_nodes(index)}
    unknown = set(config.keep_float) - {n.name for n in model.graph.node}
    if unknown:
        raise PrecisionError(f"keep_float (--keep-float) names no node of {model_path}: {sorted(unknown)}")
    ops = sorted(set(FP32_OPS) | set(config.keep_float_ops))
    converted = convert_graph_fp16(model, ops, keep, model_path)
    _restore_io(converted, signature, model_path)
    kept = tuple(sorted(n.name for n in converted.graph.node if n.name in keep))
    new_meta = meta.with_history(
        f"fp16: fp32_ops={len(ops)} "
        f"float={','.join(kept) or '-'} parent_sha256={model_sha256(model_path)[:16]}",
        precision="fp16",
    )
    write_onnx_meta(converted, new_meta)
    check_model(converted, str(output_path))
    save_model_atomic(converted, output_path)
    return FP16Result(output_path, new_meta, kept)


def _output_path_names(index: GraphIndex) -> set:
    """The last weighted node(s) and every node between them and the graph outputs."""
    names = set()
    for node in output_path_nodes(index):
        names.add(node.name)
        frontier = list(node.output)
        while frontier:
            tensor = frontier.pop()
            for user in index.consumers.get(tensor, []):
                if user.name not in names:
                    names.add(user.name)
                    frontier.extend(user.output)
    return names


def _restore_io(model, signature, where) -> None:
    if io_signature(model) != signature:
        raise PrecisionError(
            f"{where}: FP16 conversion changed the graph's inputs/outputs "
            f"({signature} -> {io_signature(model)})"
        )


def convert_graph_fp16(model, fp32_ops, fp32_nodes, where):
    """Convert ``model`` in place: FP16 nodes, FP16 constants feeding them, Casts at every
    FP16/FP32 boundary, graph inputs and outputs unchanged."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper, shape_inference

    FLOAT, HALF = TensorProto.FLOAT, TensorProto.FLOAT16
    graph = model.graph
    try:
        inferred = shape_inference.infer_shapes(model)
    except Exception as exc:  # shape inference raises InferenceError and friends
        raise PrecisionError(f"{where}: ONNX shape inference failed, cannot find float tensors: {exc}") from exc
    elem = {}
    for v in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        elem[v.name] = v.type.tensor_type.elem_type
    inits = {init.name: init for init in graph.initializer}
    for name, init in inits.items():
        elem[name] = init.data_type
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    elem[node.output[0]] = attr.t.data_type

    def runs_fp16(node) -> bool:
        if node.op_type in fp32_ops or node.name in fp32_nodes or node.domain not in ("", "ai.onnx"):
            return False
        if node.op_type == "Constant":
            return False  # converted on demand, per consumer
        floats = [t for t in list(node.input) + list(node.output) if t and elem.get(t) == FLOAT]
        return bool(floats) or (node.op_type == "Cast" and _attr(node, "to") == FLOAT)

    # id() of protobuf node wrappers is stable only while the wrappers live: hold them all
    nodes = list(graph.node)
    half = {id(n) for n in nodes if runs_fp16(n)}
    dtype = {}  # float tensor -> FLOAT or HALF after conversion
    for v in graph.input:
        dtype[v.name] = elem.get(v.name)
    producers = {o: n for n in graph.node for o in n.output}
    const_nodes = {n.output[0]: n for n in graph.node if n.op_type == "Constant"}
    new_inits, casts = [], {}
    new_nodes = []
    names = {o for n in graph.node for o in n.output} | set(inits) | {v.name for v in graph.input}

    def unique(name):
        k, candidate = 0, name
        while candidate in names:
            k += 1
            candidate = f"{name}_{k}"
        names.add(candidate)
        return candidate

    def constant_fp16(name):
        key = (name, "const16")
        if key not in casts:
            array = inits[name] if name in inits else next(a.t for a in const_nodes[name].attribute if a.name == "value")
            value = numpy_helper.to_array(array).astype(np.float32)
            value = np.clip(value, -FP16_MAX, FP16_MAX).astype(np.float16)
            new_name = unique(f"{name}_fp16")
            new_inits.append(numpy_helper.from_array(value, new_name))
            casts[key] = new_name
        return casts[key]

    def cast(name, to, before):
        key = (name, to)
        if key not in casts:
            out = unique(f"{name}_to_{'fp16' if to == HALF else 'fp32'}")
            before.append(helper.make_node("Cast", [name], [out], to=to, name=unique(f"Cast_{out}")))
            casts[key] = out
        return casts[key]

    for node in nodes:
        target = HALF if id(node) in half else FLOAT
        pre = []
        for i, name in enumerate(node.input):
            if not name or elem.get(name) != FLOAT:
                continue
            if target == HALF and (name in inits or name in const_nodes):
                node.input[i] = constant_fp16(name)
                continue
            have = dtype.get(name, FLOAT)
            if have != target:
                node.input[i] = cast(name, target, pre)
        if id(node) in half:
            if node.op_type == "Cast" and _attr(node, "to") == FLOAT:
                for attr in node.attribute:
                    if attr.name == "to":
                        attr.i = HALF
            for out in node.output:
                if elem.get(out) == FLOAT:
                    dtype[out] = HALF
        else:
            for out in node.output:
                if elem.get(out) == FLOAT:
                    dtype[out] = FLOAT
        new_nodes.extend(pre)
        new_nodes.append(node)
    # graph outputs keep their declared type
    for value in graph.output:
        if value.type.tensor_type.elem_type == FLOAT and dtype.get(value.name) == HALF:
            producer = producers[value.name]
            inner = unique(f"{value.name}_fp16")
            for i, out in enumerate(producer.output):
                if out == value.name:
                    producer.output[i] = inner
            for n in new_nodes:
                for i, name in enumerate(n.input):
                    if name == value.name:
                        n.input[i] = inner
            new_nodes.append(helper.make_node("Cast", [inner], [value.name], to=FLOAT, name=unique(f"Cast_{value.name}")))
    del graph.node[:]
    graph.node.extend(new_nodes)
    graph.initializer.extend(new_inits)
    del graph.value_info[:]  # stale float types; consumers re-infer
    used = {name for node in graph.node for name in node.input}
    keep = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    live_consts = [n for n in graph.node if n.op_type != "Constant" or n.output[0] in used]
    del graph.node[:]
    graph.node.extend(live_consts)
    return model


def _attr(node, name):
    from fcn_edge.precision.graph import attribute

    return attribute(node, name)
