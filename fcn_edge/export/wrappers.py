"""Export-only behaviour as wrapper modules around an unchanged model.

``FusedPreprocess`` moves normalisation and the layout change into the graph so the
runtime copies raw uint8 pixels to the GPU. ``ArgmaxMask`` moves the argmax there so only
a uint8/int32 mask comes back. Both use ops every supported TensorRT parses: Cast,
Transpose, Gather, Mul, Add, ArgMax. uint8 network inputs and casts from/to uint8 are
supported from TensorRT 8.5 on (older parsers reject UINT8 tensors).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from fcn_edge.errors import ExportError


class FusedPreprocess(nn.Module):
    """uint8 NHWC BGR frames (as OpenCV gives them) -> normalised float NCHW RGB -> model.

    Computes ``x * (1 / (255 * std)) + (-mean / std)`` per RGB channel, the same arithmetic
    in the same order as the host :class:`fcn_edge.runtime.preprocess.Preprocessor`.
    """

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.model = model
        mean_t = torch.tensor(mean, dtype=torch.float32)
        std_t = torch.tensor(std, dtype=torch.float32)
        # float32 arithmetic as numpy does it on the host, so both sides round alike
        self.register_buffer("scale", (1.0 / (255.0 * std_t)).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("offset", (-mean_t / std_t).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("bgr_to_rgb", torch.tensor([2, 1, 0]), persistent=False)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.to(torch.float32).permute(0, 3, 1, 2)
        x = torch.index_select(x, 1, self.bgr_to_rgb)
        return self.model(x * self.scale + self.offset)


class ArgmaxMask(nn.Module):
    """logits (N, C, H, W) -> class mask (N, H, W) as uint8 or int32, never int64.

    ONNX ArgMax yields int64; the Cast right after it keeps int64 off the graph output
    (TensorRT computes ArgMax in int32 and has no int64 output before 10.x).
    """

    def __init__(self, model: nn.Module, dtype: str = "uint8"):
        super().__init__()
        if dtype not in ("uint8", "int32"):
            raise ExportError(f"mask dtype {dtype!r} is not one of uint8, int32")
        self.model = model
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        index = torch.argmax(self.model(x), dim=1).to(torch.int32)
        return index.to(torch.uint8) if self.dtype == "uint8" else index


def export_module(model: nn.Module, fuse_preprocess: bool, output: str, mask_dtype: str,
                  mean: Sequence[float], std: Sequence[float]) -> nn.Module:
    """The module that is exported: the model inside the wrappers the config asks for."""
    module = model
    if output == "mask":
        module = ArgmaxMask(module, mask_dtype)
    if fuse_preprocess:
        module = FusedPreprocess(module, mean, std)
    return module.eval()
