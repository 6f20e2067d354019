"""ModelMeta: the one contract that travels with a model from checkpoint to engine.

Export writes it into the ONNX ``metadata_props`` (key :data:`ONNX_KEY`, a JSON value);
every later step reads it from there; ``build-engine`` copies it into the engine's
``<name>.engine.json`` sidecar. Checkpoints carry it as a plain dict, which
``torch.load(weights_only=True)`` accepts. This module needs only numpy and the stdlib.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

from fcn_edge.atomic import write_bytes_atomic
from fcn_edge.classes import DATASETS, default_palette
from fcn_edge.errors import MetaError

SCHEMA_VERSION = 1
ONNX_KEY = "fcn_edge.meta"
SIDECAR_SUFFIX = ".json"

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

INPUT_NAME = "input"
LOGITS_NAME = "logits"
MASK_NAME = "mask"

RESIZE_MODES = ("stretch", "letterbox")
LAYOUTS = ("NCHW", "NHWC")
INPUT_DTYPES = ("float32", "float16", "uint8")
CHANNEL_ORDERS = ("RGB", "BGR")
OUTPUT_KINDS = ("logits", "mask")
OUTPUT_DTYPES = ("float32", "float16", "uint8", "int32")
PRECISIONS = ("fp32", "fp16", "int8")

PathLike = Union[str, os.PathLike]
Size = Tuple[int, int]


@dataclass(frozen=True)
class ModelMeta:
    """Everything a later step needs to run a model without being told again.

    Sizes are (height, width). ``mean``/``std`` apply to RGB pixels scaled to [0, 1].
    ``min_size``/``max_size`` give the dynamic spatial range (equal to ``input_size``
    for a fixed-shape model); ``input_size`` is the size frames are resized to, and the
    optimisation-profile "opt" shape of an engine.
    """

    architecture: str
    class_names: Tuple[str, ...]
    palette: Tuple[Tuple[int, int, int], ...]
    input_size: Size = (256, 320)
    min_size: Optional[Size] = None
    max_size: Optional[Size] = None
    max_batch: int = 1
    dynamic_batch: bool = True
    resize_mode: str = "stretch"
    mean: Tuple[float, float, float] = IMAGENET_MEAN
    std: Tuple[float, float, float] = IMAGENET_STD
    input_layout: str = "NCHW"
    input_dtype: str = "float32"
    channel_order: str = "RGB"
    output_kind: str = "logits"
    output_dtype: str = "float32"
    precision: str = "fp32"
    ignore_index: int = 255
    input_name: str = INPUT_NAME
    output_name: str = LOGITS_NAME
    source_hash: str = ""
    dataset: str = ""
    history: Tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        problems = []
        for name, value, allowed in (
            ("resize_mode", self.resize_mode, RESIZE_MODES),
            ("input_layout", self.input_layout, LAYOUTS),
            ("input_dtype", self.input_dtype, INPUT_DTYPES),
            ("channel_order", self.channel_order, CHANNEL_ORDERS),
            ("output_kind", self.output_kind, OUTPUT_KINDS),
            ("output_dtype", self.output_dtype, OUTPUT_DTYPES),
            ("precision", self.precision, PRECISIONS),
        ):
            if value not in allowed:
                problems.append(f"{name}={value!r} is not one of {allowed}")
        if not self.class_names:
            problems.append("class_names is empty")
        if len(self.palette) != len(self.class_names):
            problems.append(
                f"palette has {len(self.palette)} colours for {len(self.class_names)} classes"
            )
        if len(self.mean) != 3 or len(self.std) != 3 or any(s <= 0 for s in self.std):
            problems.append(f"mean/std must be 3 values with std > 0, got {self.mean}/{self.std}")
        for name in ("input_size", "min_size", "max_size"):
            size = getattr(self, name)
            if size is not None and (len(size) != 2 or min(size) < 1):
                problems.append(f"{name}={size} is not a positive (height, width)")
        if self.max_batch < 1:
            problems.append(f"max_batch={self.max_batch} must be >= 1")
        if self.output_kind == "mask" and self.output_dtype not in ("uint8", "int32"):
            problems.append(f"a mask output must be uint8 or int32, not {self.output_dtype}")
        if self.output_kind == "mask" and self.output_dtype == "uint8" and self.num_classes > 256:
            problems.append(f"a uint8 mask cannot hold {self.num_classes} classes")
        if problems:
            raise MetaError("invalid ModelMeta: " + "; ".join(problems))

    # -- derived -------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def fused_preprocess(self) -> bool:
        """True when the graph takes raw uint8 NHWC BGR frames and normalises inside."""
        return self.input_dtype == "uint8"

    @property
    def fused_argmax(self) -> bool:
        return self.output_kind == "mask"

    @property
    def dynamic_shape(self) -> bool:
        return (self.min_size or self.input_size) != (self.max_size or self.input_size)

    @property
    def size_range(self) -> Tuple[Size, Size, Size]:
        """(min, opt, max) spatial sizes, as an engine's optimisation profile wants them."""
        return (self.min_size or self.input_size, self.input_size, self.max_size or self.input_size)

    def input_shape(self, batch: int = 1, size: Optional[Size] = None) -> Tuple[int, int, int, int]:
        """The graph input's shape in its own layout for ``batch`` frames of ``size``."""
        h, w = size or self.input_size
        return (batch, h, w, 3) if self.input_layout == "NHWC" else (batch, 3, h, w)

    def replace(self, **changes: Any) -> "ModelMeta":
        return dataclasses.replace(self, **changes)

    def with_history(self, step: str, **changes: Any) -> "ModelMeta":
        """A copy with ``step`` appended to the provenance trail."""
        return dataclasses.replace(self, history=tuple(self.history) + (step,), **changes)

    # -- (de)serialisation ---------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON types only (lists, str, int, float), so torch's weights_only loads it."""
        out: Dict[str, Any] = {"schema_version": SCHEMA_VERSION}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = [list(v) if isinstance(v, tuple) else v for v in value]
            out[f.name] = value
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> "ModelMeta":
        if not isinstance(data, Mapping):
            raise MetaError(f"{source}: ModelMeta must be a JSON object, got {type(data).__name__}")
        version = data.get("schema_version", SCHEMA_VERSION)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise MetaError(
                f"{source}: ModelMeta schema_version {version!r} is newer than this fcn-edge "
                f"understands ({SCHEMA_VERSION}); upgrade fcn-edge"
            )
        known = {f.name: f for f in dataclasses.fields(cls)}
        missing = [n for n in ("architecture", "class_names", "palette") if n not in data]
        if missing:
            raise MetaError(f"{source}: ModelMeta lacks required keys {missing}")
        kwargs: Dict[str, Any] = {}
        for name, value in data.items():
            if name not in known:
                continue  # written by a newer minor version; keep reading what we know
            if name == "palette":
                value = tuple(tuple(int(c) for c in colour) for colour in value)
            elif name in ("input_size", "min_size", "max_size"):
                value = None if value is None else tuple(int(v) for v in value)
            elif name in ("mean", "std"):
                value = tuple(float(v) for v in value)
            elif name in ("class_names", "history"):
                value = tuple(str(v) for v in value)
            kwargs[name] = value
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise MetaError(f"{source}: {exc}") from exc

    @classmethod
    def from_json(cls, text: str, source: str = "<json>") -> "ModelMeta":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MetaError(f"{source}: ModelMeta is not valid JSON: {exc}") from exc
        return cls.from_dict(data, source)


