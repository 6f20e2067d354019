"""The deployment heads, grafted onto an ONNX graph: one implementation for every source.

The PyTorch (and Keras) exporters write the bare network, float NCHW RGB in and scores out;
a foreign ONNX arrives as its authors laid it out. Both get the same heads here, added to
the graph with onnx-graphsurgeon (NVIDIA's graph editor, what Polygraphy is built on: tensors
are objects, so a head can read any tensor's shape, the frame input's included, and the
graph is re-exported with its opset and IR version):

* **input**: uint8 NHWC BGR frames (as OpenCV gives them) -> float -> [resize to the network
  size, bilinear] -> the layout and channel order the network reads ->
  ``x * (1 / (255 std)) + (-mean / std)``, the arithmetic of the host
  :class:`fcn_edge.runtime.preprocess.Preprocessor` in the same order; or, unfused,
  ModelMeta's float NCHW RGB -> the network's own layout and channel order;
* **output**: the network's scores, (N, C, H, W), (N, H, W, C) or (N, H*W, C) -> NCHW float
  logits; or the class mask: argmax over the classes -> [nearest resize to the frame size]
  -> uint8 or int32.

Two argmax formulations give the same index, the first maximum on ties: ``topk`` is ONNX
ArgMax (a TopK layer in TensorRT, reported slow on segmentation outputs: onnx-tensorrt#669,
#792, TensorRT#2261); ``reduce`` is ReduceMax, Equal and Where over a descending class ramp,
then a second ReduceMax: reductions and point-wise kernels only.

TensorRT converts uint8 only from and to float32/float16 (``DataType.UINT8``, 8.6 to 11.x),
so a uint8 mask is cast from float, never from the int64/int32 ArgMax gives; uint8 network
inputs and casts from uint8 are supported from TensorRT 8.5 on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from fcn_edge.artifacts.meta import IMAGENET_MEAN, IMAGENET_STD, INPUT_NAME, LOGITS_NAME, MASK_NAME
from fcn_edge.errors import ExportError
from fcn_edge.optional import require

Size = Tuple[int, int]
OUTPUTS = ("logits", "mask")
MASK_DTYPES = ("uint8", "int32")
ARGMAX_METHODS = ("topk", "reduce")
NETWORK_INPUT_LAYOUTS = ("NCHW", "NHWC")
# NLC: (N, H*W, C), the Reshape + softmax head of the Keras FCNs and of many TF exports
NETWORK_OUTPUT_LAYOUTS = ("NCHW", "NHWC", "NLC")
MIN_OPSET = 11  # Resize with sizes, Equal on floats
HEAD_PREFIX = "fcn_edge"  # the grafted nodes' names start with it


def choice_problems(output: str, mask_dtype: str, argmax: str) -> List[str]:
    """What is wrong with a choice of output kind, mask dtype and argmax, one line each."""
    problems = []
    for name, value, allowed in (("output", output, OUTPUTS), ("mask_dtype", mask_dtype, MASK_DTYPES),
                                 ("argmax", argmax, ARGMAX_METHODS)):
        if value not in allowed:
            problems.append(f"{name} {value!r} is not one of {allowed}")
    return problems


@dataclass(frozen=True)
class NetworkIO:
    """How the bare network lays out its input and output; fcn-edge's own models are the
    defaults (float NCHW RGB in, NCHW scores out).

    ``spatial_from`` (NLC output only): a tensor of the network whose dims ``axis``,
    ``axis + 1`` are the output's H and W, to reshape (N, H*W, C) back to (N, H, W, C).
    """

    input_layout: str = "NCHW"
    channel_order: str = "RGB"  # what the network's first layer reads
    output_layout: str = "NCHW"
    spatial_from: Optional[Tuple[str, int]] = None
    input_name: Optional[str] = None  # the network's input (None: its only one)
    output_name: Optional[str] = None  # the network's scores (None: its only output)

    def __post_init__(self) -> None:
        problems = []
        if self.input_layout not in NETWORK_INPUT_LAYOUTS:
            problems.append(f"input layout {self.input_layout!r} is not one of {NETWORK_INPUT_LAYOUTS}")
        if self.channel_order not in ("RGB", "BGR"):
            problems.append(f"channel order {self.channel_order!r} is not RGB or BGR")
        if self.output_layout not in NETWORK_OUTPUT_LAYOUTS:
            problems.append(f"output layout {self.output_layout!r} is not one of {NETWORK_OUTPUT_LAYOUTS}")
        if self.output_layout == "NLC" and self.spatial_from is None:
            problems.append("an (N, H*W, C) output needs spatial_from: the tensor that holds H and W")
        if problems:
            raise ExportError("invalid network description: " + "; ".join(problems))


@dataclass(frozen=True)
class Heads:
    """Which heads to graft, and their constants.

    ``resize_to`` (with ``fuse_preprocess``): frames of any size in, resized inside the graph
    to this (H, W) network size; a mask comes back at the frame's size. ``frame_size``
    fixes the frame input's H x W (None: dynamic). ``num_classes`` sizes the reduce argmax's
    class ramp.
    """

    num_classes: int
    fuse_preprocess: bool = False
    mean: Tuple[float, float, float] = IMAGENET_MEAN
    std: Tuple[float, float, float] = IMAGENET_STD
    resize_to: Optional[Size] = None
    frame_size: Optional[Size] = None
    output: str = "logits"
    mask_dtype: str = "uint8"
    argmax: str = "topk"

    def __post_init__(self) -> None:
        problems = choice_problems(self.output, self.mask_dtype, self.argmax)
        if self.resize_to is not None and not self.fuse_preprocess:
            problems.append("a fused resize takes uint8 frames: it needs the fused preprocessing")
        if self.num_classes < 1:
            problems.append(f"num_classes {self.num_classes} must be >= 1")
        if self.output == "mask" and self.mask_dtype == "uint8" and self.num_classes > 256:
            problems.append(f"a uint8 mask cannot hold {self.num_classes} classes; use the int32 mask")
        if problems:
            raise ExportError("invalid heads: " + "; ".join(problems))

    @property
    def output_name(self) -> str:
        return MASK_NAME if self.output == "mask" else LOGITS_NAME

    def describe(self) -> str:
        parts = []
        if self.fuse_preprocess:
            parts.append("fused preprocessing" + (f", resize to {self.resize_to[0]}x{self.resize_to[1]}"
                                                   if self.resize_to else ""))
        if self.output == "mask":
            parts.append(f"{self.mask_dtype} mask ({self.argmax} argmax"
                         + (", nearest resize to the frame)" if self.resize_to else ")"))
        return ", ".join(parts) or "no heads"


def _gs():
    return require("onnx_graphsurgeon", "grafting fused preprocessing, resize and argmax heads")


def _onnx():
    return require("onnx", "grafting heads onto an ONNX graph")


def opset_of(model) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


class _Ops:
    """Adds ops to a graph-surgeon graph, each named ``fcn_edge/<part>/<Op>_<n>``, with
    opset-dependent forms (ReduceMax axes, Squeeze axes, Resize's optional inputs)."""

    def __init__(self, graph, opset: int, part: str):
        self.gs = _gs()
        self.graph = graph
        self.opset = opset
        self.part = part
        self.taken = set(graph.tensors().keys()) | {n.name for n in graph.nodes}
        self.count = 0

    def _name(self, stem: str) -> str:
        while True:
            self.count += 1
            name = f"{HEAD_PREFIX}/{self.part}/{stem}_{self.count}"
            if name not in self.taken:
                self.taken.add(name)
                return name

    def const(self, values: np.ndarray, stem: str = "const"):
        return self.gs.Constant(self._name(stem), np.ascontiguousarray(values))

    def ints(self, *values: int):
        return self.const(np.array(values, np.int64), "ints")

    def __call__(self, op: str, *inputs, out=None, **attrs):
        """One node; its output is ``out`` (an existing tensor) or a new variable."""
        name = self._name(op)
        output = out if out is not None else self.gs.Variable(f"{name}:0")
        self.graph.nodes.append(self.gs.Node(op, name, attrs, inputs=list(inputs), outputs=[output]))
        return output

    def cast(self, x, onnx_type: int, out=None):
        return self("Cast", x, out=out, to=onnx_type)

    def reduce_max(self, x, axis: int, keepdims: int):
        if self.opset >= 18:
            return self("ReduceMax", x, self.ints(axis), keepdims=keepdims)
        return self("ReduceMax", x, axes=[axis], keepdims=keepdims)

    def squeeze(self, x, axis: int, out=None):
        if self.opset >= 13:
            return self("Squeeze", x, self.ints(axis), out=out)
        return self("Squeeze", x, out=out, axes=[axis])

    def dims(self, x, start: int, end: int):
        """Shape(x)[start:end] as an int64 tensor."""
        return self("Slice", self("Shape", x), self.ints(start), self.ints(end))

    def resize(self, x, sizes, mode: str):
        """Resize to ``sizes`` with pixel centres aligned (half_pixel): bilinear as OpenCV's
        INTER_LINEAR (which rounds to uint8 on the host); nearest rounding half up, PyTorch's
        nearest-exact (OpenCV's INTER_NEAREST_EXACT breaks exact ties down, from its 16.16
        fixed point: about 1 row or column in 15 at 256 -> 480)."""
        if self.opset >= 13:
            roi = scales = self.gs.Variable.empty()
        else:  # opset 11/12: roi and scales are required inputs; empty tensors mean "unused"
            roi, scales = self.const(np.zeros(0, np.float32), "roi"), self.const(np.zeros(0, np.float32), "scales")
        attrs: Dict[str, Any] = {"mode": mode, "coordinate_transformation_mode": "half_pixel"}
        if mode == "nearest":
            attrs["nearest_mode"] = "round_prefer_ceil"
        return self("Resize", x, roi, scales, sizes, **attrs)


def _onnx_type(dtype: np.dtype) -> int:
    return _onnx().helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def _network_dtype(tensor) -> np.dtype:
    dtype = tensor.dtype
    if dtype is None:
        return np.dtype(np.float32)
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float16):
        raise ExportError(f"the network's tensor '{tensor.name}' is {dtype}; heads graft onto float32/float16 networks")
    return dtype


