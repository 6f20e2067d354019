"""Where TensorRT fuses the Q/DQ pairs of an INT8 ONNX, and which precision each layer runs in.

TensorRT's explicit quantisation fuses a Q/DQ pair into the layers around it or, failing
that, runs it as a standalone quantize/dequantize (reformat) layer that only moves bytes.
The rules here are the ones TensorRT's developer guide documents for explicit quantisation
(and NVIDIA's ONNX quantizer, ModelOpt, places Q/DQ for):

- a DQ fuses forward into the Conv/ConvTranspose that reads it, when its weights are
  quantised too (an INT8 convolution);
- a Q fuses backward into the INT8 convolution that produced its tensor, through the
  activation layers TensorRT runs in the convolution's epilogue (ReLU, Clip, HardSwish,
  HardSigmoid, Sigmoid, ...), and through an Add whose other input is a quantised residual
  ("conv + add" fusion). The intermediate tensors must have no other reader;
- Q moves backward and DQ forward across layers that commute with quantisation (MaxPool,
  ReLU, Slice, Reshape, Transpose, Concat with one scale ...), so the layer between them
  runs on INT8;
- a Q/DQ next to a chain of element-wise ops (a decomposed hard-swish, an Add of two
  quantised tensors, the SE gate's Mul) is fused into the pointwise kernel TensorRT
  generates for the chain, and a DQ into a pooling layer that reads it: the neighbouring
  convolution then writes FP16, not INT8, which is why a decomposed activation costs bytes;
- anything else (a Q after an FP16 convolution, a DQ read by an FP16 convolution) is a
  standalone reformat layer. A Q on the network input itself is counted apart: every INT8
  engine converts its input once.

The report also splits the graph's work (element count of each layer's output at the
model's input size) into INT8, FP16 and FP32, and lists the FP32 layers beyond the ones that
must stay FP32 (input/output casts, ArgMax, overflowing reductions: :data:`ALLOWED_FP32`).
It is a prediction from the graph: ``trtexec --stronglyTyped --profilingVerbosity=detailed
--dumpLayerInfo`` on the target shows what a given TensorRT did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

from fcn_edge.errors import PrecisionError
from fcn_edge.precision.graph import SHAPE_OPS, WEIGHTED_OPS, GraphIndex

# Layers TensorRT runs in a convolution's epilogue (activation layers after the ONNX parser).
EPILOGUE_OPS = ("Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Elu", "Selu",
                "Softplus", "Softsign", "ThresholdedRelu", "BatchNormalization")
# Layers that commute with per-tensor symmetric quantisation: Q/DQ move across them.
COMMUTING_OPS = ("MaxPool", "Relu", "Slice", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten",
                 "Identity", "Concat", "Pad", "SpaceToDepth", "DepthToSpace")
# Element-wise ops TensorRT fuses into generated pointwise kernels (int8 in or out allowed).
POINTWISE_OPS = ("Add", "Sub", "Mul", "Div", "Clip", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid",
                 "HardSwish", "Abs", "Neg", "Sqrt", "Max", "Min", "Erf", "Elu", "Selu", "Softplus", "PRelu")
POOLING_OPS = ("AveragePool", "GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "ReduceMax")
# What may stay FP32 in a mixed INT8/FP16 graph: boundary casts, ArgMax (masks flip on FP16
# near-ties), reductions and exponentials that overflow FP16, ops typed by attribute.
ALLOWED_FP32 = ("Cast", "ArgMax", "ArgMin", "TopK", "Softmax", "LogSoftmax", "Exp", "Pow", "ReduceSum",
                "ReduceL2", "ReduceSumSquare", "ReduceLogSumExp", "CumSum", "Range", "ConstantOfShape",
                "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "EyeLike")
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
# Ops whose later inputs are parameters (starts/ends, shapes, pads), not values.
_FIRST_INPUT_ONLY = ("Slice", "Reshape", "Pad", "Squeeze", "Unsqueeze", "Resize", "Expand", "Tile")


def value_inputs(index: GraphIndex, node) -> List[str]:
    """The computed tensors whose *values* ``node`` transforms (a Slice's data, not its ends)."""
    if node.op_type in _FIRST_INPUT_ONLY:
        return [node.input[0]] if node.input and not index.is_constant(node.input[0]) else []
    return index.data_inputs(node)


# Where a Q or a DQ ends up.
Q_SITES = ("conv", "add", "across", "pointwise", "input", "standalone")
DQ_SITES = ("conv", "add", "across", "pointwise", "pool", "standalone")
SITE_TEXT = {
    "conv": "into a convolution", "add": "into a conv + residual Add", "across": "across ReLU/MaxPool/Slice",
    "pointwise": "into a pointwise kernel", "pool": "into a pooling layer", "input": "on the network input",
    "standalone": "STANDALONE",
}


class FusionRules:
    """TensorRT's Q/DQ fusion rules over one graph.

    ``quantised(tensor)`` says whether consumers read ``tensor`` dequantised (a DQ output in
    a Q/DQ graph; a planned activation in a float graph being planned); ``int8_weights(node)``
    whether a weighted node's weights are quantised.
    """

    def __init__(self, index: GraphIndex, quantised: Callable[[str], bool],
                 int8_weights: Callable[[object], bool]):
        self.index = index
        self.quantised = quantised
        self.int8_weights = int8_weights

    def int8_conv(self, node) -> bool:
        return node is not None and node.op_type in WEIGHTED_OPS and bool(node.input) \
            and self.quantised(node.input[0]) and self.int8_weights(node)

    def sole_reader(self, tensor: str, node) -> bool:
        return self.index.single_data_consumer(tensor) is node

    def fusable_conv_output(self, tensor: str, add) -> bool:
        """``tensor`` is an INT8 convolution's output read by ``add`` alone."""
        return self.int8_conv(self.index.producer.get(tensor)) and self.sole_reader(tensor, add)

    def q_site(self, tensor: str) -> Tuple[str, List[object]]:
        """(where a Q on ``tensor`` fuses, the nodes fused with it into a convolution)."""
        index = self.index
        across = False
        chain: List[object] = []
        current = tensor
        while True:
            node = index.producer.get(current)
            if node is None:
                return ("input" if current in index.graph_inputs else "standalone"), []
            op = node.op_type
            inputs = value_inputs(index, node)
            if op == "Cast" and len(inputs) == 1 and _from_graph_input(index, inputs[0]):
                return "input", []
            if op in WEIGHTED_OPS:
                if self.int8_conv(node):
                    return ("across" if across else "conv"), chain + [node]
                return "standalone", []
            if op == "Add" and len(inputs) == 2:
                for mine, other in ((inputs[0], inputs[1]), (inputs[1], inputs[0])):
                    if self.fusable_conv_output(mine, node) and self.quantised(other):
                        return ("across" if across else "add"), chain + [node, index.producer[mine]]
                return "pointwise", []
            if len(inputs) == 1 and (op in EPILOGUE_OPS or op in COMMUTING_OPS) and op != "Concat":
                if not self.sole_reader(inputs[0], node):
                    return ("pointwise" if op in POINTWISE_OPS else "standalone"), []
                if op in COMMUTING_OPS and op not in EPILOGUE_OPS:
                    across = True
                chain.append(node)
                current = inputs[0]
                continue
            if op == "Concat" and inputs and all(self.quantised(i) for i in inputs):
                return "across", []
            if op in POINTWISE_OPS:
                return "pointwise", []
            return "standalone", []

    def dq_site(self, tensor: str, consumer, depth: int = 0) -> str:
        """Where the DQ of ``tensor`` fuses for one ``consumer`` that reads its values."""
        op = consumer.op_type
        index = self.index
        if op == "QuantizeLinear" and depth > 0:
            return "across"  # DQ -> commuting op -> Q: the pair cancels (one scale, as for a Concat)
        if op in WEIGHTED_OPS:
            return "conv" if consumer.input[0] == tensor and self.int8_weights(consumer) else "standalone"
        inputs = value_inputs(index, consumer)
        if op == "Add" and len(inputs) == 2:
            other = inputs[1] if inputs[0] == tensor else inputs[0]
            return "add" if self.fusable_conv_output(other, consumer) else "pointwise"
        if op in COMMUTING_OPS and depth < 16:
            users = [u for out in consumer.output for u in index.data_consumers(out)]
            if users and all(self.dq_site(consumer.output[0], u, depth + 1) != "standalone" for u in users):
                return "across"
            if op in POINTWISE_OPS:
                return "pointwise"
            return "standalone"
        if op in POINTWISE_OPS:
            return "pointwise"
        if op in POOLING_OPS:
            return "pool"
        return "standalone"


@dataclass(frozen=True)
class FusionReport:
    """How TensorRT would run one ONNX (see the module docstring for the rules)."""

    path: str
    input_shape: Tuple[int, ...]
    opset: int
    pairs: int  # activation Q/DQ pairs
    q_sites: Dict[str, int]
    dq_sites: Dict[str, int]  # per (DQ, reader) edge
    standalone: Tuple[str, ...]  # tensors whose Q or DQ would be a standalone layer
    weight_dq: int
    weight_storage: Dict[str, int]  # "int8" (int8 initialiser + DQ), "float" (float + Q/DQ)
    convs: Dict[str, int]  # weighted layers by precision
    elements: Dict[str, int]  # output elements by the precision the layer runs in
    fp32_layers: Tuple[str, ...]  # FP32 layers beyond ALLOWED_FP32
    float_convs_into_q: Tuple[str, ...]  # convs that write float to a pointwise chain ending in a Q
    file_bytes: int
    notes: Tuple[str, ...] = field(default_factory=tuple)

    @property
    def standalone_pairs(self) -> int:
        return len(self.standalone)

    @property
    def element_share(self) -> Dict[str, float]:
        total = sum(self.elements.values()) or 1
        return {k: v / total for k, v in self.elements.items()}

    def as_dict(self) -> Dict[str, object]:
        out = dict(self.__dict__)
        out["standalone"] = list(self.standalone)
        out["fp32_layers"] = list(self.fp32_layers)
        out["float_convs_into_q"] = list(self.float_convs_into_q)
        out["notes"] = list(self.notes)
        out["input_shape"] = list(self.input_shape)
        out["standalone_pairs"] = self.standalone_pairs
        out["element_share"] = {k: round(v, 4) for k, v in self.element_share.items()}
        return out


def fusion_report(model_or_path, input_shape: Optional[Sequence[int]] = None, path: str = "") -> FusionReport:
    """The :class:`FusionReport` of an ONNX (a path or an ``onnx.ModelProto``).

    ``input_shape`` fixes the (single) input's shape for the element counts; by default
    ModelMeta's input size at batch 1.
    """
    from fcn_edge.precision.onnx_io import load_model

    if isinstance(model_or_path, (str, Path)):
        path = str(model_or_path)
        model = load_model(model_or_path)
        file_bytes = _file_bytes(Path(model_or_path))
    else:
        model = model_or_path
        file_bytes = model.ByteSize()
    index = GraphIndex.build(model.graph)
    shape = tuple(input_shape) if input_shape else _meta_input_shape(model, path)
    types, sizes, notes = tensor_facts(model, shape)

    def quantised(tensor: str) -> bool:
        producer = index.producer.get(tensor)
        return producer is not None and producer.op_type == "DequantizeLinear"

    def int8_weights(node) -> bool:
        return len(node.input) > 1 and quantised(node.input[1])

    rules = FusionRules(index, quantised, int8_weights)
    q_sites = {k: 0 for k in Q_SITES}
    dq_sites = {k: 0 for k in DQ_SITES}
    standalone: List[str] = []
    fused_into_int8: Set[int] = set()
    float_convs_into_q: List[str] = []
    pairs = weight_dq = 0
    storage = {"int8": 0, "float": 0}
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear":
            continue
        source = node.input[0]
        q = index.producer.get(source)
        if q is None or q.op_type != "QuantizeLinear":
            if index.is_constant(source):  # int8 weights + DQ
                weight_dq += 1
                storage["int8"] += 1
            continue
        tensor = q.input[0]
        if index.is_constant(tensor) or _constant_chain(index, tensor):
            weight_dq += 1
            storage["float"] += 1
            continue
        pairs += 1
        site, chain = rules.q_site(tensor)
        q_sites[site] += 1
        fused_into_int8.update(id(n) for n in chain)
        if site == "pointwise":
            conv = _conv_behind_pointwise(index, tensor)
            if conv is not None:
                float_convs_into_q.append(conv.name or conv.output[0])
        bad = site == "standalone"
        for reader in index.data_consumers(node.output[0]):
            where = rules.dq_site(node.output[0], reader)
            dq_sites[where] += 1
            bad = bad or where == "standalone"
        if bad:
            standalone.append(tensor)

    elements = {"int8": 0, "fp16": 0, "fp32": 0}
    convs = {"int8": 0, "fp16": 0, "fp32": 0}
    fp32_layers: List[str] = []
    for node in model.graph.node:
        if node.op_type in QDQ_OPS or node.op_type == "Constant" or node.op_type in SHAPE_OPS:
            continue
        precision = _layer_precision(node, index, rules, types, fused_into_int8)
        if precision is None:
            continue
        elements[precision] += sizes.get(node.output[0], 0)
        if node.op_type in WEIGHTED_OPS:
            convs[precision] += 1
        if precision == "fp32" and node.op_type not in ALLOWED_FP32:
            fp32_layers.append(node.name or node.output[0])
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    return FusionReport(
        path=path, input_shape=tuple(shape), opset=opset, pairs=pairs, q_sites=q_sites, dq_sites=dq_sites,
        standalone=tuple(standalone), weight_dq=weight_dq, weight_storage=storage, convs=convs,
        elements=elements, fp32_layers=tuple(fp32_layers), float_convs_into_q=tuple(dict.fromkeys(float_convs_into_q)),
        file_bytes=file_bytes, notes=tuple(notes),
    )


def _from_graph_input(index: GraphIndex, tensor: str) -> bool:
    """``tensor`` is a graph input, possibly behind Casts (an FP16 graph's input cast)."""
    while tensor not in index.graph_inputs:
        node = index.producer.get(tensor)
        if node is None or node.op_type != "Cast":
            return False
        tensor = node.input[0]
    return True


def _constant_chain(index: GraphIndex, tensor: str) -> bool:
    """``tensor`` is computed from constants only (a weight behind a Cast, say)."""
    node = index.producer.get(tensor)
    return node is not None and node.op_type in ("Cast", "Identity") and all(index.is_constant(i) for i in node.input if i)


def _conv_behind_pointwise(index: GraphIndex, tensor: str):
    """The convolution whose output alone a pointwise chain turns into ``tensor`` (a
    decomposed activation such as x * relu6(x + 3) / 6 between a convolution and its Q),
    or None (the chain also reads other tensors, as the SE gate's Mul does)."""
    leaves, frontier, seen = set(), [tensor], set()
    while frontier:
        name = frontier.pop()
        node = index.producer.get(name)
        if node is None or node.op_type not in POINTWISE_OPS or node.op_type == "DequantizeLinear":
            leaves.add(name)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        frontier.extend(value_inputs(index, node))
    if len(leaves) != 1:
        return None
    node = index.producer.get(leaves.pop())
    return node if node is not None and node.op_type in WEIGHTED_OPS else None


def _layer_precision(node, index: GraphIndex, rules: FusionRules, types: Dict[str, int],
                     fused_into_int8: Set[int]) -> Optional[str]:
    """"int8", "fp16", "fp32", or None for layers computing no floats (shape arithmetic)."""
    if node.op_type in WEIGHTED_OPS:
        if rules.int8_conv(node):
            return "int8"
    elif id(node) in fused_into_int8:
        return "int8"
    else:
        inputs = [i for i in index.data_inputs(node) if types.get(i) in _FLOAT_TYPES]
        writes_q = node.output and all(u.op_type == "QuantizeLinear" for u in index.data_consumers(node.output[0])) \
            and index.data_consumers(node.output[0])
        if inputs and writes_q and all(rules.quantised(i) for i in inputs):
            return "int8"
    float_types = [types.get(o) for o in node.output if types.get(o) in _FLOAT_TYPES]
    if not float_types:
        float_types = [types.get(i) for i in node.input if i and types.get(i) in _FLOAT_TYPES]
    if not float_types:
        return None
    return "fp16" if float_types[0] == _FLOAT16 else "fp32"


_FLOAT, _FLOAT16, _DOUBLE, _BFLOAT16 = 1, 10, 11, 16
_FLOAT_TYPES = (_FLOAT, _FLOAT16, _DOUBLE, _BFLOAT16)


def _meta_input_shape(model, where: str) -> Tuple[int, ...]:
    from fcn_edge.artifacts import meta_from_props

    props = {p.key: p.value for p in model.metadata_props}
    inits = {i.name for i in model.graph.initializer}
    graph_inputs = [v for v in model.graph.input if v.name not in inits]
    if len(graph_inputs) != 1:
        raise PrecisionError(f"{where}: the fusion report takes models with one input, not {len(graph_inputs)}")
    dims = graph_inputs[0].type.tensor_type.shape.dim
    if all(d.HasField("dim_value") and d.dim_value > 0 for d in dims):
        return tuple(int(d.dim_value) for d in dims)
    try:
        meta = meta_from_props(props, where)
    except Exception as exc:  # no ModelMeta: MetaError and friends
        raise PrecisionError(f"{where}: the input has dynamic dimensions and no ModelMeta says its size; "
                             f"give an input shape ({exc})") from exc
    return tuple(meta.input_shape(1))


def light_copy(model):
    """``model`` without its large initialisers' bytes (their names, types and dims stay):
    enough for shape and type inference, without holding a VGG16's weights twice."""
    import onnx

    probe = onnx.ModelProto()
    probe.ir_version = model.ir_version
    probe.opset_import.extend(model.opset_import)
    probe.graph.name = model.graph.name
    probe.graph.node.extend(model.graph.node)
    probe.graph.input.extend(model.graph.input)
    probe.graph.output.extend(model.graph.output)
    for init in model.graph.initializer:
        light = probe.graph.initializer.add()
        if init.ByteSize() > 4096:
            light.name, light.data_type = init.name, init.data_type
            light.dims.extend(init.dims)
        else:
            light.CopyFrom(init)
    return probe


def float_tensors(model) -> Set[str]:
    """Names of the float tensors the graph computes (by ONNX type inference)."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(light_copy(model))
    except Exception as exc:  # InferenceError and friends
        raise PrecisionError(f"ONNX type inference failed on the model: {exc}") from exc
    return {v.name for v in list(inferred.graph.value_info) + list(inferred.graph.output)
            if v.type.tensor_type.elem_type in _FLOAT_TYPES}


def tensor_facts(model, input_shape: Sequence[int]) -> Tuple[Dict[str, int], Dict[str, int], List[str]]:
    """(elem_type, element count) of every tensor at ``input_shape``, batch included.

    ONNX shape inference with the input fixed gives most; tensors it leaves open (crops
    sized by Shape ops) are measured by running the graph once in ONNX Runtime on zeros.
    Shape inference runs on a copy without the large weights' bytes, so a VGG16 is not
    held twice.
    """
    import onnx

    notes: List[str] = []
    probe = light_copy(model)
    inits = {i.name for i in probe.graph.initializer}
    graph_inputs = [v for v in probe.graph.input if v.name not in inits]
    dims = graph_inputs[0].type.tensor_type.shape.dim
    if len(dims) != len(input_shape):
        raise PrecisionError(f"input shape {tuple(input_shape)} has {len(input_shape)} dimensions; "
                             f"the model's input has {len(dims)}")
    for dim, value in zip(dims, input_shape):
        dim.Clear()
        dim.dim_value = int(value)
    try:
        inferred = onnx.shape_inference.infer_shapes(probe, data_prop=True)
    except Exception as exc:  # InferenceError and friends
        raise PrecisionError(f"ONNX shape inference failed on the model: {exc}") from exc
    types: Dict[str, int] = {}
    sizes: Dict[str, int] = {}
    for value in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        t = value.type.tensor_type
        types[value.name] = t.elem_type
        shape = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
        if t.HasField("shape") and all(s >= 0 for s in shape):
            sizes[value.name] = int(np.prod(shape)) if shape else 1
    for init in model.graph.initializer:
        types[init.name] = init.data_type
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    types[node.output[0]] = attr.t.data_type
    unknown = [o for n in model.graph.node if n.op_type != "Constant" for o in n.output if o and o not in sizes]
    if unknown:
        measured = _measure_shapes(model, graph_inputs[0], input_shape, unknown)
        if measured is None:
            notes.append(f"{len(unknown)} tensors have no static size and ONNX Runtime could not measure "
                         "them; they count 0 elements")
        else:
            for name, (elem, size) in measured.items():
                sizes[name] = size
                types.setdefault(name, elem)
    return types, sizes, notes


_NUMPY_OF = {1: np.float32, 10: np.float16, 2: np.uint8, 3: np.int8, 6: np.int32, 7: np.int64}
_ELEM_OF = {np.dtype(v): k for k, v in _NUMPY_OF.items()}


def _measure_shapes(model, graph_input, input_shape, names: List[str]):
    """{tensor: (elem_type, size)} from one ONNX Runtime run on zeros, or None."""
    try:
        import onnxruntime as ort
        from onnx import helper
    except ImportError:
        return None
    outputs = model.graph.output
    present = {o.name for o in outputs}
    original = len(outputs)
    for name in names:
        if name not in present:
            outputs.append(helper.make_empty_tensor_value_info(name))
    try:
        data = model.SerializeToString()
    finally:
        while len(outputs) > original:
            outputs.pop()
    dtype = _NUMPY_OF.get(graph_input.type.tensor_type.elem_type, np.float32)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        arrays = session.run(names, {graph_input.name: np.zeros(tuple(input_shape), dtype)})
    except Exception:  # ORT's own exception types
        return None
    return {n: (_ELEM_OF.get(np.asarray(a).dtype, 1), int(np.asarray(a).size)) for n, a in zip(names, arrays)}


def _file_bytes(path: Path) -> int:
    size = path.stat().st_size
    data = path.with_name(path.name + ".data")
    return size + (data.stat().st_size if data.is_file() else 0)


def format_fusion_report(report: FusionReport) -> List[str]:
    """The report as the lines ``quantize``, ``compare --fusion`` and ``info --fusion`` print."""
    share = report.element_share
    q = ", ".join(f"{n} {SITE_TEXT[k]}" for k, n in report.q_sites.items() if n)
    dq = ", ".join(f"{n} {SITE_TEXT[k]}" for k, n in report.dq_sites.items() if n)
    c = report.convs
    lines = [
        f"TensorRT fusion (predicted at input {'x'.join(map(str, report.input_shape))}): "
        f"{report.pairs} activation Q/DQ pairs, {report.standalone_pairs} standalone",
        f"  Q:  {q or 'none'}",
        f"  DQ: {dq or 'none'}",
        f"  weights: {report.weight_dq} quantised ({report.weight_storage['int8']} int8 initialisers, "
        f"{report.weight_storage['float']} float + Q/DQ); convolutions {c['int8']} INT8, {c['fp16']} FP16, "
        f"{c['fp32']} FP32",
        f"  work by output elements: INT8 {100 * share['int8']:.1f} %, FP16 {100 * share['fp16']:.1f} %, "
        f"FP32 {100 * share['fp32']:.1f} %" + ("" if report.fp32_layers or not report.elements["fp32"]
                                              else " (casts/ArgMax only)")
        + f"; file {report.file_bytes / 1e6:.1f} MB, opset {report.opset}",
    ]
    if report.standalone:
        lines.append("  standalone Q/DQ on: " + ", ".join(report.standalone[:8])
                     + (f" (+{len(report.standalone) - 8})" if len(report.standalone) > 8 else ""))
    if report.float_convs_into_q:
        lines.append(f"  {len(report.float_convs_into_q)} convolutions write FP16/FP32 into a pointwise chain "
                     "before their Q (a decomposed activation; export native HardSwish to fuse it)")
    if report.fp32_layers:
        lines.append(f"  FP32 beyond casts/ArgMax/reductions: {len(report.fp32_layers)} layers, e.g. "
                     + ", ".join(report.fp32_layers[:5]))
    lines += [f"  note: {n}" for n in report.notes]
    return lines
