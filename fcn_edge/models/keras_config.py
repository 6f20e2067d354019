"""What a Keras FCN's saved configuration says that its weights cannot: the input size, the
data format, how the softmax head orders its output, BatchNormalization's epsilon; and
keras_segmentation checkpoints (``<prefix>_config.json`` beside ``<prefix>.<epoch>`` files).

A model config is the JSON ``model.save`` keeps (``model_config`` in an HDF5 file,
``config.json`` in a ``.keras`` archive). Only the layer list is read, never executed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from fcn_edge.errors import CheckpointError
from fcn_edge.models.keras_fcn import KERAS_MODEL_CLASSES, keras_output_size
from fcn_edge.models.keras_weights import config_layers, tensorflow_checkpoint_error
from fcn_edge.paths import PathLike

SEGMENTATION_CONFIG_SUFFIX = "_config.json"
# keras_segmentation's own model names that are FCNs over encoders fcn-edge does not model
OTHER_FCN_CLASSES = ("fcn_8_resnet50", "fcn_32_resnet50", "fcn_8_mobilenet", "fcn_32_mobilenet")


@dataclass(frozen=True)
class ConfigFacts:
    """The parts of a Keras model config the importer needs; None where it does not say."""

    input_size: Optional[Tuple[int, int]] = None
    data_format: str = "channels_last"
    output_order: Optional[str] = None  # "per_pixel" | "planar_reshape"; None: no softmax head found
    bn_epsilon: Optional[float] = None


def _head_order(data_format: str, target: List[Any], permuted: bool, out_hw: Optional[int],
                classes: Optional[int], source: str) -> str:
    """Which of OUTPUT_ORDERS a ``Reshape(target)`` [+ ``Permute((2, 1))``] head gives."""
    rows = None
    if out_hw and classes and len(target) == 2 and target.count(-1) <= 1:
        known = [v for v in target if v != -1]
        rest = out_hw * classes // max(1, known[0]) if len(known) == 1 else None
        rows = [rest if v == -1 else v for v in target]
    pixels_first = rows == [out_hw, classes] if rows else not permuted  # (H*W, C)
    pixels_last = rows == [classes, out_hw] if rows else permuted  # (C, H*W)
    if data_format == "channels_last" and pixels_first and not permuted:
        return "per_pixel"  # keras_segmentation: Reshape((H*W, -1))
    if data_format == "channels_first" and pixels_last and permuted:
        return "per_pixel"  # 2017 code: Reshape((-1, H*W)) + Permute((2, 1))
    if data_format == "channels_last" and pixels_last and permuted:
        return "planar_reshape"  # a channels-last copy that kept the channels-first Reshape
    raise CheckpointError(
        f"{source}: the model's head, Reshape({tuple(target)}){' + Permute' if permuted else ''} "
        f"on a {data_format} output of {out_hw} pixels x {classes} classes, does not give one "
        "row of class scores per pixel as the Keras FCN heads fcn-edge knows do "
        "(keras_segmentation's Reshape((H*W, -1)); the 2017 code's Reshape((-1, H*W)) + Permute((2, 1)))"
    )


def _input_size(inputs: List[Mapping[str, Any]], data_format: str) -> Optional[Tuple[int, int]]:
    for entry in inputs[:1]:
        shape = entry.get("batch_shape") or entry.get("batch_input_shape")  # Keras 3 / Keras 2
        if shape and len(shape) == 4:
            hw = shape[2:4] if data_format == "channels_first" else shape[1:3]
            if all(isinstance(v, int) for v in hw):
                return int(hw[0]), int(hw[1])
    return None


def _saved_order(by_class: Mapping[str, List[Mapping[str, Any]]], data_format: str,
                 size: Optional[Tuple[int, int]], source: str) -> Optional[str]:
    reshapes = by_class.get("Reshape", [])
    if not reshapes:
        return None
    ups = by_class.get("Conv2DTranspose", [])
    head = {3: "fcn8", 1: "fcn32"}.get(len(ups))
    out_hw = None
    if size is not None and head is not None:
        out_h, out_w = keras_output_size(head, size)
        out_hw = out_h * out_w
    classes = ups[-1].get("filters") if ups else None
    return _head_order(data_format, list(reshapes[-1].get("target_shape") or []), bool(by_class.get("Permute")),
                       out_hw, classes if isinstance(classes, int) else None, source)


def config_facts(config: Mapping[str, Any], source: str) -> ConfigFacts:
    """Read input size, data format, head order and BN epsilon from a model config."""
    layers = config_layers(config)
    if not layers:
        raise CheckpointError(f"{source}: its model config lists no layers")
    by_class: Dict[str, List[Mapping[str, Any]]] = {}
    for layer in layers:
        by_class.setdefault(str(layer.get("class_name")), []).append(layer.get("config") or {})
    convs = by_class.get("Conv2D", []) + by_class.get("Conv2DTranspose", [])
    data_format = str(convs[0].get("data_format") or "channels_last") if convs else "channels_last"
    size = _input_size(by_class.get("InputLayer", []), data_format)
    bns = by_class.get("BatchNormalization", [])
    epsilon = float(bns[0]["epsilon"]) if bns and "epsilon" in bns[0] else None
    return ConfigFacts(size, data_format, _saved_order(by_class, data_format, size, source), epsilon)


@dataclass(frozen=True)
class SegmentationCheckpoint:
    """A keras_segmentation checkpoint: its config JSON and the weight file to load."""

    config_path: Path
    weights_path: Path
    epoch: int
    model_class: str
    num_classes: int
    input_size: Tuple[int, int]
    output_size: Optional[Tuple[int, int]]


def _prefix_of(path: Path) -> Optional[Path]:
    """The checkpoint prefix that ``path`` names: a config, a prefix, or a weight file."""
    if path.is_dir():
        configs = sorted(path.glob(f"*{SEGMENTATION_CONFIG_SUFFIX}"))
        if len(configs) != 1:
            found = f"{len(configs)} ({', '.join(c.name for c in configs[:4])}); name the one to load" if configs else "none"
            raise CheckpointError(f"{path}: a folder; a keras_segmentation checkpoint folder holds one "
                                  f"<prefix>{SEGMENTATION_CONFIG_SUFFIX}, this one {found}")
        return Path(str(configs[0])[: -len(SEGMENTATION_CONFIG_SUFFIX)])
    text = str(path)
    if text.endswith(SEGMENTATION_CONFIG_SUFFIX):
        return Path(text[: -len(SEGMENTATION_CONFIG_SUFFIX)])
    if Path(text + SEGMENTATION_CONFIG_SUFFIX).is_file():
        return path
    stem, dot, epoch = text.rpartition(".")
    if dot and epoch.isdigit() and Path(stem + SEGMENTATION_CONFIG_SUFFIX).is_file():
        return Path(stem)
    return None


def _epochs(prefix: Path) -> List[Tuple[int, Path]]:
    """(epoch, file) of every ``<prefix>.<epoch>`` weight file, as keras_segmentation's
    find_latest_checkpoint globs them (TensorFlow-format ``.index`` files included)."""
    found = []
    pattern = re.compile(re.escape(prefix.name) + r"\.(\d+)(\.index)?$")
    for candidate in prefix.parent.glob(prefix.name + ".*"):
        match = pattern.match(candidate.name)
        if match:
            found.append((int(match[1]), candidate))
    return sorted(found)


def _config_int(data: Mapping[str, Any], key: str, source: str) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise CheckpointError(f"{source}: '{key}' must be a positive integer, got {value!r}")
    return value


def find_segmentation_checkpoint(path: PathLike) -> Optional[SegmentationCheckpoint]:
    """The keras_segmentation checkpoint ``path`` names (its folder, config JSON, prefix or one
    of its weight files), or None when it names none. A weight file given by name is loaded
    as given; otherwise the highest epoch, as keras_segmentation's own loader picks it."""
    path = Path(path)
    prefix = _prefix_of(path)
    if prefix is None:
        return None
    config_path = Path(str(prefix) + SEGMENTATION_CONFIG_SUFFIX)
    source = str(config_path)
    try:
        data = json.loads(config_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{source}: not a readable keras_segmentation config: {exc}") from exc
    if not isinstance(data, Mapping):
        raise CheckpointError(f"{source}: a keras_segmentation config must be a JSON object")
    model_class = data.get("model_class")
    if model_class not in KERAS_MODEL_CLASSES:
        known = ", ".join(sorted(KERAS_MODEL_CLASSES))
        other = (f" ({model_class} is an FCN over an encoder fcn-edge does not model)"
                 if model_class in OTHER_FCN_CLASSES else "")
        raise CheckpointError(
            f"{source}: model_class {model_class!r} is not one of the Keras FCNs fcn-edge imports "
            f"({known}){other}")
    num_classes = _config_int(data, "n_classes", source)
    size = (_config_int(data, "input_height", source), _config_int(data, "input_width", source))
    out = None
    if "output_height" in data and "output_width" in data:
        out = (_config_int(data, "output_height", source), _config_int(data, "output_width", source))
        expected = keras_output_size(KERAS_MODEL_CLASSES[model_class][0], size)
        if out != expected:
            raise CheckpointError(
                f"{source}: output {out[0]}x{out[1]} does not fit a {model_class} at "
                f"{size[0]}x{size[1]} input, which gives {expected[0]}x{expected[1]}")
    epochs = _epochs(prefix)
    if path.is_file() and path != config_path:
        chosen = next(((e, p) for e, p in epochs if p == path), None)
    else:
        chosen = epochs[-1] if epochs else None
    if chosen is None:
        raise CheckpointError(
            f"{source}: no weight files {prefix.name}.<epoch> beside it (keras_segmentation "
            "saves one per epoch)")
    epoch, weights = chosen
    if weights.name.endswith(".index"):
        raise tensorflow_checkpoint_error(weights, str(weights.with_suffix("")))
    return SegmentationCheckpoint(config_path, weights, epoch, str(model_class), num_classes, size, out)
