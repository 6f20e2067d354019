"""The default trained model shipped with the package.

``fcn8s_mobilenetv3_synthetic.pt``: FCN-8s on a MobileNetV3-Large backbone, 7 synthetic
street classes, input 256x320 (stretch), trained by ``tools/train.py`` on the generated
data (see the README for the command, its wall time and the validation scores; the same
facts are in the checkpoint's ``extra`` and in ``fcn8s_mobilenetv3_synthetic.json``).
"""

from __future__ import annotations

from pathlib import Path

from fcn_edge.errors import CheckpointError

DEFAULT_NAME = "fcn8s_mobilenetv3_synthetic.pt"


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


def default_record() -> Path:
    """The JSON beside the checkpoint: how it was trained and what it scores."""
    return weights_dir() / DEFAULT_NAME.replace(".pt", ".json")
