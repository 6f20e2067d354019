"""What to export and what came out: two frozen dataclasses."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from fcn_edge.artifacts import ModelMeta
from fcn_edge.errors import ExportError

Size = Tuple[int, int]

# TensorRT 8.5 and 8.6 (JetPack 5, 6.0) parse ONNX up to opset 17; 10.x and 11.x parse it too.
# Every op the models need (Conv, ConvTranspose, MaxPool, Slice, Resize, ArgMax, Cast)
# exists at 17, so 17 is the newest opset the whole supported TensorRT range reads.
DEFAULT_OPSET = 17
MAX_TRT85_OPSET = 17
EXPORTERS = ("legacy", "dynamo")
OUTPUTS = ("logits", "mask")
MASK_DTYPES = ("uint8", "int32")


@dataclass(frozen=True)
class ExportConfig:
    """How to turn a model into ONNX.

    ``input_size`` is the example/"opt" size (H, W); None takes the model's own
    (ModelMeta.input_size: the size a checkpoint was trained at). With ``dynamic_shape``
    the graph takes any H x W and ``min_size``/``max_size`` record the range later steps
    (engine profiles) should cover; without it the graph is fixed at ``input_size``.
    ``dynamic_batch`` makes the batch dimension symbolic; ``max_batch`` is recorded in
    ModelMeta.
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
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if self.input_size is not None and (len(self.input_size) != 2 or min(self.input_size) < 1):
            problems.append(f"input_size {self.input_size} is not a positive (height, width)")
        if self.output not in OUTPUTS:
            problems.append(f"output {self.output!r} is not one of {OUTPUTS}")
        if self.mask_dtype not in MASK_DTYPES:
            problems.append(f"mask_dtype {self.mask_dtype!r} is not one of {MASK_DTYPES}")
        if self.exporter not in EXPORTERS:
            problems.append(f"exporter {self.exporter!r} is not one of {EXPORTERS}")
        if not 7 <= self.opset <= 23:
            problems.append(f"opset {self.opset} is outside 7..23")
        if self.max_batch < 1:
            problems.append(f"max_batch {self.max_batch} must be >= 1")
        if not self.dynamic_batch and self.max_batch != 1:
            problems.append("a fixed batch is 1; use dynamic_batch for max_batch > 1")
        if self.input_size is not None and not problems:
            lo, hi = self.size_range
            h, w = self.input_size
            if not (lo[0] <= h <= hi[0] and lo[1] <= w <= hi[1]):
                problems.append(f"input_size {self.input_size} lies outside min_size {lo} .. max_size {hi}")
        if problems:
            raise ExportError("invalid export configuration: " + "; ".join(problems))

    def for_meta(self, meta: ModelMeta) -> "ExportConfig":
        """This config, with ``input_size`` taken from ``meta`` when it was left to the model."""
        if self.input_size is not None:
            return self
        return dataclasses.replace(self, input_size=tuple(meta.input_size))

    @property
    def size_range(self) -> Tuple[Size, Size]:
        """(min, max) spatial size: the given range, a default one, or input_size when fixed."""
        if self.input_size is None:
            raise ExportError("the export size is the model's own until for_meta() settles it")
        if not self.dynamic_shape:
            return tuple(self.input_size), tuple(self.input_size)
        h, w = self.input_size
        lo = self.min_size or (max(32, h // 2), max(32, w // 2))
        hi = self.max_size or (2 * h, 2 * w)
        return tuple(lo), tuple(hi)


@dataclass(frozen=True)
class ParityResult:
    """ONNX Runtime vs PyTorch on the same inputs."""

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
    parity: Optional[ParityResult] = None
    notes: Tuple[str, ...] = field(default_factory=tuple)
    meta: Optional[ModelMeta] = None  # as written into the file's metadata_props

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON types: what ``fcn-edge export --json`` writes."""
        parity = self.parity
        return {
            "path": str(self.path), "opset": self.opset, "exporter": self.exporter,
            "input_shape": list(self.input_shape), "output_shape": list(self.output_shape),
            "nodes_exported": self.nodes_exported, "nodes_final": self.nodes_final,
            "file_bytes": self.file_bytes, "seconds": round(self.seconds, 3),
            "parity": None if parity is None else {
                "shapes": [list(s) for s in parity.shapes], "max_abs_diff": parity.max_abs_diff,
                "tolerance": parity.tolerance, "argmax_agreement": parity.argmax_agreement,
            },
            "notes": list(self.notes), "meta": None if self.meta is None else self.meta.to_dict(),
        }
