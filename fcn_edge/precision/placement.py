"""Where Q/DQ pairs go, for each target.

``tensorrt`` (symmetric int8, zero point 0) places Q/DQ where TensorRT fuses them (the rules
live in :mod:`fcn_edge.precision.fusion`, which also reports on the result):

- the *inputs* of Conv/ConvTranspose are quantised (activations per tensor; Conv weights
  per output channel, ConvTranspose weights per tensor: TensorRT's deconvolution takes no
  per-output-channel scales), their outputs are not, so Conv + bias + activation and the
  next layer's Q fuse into one int8-in/int8-out kernel;
- squeeze-excitation convolutions (1x1 convs on a globally pooled 1x1 map, 0.1 % of the
  work) stay unquantised: nothing to gain, and their DQ would be a standalone layer; the
  SE gate's ``Mul`` gets its data input quantised where the Q fuses into the depthwise
  convolution before it, so that convolution writes INT8 instead of float;
- an Add that merges a convolution's output with a skip gets its skip (residual) input
  quantised, so TensorRT folds the Add into the convolution: the convolution side is the
  input an INT8 convolution alone produces (``Shape``/``Size`` readers ignored) and, where
  both are, the one with the longer path to the inputs' nearest common ancestor. Only
  where the Add's output is itself quantised: otherwise the skip stays float;
- all inputs of a Concat whose output is quantised share the output's scale, so TensorRT's
  Q propagation through the Concat leaves no requantisation behind.

``onnxruntime`` (uint8 asymmetric activations, int8 per-channel weights): quantise Conv
inputs *and* outputs, so ORT's QDQ transformer turns each DQ->Conv->Q into QLinearConv
(U8S8, which uses VNNI); a ReLU right after a conv is folded into the conv's output
quantisation (a uint8 range starting at 0 clamps negatives just as ReLU does), residual
Adds of quantised tensors become QLinearAdd, and a MaxPool between quantised tensors
shares its input's parameters so ORT runs it on uint8.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Set, Tuple

from fcn_edge.errors import PrecisionError
from fcn_edge.precision.fusion import POINTWISE_OPS, FusionRules
from fcn_edge.precision.graph import (WEIGHTED_OPS, GraphIndex, branch_lengths, input_path_nodes,
                                      output_path_nodes, weighted_nodes)

TARGETS = ("tensorrt", "onnxruntime")


@dataclass
class Placement:
    """The Q/DQ plan of one graph.

    ``activations`` are tensor names (as their consumers read them) that get a Q/DQ pair;
    ``calibrate`` those whose range must be measured (the others share a range through
    ``shared``); ``relu_folded`` maps a ReLU's output to (the conv output feeding it,
    the ReLU node), for the ORT target; ``weights`` the quantised weighted nodes, of which
    those in ``per_tensor`` get one weight scale; ``kept_float`` the weighted nodes left
    unquantised and ``why`` the reason for each.
    """

    target: str
    weights: List[object] = field(default_factory=list)
    activations: List[str] = field(default_factory=list)
    shared: Dict[str, str] = field(default_factory=dict)
    relu_folded: Dict[str, Tuple[str, object]] = field(default_factory=dict)
    kept_float: List[str] = field(default_factory=list)
    why: Dict[str, str] = field(default_factory=dict)
    per_tensor: Set[str] = field(default_factory=set)

    @property
    def calibrate(self) -> List[str]:
        return [name for name in self.activations if name not in self.shared]


def plan_placement(index: GraphIndex, target: str, keep_float: Tuple[str, ...] = (),
                   include_input_path: Optional[bool] = True, include_output_path: bool = False) -> Placement:
    """The Q/DQ plan: every weighted node but those named in ``keep_float`` and, unless
    included, those on the input path (the first conv) and the output path (the last
    upsampling).

    ``include_input_path=None`` decides by fusion (TensorRT target): the first conv stays
    float unless that leaves a standalone Q behind it (a ReLU right after it, as in VGG and
    ResNet, cannot carry the Q of an FP16 convolution; a decomposed hard-swish's pointwise
    kernel can). Quantised, its Q sits on the network input, a reformat of the 3-channel
    image. For ONNX Runtime None means False.
    """
    if include_input_path is None:
        if target != "tensorrt":
            return plan_placement(index, target, keep_float, False, include_output_path)
        without = plan_placement(index, target, keep_float, False, include_output_path)
        standalone = _standalone_qs(index, without)
        if not standalone:
            return without
        with_input = plan_placement(index, target, keep_float, True, include_output_path)
        return with_input if _standalone_qs(index, with_input) < standalone else without
    if target not in TARGETS:
        raise PrecisionError(f"unknown INT8 target {target!r}; choose one of {TARGETS}")
    candidates = weighted_nodes(index)
    if not candidates:
        raise PrecisionError("the graph has no Conv/ConvTranspose with constant weights to quantise")
    skip: Set[int] = set()
    unknown = set(keep_float) - {n.name for n in candidates}
    if unknown:
        names = ", ".join(sorted(n.name for n in candidates)[:20])
        raise PrecisionError(f"keep_float (--keep-float) names no Conv/ConvTranspose node: {sorted(unknown)}; "
                             f"weighted nodes include: {names}")
    plan = Placement(target)
    output_nodes = {id(n) for n in output_path_nodes(index)}
    input_nodes = {id(n) for n in input_path_nodes(index) if n.op_type in WEIGHTED_OPS}
    pooled = _pooled_tensors(index) if target == "tensorrt" else set()
    for node in candidates:
        reason = ""
        if node.name in keep_float:
            reason = "--keep-float"
        elif not include_output_path and id(node) in output_nodes:
            reason = "output path"
        elif not include_input_path and id(node) in input_nodes:
            reason = "input path"
        elif node.input[0] in pooled:
            reason = "squeeze-excitation (1x1 pooled map)"
        if reason:
            skip.add(id(node))
            name = node.name or node.output[0]
            plan.kept_float.append(name)
            plan.why[name] = reason
    plan.weights = [n for n in candidates if id(n) not in skip]
    quantised_inputs = [n.input[0] for n in plan.weights]
    if target == "tensorrt":
        plan.per_tensor = {n.name or n.output[0] for n in plan.weights if n.op_type == "ConvTranspose"}
        _plan_tensorrt(index, plan, pooled)
        return plan

    acts: List[str] = list(dict.fromkeys(quantised_inputs))
    for node in plan.weights:
        out = node.output[0]
        relu = index.single_consumer(out)
        if relu is not None and relu.op_type == "Relu" and relu.output[0] not in index.graph_outputs:
            plan.relu_folded[relu.output[0]] = (out, relu)
            out = relu.output[0]
        if out not in acts:
            acts.append(out)
    quantised = set(acts)
    # residual Adds of two quantised tensors -> QLinearAdd; repeat until stable (chains)
    changed = True
    while changed:
        changed = False
        for node in index.graph.node:
            if node.op_type == "Add" and len(node.input) == 2 and node.output[0] not in quantised \
                    and all(i in quantised for i in node.input) \
                    and node.output[0] not in index.graph_outputs:
                out = node.output[0]
                relu = index.single_consumer(out)
                if relu is not None and relu.op_type == "Relu" and relu.output[0] not in index.graph_outputs:
                    plan.relu_folded[relu.output[0]] = (out, relu)
                    out = relu.output[0]
                acts.append(out)
                quantised.update({node.output[0], out})
                changed = True
            elif node.op_type == "MaxPool" and node.input[0] in quantised \
                    and node.output[0] not in quantised and len(node.output) == 1 \
                    and node.output[0] not in index.graph_outputs:
                acts.append(node.output[0])
                quantised.add(node.output[0])
                plan.shared[node.output[0]] = _root(plan.shared, node.input[0])
                changed = True
    plan.activations = acts
    return plan


def _root(shared: Dict[str, str], name: str) -> str:
    while name in shared:
        name = shared[name]
    return name


def _standalone_qs(index: GraphIndex, plan: Placement) -> int:
    """How many of ``plan``'s Qs TensorRT could not fuse into anything."""
    acts = set(plan.activations)
    quantised_ids = {id(n) for n in plan.weights}
    rules = FusionRules(index, lambda t: t in acts, lambda n: id(n) in quantised_ids)
    return sum(1 for t in plan.activations if rules.q_site(t)[0] == "standalone")


