"""Tiny ONNX models and image folders for the precision tests (made here, not downloaded).

The net has what the Q/DQ placement must handle in a real FCN: conv + ReLU, a residual Add,
a MaxPool, a 1x1 score conv and a ConvTranspose upsampling to the input size; it is exported
unfused (float NCHW in, logits out) or fused (uint8 NHWC BGR in, uint8 mask out).
"""

from __future__ import annotations

from pathlib import Path
from typing import List

import cv2
import numpy as np

from fcn_edge.artifacts import MASK_NAME, meta_for_classes, write_onnx_meta

NUM_CLASSES = 4
SIZE = (32, 48)  # (height, width)


def _torch_model(seed: int = 0):
    import torch
    from torch import nn

    torch.manual_seed(seed)

    class TinyFCN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
            self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
            self.conv3 = nn.Conv2d(8, 8, 3, padding=1)
            self.pool = nn.MaxPool2d(2)
            self.conv4 = nn.Conv2d(8, 16, 3, padding=1)
            self.score = nn.Conv2d(16, NUM_CLASSES, 1)
            self.up = nn.ConvTranspose2d(NUM_CLASSES, NUM_CLASSES, 8, stride=4, padding=2, bias=False)

        def forward(self, x):
            x1 = torch.relu(self.conv1(x))
            x2 = torch.relu(self.conv2(x1))
            x3 = torch.relu(self.conv3(x2) + x1)  # residual add
            x4 = torch.relu(self.conv4(self.pool(x3)))
            return self.up(self.score(x4))

    return TinyFCN().eval()


def _fused(model):
    import torch
    from torch import nn

    class Fused(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.register_buffer("scale", torch.tensor([1 / (255 * 0.229), 1 / (255 * 0.224), 1 / (255 * 0.225)]).view(1, 3, 1, 1))
            self.register_buffer("offset", torch.tensor([-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225]).view(1, 3, 1, 1))

        def forward(self, frames):  # uint8 NHWC BGR
            x = frames.flip(-1).permute(0, 3, 1, 2).float() * self.scale + self.offset
            return self.inner(x).argmax(1).to(torch.uint8)

    return Fused(model).eval()


def make_tiny_onnx(path: Path, fused: bool = False, seed: int = 0) -> Path:
    import onnx
    import torch

    model = _torch_model(seed)
    h, w = SIZE
    if fused:
        net, example = _fused(model), torch.zeros(1, h, w, 3, dtype=torch.uint8)
        out_name = MASK_NAME
        meta = meta_for_classes("tiny_fcn", [f"c{i}" for i in range(NUM_CLASSES)], input_size=SIZE,
                                input_layout="NHWC", input_dtype="uint8", channel_order="BGR",
                                output_kind="mask", output_dtype="uint8", output_name=MASK_NAME)
    else:
        net, example = model, torch.zeros(1, 3, h, w)
        out_name = "logits"
        meta = meta_for_classes("tiny_fcn", [f"c{i}" for i in range(NUM_CLASSES)], input_size=SIZE)
    torch.onnx.export(net, (example,), str(path), input_names=["input"], output_names=[out_name],
                      dynamic_axes={"input": {0: "batch"}, out_name: {0: "batch"}},
                      opset_version=17, dynamo=False)
    proto = onnx.load(str(path))
    write_onnx_meta(proto, meta)
    onnx.save(proto, str(path))
    return path


def make_images(folder: Path, count: int, seed: int = 0, size=(40, 56)) -> List[Path]:
    """Smooth random colour blobs: structured enough for meaningful activation ranges."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        small = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
        image = cv2.resize(small, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
        path = folder / f"img_{i:03d}.png"
        cv2.imwrite(str(path), image)
        paths.append(path)
    return paths


def make_dataset(root: Path, count: int, seed: int = 1) -> Path:
    """A folder-pair dataset (images/, masks/, classes.txt) whose labels are a simple
    function of colour, so a model's mean IU is defined (not meaningful for random nets)."""
    from fcn_edge.data.images import write_label_png

    images = make_images(root / "images", count, seed)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    names = [f"c{i}" for i in range(NUM_CLASSES)]
    (root / "classes.txt").write_text("\n".join(names) + "\n")
    from fcn_edge.classes import default_palette

    for path in images:
        image = cv2.imread(str(path))
        mask = (image.argmax(axis=2) + (image.mean(axis=2) > 128)).astype(np.uint8) % NUM_CLASSES
        write_label_png(root / "masks" / f"{path.stem}.png", mask, default_palette(NUM_CLASSES))
    return root
