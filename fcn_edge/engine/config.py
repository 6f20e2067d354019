"""What the user asks of an engine build: :class:`BuildConfig` and the shape syntax.

Everything here is plain data and parsing; which of these requests a given TensorRT can
honour is decided in :mod:`fcn_edge.engine.plan`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Tuple

from fcn_edge.artifacts.shapes import Shape, parse_shape
from fcn_edge.errors import EngineBuildError


PRECISIONS = ("auto", "fp32", "fp16", "int8")
TYPINGS = ("auto", "strong", "weak")
INT8_MODES = ("explicit", "implicit")
CALIBRATORS = ("entropy", "minmax")
# IBuilderConfig.hardware_compatibility_level: none, AMPERE_PLUS (8.6+), SAME_COMPUTE_CAPABILITY (10.13 has it, 10.3 not)
HARDWARE_COMPATIBILITY = ("none", "ampere_plus", "same_compute_capability")

GiB = 1 << 30


@dataclass(frozen=True)
class ShapeOverrides:
    """``--min/--opt/--max`` shapes per input name ("" = the model's only input)."""

    min: Mapping[str, Shape] = field(default_factory=dict)
    opt: Mapping[str, Shape] = field(default_factory=dict)
    max: Mapping[str, Shape] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.min or self.opt or self.max)

    def names(self) -> Tuple[str, ...]:
        return tuple(sorted(set(self.min) | set(self.opt) | set(self.max)))


@dataclass(frozen=True)
class BuildConfig:
    """One engine build.

    ``precision`` "auto" builds what the ONNX already is (Q/DQ -> int8, FP16 casts ->
    fp16, else fp32). ``typing`` "auto" picks strongly typed where TensorRT has it and the
    ONNX carries the precision, else weak typing with builder flags. ``int8_mode``
    "explicit" takes a Q/DQ ONNX; "implicit" runs TensorRT's legacy ``calibrator`` over the
    calibration batches handed to the build (an iterable, not part of the config) and
    caches the scales in ``calibration_cache``. A weakly typed INT8 build sets the FP16 flag
    beside INT8 wherever TensorRT has it (trtexec's ``--int8 --fp16``), so layers without an
    INT8 kernel run FP16; ``fp16_fallback`` also asks for weak typing where strong would do.

    After the build the engine inspector's per-layer precisions must contain the precision
    asked for; ``allow_precision_mismatch`` keeps such an engine with a warning instead of
    refusing it. ``version_compatible`` builds an engine later TensorRT releases run (8.6+),
    with the lean runtime embedded unless ``exclude_lean_runtime``; ``hardware_compatibility``
    one that runs on other GPUs ("ampere_plus", "same_compute_capability"; not on JetPack).
    """

    precision: str = "auto"
    typing: str = "auto"
    int8_mode: str = "explicit"
    fp16_fallback: bool = False
    shapes: ShapeOverrides = field(default_factory=ShapeOverrides)
    workspace_bytes: Optional[int] = None
    optimization_level: Optional[int] = None
    timing_cache: Optional[Path] = None
    dla_core: Optional[int] = None
    calibration_cache: Optional[Path] = None
    calibrator: str = "entropy"
    detailed_profile: bool = True  # per-layer precision in the engine inspector
    allow_precision_mismatch: bool = False
    version_compatible: bool = False
    exclude_lean_runtime: bool = False
    hardware_compatibility: str = "none"

    def __post_init__(self) -> None:
        problems = []
        for name, value, allowed in (
            ("precision", self.precision, PRECISIONS),
            ("typing", self.typing, TYPINGS),
            ("int8_mode", self.int8_mode, INT8_MODES),
            ("calibrator", self.calibrator, CALIBRATORS),
            ("hardware_compatibility", self.hardware_compatibility, HARDWARE_COMPATIBILITY),
        ):
            if value not in allowed:
                problems.append(f"{name}={value!r} is not one of {allowed}")
        if self.workspace_bytes is not None and self.workspace_bytes <= 0:
            problems.append(f"workspace must be positive, got {self.workspace_bytes} bytes")
        if self.optimization_level is not None and not 0 <= self.optimization_level <= 5:
            problems.append(f"optimization level must be 0..5, got {self.optimization_level}")
        if self.dla_core is not None and self.dla_core < 0:
            problems.append(f"--dla-core must be >= 0, got {self.dla_core}")
        if self.exclude_lean_runtime and not self.version_compatible:
            problems.append("--exclude-lean-runtime applies to --version-compatible engines")
        if problems:
            raise EngineBuildError("invalid build configuration: " + "; ".join(problems))


def parse_shape_arguments(values: Optional[Sequence[str]]) -> Dict[str, Shape]:
    """trtexec-style ``name:1x3x256x320`` (or a bare shape for the only input), repeatable
    and comma-separated."""
    result: Dict[str, Shape] = {}
    for value in values or ():
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            name, _, shape_text = item.rpartition(":")
            if name in result:
                raise EngineBuildError(f"input {name or '(the only input)'!r} given twice in {value!r}")
            result[name] = parse_shape(shape_text)
    return result
