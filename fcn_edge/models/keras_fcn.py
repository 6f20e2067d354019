"""The Keras FCN-8 and FCN-32 this project descends from, layer for layer in PyTorch.

Divam Gupta's image-segmentation-keras built them in 2017 (``FCN8``/``FCN32``, channels-first),
its ``keras_segmentation`` package rebuilt them in 2019 (``fcn_8_vgg``, ``fcn_32_vgg`` and, on a
small batch-normalised encoder, ``fcn_8``, ``fcn_32``; channels-last), and many copies followed.
They differ from the paper's reference net (:mod:`fcn_edge.models.heads`) in ways that move
every output pixel, so they are modelled here as the Keras code builds them:

* 'same' 3x3 convs and 2x2 max pools that floor odd sizes (Keras' 'valid' pooling); fc6 is a
  'same' 7x7 conv, fc7 a 1x1 conv, each with ReLU and dropout;
* unpadded ('valid') transposed convs: (n - 1) * stride + kernel, so the output is larger than
  the input (FCN-8: 8 * (H // 8) + 8, i.e. 424x616 for 416x608; FCN-32: 32 * (H // 32) + 32,
  448x640) and is never cropped back. The whole output stands for the whole image:
  keras_segmentation resizes the labels to the output size to train and the predicted mask to
  the image to show it;
* where two maps are added, Keras' ``crop`` cuts the larger one at the right and bottom.

``forward`` returns (N, C, H_out, W_out) logits whose (h, w) column holds the class scores the
Keras softmax head reads for that pixel; :func:`keras_softmax_output` rebuilds that head's own
(N, H_out * W_out, C) output, for comparing with Keras.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from fcn_edge.errors import UsageError

HEADS = ("fcn8", "fcn32")
ENCODERS = ("vgg16", "vanilla")
# How the head's Reshape reads the last conv's output; see KerasFCNSpec.output_order.
OUTPUT_ORDERS = ("per_pixel", "planar_reshape")

VGG16_BLOCKS = (2, 2, 3, 3, 3)  # convs per block, block1 ... block5
VGG16_WIDTHS = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)
VANILLA_WIDTHS = (64, 128, 256, 256, 256)  # keras_segmentation's vanilla_encoder
FC_WIDTH = 4096
KERAS_BN_EPSILON = 1e-3  # keras.layers.BatchNormalization's default
DEFAULT_INPUT_SIZE = (416, 608)  # the Keras code's default input_height, input_width
MIN_INPUT = 32  # below this the stride-32 map is empty

# keras_segmentation's model names -> (head, encoder)
KERAS_MODEL_CLASSES: Dict[str, Tuple[str, str]] = {
    "fcn_8_vgg": ("fcn8", "vgg16"),
    "fcn_32_vgg": ("fcn32", "vgg16"),
    "fcn_8": ("fcn8", "vanilla"),
    "fcn_32": ("fcn32", "vanilla"),
}


def vgg16_conv_names() -> List[str]:
    """``block1_conv1`` ... ``block5_conv3``: the Keras layer names, in order."""
    return [f"block{b}_conv{i}" for b, n in enumerate(VGG16_BLOCKS, 1) for i in range(1, n + 1)]


@dataclass(frozen=True)
class KerasFCNSpec:
    """What a Keras FCN is made of; the weights say most of it, the Keras code the rest.

    ``output_order`` is how the Keras softmax head reads the last transposed conv:

    * ``per_pixel``: one row of C class scores per pixel. keras_segmentation (channels-last,
      ``Reshape((H*W, -1))``) and the 2017 code (channels-first, ``Reshape((-1, H*W))`` then
      ``Permute((2, 1))``) both do this.
    * ``planar_reshape``: a channels-last (N, H, W, C) tensor put through the channels-first
      ``Reshape((-1, H*W))`` + ``Permute`` (the 2019 FCN8 copy in BBuf/Keras-Semantic-
      Segmentation). The score of class c at pixel p is then element c*H*W + p of the NHWC
      buffer, not the conv's channel c at p; a model trained so learned that mapping, and
      only reproducing it gives its masks.

    ``encoder_widths`` and ``fc_width`` are read from the weights; the originals are the
    defaults (an empty tuple means the original encoder widths).
    """

    head: str = "fcn8"
    encoder: str = "vgg16"
    num_classes: int = 21
    output_order: str = "per_pixel"
    encoder_widths: Tuple[int, ...] = ()
    fc_width: int = FC_WIDTH
    bn_epsilon: float = KERAS_BN_EPSILON

    def __post_init__(self) -> None:
        problems = []
        for name, value, allowed in (("head", self.head, HEADS), ("encoder", self.encoder, ENCODERS),
                                     ("output_order", self.output_order, OUTPUT_ORDERS)):
            if value not in allowed:
                problems.append(f"{name} {value!r} is not one of {allowed}")
        if not isinstance(self.num_classes, int) or self.num_classes < 1:
            problems.append(f"num_classes must be a positive integer, got {self.num_classes!r}")
        if self.encoder in ENCODERS and len(self.widths) != len(self.default_widths):
            problems.append(f"the {self.encoder} encoder has {len(self.default_widths)} convs, "
                            f"not {len(self.widths)} widths {self.widths}")
        if min(self.widths + (self.fc_width,), default=0) < 1:
            problems.append(f"widths must be positive: {self.widths}, fc {self.fc_width}")
        if problems:
            raise UsageError("invalid Keras FCN: " + "; ".join(problems))

    @property
    def default_widths(self) -> Tuple[int, ...]:
        return VGG16_WIDTHS if self.encoder == "vgg16" else VANILLA_WIDTHS

    @property
    def widths(self) -> Tuple[int, ...]:
        return tuple(self.encoder_widths) or self.default_widths

    @property
    def original_widths(self) -> bool:
        return self.widths == self.default_widths and self.fc_width == FC_WIDTH

    @property
    def keras_name(self) -> str:
        """keras_segmentation's name for it: fcn_8_vgg, fcn_32_vgg, fcn_8, fcn_32."""
        return next(k for k, v in KERAS_MODEL_CLASSES.items() if v == (self.head, self.encoder))

    @property
    def architecture(self) -> str:
        """``<head>_<backbone>_keras[_planar]``, the registry's naming (e.g. fcn8s_vgg16_keras)."""
        name = f"{self.head}s_{self.encoder}_keras"
        return name + ("_planar" if self.output_order == "planar_reshape" else "")

    @property
    def stage_widths(self) -> Tuple[int, int, int]:
        """Channels of the stride-8, stride-16 and stride-32 feature maps (f3, f4, f5)."""
        w = self.widths
        if self.encoder == "vanilla":
            return w[2], w[3], w[4]
        ends = [sum(VGG16_BLOCKS[: b + 1]) - 1 for b in range(len(VGG16_BLOCKS))]
        return w[ends[2]], w[ends[3]], w[ends[4]]


