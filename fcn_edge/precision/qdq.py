"""Insert QuantizeLinear/DequantizeLinear pairs into an ONNX graph, as a Placement says.

Weights are quantised per output channel (Conv: axis 0; ConvTranspose: axis 1, for ONNX
Runtime) or per tensor (ConvTranspose for TensorRT, whose deconvolution rejects
per-output-channel scales: NVIDIA/TensorRT#2380, #1694, #1519) to the narrow int8 range
[-127, 127] that TensorRT requires. They are stored either as float with a Q->DQ pair
("fake", what TensorRT 8.5/8.6 parse; TensorRT quantises them at build time) or as int8
initialisers with a DQ ("int8": a quarter of the file size; TensorRT >= 10 and ONNX
Runtime). Biases stay float for TensorRT; for ONNX Runtime they become int32 with scale
x_scale * w_scale, which its QLinearConv fusion requires. For TensorRT, ``Shape``/``Size``
nodes keep reading the unquantised tensor: they need only its shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np

from fcn_edge.errors import PrecisionError
from fcn_edge.precision.graph import SHAPE_OPS, GraphIndex, attribute
from fcn_edge.precision.placement import Placement
from fcn_edge.precision.ranges import TensorRange, int8_scale, uint8_params

WEIGHT_STORAGES = ("fake", "int8")
MIN_QDQ_OPSET = 13  # per-axis Q/DQ


@dataclass(frozen=True)
class QParams:
    scale: float
    zero_point: int
    dtype: str  # "int8" | "uint8"


def activation_params(placement: Placement, ranges: Dict[str, TensorRange],
                      fp16_scales: bool = False) -> Dict[str, QParams]:
    """Scale and zero point of every quantised activation; ``fp16_scales``: on the FP16 grid
    (:func:`scale_grid`), for graphs whose Q/DQ take FP16 scales."""
    params: Dict[str, QParams] = {}
    for name in placement.activations:
        source = placement.shared.get(name, name)
        while source in placement.shared:
            source = placement.shared[source]
        if source not in ranges:
            raise PrecisionError(f"no calibrated range for tensor {source!r}")
        r = ranges[source]
        if placement.target == "tensorrt":
            scale = float(scale_grid(np.float32(int8_scale(r)))[0]) if fp16_scales else int8_scale(r)
            params[name] = QParams(scale, 0, "int8")
        else:
            scale, zp = uint8_params(r)
            params[name] = QParams(scale, zp, "uint8")
    return params


def weight_scales(weight: np.ndarray, axis: Optional[int]) -> np.ndarray:
    """Symmetric scales: max |w| over every axis but ``axis`` (all axes: per tensor), / 127."""
    reduce = tuple(i for i in range(weight.ndim) if i != axis)
    amax = np.atleast_1d(np.abs(weight).max(axis=reduce)).astype(np.float64)
    scales = amax / 127.0
    scales[scales <= 1e-12] = 1.0  # an all-zero channel: any scale represents it exactly
    return scales.astype(np.float32)


# The smallest positive FP16 number (a subnormal). Scales are stored as FP16 in mixed
# INT8/FP16 graphs. Not the smallest *normal* one (2^-14): a convolution whose BatchNorm
# gamma is near zero (ResNet's zero-initialised bn2 after a short training) has folded
# weights whose per-channel scales lie far below it, and flooring them there left those
# channels a handful of levels (measured: FCN-8s ResNet-18 at 92 % agreement). Rounded up
# on the subnormal grid they lose at most a few per cent of their 255 levels.
MIN_SCALE = 2.0 ** -24


def scale_grid(scales: np.ndarray) -> np.ndarray:
    """Scales as FP16 represents them, never rounded down (no value leaves the int8 range)
    and never below :data:`MIN_SCALE`; an FP32 graph given these scales quantises exactly
    as its FP16 form does."""
    scales = np.maximum(np.atleast_1d(np.asarray(scales, np.float32)), np.float32(MIN_SCALE))
    half = scales.astype(np.float16)
    low = half.astype(np.float32) < scales
    half[low] = np.nextafter(half[low], np.float16(np.inf))
    return half.astype(np.float32)


def weight_axis(node, per_tensor: bool = False) -> Optional[int]:
    """The output-channel axis of ``node``'s weight, or None for one scale per tensor."""
    if per_tensor:
        return None
    if node.op_type == "ConvTranspose" and int(attribute(node, "group", 1)) == 1:
        return 1
    return 0


