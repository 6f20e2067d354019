"""The input normalisations of the Keras FCN code, expressed as ModelMeta's mean/std.

ModelMeta normalises RGB pixels scaled to [0, 1]: ``(x / 255 - mean) / std``, fed to the
network as RGB planes. Every Keras convention maps onto that exactly:

* a per-channel offset and scale on 0..255 pixels becomes mean = offset / 255 and
  std = scale / 255 (sub_mean: subtract 123.68/116.779/103.939 from R/G/B == mean
  (123.68, 116.779, 103.939) / 255, std 1 / 255);
* a network that reads BGR planes gets its first conv's input channels reversed when its
  weights are imported (as pytorch-fcn's Caffe weights are), so it reads RGB.

The variants (``get_image_array`` / ``getImageArr`` of each code base, read from their source):

* ``sub_mean``: keras_segmentation since 2019-05-27 (its default): BGR minus the BGR means
  (103.939, 116.779, 123.68), then ``img[:, :, ::-1]``: the network reads RGB.
* ``sub_mean_bgr``: the 2017 LoadBatches.py and keras_segmentation before 2019-05-27: the
  same subtraction, no flip: the network reads BGR.
* ``divide``: ``img / 255.0`` on BGR (every version).
* ``sub_and_divide``: ``img / 127.5 - 1`` on BGR (every version).
* ``none``: raw BGR 0..255 (BBuf's 2019 LoadBatches.getImageArr).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

from fcn_edge.errors import UsageError

RGB = Tuple[float, float, float]
IMAGENET_BGR_MEANS = (103.939, 116.779, 123.68)  # as the Keras code subtracts them, B, G, R
_RGB_MEANS = tuple(m / 255.0 for m in reversed(IMAGENET_BGR_MEANS))
_UNIT = (1 / 255.0,) * 3  # std of a network fed 0..255 values


@dataclass(frozen=True)
class KerasPreprocessing:
    """One Keras input convention: ModelMeta's mean/std and the channel order the net reads."""

    name: str
    network_order: str  # "RGB" | "BGR": what the first conv sees
    mean: RGB  # on RGB pixels in [0, 1]
    std: RGB
    origin: str  # which code does it, for the provenance trail

    @property
    def text(self) -> str:
        return f"{self.name} ({self.origin}; the network reads {self.network_order})"


PREPROCESSINGS: Dict[str, KerasPreprocessing] = {p.name: p for p in (
    KerasPreprocessing("sub_mean", "RGB", _RGB_MEANS, _UNIT, "keras_segmentation's default since 2019-05-27"),
    KerasPreprocessing("sub_mean_bgr", "BGR", _RGB_MEANS, _UNIT,
                       "the 2017 FCN8/FCN32 code and keras_segmentation before 2019-05-27"),
    KerasPreprocessing("divide", "BGR", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), "imgNorm='divide'"),
    KerasPreprocessing("sub_and_divide", "BGR", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "imgNorm='sub_and_divide'"),
    KerasPreprocessing("none", "BGR", (0.0, 0.0, 0.0), _UNIT, "raw BGR 0..255, as BBuf's 2019 LoadBatches"),
)}


def keras_preprocessing(name: str) -> KerasPreprocessing:
    try:
        return PREPROCESSINGS[name]
    except KeyError:
        raise UsageError(
            f"unknown Keras preprocessing {name!r}; one of {', '.join(PREPROCESSINGS)}") from None


def default_preprocessing(data_format: str, output_order: str) -> KerasPreprocessing:
    """What the code that builds a model of this data format and head fed it by default."""
    if data_format == "channels_first":
        return PREPROCESSINGS["sub_mean_bgr"]  # only the 2017 code was channels-first
    if output_order == "planar_reshape":
        return PREPROCESSINGS["none"]  # only BBuf's 2019 copy had this head
    return PREPROCESSINGS["sub_mean"]
