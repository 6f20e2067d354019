"""Keras weight files -> the weight-bearing layers they hold, in the model's layer order.

Four layouts, told apart by their content, never by their suffix:

* ``hdf5-weights``: Keras 2 ``save_weights`` (also tf.keras to a ``.h5`` name, and
  keras_segmentation's per-epoch files under standalone Keras): root attribute ``layer_names``
  lists ``model.layers``; each layer's group lists its ``weight_names``.
* ``hdf5-model``: ``model.save('x.h5')`` (Keras 2, and Keras 3's legacy HDF5): the same under
  ``model_weights``, plus the architecture as JSON in the ``model_config`` attribute.
* ``keras3-weights``: Keras 3 ``save_weights('x.weights.h5')``: ``layers/<class>[_<n>]/vars/<i>``,
  numbered per layer class in ``model.layers`` order; the layer's own name survives only
  as the ``name`` attribute newer Keras 3 versions write.
* ``keras3-archive``: a ``.keras`` zip with ``config.json`` and ``model.weights.h5``.

Arrays stay in Keras' layout ((kh, kw, in, out) kernels); :mod:`.keras_import` maps them.
Needs numpy; h5py is imported when a file is read.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from fcn_edge.artifacts import model_kind
from fcn_edge.errors import CheckpointError
from fcn_edge.optional import require
from fcn_edge.paths import PathLike

KERAS_FORMATS = ("hdf5-weights", "hdf5-model", "keras3-weights", "keras3-archive")
# Keras 3 storage keys: snake_case class name, then _<n> from the second layer of a class on.
KERAS3_CLASSES = {"conv2d": "Conv2D", "conv2d_transpose": "Conv2DTranspose",
                  "batch_normalization": "BatchNormalization", "dense": "Dense"}
_KEY = re.compile(r"^(?P<stem>[a-z0-9_]+?)(?:_(?P<n>\d+))?$")


@dataclass(frozen=True)
class KerasLayer:
    """One weight-bearing layer: its arrays in Keras' order (kernel, bias; or gamma, beta,
    moving mean, moving variance)."""

    name: str  # the Keras layer name, or the Keras 3 storage key when the name was not kept
    arrays: Tuple[np.ndarray, ...]
    class_name: str = ""  # "Conv2D", "Conv2DTranspose", ... where the file says; "" otherwise

    @property
    def shapes(self) -> Tuple[Tuple[int, ...], ...]:
        return tuple(tuple(int(d) for d in a.shape) for a in self.arrays)

    def describe(self) -> str:
        shapes = ", ".join(str(s) for s in self.shapes)
        return f"{self.name}{f' ({self.class_name})' if self.class_name else ''} [{shapes}]"


@dataclass(frozen=True)
class KerasFile:
    """What a Keras weight file holds."""

    path: Path
    format: str  # one of KERAS_FORMATS
    layers: Tuple[KerasLayer, ...]  # weight-bearing layers, in model.layers order
    config: Optional[Mapping[str, Any]] = None  # the model config, where the file keeps it
    backend: str = ""  # "tensorflow", "theano", "torch", ...; "" when the file does not say
    keras_version: str = ""


def _text(value: Any) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _attr_list(group, name: str) -> List[str]:
    """A string-list attribute; Keras splits long ones into ``name0``, ``name1``, ..."""
    if name in group.attrs:
        chunks = [group.attrs[name]]
    else:
        chunks, i = [], 0
        while f"{name}{i}" in group.attrs:
            chunks.append(group.attrs[f"{name}{i}"])
            i += 1
    return [_text(v) for chunk in chunks for v in np.atleast_1d(chunk)]


def _legacy_layers(group, classes: Mapping[str, str], source: str) -> Tuple[KerasLayer, ...]:
    layers = []
    for name in _attr_list(group, "layer_names"):
        if name not in group:
            raise CheckpointError(f"{source}: layer_names lists {name!r} but the file has no such group")
        arrays = []
        for weight in _attr_list(group[name], "weight_names"):
            if weight not in group[name]:
                raise CheckpointError(f"{source}: layer {name!r} lists weight {weight!r} but does not hold it")
            arrays.append(np.asarray(group[name][weight]))
        if arrays:
            layers.append(KerasLayer(name, tuple(arrays), classes.get(name, "")))
    return tuple(layers)


def _key_order(key: str) -> Tuple[str, int]:
    match = _KEY.match(key)
    if not match:
        return key, 0
    return match["stem"], int(match["n"] or 0)


def _keras3_layers(group) -> List[KerasLayer]:
    """``layers/<key>/vars/<i>`` in model.layers order per class; nested models in place."""
    layers: List[KerasLayer] = []
    for key in sorted(group, key=_key_order):
        child = group[key]
        if "layers" in child:  # a nested Functional/Sequential model
            layers += _keras3_layers(child["layers"])
        variables = child.get("vars")
        if variables is None or not len(variables):
            continue
        arrays = tuple(np.asarray(variables[str(i)]) for i in range(len(variables)))
        stem = _key_order(key)[0]
        name = _text(variables.attrs.get("name", key))
        layers.append(KerasLayer(name, arrays, KERAS3_CLASSES.get(stem, "")))
    return layers


def config_layers(config: Optional[Mapping[str, Any]]) -> List[Mapping[str, Any]]:
    """The layer entries of a Keras model config (Functional or Sequential), in its order."""
    if not isinstance(config, Mapping):
        return []
    inner = config.get("config", {})
    entries = inner.get("layers", []) if isinstance(inner, Mapping) else inner
    return [e for e in entries if isinstance(e, Mapping)] if isinstance(entries, list) else []


def config_classes(config: Optional[Mapping[str, Any]]) -> Dict[str, str]:
    """Layer name -> class name, from a Keras model config."""
    out = {}
    for entry in config_layers(config):
        name = entry.get("name") or (entry.get("config") or {}).get("name")
        if name:
            out[str(name)] = str(entry.get("class_name", ""))
    return out


def tensorflow_checkpoint_error(index: Path, prefix: str) -> CheckpointError:
    """tf.keras' own checkpoint format (``<name>.index`` + ``<name>.data-*``): not read here."""
    return CheckpointError(
        f"{index}: saved in TensorFlow's checkpoint format (tf.keras writes it when the name "
        "does not end in .h5), which fcn-edge does not read. With TensorFlow installed, re-save "
        f"it as HDF5: build the model, model.load_weights('{prefix}'), model.save_weights('{Path(prefix).name}.h5')")


