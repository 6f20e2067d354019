"""Fake quantisation of a PyTorch model exactly where its ONNX export gets Q/DQ pairs.

The Q/DQ placement is decided on the exported ONNX graph (:mod:`fcn_edge.precision.
placement`), so quantisation-aware training must quantise the same tensors of the PyTorch
model. This module finds them by value, not by name: the FP32 ONNX and the model run on the
same image, and each quantised ONNX tensor is matched to the PyTorch module call whose
output equals it (a shared ReLU is told apart by its call number); a tensor no module
returns (an Add written in ``forward``) is quantised on the input of the convolutions that
read it, and a crop of a module's output (a Slice, which commutes with per-tensor
quantisation) on that module's output. Each quantised convolution's weight gets a
per-output-channel (ConvTranspose for TensorRT: per-tensor) symmetric fake quantiser:
with BatchNorm frozen, quantising the unfolded weight per output channel is exactly
quantising the folded one.

:func:`attach` then checks the result against the real Q/DQ model in ONNX Runtime, so a
model whose structure the matching got wrong is refused instead of trained.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from fcn_edge.errors import PrecisionError
from fcn_edge.precision.fusion import value_inputs
from fcn_edge.precision.graph import WEIGHTED_OPS, GraphIndex
from fcn_edge.precision.qdq import MIN_SCALE

QMAX = 127.0
_COMMUTING_CHAIN = ("Slice", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Identity")


def fake_quantize(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Symmetric int8 quantise-dequantise with straight-through rounding: the gradient
    passes inside the range, and reaches ``scale`` as in LSQ (Esser et al. 2020):
    round(x/s) - x/s inside the range, +-127 outside."""
    q = torch.clamp(x / scale, -QMAX, QMAX)
    q = q + (torch.round(q) - q).detach()
    return q * scale


class ActivationQuantizer(nn.Module):
    """A learnable per-tensor scale, started at the post-training calibration's.

    The scale is learned as its logarithm: Adam's steps are then relative (a learning rate
    of 1e-3 moves a scale by about 0.1 % per step, whatever its size), which LSQ's gradient
    scaling cannot do for an optimiser that normalises gradients."""

    def __init__(self, tensor: str, scale: float):
        super().__init__()
        self.tensor = tensor
        self.log_scale = nn.Parameter(torch.tensor(float(np.log(max(scale, MIN_SCALE)))))

    @property
    def scale(self) -> torch.Tensor:
        return self.log_scale.exp()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fake_quantize(x, self.scale.clamp_min(MIN_SCALE))


class WeightQuantizer(nn.Module):
    """Per-channel (``axis``) or per-tensor (None) max scaling, recomputed every step, as
    the exported Q/DQ ONNX computes it from the final weights."""

    def __init__(self, axis: Optional[int]):
        super().__init__()
        self.axis = axis

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if self.axis is None:
            amax = weight.detach().abs().max()
        else:
            dims = [d for d in range(weight.dim()) if d != self.axis]
            amax = weight.detach().abs().amax(dim=dims, keepdim=True)
        # no FP16 floor here: these are the unfolded weights, BatchNorm rescales them at export
        scale = amax / QMAX
        return fake_quantize(weight, torch.where(scale > 1e-12, scale, torch.ones_like(scale)))


@dataclass
class Site:
    """Where one ONNX tensor is quantised in the PyTorch model."""

    tensor: str
    kind: str  # "output" (a module call's output), "input" (the inputs of convs), "model_input"
    modules: Tuple[str, ...]  # module names; for "output" one
    call: int = 0  # which call of a shared module