def meta_for_dataset(architecture: str, dataset: str, **overrides: Any) -> ModelMeta:
    """ModelMeta with the class list and palette of a built-in dataset."""
    if dataset not in DATASETS:
        raise MetaError(f"unknown dataset {dataset!r}; built-in ones are {sorted(DATASETS)}")
    names, palette = DATASETS[dataset]
    return ModelMeta(architecture, tuple(names), tuple(palette), dataset=dataset, **overrides)


def meta_for_classes(architecture: str, class_names, **overrides: Any) -> ModelMeta:
    names = tuple(class_names)
    return ModelMeta(architecture, names, default_palette(len(names)), **overrides)


# -- ONNX metadata_props ------------------------------------------------------------------
def write_onnx_meta(model: Any, meta: ModelMeta) -> None:
    """Store ``meta`` in an ``onnx.ModelProto``'s metadata_props, replacing an older copy."""
    props = model.metadata_props
    for i in reversed(range(len(props))):
        if props[i].key == ONNX_KEY:
            del props[i]
    entry = props.add()
    entry.key = ONNX_KEY
    entry.value = meta.to_json()


def meta_from_props(props: Mapping[str, str], source: str) -> ModelMeta:
    if ONNX_KEY not in props:
        raise MetaError(
            f"{source} carries no ModelMeta (metadata_props key '{ONNX_KEY}'); "
            "export it with `fcn-edge export`, or add the meta with fcn_edge.meta.write_onnx_meta"
        )
    return ModelMeta.from_json(props[ONNX_KEY], source)


