"""ResNet-18/34/50/101 backbones (He et al. 2016), named as torchvision names them.

Module names (``conv1``, ``bn1``, ``layer1`` ... ``layer4``, ``downsample.0/1``) match
torchvision's ResNet, so ImageNet weights and torchvision's ``fcn_resnet50/101``
checkpoints load without renaming. ``dilate`` replaces the stride of layer3/layer4 by
dilation, as torchvision's segmentation models do (output stride 8).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Type, Union

import torch
from torch import nn

from fcn_edge.errors import UsageError


def conv3x3(in_ch: int, out_ch: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)


def conv1x1(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_ch: int, planes: int, stride: int = 1, downsample: Optional[nn.Module] = None,
                 dilation: int = 1):
        super().__init__()
        self.conv1 = conv3x3(in_ch, planes, stride, dilation)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes, dilation=dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """The torchvision "v1.5" bottleneck: the stride sits on the 3x3 conv."""

    expansion = 4

    def __init__(self, in_ch: int, planes: int, stride: int = 1, downsample: Optional[nn.Module] = None,
                 dilation: int = 1):
        super().__init__()
        self.conv1 = conv1x1(in_ch, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride, dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * 4)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


Block = Union[Type[BasicBlock], Type[Bottleneck]]

DEPTHS: Dict[int, tuple] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
}


class ResNetBackbone(nn.Module):
    """Returns layer2 (stride 8), layer3 (stride 16) and layer4 (stride 32, or 8 when dilated)."""

    def __init__(self, depth: int, dilate: Sequence[bool] = (False, False, False)):
        super().__init__()
        if depth not in DEPTHS:
            raise UsageError(f"ResNet depth {depth} is not one of {sorted(DEPTHS)}")
        block, counts = DEPTHS[depth]
        self.depth = depth
        self._in_ch = 64
        self._dilation = 1
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, counts[0])
        self.layer2 = self._make_layer(block, 128, counts[1], stride=2, dilate=dilate[0])
        self.layer3 = self._make_layer(block, 256, counts[2], stride=2, dilate=dilate[1])
        self.layer4 = self._make_layer(block, 512, counts[3], stride=2, dilate=dilate[2])
        e = block.expansion
        self.channels = {"stride8": 128 * e, "stride16": 256 * e, "stride32": 512 * e}
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        # Each residual branch starts as identity: trains from scratch more stably.
        for module in self.modules():
            if isinstance(module, Bottleneck):
                nn.init.zeros_(module.bn3.weight)
            elif isinstance(module, BasicBlock):
                nn.init.zeros_(module.bn2.weight)

    def _make_layer(self, block: Block, planes: int, count: int, stride: int = 1, dilate: bool = False) -> nn.Sequential:
        previous_dilation = self._dilation
        if dilate:
            self._dilation *= stride
            stride = 1
        downsample = None
        if stride != 1 or self._in_ch != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self._in_ch, planes * block.expansion, stride), nn.BatchNorm2d(planes * block.expansion)
            )
        blocks: List[nn.Module] = [block(self._in_ch, planes, stride, downsample, previous_dilation)]
        self._in_ch = planes * block.expansion
        blocks += [block(self._in_ch, planes, dilation=self._dilation) for _ in range(1, count)]
        return nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        s8 = self.layer2(x)
        s16 = self.layer3(s8)
        s32 = self.layer4(s16)
        return {"stride8": s8, "stride16": s16, "stride32": s32}