def _channel_constants(mean, std, order: str, axis: int):
    """(scale, offset) per channel, float32 as numpy computes them on the host, shaped to
    broadcast along ``axis`` of a rank-4 tensor, in the network's channel order."""
    mean32 = np.asarray(mean, np.float32)
    std32 = np.asarray(std, np.float32)
    scale = (1.0 / (255.0 * std32)).astype(np.float32)
    offset = (-mean32 / std32).astype(np.float32)
    if order == "BGR":
        scale, offset = scale[::-1], offset[::-1]
    shape = [1, 1, 1, 1]
    shape[axis] = 3
    return scale.reshape(shape), offset.reshape(shape)


def channel_ramp(num_classes: int, axis: int, rank: int, dtype) -> np.ndarray:
    """C, C-1, ..., 1 along ``axis``: the largest value marks the first class, so a max over
    the ramp where the score is maximal picks the first maximum, as ArgMax does."""
    shape = [1] * rank
    shape[axis] = num_classes
    return np.arange(num_classes, 0, -1).astype(dtype).reshape(shape)


def argmax_index(ops: _Ops, scores, axis: int, keepdims: int, method: str, num_classes: int,
                 dtype: np.dtype, need_float: bool):
    """The class index of ``scores`` along ``axis``: int64 (topk, unless ``need_float``) or
    float of the scores' dtype (reduce always; exact for any class count below 2048 in
    float16, 2**24 in float32)."""
    onnx = _onnx()
    if method == "topk":
        index = ops("ArgMax", scores, axis=axis, keepdims=keepdims)
        return ops.cast(index, onnx.TensorProto.FLOAT) if need_float else index
    best = ops.reduce_max(scores, axis, keepdims=1)
    hit = ops("Equal", scores, best)
    ramp = ops.const(channel_ramp(num_classes, axis, 4, dtype), "class_ramp")
    picked = ops("Where", hit, ramp, ops.const(np.zeros(1, dtype), "zero"))
    first = ops.reduce_max(picked, axis, keepdims=keepdims)
    return ops("Sub", ops.const(np.array([num_classes], dtype), "num_classes"), first)