def _json(text: Any, source: str, what: str) -> Mapping[str, Any]:
    try:
        value = json.loads(_text(text))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{source}: its {what} is not valid JSON: {exc}") from exc
    if not isinstance(value, Mapping):
        raise CheckpointError(f"{source}: its {what} is not a JSON object")
    return value


def _read_hdf5(path: Path, source: str, config: Optional[Mapping[str, Any]] = None) -> KerasFile:
    h5py = require("h5py", "reading Keras weight files")
    try:
        with h5py.File(path, "r") as f:
            backend = _text(f.attrs.get("backend", ""))
            version = _text(f.attrs.get("keras_version", ""))
            if "model_weights" in f:
                config = _json(f.attrs["model_config"], source, "model_config") if "model_config" in f.attrs else None
                layers = _legacy_layers(f["model_weights"], config_classes(config), source)
                backend = backend or _text(f["model_weights"].attrs.get("backend", ""))
                version = version or _text(f["model_weights"].attrs.get("keras_version", ""))
                return KerasFile(path, "hdf5-model", layers, config, backend, version)
            if "layer_names" in f.attrs or "layer_names0" in f.attrs:
                return KerasFile(path, "hdf5-weights", _legacy_layers(f, {}, source), None, backend, version)
            if isinstance(f.get("layers"), h5py.Group):
                layers = tuple(_keras3_layers(f["layers"]))
                return KerasFile(path, "keras3-weights", layers, config, backend, version)
    except OSError as exc:  # truncated or damaged: h5py says "truncated file", "bad object header" ...
        raise CheckpointError(f"{source}: cannot be read as HDF5 (truncated or damaged?): {exc}") from exc
    raise CheckpointError(
        f"{source}: an HDF5 file, but not Keras weights: it has no 'layer_names' attribute "
        "(Keras 2 save_weights), no 'model_weights' group (model.save) and no 'layers' group "
        "(Keras 3 .weights.h5)"
    )


def _read_archive(path: Path) -> KerasFile:
    source = str(path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            config = _json(archive.read("config.json"), source, "config.json")
            meta = _json(archive.read("metadata.json"), source, "metadata.json") if "metadata.json" in names else {}
            weights = next((n for n in names if n.endswith(".weights.h5")), None)
            if weights is None:
                raise CheckpointError(f"{source}: a .keras archive without a *.weights.h5 member")
            with tempfile.TemporaryDirectory(prefix="fcn-edge-keras-") as tmp:
                extracted = Path(tmp) / "model.weights.h5"
                with archive.open(weights) as src, open(extracted, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                inner = _read_hdf5(extracted, f"{source}:{weights}", config)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise CheckpointError(f"{source}: cannot read it as a .keras archive: {exc}") from exc
    return KerasFile(path, "keras3-archive", inner.layers, config, inner.backend,
                     str(meta.get("keras_version", "")))


def read_keras_file(path: PathLike) -> KerasFile:
    """The layers of a Keras weight file or archive, whichever of KERAS_FORMATS it is."""
    path = Path(path)
    if path.suffix == ".index" and list(path.parent.glob(path.stem + ".data-*")):
        raise tensorflow_checkpoint_error(path, str(path.with_suffix("")))
    kind = model_kind(path)
    if kind.kind == "keras" or (kind.kind == "zip" and path.suffix == ".keras"):
        return _read_archive(path)  # a damaged .keras says why there
    kind.require("hdf5", purpose="Keras weights",
                 hint="give a Keras .h5 / .weights.h5 / .keras file, or a keras_segmentation checkpoint")
    return _read_hdf5(path, str(path))
