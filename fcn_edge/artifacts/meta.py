"""ModelMeta: the one contract that travels with a model from checkpoint to engine.

Export writes it into the ONNX ``metadata_props`` (:mod:`.onnx_meta`); every later step
reads it from there; ``build-engine`` copies it into the engine's ``<name>.engine.json``
sidecar (:mod:`.sidecar`). Checkpoints carry it as a plain dict, which
``torch.load(weights_only=True)`` accepts. This module needs only the stdlib.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from fcn_edge.artifacts.fields import FieldReader
from fcn_edge.classes import DATASETS, default_palette
from fcn_edge.errors import MetaError

SCHEMA_VERSION = 1

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

Size = Tuple[int, int]


@dataclass(frozen=True)
class ModelMeta:
    """Everything a later step needs to run a model without being told again.

    Sizes are (height, width). ``mean``/``std`` apply to RGB pixels scaled to [0, 1].
    ``min_size``/``max_size`` give the dynamic spatial range (equal to ``input_size``
    for a fixed-shape model); ``input_size`` is the size frames are resized to, and the
    optimisation-profile "opt" shape of an engine.

    ``frame_size``/``frame_min_size``/``frame_max_size`` are set when the resize is fused
    (``fcn-edge export --fuse-resize``): the graph takes uint8 frames of any size in that
    range (``frame_size`` is the engine profile's "opt") and resizes them to ``input_size``
    itself, which is then the network's one size.
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
    frame_size: Optional[Size] = None
    frame_min_size: Optional[Size] = None
    frame_max_size: Optional[Size] = None

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
        for name in ("input_size", "min_size", "max_size", "frame_size", "frame_min_size", "frame_max_size"):
            size = getattr(self, name)
            if size is not None and (len(size) != 2 or min(size) < 1):
                problems.append(f"{name}={size} is not a positive (height, width)")
        low, opt, high = self.size_range
        if not problems and not all(a <= b <= c for a, b, c in zip(low, opt, high)):
            problems.append(f"sizes must satisfy min_size <= input_size <= max_size, got {low}, {opt}, {high}")
        if self.max_batch < 1:
            problems.append(f"max_batch={self.max_batch} must be >= 1")
        problems += self._frame_problems()
        if self.output_kind == "mask" and self.output_dtype not in ("uint8", "int32"):
            problems.append(f"a mask output must be uint8 or int32, not {self.output_dtype}")
        if self.output_kind == "mask" and self.output_dtype == "uint8" and self.num_classes > 256:
            problems.append(f"a uint8 mask cannot hold {self.num_classes} classes")
        if problems:
            raise MetaError("invalid ModelMeta: " + "; ".join(problems))

    def _frame_problems(self) -> List[str]:
        frames = (self.frame_min_size, self.frame_size, self.frame_max_size)
        if all(f is None for f in frames):
            return []
        if any(f is None for f in frames):
            return ["frame_size, frame_min_size and frame_max_size are set together (a fused resize) or not at all"]
        if any(len(f) != 2 or min(f) < 1 for f in frames):
            return []  # reported with the other sizes
        problems = []
        if not all(a <= b <= c for a, b, c in zip(*frames)):
            problems.append(f"frame sizes must satisfy frame_min_size <= frame_size <= frame_max_size, got {frames}")
        if self.input_dtype != "uint8" or self.resize_mode != "stretch":
            problems.append("a fused resize takes uint8 frames (fused preprocessing) and stretches them")
        if self.dynamic_shape:
            problems.append("with a fused resize the network has one size: min_size and max_size equal input_size")
        return problems

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
        """(min, opt, max) spatial sizes of the network."""
        return (self.min_size or self.input_size, self.input_size, self.max_size or self.input_size)

    @property
    def fused_resize(self) -> bool:
        """True when the graph takes frames at their own size and resizes them itself."""
        return self.frame_size is not None

    @property
    def input_range(self) -> Tuple[Size, Size, Size]:
        """(min, opt, max) H x W of the graph's input tensor, as an engine's optimisation
        profile wants them: the frame range when the resize is fused, else ``size_range``."""
        if self.fused_resize:
            return (self.frame_min_size, self.frame_size, self.frame_max_size)  # type: ignore[return-value]
        return self.size_range

    def input_shape(self, batch: int = 1, size: Optional[Size] = None) -> Tuple[int, int, int, int]:
        """The graph input's shape in its own layout for ``batch`` frames of ``size``
        (default: the profile's opt size)."""
        h, w = size or self.input_range[1]
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
        """Read and check every field (type, range, length); unknown keys are ignored, so a
        newer minor version's extra fields do not stop an older reader."""
        read = FieldReader(data, source, "meta")
        version = read.integer("schema_version", SCHEMA_VERSION, low=0)
        if version > SCHEMA_VERSION:
            raise MetaError(
                f"{source}: ModelMeta schema_version {version} is newer than this fcn-edge "
                f"understands ({SCHEMA_VERSION}); upgrade fcn-edge"
            )
        defaults = {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}
        names = read.text_list("class_names", nonempty=True)
        palette = read.palette("palette")
        if len(palette) != len(names):
            raise read.error("palette", f"one colour per class ({len(names)})", f"{len(palette)} colours")
        kwargs: Dict[str, Any] = dict(
            architecture=read.text("architecture", nonempty=True),
            class_names=names,
            palette=palette,
            input_size=read.int_tuple("input_size", defaults["input_size"], length=2),
            min_size=read.int_tuple("min_size", None, length=2, optional=True),
            max_size=read.int_tuple("max_size", None, length=2, optional=True),
            max_batch=read.integer("max_batch", defaults["max_batch"], low=1),
            dynamic_batch=read.boolean("dynamic_batch", defaults["dynamic_batch"]),
            resize_mode=read.choice("resize_mode", RESIZE_MODES, defaults["resize_mode"]),
            mean=read.number_tuple("mean", 3, defaults["mean"]),
            std=read.number_tuple("std", 3, defaults["std"], positive=True),
            input_layout=read.choice("input_layout", LAYOUTS, defaults["input_layout"]),
            input_dtype=read.choice("input_dtype", INPUT_DTYPES, defaults["input_dtype"]),
            channel_order=read.choice("channel_order", CHANNEL_ORDERS, defaults["channel_order"]),
            output_kind=read.choice("output_kind", OUTPUT_KINDS, defaults["output_kind"]),
            output_dtype=read.choice("output_dtype", OUTPUT_DTYPES, defaults["output_dtype"]),
            precision=read.choice("precision", PRECISIONS, defaults["precision"]),
            ignore_index=read.integer("ignore_index", defaults["ignore_index"], low=0),
            input_name=read.text("input_name", defaults["input_name"], nonempty=True),
            output_name=read.text("output_name", defaults["output_name"], nonempty=True),
            source_hash=read.text("source_hash", defaults["source_hash"]),
            dataset=read.text("dataset", defaults["dataset"]),
            history=read.text_list("history", ()),
            frame_size=read.int_tuple("frame_size", None, length=2, optional=True),
            frame_min_size=read.int_tuple("frame_min_size", None, length=2, optional=True),
            frame_max_size=read.int_tuple("frame_max_size", None, length=2, optional=True),
        )
        try:
            return cls(**kwargs)
        except MetaError as exc:  # the cross-field checks of __post_init__
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
