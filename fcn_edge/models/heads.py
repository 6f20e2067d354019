"""FCN-32s, FCN-16s and FCN-8s heads (Long, Shelhamer, Darrell 2015).

A head scores the backbone's stride-32 feature map, upsamples it with transposed
convolutions initialised to bilinear interpolation, adds scores of the stride-16 (pool4)
and stride-8 (pool3) features, and crops the result to the input's size.

Two geometries exist, described by :class:`Alignment`:

* ``LEAN``: backbones with "same" padding give ceil(H/s) maps; each transposed conv is
  padded by stride/2, so its output is exactly ``stride`` times its input and lines up with
  the finer map from the top-left corner (crop offset 0). No wasted border compute.
* ``CAFFE_*``: the paper's reference net, with conv1_1 padded by 100 pixels and unpadded
  transposed convs, needs the Caffe crop offsets (5/9/31 for FCN-8s) to line maps up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

import torch
from torch import nn


@dataclass(frozen=True)
class Alignment:
    """How upsampled maps line up with the finer maps they are added to."""

    padded_upsampling: bool  # transposed convs padded by stride/2 (out = in * stride)
    pool4_offset: int = 0  # crop of score_pool4 so it lines up with upscore2
    pool3_offset: int = 0  # crop of score_pool3 so it lines up with upscore_pool4
    output_offset: int = 0  # crop of the final upsampling to the input


LEAN = Alignment(padded_upsampling=True)
# The crop offsets of the Caffe reference models (and of pytorch-fcn, which ports them).
CAFFE_32S = Alignment(padded_upsampling=False, output_offset=19)
CAFFE_16S = Alignment(padded_upsampling=False, pool4_offset=5, output_offset=27)
CAFFE_8S = Alignment(padded_upsampling=False, pool4_offset=5, pool3_offset=9, output_offset=31)


def bilinear_kernel(channels: int, kernel_size: int) -> torch.Tensor:
    """Weights of a (channels -> channels) transposed conv that upsamples bilinearly.

    Each channel is upsampled on its own (a diagonal weight), so the layer starts as
    interpolation and can learn cross-class mixing later, as in the paper.
    """
    factor = (kernel_size + 1) // 2
    centre = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    taps = 1 - (torch.arange(kernel_size, dtype=torch.float64) - centre).abs() / factor
    filt = (taps[:, None] * taps[None, :]).float()
    weight = torch.zeros(channels, channels, kernel_size, kernel_size)
    index = torch.arange(channels)
    weight[index, index] = filt
    return weight


def upsampler(channels: int, stride: int, alignment: Alignment) -> nn.ConvTranspose2d:
    """A learnable transposed conv (no bias, as in the paper) initialised to bilinear."""
    kernel = 2 * stride
    padding = stride // 2 if alignment.padded_upsampling else 0
    layer = nn.ConvTranspose2d(channels, channels, kernel, stride=stride, padding=padding, bias=False)
    with torch.no_grad():
        layer.weight.copy_(bilinear_kernel(channels, kernel))
    return layer


def score_layer(in_channels: int, num_classes: int) -> nn.Conv2d:
    layer = nn.Conv2d(in_channels, num_classes, kernel_size=1)
    nn.init.normal_(layer.weight, std=0.01)
    nn.init.zeros_(layer.bias)
    return layer


def crop_like(x: torch.Tensor, reference: torch.Tensor, offset: int) -> torch.Tensor:
    """``x[..., offset:offset + H, offset:offset + W]`` with H, W from ``reference``.

    Written with tensor sizes so it exports as Shape/Slice and stays dynamic in ONNX.
    """
    h, w = reference.shape[-2], reference.shape[-1]
    return x[:, :, offset : offset + h, offset : offset + w]


class FCNHead(nn.Module):
    """Shared machinery of the three heads; subclasses choose which skips they fuse.

    ``forward(features, image)`` takes the backbone's dict with keys ``stride8``,
    ``stride16`` and ``stride32`` and returns logits of the image's height and width.
    """

    def __init__(self, channels: Dict[str, int], num_classes: int, alignment: Alignment = LEAN):
        super().__init__()
        self.num_classes = num_classes
        self.alignment = alignment
        self.score_fr = score_layer(channels["stride32"], num_classes)

    def extra_repr(self) -> str:
        scales = getattr(self, "skip_scales", (1.0, 1.0))
        text = f"num_classes={self.num_classes}, alignment={self.alignment}"
        return text + (f", skip_scales={scales}" if scales != (1.0, 1.0) else "")


class FCN32sHead(FCNHead):
    def __init__(self, channels: Dict[str, int], num_classes: int, alignment: Alignment = LEAN):
        super().__init__(channels, num_classes, alignment)
        self.upscore = upsampler(num_classes, 32, alignment)

    def forward(self, features: Dict[str, torch.Tensor], image: torch.Tensor) -> torch.Tensor:
        score = self.score_fr(features["stride32"])
        return crop_like(self.upscore(score), image, self.alignment.output_offset)


class FCN16sHead(FCNHead):
    def __init__(self, channels: Dict[str, int], num_classes: int, alignment: Alignment = LEAN):
        super().__init__(channels, num_classes, alignment)
        self.score_pool4 = score_layer(channels["stride16"], num_classes)
        self.upscore2 = upsampler(num_classes, 2, alignment)
        self.upscore16 = upsampler(num_classes, 16, alignment)

    def forward(self, features: Dict[str, torch.Tensor], image: torch.Tensor) -> torch.Tensor:
        a = self.alignment
        upscore2 = self.upscore2(self.score_fr(features["stride32"]))
        pool4 = self.score_pool4(features["stride16"])
        if a.padded_upsampling:  # the coarse map may overhang the finer one by a pixel
            fused = crop_like(upscore2, pool4, 0) + pool4
        else:
            fused = upscore2 + crop_like(pool4, upscore2, a.pool4_offset)
        return crop_like(self.upscore16(fused), image, a.output_offset)


# "At-once" FCN-8s (the PAMI version of the paper; pytorch-fcn's FCN8sAtOnce) trains all
# strides together and scales pool4 and pool3 before scoring them.
AT_ONCE_SKIP_SCALES = (0.01, 0.0001)


class FCN8sHead(FCNHead):
    def __init__(self, channels: Dict[str, int], num_classes: int, alignment: Alignment = LEAN,
                 skip_scales: Tuple[float, float] = (1.0, 1.0)):
        super().__init__(channels, num_classes, alignment)
        self.skip_scales = tuple(skip_scales)  # (pool4, pool3)
        self.score_pool4 = score_layer(channels["stride16"], num_classes)
        self.score_pool3 = score_layer(channels["stride8"], num_classes)
        self.upscore2 = upsampler(num_classes, 2, alignment)
        self.upscore_pool4 = upsampler(num_classes, 2, alignment)
        self.upscore8 = upsampler(num_classes, 8, alignment)

    def forward(self, features: Dict[str, torch.Tensor], image: torch.Tensor) -> torch.Tensor:
        a = self.alignment
        upscore2 = self.upscore2(self.score_fr(features["stride32"]))
        s4, s3 = self.skip_scales
        pool4 = self.score_pool4(features["stride16"] if s4 == 1.0 else features["stride16"] * s4)
        pool3 = self.score_pool3(features["stride8"] if s3 == 1.0 else features["stride8"] * s3)
        if a.padded_upsampling:
            fuse4 = crop_like(upscore2, pool4, 0) + pool4
            up4 = self.upscore_pool4(fuse4)
            fuse3 = crop_like(up4, pool3, 0) + pool3
        else:
            fuse4 = upscore2 + crop_like(pool4, upscore2, a.pool4_offset)
            up4 = self.upscore_pool4(fuse4)
            fuse3 = up4 + crop_like(pool3, up4, a.pool3_offset)
        return crop_like(self.upscore8(fuse3), image, a.output_offset)


HEADS = {"fcn32s": FCN32sHead, "fcn16s": FCN16sHead, "fcn8s": FCN8sHead}
