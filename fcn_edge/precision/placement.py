"""Where Q/DQ pairs go, for each target.

``tensorrt`` (symmetric int8, zero point 0), following TensorRT's Q/DQ placement advice:
quantise the *inputs* of Conv/ConvTranspose (activation per tensor, weights per output
channel) and leave their outputs in float, so TensorRT fuses Conv + bias + ReLU and the
next layer's Q into one int8-in/int8-out kernel; for an Add that merges a conv output
with a skip (ResNet/MobileNet residuals, FCN score fusion), quantise the skip input only,
so TensorRT folds the Add into the conv that produced the other input.

``onnxruntime`` (uint8 asymmetric activations, int8 per-channel weights): quantise Conv
inputs *and* outputs, so ORT's QDQ transformer turns each DQ->Conv->Q into QLinearConv
(U8S8, which uses VNNI); a ReLU right after a conv is folded into the conv's output
quantisation (a uint8 range starting at 0 clamps negatives just as ReLU does), residual
Adds of quantised tensors become QLinearAdd, and a MaxPool between quantised tensors
shares its input's parameters so ORT runs it on uint8.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Set, Tuple

from fcn_edge.errors import PrecisionError
from fcn_edge.precision.graph import (WEIGHTED_OPS, GraphIndex, input_path_nodes, output_path_nodes,
                                      weighted_nodes)

TARGETS = ("tensorrt", "onnxruntime")


@dataclass
class Placement:
    """The Q/DQ plan of one graph.

    ``activations`` are tensor names (as their consumers read them) that get a Q/DQ pair;
    ``calibrate`` those whose range must be measured (the others share a range through
    ``shared``); ``relu_folded`` maps a ReLU's output to (the conv output feeding it,
    the ReLU node), for the ORT target; ``weights`` the quantised weighted nodes.
    """

    target: str
    weights: List[object] = field(default_factory=list)
    activations: List[str] = field(default_factory=list)
    shared: Dict[str, str] = field(default_factory=dict)
    relu_folded: Dict[str, Tuple[str, object]] = field(default_factory=dict)
    kept_float: List[str] = field(default_factory=list)

    @property
    def calibrate(self) -> List[str]:
        return [name for name in self.activations if name not in self.shared]


def plan_placement(index: GraphIndex, target: str, keep_float: Tuple[str, ...] = (),
                   include_input_path: bool = True, include_output_path: bool = False) -> Placement:
    """The Q/DQ plan: every weighted node but those named in ``keep_float`` and, unless
    included, those on the input path (the first conv) and the output path (the last
    upsampling)."""
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
    for node in candidates:
        if node.name in keep_float or (not include_output_path and id(node) in output_nodes) \
                or (not include_input_path and id(node) in input_nodes):
            skip.add(id(node))
            plan.kept_float.append(node.name or node.output[0])
    plan.weights = [n for n in candidates if id(n) not in skip]
    quantised_inputs = [n.input[0] for n in plan.weights]
    if target == "tensorrt":
        acts = list(dict.fromkeys(quantised_inputs))
        acts += [t for t in _trt_residual_inputs(index, plan.weights) if t not in acts]
        plan.activations = acts
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


def _feeds_quantised(index: GraphIndex, name: str, quantised_ids: Set[int], depth: int = 3) -> bool:
    """True when ``name`` reaches a quantised weighted node through at most a few
    pointwise ops (ReLU, Slice crop...), so quantising it helps TensorRT fuse."""
    frontier = [(name, 0)]
    while frontier:
        tensor, d = frontier.pop()
        for user in index.consumers.get(tensor, []):
            if id(user) in quantised_ids:
                return True
            if d < depth and user.op_type not in WEIGHTED_OPS:
                frontier.extend((o, d + 1) for o in user.output)
    return False


def _trt_residual_inputs(index: GraphIndex, quantised_nodes: List[object]) -> List[str]:
    """Skip inputs of Adds that TensorRT can fold into the conv producing the other input."""
    quantised_ids = {id(n) for n in quantised_nodes}
    found: List[str] = []
    for node in index.graph.node:
        if node.op_type != "Add" or len(node.input) != 2:
            continue
        a, b = node.input
        if index.is_constant(a) or index.is_constant(b):
            continue
        if not _feeds_quantised(index, node.output[0], quantised_ids):
            continue

        def fusable(t: str) -> bool:
            producer = index.producer.get(t)
            return producer is not None and producer.op_type in WEIGHTED_OPS \
                and len(index.consumers.get(t, [])) == 1

        if fusable(a):
            found.append(b)
        elif fusable(b):
            found.append(a)
        else:
            found.extend([a, b])
    return found
