"""The default trained model shipped with the package, and its calibration set.

``fcn8s_mobilenetv3_synthetic.pt``: FCN-8s on a MobileNetV3-Large backbone, 7 synthetic
street classes, input 256x320 (stretch), trained by ``fcn-edge train`` on the generated
data (see the README for the command, its wall time and the validation scores; the same
facts are in the checkpoint's ``extra`` and in ``fcn8s_mobilenetv3_synthetic.json``).

``fcn8s_mobilenetv3_synthetic.onnx``: the same weights exported fused (uint8 NHWC BGR frames
in, uint8 class mask out, dynamic batch up to 4 and sizes 128x160 .. 512x640) by
``tools/make_default_onnx.py``. It is what ``segment``, ``run``, ``benchmark`` and
``evaluate`` use when no model is named, because it runs through ONNX Runtime without torch;
its ModelMeta ``source_hash`` is the checkpoint's SHA-256, which a test keeps in sync.

``calibration/``: 64 images from the synthetic train split, the default model's INT8
calibration set (``--calib default``; the format is described in calibration/README.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Type

from fcn_edge.errors import CheckpointError, DataError, FcnEdgeError

DEFAULT_NAME = "fcn8s_mobilenetv3_synthetic.pt"
DEFAULT_ONNX_NAME = "fcn8s_mobilenetv3_synthetic.onnx"
CALIBRATION_DIR = "calibration"


def weights_dir() -> Path:
    return Path(__file__).resolve().parent


def _shipped(name: str, what: str, remedy: str, error: Type[FcnEdgeError], folder: bool = False) -> Path:
    path = weights_dir() / name
    if not (path.is_dir() if folder else path.is_file()):
        raise error(f"{path}: {what} is missing from this installation; reinstall fcn-edge, or {remedy}")
    return path


def default_checkpoint() -> Path:
    """Path of the shipped default checkpoint (an fcn-edge .pt with ModelMeta)."""
    return _shipped(DEFAULT_NAME, "the default model", f"train one: fcn-edge train --save-to "
                    f"{weights_dir() / DEFAULT_NAME}", CheckpointError)


def default_onnx() -> Path:
    """Path of the shipped default model as a fused ONNX (runs without torch)."""
    return _shipped(DEFAULT_ONNX_NAME, "the default model's ONNX",
                    "regenerate it from the checkpoint: python tools/make_default_onnx.py", CheckpointError)


def default_calibration() -> Path:
    """Folder of the default model's INT8 calibration images."""
    return _shipped(CALIBRATION_DIR, "the default calibration set", "make one: python "
                    f"tools/make_calibration_set.py synthetic --split train -n 64 --out {weights_dir() / CALIBRATION_DIR}",
                    DataError, folder=True)