def keras_output_size(head: str, input_size: Sequence[int]) -> Tuple[int, int]:
    """(H_out, W_out) of the Keras model for an (H, W) input; larger than the input."""
    h, w = (int(v) for v in input_size)
    if min(h, w) < MIN_INPUT:
        raise UsageError(f"input size {h}x{w}: the Keras FCNs need at least {MIN_INPUT}x{MIN_INPUT}")
    if head == "fcn8":  # upscore8 over the stride-8 map: (n - 1) * 8 + 16
        return 8 * (h // 8) + 8, 8 * (w // 8) + 8
    return 32 * (h // 32) + 32, 32 * (w // 32) + 32  # upscore over stride 32: (n - 1) * 32 + 64


def keras_softmax_output(logits: torch.Tensor) -> torch.Tensor:
    """The Keras model's own output, (N, H*W, C) class probabilities, from our logits."""
    n, c = logits.shape[0], logits.shape[1]
    return F.softmax(logits, dim=1).permute(0, 2, 3, 1).reshape(n, -1, c)


def _crop_to(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Keras' ``crop``: cut ``x`` at the right and bottom to ``reference``'s size.

    The upsampled map is always the larger one here: with floored pools a stride-s map has
    n <= 2m + 1 pixels where the coarser one has m, and upsampling gives 2m + 2. Written
    with tensor sizes so the ONNX graph keeps dynamic shapes.
    """
    return x[:, :, : reference.shape[-2], : reference.shape[-1]]


class KerasVGG16Encoder(nn.Module):
    """keras_segmentation's ``get_vgg_encoder`` (the 2017 FCN8/FCN32's VGG16): 13 'same' 3x3
    convs with ReLU in 5 blocks, each closed by a 2x2 max pool. Convs carry the Keras names."""

    def __init__(self, widths: Sequence[int] = VGG16_WIDTHS):
        super().__init__()
        self.names = vgg16_conv_names()
        self._pool_after = {f"block{b}_conv{n}" for b, n in enumerate(VGG16_BLOCKS, 1)}
        channels = 3
        for name, width in zip(self.names, widths):
            self.add_module(name, nn.Conv2d(channels, int(width), kernel_size=3, padding=1))
            channels = int(width)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        """The pooled output of every block: [f1, f2, f3, f4, f5]."""
        levels = []
        for name in self.names:
            x = F.relu(getattr(self, name)(x))
            if name in self._pool_after:
                x = F.max_pool2d(x, 2, 2)  # floor mode, as Keras' 'valid' pooling
                levels.append(x)
        return levels


class KerasVanillaEncoder(nn.Module):
    """keras_segmentation's ``vanilla_encoder`` (used by ``fcn_8``/``fcn_32``): five times
    ZeroPadding2D(1) + 3x3 'valid' conv + BatchNormalization + ReLU + 2x2 max pool."""

    def __init__(self, widths: Sequence[int] = VANILLA_WIDTHS, bn_epsilon: float = KERAS_BN_EPSILON):
        super().__init__()
        channels = 3
        for i, width in enumerate(widths, 1):
            self.add_module(f"conv{i}", nn.Conv2d(channels, int(width), kernel_size=3, padding=1))
            # Keras' momentum 0.99 is torch's 0.01; it only matters when training on.
            self.add_module(f"bn{i}", nn.BatchNorm2d(int(width), eps=bn_epsilon, momentum=0.01))
            channels = int(width)
        self.stages = len(widths)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        levels = []
        for i in range(1, self.stages + 1):
            x = F.relu(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(x)))
            x = F.max_pool2d(x, 2, 2)
            levels.append(x)
        return levels


class KerasFCN(nn.Module):
    """A Keras FCN-8 or FCN-32: encoder, fc6/fc7, score layers, 'valid' transposed convs.

    Module names follow the FCN paper (fc6, fc7, score_fr, upscore2, score_pool4,
    upscore_pool4, score_pool3, upscore8; FCN-32: upscore); Keras numbers these layers
    (conv2d_13, conv2d_transpose_1, ...), so the importer places them by shape and order.
    """

    def __init__(self, spec: KerasFCNSpec):
        super().__init__()
        self.spec = spec
        self.architecture = spec.architecture
        self.num_classes = spec.num_classes
        if spec.encoder == "vgg16":
            self.encoder: nn.Module = KerasVGG16Encoder(spec.widths)
        else:
            self.encoder = KerasVanillaEncoder(spec.widths, spec.bn_epsilon)
        c3, c4, c5 = spec.stage_widths
        fc, n = spec.fc_width, spec.num_classes
        self.fc6 = nn.Conv2d(c5, fc, kernel_size=7, padding=3)
        self.fc7 = nn.Conv2d(fc, fc, kernel_size=1)
        self.drop = nn.Dropout(0.5)
        self.score_fr = nn.Conv2d(fc, n, kernel_size=1)
        if spec.head == "fcn8":
            self.upscore2 = nn.ConvTranspose2d(n, n, 4, stride=2, bias=False)
            self.score_pool4 = nn.Conv2d(c4, n, kernel_size=1)
            self.upscore_pool4 = nn.ConvTranspose2d(n, n, 4, stride=2, bias=False)
            self.score_pool3 = nn.Conv2d(c3, n, kernel_size=1)
            self.upscore8 = nn.ConvTranspose2d(n, n, 16, stride=8, bias=False)
        else:
            self.upscore = nn.ConvTranspose2d(n, n, 64, stride=32, bias=False)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """The last transposed conv's output (N, C, H_out, W_out), before the Keras head."""
        _, _, f3, f4, f5 = self.encoder(x)
        o = self.drop(F.relu(self.fc6(f5)))
        o = self.drop(F.relu(self.fc7(o)))
        o = self.score_fr(o)
        if self.spec.head == "fcn32":
            return self.upscore(o)
        pool4 = self.score_pool4(f4)
        o = _crop_to(self.upscore2(o), pool4) + pool4
        pool3 = self.score_pool3(f3)
        o = _crop_to(self.upscore_pool4(o), pool3) + pool3
        return self.upscore8(o)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.scores(x)
        if self.spec.output_order == "per_pixel":
            return y
        # planar_reshape: read the NHWC buffer as if it were (N, C, H, W) planes.
        n, c, h, w = y.shape
        return y.permute(0, 2, 3, 1).reshape(n, c, h, w)


def spec_for_architecture(name: str, num_classes: int) -> KerasFCNSpec:
    """The original-width spec of a Keras FCN named as keras_segmentation names it
    (fcn_8_vgg, fcn_32_vgg, fcn_8, fcn_32) or as fcn-edge does (fcn8s_vgg16_keras,
    fcn32s_vanilla_keras_planar, ...)."""
    if name in KERAS_MODEL_CLASSES:
        head, encoder = KERAS_MODEL_CLASSES[name]
        return KerasFCNSpec(head, encoder, num_classes)
    for head in HEADS:
        for encoder in ENCODERS:
            for order in OUTPUT_ORDERS:
                spec = KerasFCNSpec(head, encoder, num_classes, order)
                if spec.architecture == name:
                    return spec
    known = sorted(KERAS_MODEL_CLASSES) + [KerasFCNSpec(h, e, 1).architecture for h in HEADS for e in ENCODERS]
    raise UsageError(f"unknown Keras FCN architecture {name!r}; known: {', '.join(known)} "
                     "(append _planar to an fcn-edge name for the channels-last Reshape((-1, H*W)) head)")
