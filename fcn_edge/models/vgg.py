"""VGG16 as the FCN paper uses it: 13 convs, then fc6 as a 7x7 conv with 4096 channels and
fc7 as a 1x1 conv, each followed by ReLU and dropout.

Built from a config table, as torchvision builds VGG, so that module names match
torchvision's ``vgg16`` (``features.N``; ``classifier.0`` = fc6, ``classifier.3`` = fc7)
and ImageNet weights map onto it (fc6's Linear weight reshapes to 4096x512x7x7).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence, Union

import torch
from torch import nn

from fcn_edge.models.taps import run_tapped

# Output channels per conv; "M" is a 2x2 max pool. Configuration "D" of Simonyan & Zisserman.
VGG16_CFG: Sequence[Union[int, str]] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
)


@dataclass(frozen=True)
class VGGPadding:
    """The one place the lean and the Caffe-reference VGG16 differ."""

    first_conv: int  # padding of conv1_1
    fc6: int  # padding of the 7x7 fc6 conv


LEAN_PADDING = VGGPadding(first_conv=1, fc6=3)  # "same" everywhere: ceil(H/s) maps
CAFFE_PADDING = VGGPadding(first_conv=100, fc6=0)  # the paper's reference net


def make_layers(cfg: Sequence[Union[int, str]], first_padding: int) -> nn.Sequential:
    layers: List[nn.Module] = []
    in_channels = 3
    for value in cfg:
        if value == "M":
            # ceil_mode keeps every pixel of odd-sized maps, as Caffe's pooling does.
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True))
            continue
        padding = first_padding if not layers else 1
        layers += [nn.Conv2d(in_channels, int(value), kernel_size=3, padding=padding), nn.ReLU(inplace=True)]
        in_channels = int(value)
    return nn.Sequential(*layers)


def pool_indices(cfg: Sequence[Union[int, str]]) -> List[int]:
    """Index in ``features`` of each max-pool module, in order."""
    indices, index = [], 0
    for value in cfg:
        if value == "M":
            indices.append(index)
            index += 1
        else:
            index += 2
    return indices


class VGG16Backbone(nn.Module):
    """Returns pool3 (stride 8), pool4 (stride 16) and fc7 (stride 32) features."""

    channels = {"stride8": 256, "stride16": 512, "stride32": 4096}

    def __init__(self, padding: VGGPadding = LEAN_PADDING, dropout: float = 0.5):
        super().__init__()
        self.padding = padding
        self.features = make_layers(VGG16_CFG, padding.first_conv)
        self.classifier = nn.Sequential(
            nn.Conv2d(512, 4096, kernel_size=7, padding=padding.fc6),  # fc6
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Conv2d(4096, 4096, kernel_size=1),  # fc7
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )
        pools = pool_indices(VGG16_CFG)
        self._taps = {pools[2]: "stride8", pools[3]: "stride16"}
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        out, x = run_tapped(self.features, self._taps, x)
        out["stride32"] = self.classifier(x)
        return out


# The pytorch-fcn / Caffe layer names of the 13 convs, in order (conv1_1 ... conv5_3).
VGG16_CONV_NAMES = tuple(
    f"conv{block}_{i}" for block, n in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3)) for i in range(1, n + 1)
)


def conv_module_indices(cfg: Sequence[Union[int, str]] = VGG16_CFG) -> List[int]:
    """Index in ``features`` of each conv, in order; pairs with VGG16_CONV_NAMES."""
    indices, index = [], 0
    for value in cfg:
        if value == "M":
            index += 1
        else:
            indices.append(index)
            index += 2
    return indices
