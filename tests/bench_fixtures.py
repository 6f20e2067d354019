"""Tiny ONNX models for the benchmark tests, exported with torch and tagged with ModelMeta."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional, Tuple

CLASSES = ("background", "road", "car")


def write_tiny_onnx(
    path: Path,
    input_size: Tuple[int, int] = (48, 64),
    dynamic: bool = True,
    precision: str = "fp32",
    max_size: Optional[Tuple[int, int]] = (256, 320),
) -> Path:
    """A strided conv + 1x1 classifier + bilinear upsampling, as an FCN in miniature."""
    import onnx
    import torch
    from torch import nn

    from fcn_edge.artifacts import meta_for_classes, write_onnx_meta

    torch.manual_seed(0)

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU())
            self.classifier = nn.Conv2d(8, len(CLASSES), 1)

        def forward(self, x):
            y = self.classifier(self.features(x))
            return nn.functional.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)

    axes = {"input": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch", 2: "height", 3: "width"}}
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            Tiny().eval(), torch.zeros(1, 3, *input_size), str(path), input_names=["input"],
            output_names=["logits"], dynamic_axes=axes if dynamic else None, opset_version=17, dynamo=False,
        )
    model = onnx.load(str(path))
    sizes = dict(min_size=(16, 16), max_size=max_size) if dynamic else {}
    meta = meta_for_classes("tiny_fcn", CLASSES, input_size=input_size, precision=precision,
                            max_batch=4, **sizes)
    write_onnx_meta(model, meta)
    onnx.save(model, str(path))
    return path
