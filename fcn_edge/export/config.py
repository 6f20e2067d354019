"""What to export and what came out: two frozen dataclasses."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from fcn_edge.artifacts import ModelMeta
from fcn_edge.errors import ExportError, UsageError
from fcn_edge.export.heads import choice_problems

Size = Tuple[int, int]

# TensorRT 8.5 and 8.6 (JetPack 5, 6.0) parse ONNX up to opset 17; 10.x and 11.x parse it too.
# Every op the models need (Conv, ConvTranspose, MaxPool, Slice, Resize, ArgMax, Cast)
# exists at 17, so 17 is the newest opset the whole supported TensorRT range reads.
DEFAULT_OPSET = 17
MAX_TRT85_OPSET = 17
EXPORTERS = ("legacy", "dynamo")
# A fused resize's frame range when none is given: a VGA camera's frames at "opt", from
# QQVGA to 4K UHD.
DEFAULT_FRAME_SIZE = (480, 640)
DEFAULT_FRAME_RANGE = ((120, 160), (2160, 3840))


@dataclass(frozen=True)
class ExportConfig:
    """How to turn a model into ONNX.

    ``input_size`` is the example/"opt" size (H, W); None takes the model's own
    (ModelMeta.input_size: the size a checkpoint was trained at). With ``dynamic_shape``
    the graph takes any H x W and ``min_size``/``max_size`` record the range later steps
    (engine profiles) should cover; without it the graph is fixed at ``input_size``.
    ``dynamic_batch`` makes the batch dimension symbolic; ``max_batch`` is recorded in
    ModelMeta (and is the batch itself when the batch is fixed).

    ``argmax`` (mask output): ``topk`` (ONNX ArgMax, a TopK layer in TensorRT) or ``reduce``
    (ReduceMax/Equal/Where/ReduceMax, the same index). ``fuse_resize`` (with
    ``fuse_preprocess``): frames of any size in ``frame_min_size`` .. ``frame_max_size``
    (``frame_size`` the engine's opt) go in, the graph resizes them to ``input_size`` (then
    the network's one size) and, for a mask, resizes the mask back to the frame.
    """

    input_size: Optional[Size] = None
    dynamic_batch: bool = True
    dynamic_shape: bool = True
    min_size: Optional[Size] = None
    max_size: Optional[Size] = None
    max_batch: int = 1
    fuse_preprocess: bool = False
    output: str = "logits"
    mask_dtype: str = "uint8"
    argmax: str = "topk"
    fuse_resize: bool = False
    frame_size: Optional[Size] = None
    frame_min_size: Optional[Size] = None
    frame_max_size: Optional[Size] = None
    opset: int = DEFAULT_OPSET
    exporter: str = "legacy"
    simplify: bool = True
    check_parity: bool = True
    # Parity: max |ort - torch| <= atol + rtol * max |torch|. fp32 itself is only good to
    # ~1e-4 of the largest logit on deep nets (FCN ResNet-50: torch fp32 vs fp64 differed
    # by 2.1e-3 at logits up to 29), so rtol sits 10x above that noise floor.
    atol: float = 1e-4
    rtol: float = 1e-3
    min_agreement: float = 0.999  # parity: fraction of pixels whose argmax agrees
    # A fused resize vs OpenCV's on the host: OpenCV resizes uint8 in 11-bit fixed point and
    # rounds to uint8 where the graph resizes floats (up to 0.75 grey levels apart), and its
    # INTER_NEAREST_EXACT breaks exact ties of the mask's nearest mapping downwards where the
    # graph (and PyTorch's nearest-exact) goes up: the default model agrees on 99.6 % of the
    # parity frames' pixels.
    min_resize_agreement: float = 0.98
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if self.input_size is not None and (len(self.input_size) != 2 or min(self.input_size) < 1):
            problems.append(f"input_size {self.input_size} is not a positive (height, width)")
        problems += choice_problems(self.output, self.mask_dtype, self.argmax)
        if self.fuse_resize and not self.fuse_preprocess:
            problems.append("a fused resize takes uint8 frames: it needs the fused preprocessing (--fuse-preprocess)")
        frames = (self.frame_min_size, self.frame_size, self.frame_max_size)
        if not self.fuse_resize and any(f is not None for f in frames):
            problems.append("frame sizes apply to a fused resize (--fuse-resize) only")
        if self.fuse_resize and (self.min_size or self.max_size):
            problems.append("with a fused resize the network has one size (input_size): give the frames' range "
                            "(--min-frame-size/--max-frame-size) instead of --min-size/--max-size")
        if any(f is not None and (len(f) != 2 or min(f) < 1) for f in frames):
            problems.append(f"frame sizes {frames} are not positive (height, width)")
        elif self.fuse_resize and not problems:
            lo, opt, hi = self.frame_range
            if not (lo[0] <= opt[0] <= hi[0] and lo[1] <= opt[1] <= hi[1]):
                problems.append(f"frame_size {opt} lies outside frame_min_size {lo} .. frame_max_size {hi}")
        if self.exporter not in EXPORTERS:
            problems.append(f"exporter {self.exporter!r} is not one of {EXPORTERS}")
        if not 7 <= self.opset <= 23:
            problems.append(f"opset {self.opset} is outside 7..23")
        if self.max_batch < 1:
            problems.append(f"max_batch {self.max_batch} must be >= 1")
        if self.input_size is not None and not problems and not self.fuse_resize:
            lo, hi = self.size_range
            h, w = self.input_size
            if not (lo[0] <= h <= hi[0] and lo[1] <= w <= hi[1]):
                problems.append(f"input_size {self.input_size} lies outside min_size {lo} .. max_size {hi}")
        if problems:
            raise ExportError("invalid export configuration: " + "; ".join(problems))

    @property
    def example_batch(self) -> int:
        """The batch exported and compared: 2 when dynamic (a batch-1 example lets dynamo fix it)."""
        return 2 if self.dynamic_batch else self.max_batch

    def for_meta(self, meta: ModelMeta) -> "ExportConfig":
        """This config, with ``input_size`` taken from ``meta`` when it was left to the model."""
        if self.input_size is not None:
            return self
        return dataclasses.replace(self, input_size=tuple(meta.input_size))

    @property
    def frame_range(self) -> Tuple[Size, Size, Size]:
        """(min, opt, max) frame size of a fused resize: one size when the shape is fixed."""
        opt = tuple(self.frame_size or DEFAULT_FRAME_SIZE)
        if not self.dynamic_shape:
            return opt, opt, opt
        lo = tuple(self.frame_min_size or (min(DEFAULT_FRAME_RANGE[0][0], opt[0]), min(DEFAULT_FRAME_RANGE[0][1], opt[1])))
        hi = tuple(self.frame_max_size or (max(DEFAULT_FRAME_RANGE[1][0], opt[0]), max(DEFAULT_FRAME_RANGE[1][1], opt[1])))
        return lo, opt, hi  # type: ignore[return-value]

    @property
    def size_range(self) -> Tuple[Size, Size]:
        """(min, max) spatial size of the network: the given range, a default one, or
        input_size when fixed (or when the resize is fused: the network has one size)."""
        if self.input_size is None:
            raise ExportError("the export size is the model's own until for_meta() settles it")
        if not self.dynamic_shape or self.fuse_resize:
            return tuple(self.input_size), tuple(self.input_size)
        h, w = self.input_size
        lo = self.min_size or (max(32, h // 2), max(32, w // 2))
        hi = self.max_size or (2 * h, 2 * w)
        return tuple(lo), tuple(hi)


@dataclass(frozen=True)
class Normalization:
    """A named input convention: ModelMeta's mean/std (RGB, pixels in [0, 1]) and the channel
    order the network reads ("" when the preset does not say)."""

    mean: Tuple[float, float, float]
    std: Tuple[float, float, float]
    channel_order: str
    origin: str


PREPROCESSINGS: Dict[str, Normalization] = {
    "imagenet": Normalization((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), "RGB",
                              "torchvision, timm, segmentation_models_pytorch, mmsegmentation"),
    "unit": Normalization((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), "", "x / 255"),
    "symmetric": Normalization((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "", "x / 127.5 - 1"),
    "raw": Normalization((0.0, 0.0, 0.0), (1 / 255,) * 3, "", "0..255 as they are"),
    "caffe": Normalization((123.68 / 255, 116.779 / 255, 103.939 / 255), (1 / 255,) * 3, "BGR",
                           "BGR minus the ImageNet means on 0..255: Caffe's VGG, pytorch-fcn, Keras FCNs"),
}


@dataclass(frozen=True)
class SourceHints:
    """What a model file made elsewhere does not say about itself (``fcn-edge export
    foreign.onnx --preprocessing/--mean/--std/--channel-order/--input-layout/--output-name``;
    Keras weights take ``--preprocessing`` with the Keras code's names).

    ``mean``/``std`` are on RGB pixels in [0, 1], as ModelMeta's (torchvision's 0.485 and 0.229,
    not mmsegmentation's 123.675 and 58.395); given, they replace the preset's.
    ``channel_order`` is what the network reads; ``input_layout`` its input's layout when
    the shape does not tell; ``output_name`` the output that gives the class scores.
    """

    preprocessing: Optional[str] = None
    mean: Optional[Tuple[float, float, float]] = None
    std: Optional[Tuple[float, float, float]] = None
    channel_order: Optional[str] = None
    input_layout: Optional[str] = None
    output_name: Optional[str] = None

    def __post_init__(self) -> None:
        problems = []
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is None:
                continue
            if len(value) != 3:
                problems.append(f"{name} needs 3 values (R, G, B), got {len(value)}")
            elif any(v > 1 for v in value):
                problems.append(f"{name} {tuple(value)} looks like 0..255 values; give them on pixels in [0, 1] "
                                f"(divide by 255: {', '.join(f'{v / 255:.6g}' for v in value)})")
            elif name == "std" and any(v <= 0 for v in value):
                problems.append(f"std {tuple(value)} must be > 0")
        if self.preprocessing is None and (self.mean is None) != (self.std is None):
            problems.append("give --mean and --std together, or name a --preprocessing preset they adjust")
        if self.channel_order not in (None, "RGB", "BGR"):
            problems.append(f"channel order {self.channel_order!r} is not RGB or BGR")
        if self.input_layout not in (None, "NCHW", "NHWC"):
            problems.append(f"input layout {self.input_layout!r} is not NCHW or NHWC")
        if problems:
            raise UsageError("; ".join(problems))

    @property
    def given(self) -> Tuple[str, ...]:
        """The flags given, as the CLI spells them."""
        return tuple("--" + f.name.replace("_", "-") for f in dataclasses.fields(self) if getattr(self, f.name) is not None)

    def normalization(self) -> Optional[Normalization]:
        """The preset overridden by ``mean``/``std``/``channel_order``; None when none is given.
        (Keras weights take the Keras code's own names instead, as their loader reads them.)"""
        if self.preprocessing is None and self.mean is None and self.std is None and self.channel_order is None:
            return None
        if self.preprocessing is not None and self.preprocessing not in PREPROCESSINGS:
            raise UsageError(f"preprocessing {self.preprocessing!r} is not one of {', '.join(PREPROCESSINGS)} "
                             "(the presets for an ONNX)")
        base = PREPROCESSINGS[self.preprocessing or "imagenet"]
        return Normalization(tuple(self.mean or base.mean), tuple(self.std or base.std),  # type: ignore[arg-type]
                             self.channel_order or base.channel_order or "RGB",
                             base.origin if self.preprocessing else "given")


@dataclass(frozen=True)
class ParityResult:
    """ONNX Runtime vs a reference on the same inputs: the bare network vs PyTorch (or the
    original graph), or the deployment graph vs the runtime's host preprocessing and decoding."""

    against: str  # what the graph was compared with, for messages
    shapes: Tuple[Tuple[int, ...], ...]  # the input shapes compared
    max_abs_diff: Optional[float]  # None for a mask output (integers: compare agreement)
    max_abs_reference: Optional[float]
    tolerance: Optional[float]
    argmax_agreement: float  # fraction of pixels with the same class, over all shapes
    passed: bool


@dataclass(frozen=True)
class ExportReport:
    path: Path
    opset: int
    exporter: str
    input_shape: Tuple  # with symbolic names for dynamic dims
    output_shape: Tuple
    input_dtype: str
    output_name: str
    output_dtype: str
    nodes_exported: int
    nodes_final: int
    simplified: bool
    file_bytes: int
    seconds: float
    parity: Optional[ParityResult] = None  # the bare network vs its source
    notes: Tuple[str, ...] = field(default_factory=tuple)
    meta: Optional[ModelMeta] = None  # as written into the file's metadata_props
    head_parity: Optional[ParityResult] = None  # the grafted heads vs the host path; None without heads
    heads: str = ""  # what was grafted, in words

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON types: what ``fcn-edge export --json`` writes."""
        return {
            "path": str(self.path), "opset": self.opset, "exporter": self.exporter,
            "input_shape": list(self.input_shape), "output_shape": list(self.output_shape),
            "nodes_exported": self.nodes_exported, "nodes_final": self.nodes_final,
            "file_bytes": self.file_bytes, "seconds": round(self.seconds, 3), "heads": self.heads,
            "parity": _parity_dict(self.parity), "head_parity": _parity_dict(self.head_parity),
            "notes": list(self.notes), "meta": None if self.meta is None else self.meta.to_dict(),
        }


def _parity_dict(parity: Optional[ParityResult]) -> Optional[Dict[str, Any]]:
    if parity is None:
        return None
    return {"against": parity.against, "shapes": [list(s) for s in parity.shapes],
            "max_abs_diff": parity.max_abs_diff, "tolerance": parity.tolerance,
            "argmax_agreement": parity.argmax_agreement, "passed": parity.passed}