def _dims_of(tensor) -> List[Any]:
    return list(tensor.shape) if tensor.shape is not None else [None] * 4


def _pick_tensor(tensors, name: Optional[str], what: str, source: str):
    names = [t.name for t in tensors]
    if name is None:
        if len(tensors) != 1:
            raise ExportError(f"{source}: the graph has {what}s {names}; name the one to use")
        return tensors[0]
    for tensor in tensors:
        if tensor.name == name:
            return tensor
    raise ExportError(f"{source}: the graph has no {what} named '{name}'; its {what}s are {names}")


def _free_names(graph, names: Sequence[str], keep: Sequence[Any]) -> None:
    """Rename tensors called ``names`` (other than those in ``keep``) out of the way."""
    tensors = graph.tensors()
    for name in names:
        tensor = tensors.get(name)
        if tensor is not None and all(tensor is not k for k in keep):
            tensor.name = f"{HEAD_PREFIX}/renamed/{name}"


def _input_head(ops: _Ops, heads: Heads, network: NetworkIO, net_in, frames) -> None:
    """frames -> the network's input tensor ``net_in`` (written as the last op's output)."""
    onnx = _onnx()
    dtype = _network_dtype(net_in)
    x = frames
    if heads.fuse_preprocess:
        x = ops.cast(x, onnx.TensorProto.FLOAT)
        axis = 3
        if heads.resize_to is not None or network.input_layout == "NCHW":
            x = ops("Transpose", x, perm=[0, 3, 1, 2])
            axis = 1
        if heads.resize_to is not None:
            sizes = ops("Concat", ops.dims(x, 0, 2), ops.ints(*heads.resize_to), axis=0)
            x = ops.resize(x, sizes, "linear")
        if network.channel_order == "RGB":  # frames are BGR
            x = ops("Gather", x, ops.ints(2, 1, 0), axis=axis)
        scale, offset = _channel_constants(heads.mean, heads.std, network.channel_order, axis)
        x = ops("Add", ops("Mul", x, ops.const(scale, "scale")), ops.const(offset, "offset"))
        if axis == 1 and network.input_layout == "NHWC":
            x = ops("Transpose", x, perm=[0, 2, 3, 1])
    else:  # ModelMeta's float NCHW RGB, normalised on the host
        if network.channel_order == "BGR":
            x = ops("Gather", x, ops.ints(2, 1, 0), axis=1)
        if network.input_layout == "NHWC":
            x = ops("Transpose", x, perm=[0, 2, 3, 1])
    if dtype != np.float32:
        x = ops.cast(x, _onnx_type(dtype))
    # the last op writes the network's own input tensor, so its consumers stay untouched
    last = x.inputs[0]
    last.outputs[0] = net_in


