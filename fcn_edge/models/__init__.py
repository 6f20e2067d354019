"""FCN-32s/16s/8s models over VGG16 (as in the paper), ResNet and MobileNetV3 backbones,
and checkpoint import (fcn-edge, torchvision and pytorch-fcn layouts). Needs torch.
"""

from fcn_edge.models.checkpoint import LoadedCheckpoint, load_checkpoint, save_checkpoint
from fcn_edge.models.registry import ModelSpec, UnknownModelError, build_model, list_models, model_spec

__all__ = [
    "LoadedCheckpoint", "ModelSpec", "UnknownModelError", "build_model", "list_models",
    "load_checkpoint", "model_spec", "save_checkpoint",
]