@dataclass
class FakeQuantModel:
    """The hooks and quantisers attached to one model; :meth:`detach` removes them."""

    model: nn.Module
    sites: List[Site]
    quantizers: nn.ModuleDict  # ONNX tensor name (escaped) -> ActivationQuantizer
    shared: Dict[str, str]  # tensor -> tensor whose quantiser it uses
    weights: Dict[str, str]  # ONNX weighted node -> module name
    handles: List[object] = field(default_factory=list)
    calls: Dict[str, int] = field(default_factory=dict)

    def quantizer(self, tensor: str) -> ActivationQuantizer:
        root = tensor
        while root in self.shared:
            root = self.shared[root]
        return self.quantizers[_key(root)]

    def scales(self) -> Dict[str, float]:
        """ONNX tensor -> learned scale, shared tensors included."""
        names = [s.tensor for s in self.sites] + list(self.shared)
        return {name: float(self.quantizer(name).scale.detach().clamp_min(MIN_SCALE)) for name in names}

    def detach(self) -> None:
        """Remove every hook and weight quantiser; the float weights stay as trained."""
        from torch.nn.utils import parametrize

        for handle in self.handles:
            handle.remove()
        self.handles.clear()
        for name in self.weights.values():
            module = self.model.get_submodule(name)
            if parametrize.is_parametrized(module, "weight"):
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)


def _key(tensor: str) -> str:
    return tensor.replace(".", "\u2024").replace("/", "\u2215") or "_"


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and float(np.abs(a - b).max(initial=0.0)) <= 1e-3 * float(np.abs(b).max(initial=0.0)) + 1e-4


def _record(model: nn.Module, x: torch.Tensor):
    """Every module call's output (and every conv's input) on ``x``: (name, call) -> array."""
    outputs: Dict[Tuple[str, int], np.ndarray] = {}
    conv_inputs: Dict[Tuple[str, int], np.ndarray] = {}
    calls: Dict[str, int] = {}
    handles = []
    for name, module in model.named_modules():
        if not name:
            continue

        def hook(mod, args, out, name=name):
            call = calls.get(name, 0)
            calls[name] = call + 1
            if isinstance(out, torch.Tensor):
                outputs[(name, call)] = out.detach().cpu().numpy().copy()

        handles.append(module.register_forward_hook(hook))
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            def pre(mod, args, name=name):
                conv_inputs[(name, calls.get(name, 0))] = args[0].detach().cpu().numpy().copy()

            handles.append(module.register_forward_pre_hook(pre))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return outputs, conv_inputs


def _onnx_values(onnx_model, feed: Dict[str, np.ndarray], tensors: Sequence[str]) -> Dict[str, np.ndarray]:
    from fcn_edge.precision.collect import session_with_outputs

    session = session_with_outputs(onnx_model, list(tensors))
    return dict(zip(tensors, session.run(list(tensors), feed)))


def _chain_sources(index: GraphIndex, tensor: str) -> List[str]:
    """The tensors behind ``tensor`` through Slice/Reshape-like nodes, nearest first."""
    found = []
    node = index.producer.get(tensor)
    while node is not None and node.op_type in _COMMUTING_CHAIN and value_inputs(index, node):
        source = value_inputs(index, node)[0]
        found.append(source)
        node = index.producer.get(source)
    return found


def map_sites(model: nn.Module, onnx_model, placement, example: np.ndarray) -> Tuple[List[Site], Dict[str, str]]:
    """(activation sites, ONNX weighted node -> conv module name) of ``placement`` on the
    PyTorch ``model``."""
    index = GraphIndex.build(onnx_model.graph)
    input_name = next(iter(index.graph_inputs))
    wanted = [t for t in placement.activations] + [n.input[0] for n in placement.weights]
    for tensor in placement.activations:
        wanted += _chain_sources(index, tensor)
    tensors = [t for t in dict.fromkeys(wanted) if t != input_name]
    values = _onnx_values(onnx_model, {input_name: example}, tensors)
    values[input_name] = example
    outputs, conv_inputs = _record(model, torch.from_numpy(example))

    # convolutions: same input values and the same weight shape and kind
    modules = dict(model.named_modules())
    kinds = {"Conv": nn.Conv2d, "ConvTranspose": nn.ConvTranspose2d}
    weights: Dict[str, str] = {}
    taken = set()
    for node in placement.weights:
        shape = tuple(index.constant(node.input[1]).shape)
        found = [key for key, arr in conv_inputs.items()
                 if key not in taken and type(modules[key[0]]) is kinds[node.op_type]
                 and tuple(modules[key[0]].weight.shape) == shape and _close(arr, values[node.input[0]])]
        if not found:
            raise PrecisionError(f"QAT: no {node.op_type} of the PyTorch model reads what ONNX node {node.name!r} "
                                 f"reads (weight {shape}); the checkpoint and the ONNX differ")
        taken.add(found[0])
        weights[node.name or node.output[0]] = found[0][0]

    sites = [_site(t, index, values, outputs, weights, input_name)
             for t in placement.activations if t not in placement.shared]
    return sites, weights


