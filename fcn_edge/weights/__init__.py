"""The default trained model shipped with the package, and its calibration set.

``fcn8s_mobilenetv3_synthetic.pt``: FCN-8s on a MobileNetV3-Large backbone, 7 synthetic
street classes, input 256x320 (stretch), trained by ``tools/train.py`` on the generated
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

from fcn_edge.errors import CheckpointError, DataError

DEFAULT_NAME = "fcn8s_mobilenetv3_synthetic.pt"
DEFAULT_ONNX_NAME = "fcn8s_mobilenetv3_synthetic.onnx"
CALIBRATION_DIR = "calibration"


def weights_dir() -> Path:
    return Path(__file__).resolve().parent


def default_checkpoint() -> Path:
    """Path of the shipped default checkpoint (an fcn-edge .pt with ModelMeta)."""
    path = weights_dir() / DEFAULT_NAME
    if not path.is_file():
        raise CheckpointError(
            f"{path}: the default model is missing from this installation; reinstall fcn-edge, "
            "or train one: python tools/train.py --save-to " + str(path)
        )
    return path


def default_onnx() -> Path:
    """Path of the shipped default model as a fused ONNX (runs without torch)."""
    path = weights_dir() / DEFAULT_ONNX_NAME
    if not path.is_file():
        raise CheckpointError(
            f"{path}: the default model's ONNX is missing from this installation; reinstall "
            "fcn-edge, or regenerate it from the checkpoint: python tools/make_default_onnx.py"
        )
    return path


def default_calibration() -> Path:
    """Folder of the default model's INT8 calibration images."""
    path = weights_dir() / CALIBRATION_DIR
    if not path.is_dir():
        raise DataError(
            f"{path}: the default calibration set is missing from this installation; reinstall "
            "fcn-edge, or make one: python tools/make_calibration_set.py synthetic --split train "
            f"-n 64 --out {path}"
        )
    return path