def _scores_nchw_or_nhwc(ops: _Ops, network: NetworkIO, scores, graph):
    """(N, H*W, C) scores -> (N, H, W, C); other layouts as they are."""
    if network.output_layout != "NLC":
        return scores
    name, axis = network.spatial_from
    source = graph.tensors().get(name)
    if source is None:
        raise ExportError(f"the network has no tensor '{name}' to take the output's height and width from")
    shape = ops("Concat", ops.dims(scores, 0, 1), ops.dims(source, axis, axis + 2), ops.dims(scores, 2, 3), axis=0)
    return ops("Reshape", scores, shape)


def _output_head(ops: _Ops, heads: Heads, network: NetworkIO, scores, frames, graph):
    """The network's scores -> the graph's new output tensor (returned, named and typed)."""
    onnx = _onnx()
    dtype = _network_dtype(scores)
    x = _scores_nchw_or_nhwc(ops, network, scores, graph)
    layout = "NHWC" if network.output_layout in ("NHWC", "NLC") else "NCHW"
    axis = 1 if layout == "NCHW" else 3
    if heads.output == "logits":
        if layout == "NHWC":
            x = ops("Transpose", x, perm=[0, 3, 1, 2])
        if dtype != np.float32:
            x = ops.cast(x, onnx.TensorProto.FLOAT)
        return x, np.float32
    resize = heads.resize_to is not None
    mask_type = onnx.TensorProto.UINT8 if heads.mask_dtype == "uint8" else onnx.TensorProto.INT32
    need_float = resize or heads.mask_dtype == "uint8"
    index = argmax_index(ops, x, axis, int(resize), heads.argmax, heads.num_classes, dtype, need_float)
    if resize:  # (N, 1, h, w) or (N, h, w, 1) -> the frame's H x W, nearest, then drop the class axis
        if axis == 1:
            sizes = ops("Concat", ops.dims(index, 0, 2), ops.dims(frames, 1, 3), axis=0)
        else:
            sizes = ops("Concat", ops.dims(index, 0, 1), ops.dims(frames, 1, 3), ops.ints(1), axis=0)
        index = ops.squeeze(ops.resize(index, sizes, "nearest"), axis)
    return ops.cast(index, mask_type), np.dtype(heads.mask_dtype)


