"""Tiny FCN-like ONNX models for the runtime tests, made with torch and written with ModelMeta.

Two variants of one network: ``unfused`` takes normalised float NCHW RGB and gives logits;
``fused`` takes uint8 NHWC BGR, normalises inside the graph and gives a uint8 argmax mask,
as ``fcn-edge export --fuse-preprocess --output mask`` does. Torch is used here only, never
by the runtime under test.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Tuple

NUM_CLASSES = 5
INPUT_SIZE = (48, 64)


def tiny_net(num_classes: int = NUM_CLASSES, seed: int = 0):
    import torch
    from torch import nn

    torch.manual_seed(seed)

    class TinyFCN(nn.Module):
        """Strided conv, 1x1 classifier, bilinear upsampling back to the input: an FCN in miniature."""

        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
            )
            self.classifier = nn.Conv2d(16, num_classes, 1)

        def forward(self, x):
            h, w = x.shape[-2:]
            y = self.classifier(self.features(x))
            return nn.functional.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)

    net = TinyFCN().eval()
    with torch.no_grad():  # spread the scores so argmax ties are rare
        net.classifier.weight.mul_(8.0)
    return net


def fused_wrapper(net, mean, std):
    import torch
    from torch import nn

    class Fused(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net
            self.register_buffer("scale", (1.0 / (255.0 * torch.tensor(std))).view(1, 3, 1, 1))
            self.register_buffer("offset", (-torch.tensor(mean) / torch.tensor(std)).view(1, 3, 1, 1))

        def forward(self, x):  # uint8 NHWC BGR
            x = x.permute(0, 3, 1, 2).flip(1).float()
            logits = self.net(x * self.scale + self.offset)
            return logits.argmax(1).to(torch.uint8)

    return Fused().eval()


def make_onnx(directory: Path, variant: str = "unfused", resize_mode: str = "stretch",
              input_size: Tuple[int, int] = INPUT_SIZE, seed: int = 0) -> Path:
    """Write ``tiny-<variant>.onnx`` with ModelMeta and return its path."""
    import onnx
    import torch

    from fcn_edge.artifacts import meta_for_classes, write_onnx_meta

    names = [f"class{i}" for i in range(NUM_CLASSES)]
    base = meta_for_classes("tiny-fcn", names, input_size=input_size, resize_mode=resize_mode,
                            min_size=(16, 16), max_size=(256, 256), max_batch=4)
    net = tiny_net(seed=seed)
    h, w = input_size
    if variant == "unfused":
        meta = base
        module, example = net, torch.zeros(1, 3, h, w)
        dynamic = {"input": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch", 2: "height", 3: "width"}}
        out_name = "logits"
    elif variant == "fused":
        meta = base.replace(input_layout="NHWC", input_dtype="uint8", channel_order="BGR",
                            output_kind="mask", output_dtype="uint8", output_name="mask")
        module, example = fused_wrapper(net, base.mean, base.std), torch.zeros(1, h, w, 3, dtype=torch.uint8)
        dynamic = {"input": {0: "batch", 1: "height", 2: "width"}, "mask": {0: "batch", 1: "height", 2: "width"}}
        out_name = "mask"
    else:
        raise ValueError(variant)
    path = Path(directory) / f"tiny-{variant}-{resize_mode}-{h}x{w}.onnx"
    with warnings.catch_warnings():  # the legacy exporter's deprecation notice
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), str(path), input_names=["input"], output_names=[out_name],
                          dynamic_axes=dynamic, opset_version=17, dynamo=False)
    model = onnx.load(str(path))
    write_onnx_meta(model, meta)
    onnx.save(model, str(path))
    return path


def save_checkpoint(directory: Path, seed: int = 0) -> Path:
    """A plain ``{"state_dict", "meta"}`` checkpoint of the same tiny net (for the torch backend)."""
    import torch

    from fcn_edge.artifacts import meta_for_classes

    names = [f"class{i}" for i in range(NUM_CLASSES)]
    meta = meta_for_classes("tiny-fcn", names, input_size=INPUT_SIZE, min_size=(16, 16), max_size=(256, 256))
    path = Path(directory) / "tiny.pt"
    torch.save({"state_dict": tiny_net(seed=seed).state_dict(), "meta": meta.to_dict()}, path)
    return path


def sample_frame(height: int = 120, width: int = 160, seed: int = 1):
    """A BGR frame with smooth structure, so masks have regions rather than noise."""
    import numpy as np

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    frame = np.stack([
        127 + 120 * np.sin(xx / 9.0 + rng.uniform(0, 6)),
        127 + 120 * np.cos(yy / 7.0 + rng.uniform(0, 6)),
        127 + 120 * np.sin((xx + yy) / 13.0),
    ], axis=-1)
    return np.clip(frame, 0, 255).astype(np.uint8)