def _pooled_tensors(index: GraphIndex) -> Set[str]:
    """Tensors computed from a global pooling's 1x1 map (a squeeze-excitation branch)."""
    pooled: Set[str] = set()
    for node in index.graph.node:  # topological order
        inputs = index.data_inputs(node)
        if node.op_type in ("GlobalAveragePool", "GlobalMaxPool") or (
                inputs and all(i in pooled for i in inputs)
                and (node.op_type in WEIGHTED_OPS or node.op_type in POINTWISE_OPS)):
            pooled.update(o for o in node.output if o)
    return pooled


def _plan_tensorrt(index: GraphIndex, plan: Placement, pooled: Set[str]) -> None:
    """Fill ``plan.activations``/``shared`` for TensorRT (see the module docstring)."""
    acts: Dict[str, None] = dict.fromkeys(n.input[0] for n in plan.weights)
    quantised_ids = {id(n) for n in plan.weights}
    rules = FusionRules(index, lambda t: t in acts, lambda n: id(n) in quantised_ids)

    def output_quantised(node) -> bool:
        out = node.output[0]
        if out in acts:
            return True
        user = index.single_data_consumer(out)
        return user is not None and len(index.data_inputs(user)) == 1 and user.output[0] in acts \
            and user.op_type in ("Relu", "Clip", "LeakyRelu", "HardSwish", "Sigmoid")

    # the SE gate: x * gate(x), the Mul's x quantised when its Q fuses into the conv before it
    for node in index.graph.node:
        inputs = index.data_inputs(node)
        if node.op_type != "Mul" or len(inputs) != 2 or node.output[0] not in acts:
            continue
        data = [i for i in inputs if i not in pooled]
        if len(data) == 1 and len(inputs) - len(data) == 1 and rules.q_site(data[0])[0] in ("conv", "across"):
            acts.setdefault(data[0])
    # residual Adds, until stable (a quantised Add output can make the next Add's skip eligible)
    changed = True
    while changed:
        changed = False
        for node in index.graph.node:
            inputs = index.data_inputs(node)
            if node.op_type != "Add" or len(inputs) != 2 or any(i in pooled for i in inputs) \
                    or all(i in acts for i in inputs) or not output_quantised(node):
                continue
            residual = _residual_input(index, rules, node, inputs)
            for tensor in residual:
                if tensor not in acts:
                    acts.setdefault(tensor)
                    changed = True
    # one scale for every input of a quantised Concat
    for node in index.graph.node:
        if node.op_type == "Concat" and node.output[0] in acts:
            for tensor in index.data_inputs(node):
                acts.setdefault(tensor)
                plan.shared[tensor] = node.output[0]
    plan.activations = list(acts)


def _residual_input(index: GraphIndex, rules: FusionRules, add, inputs: List[str]) -> List[str]:
    """The Add input(s) to quantise: the skip, so the Add folds into the other input's conv;
    both when neither input is a convolution's (the Add then runs as an INT8 element-wise op)."""
    a, b = inputs
    fa, fb = rules.fusable_conv_output(a, add), rules.fusable_conv_output(b, add)
    if fa and fb:
        lengths = branch_lengths(index, a, b)
        if lengths is not None and lengths[0] != lengths[1]:
            return [b] if lengths[0] > lengths[1] else [a]  # the longer path is the conv branch
        return [b]
    if fa:
        return [b]
    if fb:
        return [a]
    return [a, b]