def _frame_dims(heads: Heads, network: NetworkIO, net_in) -> List[Any]:
    dims = _dims_of(net_in)
    batch = dims[0]
    if heads.resize_to is not None:
        if heads.frame_size is not None:
            return [batch, *heads.frame_size, 3]
        return [batch, "frame_height", "frame_width", 3]
    hw = dims[2:4] if network.input_layout == "NCHW" else dims[1:3]
    channels = dims[1] if network.input_layout == "NCHW" else dims[3]
    return [batch, *hw, 3] if heads.fuse_preprocess else [batch, channels or 3, *hw]


def _output_dims(heads: Heads, network: NetworkIO, scores, frame_dims: List[Any]) -> List[Any]:
    dims = (_dims_of(scores) + [None] * 4)[:4]
    h, w = {"NCHW": dims[2:4], "NHWC": dims[1:3]}.get(network.output_layout, (None, None))
    n = frame_dims[0]  # the batch is the input's
    if heads.output == "logits":
        return [n, heads.num_classes, h, w]
    if heads.resize_to is not None:
        return [n, frame_dims[1], frame_dims[2]]
    return [n, h, w]


def _named_as_meta(model) -> bool:
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    inputs = [v.name for v in graph.input if v.name not in initializers]
    return inputs == [INPUT_NAME] and [o.name for o in graph.output] == [LOGITS_NAME]