def read_onnx_meta(path: PathLike) -> ModelMeta:
    """Read ModelMeta from an ONNX file with onnx, or ONNX Runtime where onnx is absent."""
    path = Path(path)
    if not path.is_file():
        raise MetaError(f"{path}: no such ONNX file")
    try:
        import onnx
    except ImportError:
        onnx = None
    if onnx is not None:
        try:
            model = onnx.load(str(path), load_external_data=False)
        except Exception as exc:  # onnx raises DecodeError and friends
            raise MetaError(f"{path}: not a readable ONNX model: {exc}") from exc
        return meta_from_props({p.key: p.value for p in model.metadata_props}, str(path))
    from fcn_edge.optional import require

    ort = require("onnxruntime", "reading ModelMeta from ONNX")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return meta_from_props(session.get_modelmeta().custom_metadata_map, str(path))


# -- JSON sidecars --------------------------------------------------------------------------
def sidecar_path(artifact: PathLike) -> Path:
    """``model.engine`` -> ``model.engine.json``."""
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + SIDECAR_SUFFIX)


def write_json_atomic(path: PathLike, data: Mapping[str, Any]) -> Path:
    """Write JSON to a temporary file beside ``path`` and rename it into place."""
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    return write_bytes_atomic(path, text.encode())


def write_sidecar(artifact: PathLike, meta: ModelMeta, extra: Optional[Mapping[str, Any]] = None) -> Path:
    """Write ``<artifact>.json`` holding ``meta`` plus artifact-specific ``extra`` fields."""
    data: Dict[str, Any] = {"meta": meta.to_dict()}
    if extra:
        data.update(extra)
    return write_json_atomic(sidecar_path(artifact), data)


def read_sidecar(artifact: PathLike) -> Tuple[ModelMeta, Dict[str, Any]]:
    """Return (meta, the other sidecar fields) for ``artifact``'s ``.json`` sidecar."""
    path = sidecar_path(artifact)
    if not path.is_file():
        raise MetaError(
            f"{artifact}: its sidecar {path.name} is missing; the sidecar holds the model's "
            "classes, preprocessing and build facts. Rebuild with `fcn-edge build-engine`, "
            "which writes both"
        )
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise MetaError(f"{path}: unreadable sidecar: {exc}") from exc
    if not isinstance(data, dict) or "meta" not in data:
        raise MetaError(f"{path}: sidecar has no 'meta' object")
    meta = ModelMeta.from_dict(data.pop("meta"), str(path))
    return meta, data


def file_sha256(path: PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
