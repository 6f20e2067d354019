"""Models assembled from a backbone and a head, as torchvision assembles its FCN."""

from __future__ import annotations

from typing import Dict

import torch
import torch.nn.functional as F
from torch import nn


class FCN(nn.Module):
    """backbone -> dict of stride-8/16/32 features -> FCN-32s/16s/8s head -> logits.

    ``forward`` returns one (N, num_classes, H, W) tensor for an (N, 3, H, W) input of any
    size, odd sizes included.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, architecture: str = ""):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.architecture = architecture
        self.num_classes = head.num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x), x)


class TorchvisionFCNHead(nn.Sequential):
    """torchvision's ``FCNHead``: 3x3 conv to in/4 channels, BN, ReLU, dropout, 1x1 score."""

    def __init__(self, in_channels: int, num_classes: int):
        inter = in_channels // 4
        super().__init__(
            nn.Conv2d(in_channels, inter, 3, padding=1, bias=False),
            nn.BatchNorm2d(inter),
            nn.ReLU(inplace=True),
            nn.Dropout(0.1),
            nn.Conv2d(inter, num_classes, 1),
        )


class TorchvisionFCN(nn.Module):
    """torchvision's ``fcn_resnet50/101`` layout: a dilated ResNet (output stride 8), an
    FCNHead named ``classifier`` and bilinear upsampling to the input size.

    Its state_dict keys are torchvision's, without ``aux_classifier.*``: the auxiliary
    head is a training-time loss only and is not part of the deployed graph.
    """

    def __init__(self, backbone: nn.Module, num_classes: int, architecture: str = ""):
        super().__init__()
        self.backbone = backbone
        self.classifier = TorchvisionFCNHead(backbone.channels["stride32"], num_classes)
        self.architecture = architecture
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features: Dict[str, torch.Tensor] = self.backbone(x)
        out = self.classifier(features["stride32"])
        return F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)
