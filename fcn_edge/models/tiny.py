"""A backbone of a few thousand parameters for smoke tests: every step of the chain in seconds.

``fcn8s_tiny`` has what the chain must handle in a real FCN, at toy size: convolutions with
ReLU, a residual Add, a MaxPool, strides 8/16/32 for the FCN-8s skips, and the real FCN-8s
head (transposed convolutions, crops). The test suite, ``doctor`` and first-time users
exercise export, quantisation, engine builds and the runtime on it without waiting for a
real network.
"""

from __future__ import annotations

from typing import Dict

import torch
from torch import nn


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


class TinyBackbone(nn.Module):
    """stride 2 conv -> residual block -> max pool (stride 4) -> three stride-2 convs (8, 16, 32)."""

    channels = {"stride8": 16, "stride16": 16, "stride32": 24}

    def __init__(self):
        super().__init__()
        self.stem = _conv(3, 8, stride=2)
        self.block = _conv(8, 8)
        self.pool = nn.MaxPool2d(2, ceil_mode=True)
        self.down8 = _conv(8, 16, stride=2)
        self.down16 = _conv(16, 16, stride=2)
        self.down32 = _conv(16, 24, stride=2)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        x = self.relu(self.stem(x))
        x = self.relu(self.block(x) + x)
        s8 = self.relu(self.down8(self.pool(x)))
        s16 = self.relu(self.down16(s8))
        s32 = self.relu(self.down32(s16))
        return {"stride8": s8, "stride16": s16, "stride32": s32}


def smoke_test_model(num_classes: int, seed: int = 0) -> nn.Module:
    """``fcn8s_tiny`` in eval mode with seeded weights whose score layers are spread (std 0.5).

    Freshly initialised FCN score layers (std 0.01) give near-equal logits, so two runtimes'
    masks of such a model would compare rounding noise; spread scores make argmax ties rare,
    and a disagreement then means something. ``fcn-edge doctor`` and the tests build on it.
    """
    from fcn_edge.models.registry import build_model

    torch.manual_seed(seed)
    model = build_model("fcn8s_tiny", num_classes).eval()
    with torch.no_grad():
        for name, module in model.named_modules():
            if name.startswith("head.score"):
                module.weight.normal_(0.0, 0.5)
                module.bias.normal_(0.0, 0.5)
    return model