def _innermost(matches):
    return max(matches, key=lambda key: (key[0].count("."), len(key[0])))


def _site(tensor: str, index: GraphIndex, values, outputs, weights: Dict[str, str], input_name: str) -> Site:
    if tensor == input_name:
        return Site(tensor, "model_input", ())
    matches = [key for key, arr in outputs.items() if _close(arr, values[tensor])]
    if matches:
        name, call = _innermost(matches)
        return Site(tensor, "output", (name,), call)
    readers = index.data_consumers(tensor)
    if readers and all(r.op_type in WEIGHTED_OPS and r.input[0] == tensor and (r.name or r.output[0]) in weights
                       for r in readers):
        return Site(tensor, "input", tuple(weights[r.name or r.output[0]] for r in readers))
    # a crop (Slice) of a module's output, read by the crop alone: quantise that output
    current = tensor
    for source in _chain_sources(index, tensor):
        if index.single_data_consumer(source) is not index.producer[current]:
            break
        matches = [key for key, arr in outputs.items() if _close(arr, values[source])]
        if matches:
            name, call = _innermost(matches)
            return Site(tensor, "output", (name,), call)
        current = source
    raise PrecisionError(f"QAT: cannot find where the PyTorch model computes ONNX tensor {tensor!r}")


def attach(model: nn.Module, onnx_model, placement, scales: Dict[str, float], example: np.ndarray,
           weight_axes: Dict[str, Optional[int]]) -> FakeQuantModel:
    """Hook fake quantisers into ``model`` where ``placement`` puts Q/DQ in ``onnx_model``,
    started at ``scales`` (ONNX tensor -> scale); ``weight_axes``: quantised weighted node
    -> its weight's scale axis (None: per tensor)."""
    from torch.nn.utils import parametrize

    sites, weights = map_sites(model, onnx_model, placement, example)
    quantizers = nn.ModuleDict({_key(s.tensor): ActivationQuantizer(s.tensor, scales[s.tensor]) for s in sites})
    fq = FakeQuantModel(model, sites, quantizers, dict(placement.shared), weights)
    by_module: Dict[str, Dict[int, ActivationQuantizer]] = {}
    by_conv: Dict[str, ActivationQuantizer] = {}
    for site in sites:
        quantizer = quantizers[_key(site.tensor)]
        if site.kind == "output":
            by_module.setdefault(site.modules[0], {})[site.call] = quantizer
        elif site.kind == "input":
            for name in site.modules:
                by_conv[name] = quantizer
        else:
            fq.handles.append(model.register_forward_pre_hook(lambda mod, args, q=quantizer: (q(args[0]),)))

    def reset(mod, args):
        fq.calls.clear()

    fq.handles.insert(0, model.register_forward_pre_hook(reset, prepend=True))
    for name, per_call in by_module.items():
        def hook(mod, args, out, name=name, per_call=per_call):
            call = fq.calls.get(name, 0)
            fq.calls[name] = call + 1
            q = per_call.get(call)
            return q(out) if q is not None else out

        fq.handles.append(model.get_submodule(name).register_forward_hook(hook))
    for name, quantizer in by_conv.items():
        fq.handles.append(model.get_submodule(name).register_forward_pre_hook(
            lambda mod, args, q=quantizer: (q(args[0]),)))
    for node_name, module_name in weights.items():
        parametrize.register_parametrization(model.get_submodule(module_name), "weight",
                                             WeightQuantizer(weight_axes[node_name]))
    return fq
