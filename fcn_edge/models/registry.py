"""One registry of architectures: ``build_model(name, num_classes)``.

Names read ``<head>_<backbone>[_<variant>]``: ``fcn8s_vgg16`` is FCN-8s on the paper's
VGG16 with same padding (lean, for the edge); ``fcn8s_vgg16_caffe`` is the paper's
reference geometry (conv1_1 pad 100, Caffe crops) that pytorch-fcn checkpoints need;
``fcn_resnet50`` is torchvision's layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List

from torch import nn

from fcn_edge.errors import FcnEdgeError
from fcn_edge.models.fcn import FCN, TorchvisionFCN
from fcn_edge.models.heads import AT_ONCE_SKIP_SCALES, CAFFE_8S, CAFFE_16S, CAFFE_32S, HEADS, LEAN, Alignment, FCN8sHead
from fcn_edge.models.mobilenetv3 import MobileNetV3Backbone
from fcn_edge.models.resnet import ResNetBackbone
from fcn_edge.models.tiny import TinyBackbone
from fcn_edge.models.vgg import CAFFE_PADDING, LEAN_PADDING, VGG16Backbone


class UnknownModelError(FcnEdgeError, ValueError):
    """The architecture name is not in the registry."""


class DuplicateModelError(FcnEdgeError):
    """Two architectures were registered under one name."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    build: Callable[[int], nn.Module]


_REGISTRY: Dict[str, ModelSpec] = {}

_CAFFE_ALIGNMENT: Dict[str, Alignment] = {"fcn32s": CAFFE_32S, "fcn16s": CAFFE_16S, "fcn8s": CAFFE_8S}
_HEAD_TEXT = {"fcn32s": "FCN-32s", "fcn16s": "FCN-16s", "fcn8s": "FCN-8s"}


def register(name: str, description: str, build: Callable[[int], nn.Module]) -> None:
    if name in _REGISTRY:
        raise DuplicateModelError(f"architecture {name!r} is registered twice: {_REGISTRY[name].description!r} "
                                  f"and {description!r}")
    _REGISTRY[name] = ModelSpec(name, description, build)


def _fcn(head: str, make_backbone: Callable[[], nn.Module], alignment: Alignment, name: str):
    def build(num_classes: int) -> nn.Module:
        backbone = make_backbone()
        return FCN(backbone, HEADS[head](backbone.channels, num_classes, alignment), architecture=name)

    return build


def _register_all() -> None:
    for head in ("fcn32s", "fcn16s", "fcn8s"):
        text = _HEAD_TEXT[head]
        name = f"{head}_vgg16"
        register(name, f"{text}, VGG16 as in the paper (fc6 7x7x4096, fc7 1x1), same padding",
                 _fcn(head, lambda: VGG16Backbone(LEAN_PADDING), LEAN, name))
        name = f"{head}_vgg16_caffe"
        register(name, f"{text}, VGG16, Caffe/pytorch-fcn geometry (conv1_1 pad 100, crop offsets)",
                 _fcn(head, lambda: VGG16Backbone(CAFFE_PADDING), _CAFFE_ALIGNMENT[head], name))
        for depth in (18, 34, 50):
            name = f"{head}_resnet{depth}"
            register(name, f"{text}, ResNet-{depth}",
                     _fcn(head, lambda depth=depth: ResNetBackbone(depth), LEAN, name))
        name = f"{head}_mobilenetv3"
        register(name, f"{text}, MobileNetV3-Large", _fcn(head, MobileNetV3Backbone, LEAN, name))
    register("fcn8s_tiny", "FCN-8s on a backbone of a few thousand parameters: smoke tests and CI",
             _fcn("fcn8s", TinyBackbone, LEAN, "fcn8s_tiny"))
    name = "fcn8s_vgg16_caffe_atonce"
    register(name, "FCN-8s at-once, VGG16, Caffe geometry; pool4/pool3 scaled by 0.01/0.0001 (pytorch-fcn FCN8sAtOnce)",
             lambda num_classes: FCN(VGG16Backbone(CAFFE_PADDING),
                                     FCN8sHead(VGG16Backbone.channels, num_classes, CAFFE_8S, AT_ONCE_SKIP_SCALES),
                                     architecture="fcn8s_vgg16_caffe_atonce"))
    for depth in (50, 101):
        name = f"fcn_resnet{depth}"
        register(
            name,
            f"torchvision's fcn_resnet{depth} layout: dilated ResNet-{depth}, FCNHead, bilinear upsampling",
            lambda num_classes, depth=depth, name=name: TorchvisionFCN(
                ResNetBackbone(depth, dilate=(False, True, True)), num_classes, architecture=name
            ),
        )


_register_all()


def list_models() -> List[str]:
    return sorted(_REGISTRY)


def model_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown architecture {name!r}; known ones are: {', '.join(list_models())}"
        ) from None


def build_model(name: str, num_classes: int = 21) -> nn.Module:
    """A freshly initialised model (train mode); ``.eval()`` it before export or inference."""
    if not isinstance(num_classes, int) or num_classes < 1:
        raise UnknownModelError(f"num_classes must be a positive integer, got {num_classes!r}")
    return model_spec(name).build(num_classes)
