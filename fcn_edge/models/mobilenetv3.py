"""A MobileNetV3-Large backbone (Howard et al. 2019) for the edge.

Inverted residual blocks with depthwise convs, squeeze-and-excitation and hard-swish, as
in the paper's Table 1. Hard-swish and hard-sigmoid are written with ReLU6 (ONNX Add, Clip,
Mul, Div), which every TensorRT version and Orin's DLA run natively; the fused HardSwish op
is not available on DLA. :func:`use_native_hard_activations` switches a model to the
native ops instead (ONNX HardSwish/HardSigmoid, opset 14+): TensorRT runs them as
activations in the convolution's epilogue, so in an INT8 engine the convolution before
them can write INT8 (the decomposed form leaves it writing FP16 into a pointwise kernel).
Same weights, same function; only the exported graph differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List

import torch
import torch.nn.functional as F
from torch import nn

from fcn_edge.models.taps import run_tapped


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channel counts to a multiple of 8 without dropping more than 10%."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class HardSwish(nn.Module):
    def __init__(self, native: bool = False):
        super().__init__()
        self.native = native  # export as ONNX HardSwish instead of Add/Clip/Mul/Div

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.hardswish(x) if self.native else x * F.relu6(x + 3.0) / 6.0


class HardSigmoid(nn.Module):
    def __init__(self, native: bool = False):
        super().__init__()
        self.native = native  # export as ONNX HardSigmoid instead of Add/Clip/Div

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.hardsigmoid(x) if self.native else F.relu6(x + 3.0) / 6.0


def use_native_hard_activations(model: nn.Module, native: bool = True) -> int:
    """Make every hard-swish/hard-sigmoid of ``model`` export as the native ONNX op
    (``native=False``: the decomposed form again); returns how many were switched."""
    switched = 0
    for module in model.modules():
        if isinstance(module, (HardSwish, HardSigmoid)):
            module.native = native
            switched += 1
    return switched


def activation(name: str) -> nn.Module:
    return HardSwish() if name == "HS" else nn.ReLU(inplace=True)


class ConvBNAct(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, kernel: int = 1, stride: int = 1, groups: int = 1,
                 act: str = "RE", use_act: bool = True):
        layers: List[nn.Module] = [
            nn.Conv2d(in_ch, out_ch, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        if use_act:
            layers.append(activation(act))
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        squeezed = make_divisible(channels / 4)
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(squeezed, channels, 1)
        self.gate = HardSigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.gate(self.fc2(self.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))
        return x * scale


@dataclass(frozen=True)
class BlockSpec:
    kernel: int
    expanded: int
    out: int
    se: bool
    act: str  # "RE" (ReLU) or "HS" (hard-swish)
    stride: int


# MobileNetV3-Large, Table 1 of the paper (after the 16-channel stem).
LARGE: tuple = (
    BlockSpec(3, 16, 16, False, "RE", 1),
    BlockSpec(3, 64, 24, False, "RE", 2),
    BlockSpec(3, 72, 24, False, "RE", 1),
    BlockSpec(5, 72, 40, True, "RE", 2),
    BlockSpec(5, 120, 40, True, "RE", 1),
    BlockSpec(5, 120, 40, True, "RE", 1),
    BlockSpec(3, 240, 80, False, "HS", 2),
    BlockSpec(3, 200, 80, False, "HS", 1),
    BlockSpec(3, 184, 80, False, "HS", 1),
    BlockSpec(3, 184, 80, False, "HS", 1),
    BlockSpec(3, 480, 112, True, "HS", 1),
    BlockSpec(3, 672, 112, True, "HS", 1),
    BlockSpec(5, 672, 160, True, "HS", 2),
    BlockSpec(5, 960, 160, True, "HS", 1),
    BlockSpec(5, 960, 160, True, "HS", 1),
)
LAST_CHANNELS = 960


class InvertedResidual(nn.Module):
    def __init__(self, in_ch: int, spec: BlockSpec):
        super().__init__()
        self.use_residual = spec.stride == 1 and in_ch == spec.out
        layers: List[nn.Module] = []
        if spec.expanded != in_ch:
            layers.append(ConvBNAct(in_ch, spec.expanded, 1, act=spec.act))
        layers.append(ConvBNAct(spec.expanded, spec.expanded, spec.kernel, spec.stride, groups=spec.expanded, act=spec.act))
        if spec.se:
            layers.append(SqueezeExcite(spec.expanded))
        layers.append(ConvBNAct(spec.expanded, spec.out, 1, use_act=False))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out


class MobileNetV3Backbone(nn.Module):
    """Returns stride-8 (40 ch), stride-16 (112 ch) and stride-32 (960 ch) features."""

    def __init__(self, specs: tuple = LARGE, last_channels: int = LAST_CHANNELS):
        super().__init__()
        layers: List[nn.Module] = [ConvBNAct(3, 16, 3, stride=2, act="HS")]
        in_ch, stride = 16, 2
        taps: Dict[int, str] = {}
        channels: Dict[str, int] = {}
        for spec in specs:
            # A tap is the last block before the next downsampling.
            if spec.stride == 2 and stride in (8, 16):
                taps[len(layers) - 1] = f"stride{stride}"
                channels[f"stride{stride}"] = in_ch
            layers.append(InvertedResidual(in_ch, spec))
            in_ch, stride = spec.out, stride * spec.stride
        layers.append(ConvBNAct(in_ch, last_channels, 1, act="HS"))
        channels["stride32"] = last_channels
        self.features = nn.Sequential(*layers)
        self.channels = channels
        self._taps = taps
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        out, x = run_tapped(self.features, self._taps, x)
        out["stride32"] = x
        return out