def insert_qdq(model, index: GraphIndex, placement: Placement, params: Dict[str, QParams],
               weight_storage: str, fp16_scales: bool = False) -> Dict[str, int]:
    """Rewrite ``model.graph`` in place; return counts of what was inserted. ``fp16_scales``:
    weight scales on the FP16 grid (:func:`scale_grid`)."""
    from onnx import helper, numpy_helper

    if weight_storage not in WEIGHT_STORAGES:
        raise PrecisionError(f"weight storage {weight_storage!r} is not one of {WEIGHT_STORAGES}")
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < MIN_QDQ_OPSET:
        raise PrecisionError(
            f"the model uses opset {opset}; per-channel Q/DQ needs opset >= {MIN_QDQ_OPSET}: "
            "re-export with a newer opset (fcn-edge export --opset 17)"
        )
    graph = model.graph
    new_inits: List[object] = []
    names_used = {init.name for init in graph.initializer} | {o for n in graph.node for o in n.output} \
        | {i.name for i in graph.input}

    def unique(name: str) -> str:
        candidate, k = name, 1
        while candidate in names_used:
            candidate, k = f"{name}_{k}", k + 1
        names_used.add(candidate)
        return candidate

    def const(name: str, array: np.ndarray) -> str:
        name = unique(name)
        new_inits.append(numpy_helper.from_array(array, name))
        return name

    zp_dtype = {"int8": np.int8, "uint8": np.uint8}
    # -- activations: Q/DQ right after the producer of each tensor -------------------------
    after: Dict[str, List[object]] = {}  # source tensor -> nodes to emit after its producer
    rename: Dict[str, str] = {}  # tensor consumers read -> DQ output
    for name, p in params.items():
        source = placement.relu_folded[name][0] if name in placement.relu_folded else name
        scale = const(f"{name}_scale", np.array(p.scale, np.float32))
        zp = const(f"{name}_zero_point", np.array(p.zero_point, zp_dtype[p.dtype]))
        q_out, dq_out = unique(f"{name}_quantized"), unique(f"{name}_dequantized")
        after.setdefault(source, []).extend([
            helper.make_node("QuantizeLinear", [source, scale, zp], [q_out], name=unique(f"{name}_Q")),
            helper.make_node("DequantizeLinear", [q_out, scale, zp], [dq_out], name=unique(f"{name}_DQ")),
        ])
        rename[name] = dq_out
    removed = {id(relu) for _, relu in placement.relu_folded.values()}

    # -- weights (and ORT biases) ---------------------------------------------------------
    weight_nodes: Dict[int, List[object]] = {}
    for node in placement.weights:
        w_name = node.input[1]
        weight = index.constant(w_name).astype(np.float32, copy=False)
        base = node.name or node.output[0]
        axis = weight_axis(node, base in placement.per_tensor)
        scales = weight_scales(weight, axis)
        if fp16_scales:
            scales = scale_grid(scales)
        if axis is None:
            scales = scales.reshape(())
        s_name = const(f"{base}_weight_scale", scales)
        zp_name = const(f"{base}_weight_zero_point", np.zeros(scales.shape, np.int8))
        dq_out = unique(f"{base}_weight_dequantized")
        axis_attr = {} if axis is None else {"axis": axis}
        nodes = []
        if weight_storage == "fake":
            q_out = unique(f"{base}_weight_quantized")
            nodes.append(helper.make_node("QuantizeLinear", [w_name, s_name, zp_name], [q_out],
                                          name=unique(f"{base}_weight_Q"), **axis_attr))
            nodes.append(helper.make_node("DequantizeLinear", [q_out, s_name, zp_name], [dq_out],
                                          name=unique(f"{base}_weight_DQ"), **axis_attr))
        else:
            shape = [1] * weight.ndim
            if axis is not None:
                shape[axis] = -1
            q = np.clip(np.round(weight / scales.reshape(shape)), -127, 127).astype(np.int8)
            q_name = const(f"{base}_weight_int8", q)
            nodes.append(helper.make_node("DequantizeLinear", [q_name, s_name, zp_name], [dq_out],
                                          name=unique(f"{base}_weight_DQ"), **axis_attr))
        node.input[1] = dq_out
        if placement.target == "onnxruntime" and len(node.input) > 2 and node.input[2] \
                and index.is_constant(node.input[2]) and node.input[0] in params:
            bias = index.constant(node.input[2]).astype(np.float64)
            b_scale = (params[node.input[0]].scale * scales.astype(np.float64))
            if b_scale.size != bias.size:  # grouped ConvTranspose: per-tensor weight scale
                b_scale = np.full(bias.shape, float(b_scale.max()))
            b_q = np.clip(np.round(bias / b_scale), -(2 ** 31), 2 ** 31 - 1).astype(np.int32)
            bq_name = const(f"{base}_bias_int32", b_q)
            bs_name = const(f"{base}_bias_scale", b_scale.astype(np.float32))
            bzp_name = const(f"{base}_bias_zero_point", np.zeros(b_q.shape, np.int32))
            b_out = unique(f"{base}_bias_dequantized")
            nodes.append(helper.make_node("DequantizeLinear", [bq_name, bs_name, bzp_name], [b_out],
                                          name=unique(f"{base}_bias_DQ"), axis=0))
            node.input[2] = b_out
        weight_nodes[id(node)] = nodes

    # -- rebuild the node list in topological order ----------------------------------------
    ordered: List[object] = []
    for source in list(after):
        if source not in index.producer:  # a graph input
            ordered.extend(after.pop(source))
    for node in graph.node:
        if id(node) in removed:
            continue
        ordered.extend(weight_nodes.get(id(node), []))
        ordered.append(node)
        for out in node.output:
            ordered.extend(after.pop(out, []))
    if after:
        raise PrecisionError(f"cannot place Q/DQ after tensors with no producer: {sorted(after)}")
    qdq_nodes = {id(n) for n in ordered if n.op_type in ("QuantizeLinear", "DequantizeLinear")}
    shape_reads_raw = placement.target == "tensorrt"  # ORT's QLinearConv fusion wants the Q as sole reader
    for node in ordered:
        if id(node) in qdq_nodes or (shape_reads_raw and node.op_type in SHAPE_OPS):
            continue
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]
    del graph.node[:]
    graph.node.extend(ordered)
    graph.initializer.extend(new_inits)
    _drop_unused_initializers(graph)
    return {
        "activation_qdq": len(params),
        "quantized_weights": len(placement.weights),
        "folded_relu": len(placement.relu_folded),
        "kept_float": len(placement.kept_float),
    }


def _drop_unused_initializers(graph) -> None:
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    dropped = {init.name for init in graph.initializer if init.name not in used}
    if dropped:
        keep = [init for init in graph.initializer if init.name not in dropped]
        del graph.initializer[:]
        graph.initializer.extend(keep)
        inputs = [i for i in graph.input if i.name not in dropped]
        del graph.input[:]
        graph.input.extend(inputs)
