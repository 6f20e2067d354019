"""Run a backbone's feature layers and keep the outputs the FCN skips need."""

from __future__ import annotations

from typing import Dict, Mapping, Tuple

import torch
from torch import nn


def run_tapped(features: nn.Sequential, taps: Mapping[int, str], x: torch.Tensor) -> Tuple[Dict[str, torch.Tensor], torch.Tensor]:
    """Outputs of the layers listed in ``taps`` (layer index -> name), and the last output."""
    out: Dict[str, torch.Tensor] = {}
    for index, layer in enumerate(features):
        x = layer(x)
        name = taps.get(index)
        if name is not None:
            out[name] = x
    return out, x