def graft_heads(model, heads: Heads, network: NetworkIO = NetworkIO(), source: str = "the model"):
    """``model`` (an onnx.ModelProto of the bare network) with the heads grafted: one input
    named ``input``, one output named ``logits`` or ``mask``; the network's other outputs
    are dropped. The model's metadata_props are kept. Returns a new ModelProto."""
    if heads == Heads(heads.num_classes) and network == NetworkIO() and _named_as_meta(model):
        return model  # nothing to graft: the network already reads and writes ModelMeta's layout
    gs = _gs()
    opset = opset_of(model)
    if opset < MIN_OPSET:
        raise ExportError(f"{source}: opset {opset} is older than {MIN_OPSET}, the oldest the heads are written "
                          "for; convert it first (onnx.version_converter.convert_version(model, 13))")
    graph = gs.import_onnx(model)
    net_in = _pick_tensor(graph.inputs, network.input_name, "input", source)
    scores = _pick_tensor(graph.outputs, network.output_name, "output", source)
    _free_names(graph, (INPUT_NAME, heads.output_name), keep=(net_in, scores) if heads.output == "logits" else (net_in,))
    frame_dims = _frame_dims(heads, network, net_in)
    frame_dtype = np.uint8 if heads.fuse_preprocess else np.float32
    out_dims = _output_dims(heads, network, scores, frame_dims)

    frames = gs.Variable(INPUT_NAME, dtype=frame_dtype, shape=frame_dims)
    graph.inputs = [frames] + [t for t in graph.inputs if t is not net_in]
    if len(graph.inputs) != 1:
        extra = [t.name for t in graph.inputs[1:]]
        raise ExportError(f"{source}: the network has other inputs besides '{net_in.name}': {extra}")
    if heads.fuse_preprocess or network.channel_order == "BGR" or network.input_layout == "NHWC" \
            or _network_dtype(net_in) != np.float32:
        net_in.name = f"{HEAD_PREFIX}/network_input" if net_in.name == INPUT_NAME else net_in.name
        _input_head(_Ops(graph, opset, "input"), heads, network, net_in, frames)
    else:  # the network already reads ModelMeta's layout: the head is a rename
        for node in list(net_in.outputs):
            for i, tensor in enumerate(node.inputs):
                if tensor is net_in:
                    node.inputs[i] = frames

    output, dtype = _output_head(_Ops(graph, opset, "output"), heads, network, scores, frames, graph)
    if output is not scores and scores.name == heads.output_name:
        scores.name = f"{HEAD_PREFIX}/network_output"
    output.name = heads.output_name  # for logits as the network gives them, a rename
    output.dtype = dtype
    output.shape = out_dims
    graph.outputs = [output]
    graph.cleanup(remove_unused_graph_inputs=False).toposort()
    grafted = gs.export_onnx(graph, do_type_check=True)
    grafted.ir_version = model.ir_version
    for prop in model.metadata_props:
        entry = grafted.metadata_props.add()
        entry.key, entry.value = prop.key, prop.value
    return grafted


def _identity_network(channels: int, layout: str, dtype: str, opset: int):
    """A network that returns its input: the heads alone, for tests and timings."""
    helper = _onnx().helper
    elem = _onnx_type(np.dtype(dtype))
    shape = ["n", channels, "h", "w"] if layout == "NCHW" else ["n", "h", "w", channels]
    return helper.make_model(
        helper.make_graph([helper.make_node("Identity", ["scores_in"], ["scores"], name="network")], "identity",
                          [helper.make_tensor_value_info("scores_in", elem, shape)],
                          [helper.make_tensor_value_info("scores", elem, shape)]),
        opset_imports=[helper.make_opsetid("", opset)], producer_name="fcn-edge")


def argmax_model(num_classes: int, method: str, dtype: str = "float32", layout: str = "NCHW",
                 mask_dtype: str = "int32", opset: int = 17):
    """The mask head alone: float32 NCHW scores in (cast to ``dtype`` inside), the class mask
    out, grafted by :func:`graft_heads` onto an identity network whose scores are ``layout``
    (NCHW, or NHWC: then transposed inside). For the argmax equality test and its timing
    (tools/bench_argmax.py)."""
    io = NetworkIO(input_layout=layout, output_layout=layout)
    return graft_heads(_identity_network(num_classes, layout, dtype, opset),
                       Heads(num_classes, output="mask", mask_dtype=mask_dtype, argmax=method), io,
                       f"the {method} argmax head")


def preprocess_model(mean, std, channel_order: str = "RGB", opset: int = 17):
    """The fused preprocessing alone: uint8 NHWC BGR frames in, the normalised float NCHW
    planes a network reading ``channel_order`` gets, out (as "logits")."""
    io = NetworkIO(channel_order=channel_order)
    return graft_heads(_identity_network(3, "NCHW", "float32", opset),
                       Heads(3, fuse_preprocess=True, mean=tuple(mean), std=tuple(std)), io, "the fused preprocessing")
