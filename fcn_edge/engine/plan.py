"""Decide how to build: typing, flags, calibrator, profiles. No TensorRT needed.

:func:`plan_build` is a pure function of the ONNX's facts, the user's :class:`BuildConfig`
and the :class:`Capabilities` of the TensorRT at hand (probed from the real module, or
declared for ``--dry-run``). A real build and a dry run therefore make the same decisions,
and a request that the TensorRT cannot honour is refused here, with what to do instead,
before any minutes are spent building. Each decision is one small function (casts TensorRT
cannot build, precision, INT8 mode, typing, network flags, builder flags, calibrator, DLA,
builder options, profiles); :func:`plan_build` composes them in that order, so the first
refusal is the most basic one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from fcn_edge.artifacts import ModelMeta, ProfileShapes
from fcn_edge.artifacts.compatibility import version_tuple
from fcn_edge.artifacts.shapes import Shape, format_shape
from fcn_edge.engine.capabilities import DLA_HINT, Capabilities
from fcn_edge.engine.config import BuildConfig, ShapeOverrides
from fcn_edge.engine.onnx_facts import OnnxFacts, TensorFacts
from fcn_edge.errors import EngineBuildError

CALIBRATOR_CLASSES = {"entropy": "IInt8EntropyCalibrator2", "minmax": "IInt8MinMaxCalibrator"}

# TensorRT's DataType.UINT8 (8.6 to 11.x, the same words in each release's bindings):
# "uint8 conversions are only supported for {float32, float16}" and "are not supported for
# {int8, int32, bool}".
UINT8_CONVERTS_WITH = ("float32", "float16", "uint8")

QUANTIZE_FP16 = "fcn-edge quantize {onnx} --precision fp16"
QUANTIZE_INT8 = "fcn-edge quantize {onnx} --precision int8 --calib IMAGES"


@dataclass(frozen=True)
class BuildPlan:
    """Every decision of a build, in TensorRT's own names, printable and recordable."""

    trt_version: str
    precision: str  # of the engine: fp32 / fp16 / int8
    typing: str  # strong / weak
    int8_mode: str  # explicit / implicit / ""
    network_flags: Tuple[str, ...]  # NetworkDefinitionCreationFlag members
    builder_flags: Tuple[str, ...]  # BuilderFlag members
    calibrator: str  # "" or the TensorRT calibrator class
    calibration: str  # where the calibrator's batches come from; "" = the scales come from the cache
    calibration_cache: Optional[Path]
    profiles: Tuple[ProfileShapes, ...]
    needs_profile: bool
    workspace_bytes: Optional[int]
    optimization_level: Optional[int]
    timing_cache: Optional[Path]
    dla_core: Optional[int]
    notes: Tuple[str, ...] = field(default_factory=tuple)
    version_compatible: bool = False
    lean_runtime: str = ""  # "embedded" / "excluded" for a version-compatible engine, else ""
    hardware_compatibility: str = "none"  # none / ampere_plus / same_compute_capability
    parser_flags: Tuple[str, ...] = ()  # OnnxParserFlag members

    def describe(self) -> List[str]:
        """Human-readable lines, as ``--dry-run`` and the build summary print them."""
        lines = [
            f"TensorRT          {self.trt_version}",
            f"engine precision  {self.precision}",
            "network typing    strongly typed" + ("" if "STRONGLY_TYPED" in self.network_flags
                                                   else " (every network is, on this TensorRT)")
            if self.typing == "strong" else
            "network typing    weakly typed (precision chosen by builder flags)",
            f"network flags     {', '.join(self.network_flags) or '(none)'}",
            f"builder flags     {', '.join(self.builder_flags) or '(none)'}",
        ]
        if self.int8_mode:
            lines.append(f"int8 mode         {self.int8_mode}")
        if self.calibrator:
            source = self.calibration or "(none: scales come from the cache)"
            lines.append(f"calibrator        {self.calibrator} over {source}")
            lines.append(f"calibration cache {self.calibration_cache}")
        else:
            lines.append("calibrator        none")
        for profile in self.profiles:
            kind = "optimisation profile" if self.needs_profile else "static shape"
            if self.needs_profile:
                lines.append(
                    f"{kind} '{profile.input_name}': min {format_shape(profile.min)}, "
                    f"opt {format_shape(profile.opt)}, max {format_shape(profile.max)}"
                )
            else:
                lines.append(f"{kind} '{profile.input_name}': {format_shape(profile.opt)} (no profile needed)")
        lines.append(
            "workspace         " + (f"{self.workspace_bytes / (1 << 20):.0f} MiB" if self.workspace_bytes
                                    else "TensorRT default (device memory)")
        )
        lines.append(
            "optimisation lvl  " + (str(self.optimization_level) if self.optimization_level is not None
                                    else "TensorRT default")
        )
        lines.append(f"timing cache      {self.timing_cache or 'none'}")
        if self.dla_core is not None:
            lines.append(f"DLA core          {self.dla_core}, GPU fallback on")
        if self.version_compatible:
            lines.append(f"compatibility     version-compatible, lean runtime {self.lean_runtime}")
        if self.hardware_compatibility != "none":
            lines.append(f"hardware level    {self.hardware_compatibility.upper()}")
        lines += [f"note: {note}" for note in self.notes]
        return lines


def unavailable(what: str, version: str, instead: str) -> EngineBuildError:
    return EngineBuildError(f"{what} is not available on TensorRT {version}: {instead}")


# -- profiles -------------------------------------------------------------------------------
def _layout_hint(meta: Optional[ModelMeta], tensor: TensorFacts) -> str:
    if meta is not None and meta.input_name == tensor.name:
        example = format_shape(meta.input_shape(1))
        if meta.input_layout == "NHWC":
            return f" (the input is {meta.input_dtype} NHWC{' BGR, fused preprocessing' if meta.fused_preprocess else ''}: give NxHxWx3, e.g. {example})"
        return f" (the input is {meta.input_dtype} NCHW: give Nx3xHxW, e.g. {example})"
    return ""


def _fit_to_graph(tensor: TensorFacts, shape: Shape, which: str, meta: Optional[ModelMeta]) -> Shape:
    graph_shape = format_shape(tensor.shape)
    if len(shape) != len(tensor.shape):
        raise EngineBuildError(
            f"{which} shape {format_shape(shape)} for input '{tensor.name}' has {len(shape)} "
            f"dimensions; the ONNX input is {graph_shape}{_layout_hint(meta, tensor)}"
        )
    for axis, (want, have) in enumerate(zip(shape, tensor.shape)):
        if have > 0 and want != have:
            raise EngineBuildError(
                f"{which} shape {format_shape(shape)} for input '{tensor.name}' sets dimension "
                f"{axis} to {want}, but the ONNX fixes it to {have} (input {graph_shape})"
                f"{_layout_hint(meta, tensor)}"
            )
    return shape


def _shapes_from_meta(tensor: TensorFacts, meta: ModelMeta) -> Tuple[Shape, Shape, Shape]:
    batch_axis_static = tensor.shape and tensor.shape[0] > 0
    max_batch = meta.max_batch if meta.dynamic_batch else 1
    batches = (1, 1, max_batch)
    if batch_axis_static:
        batches = (tensor.shape[0],) * 3
    sizes = meta.input_range  # frames when the resize is fused, else the network's sizes
    return tuple(meta.input_shape(b, s) for b, s in zip(batches, sizes))  # type: ignore[return-value]


def plan_profiles(facts: OnnxFacts, overrides: ShapeOverrides) -> Tuple[ProfileShapes, ...]:
    """min/opt/max per input: from ``--min/--opt/--max``, else the ONNX's static dims, else
    ModelMeta's size range and max batch (dimensions the ONNX fixes stay fixed)."""
    meta = facts.meta
    input_names = [t.name for t in facts.inputs]
    unknown = [n for n in overrides.names() if n and n not in input_names]
    if unknown:
        raise EngineBuildError(
            f"{facts.path}: --min/--opt/--max name inputs {unknown} that the ONNX does not have; "
            f"its inputs are {input_names}"
        )
    if "" in overrides.names() and len(input_names) != 1:
        raise EngineBuildError(
            f"{facts.path}: the ONNX has inputs {input_names}; write shapes as NAME:1x3x256x320"
        )
    profiles = []
    for tensor in facts.inputs:
        given: Dict[str, Shape] = {}
        for which in ("min", "opt", "max"):
            by_name = getattr(overrides, which)
            value = by_name.get(tensor.name, by_name.get("") if len(input_names) == 1 else None)
            if value is not None:
                given[which] = value
        if given:
            opt = given.get("opt") or given.get("max") or given["min"]
            shapes = (given.get("min", opt), opt, given.get("max", opt))
            source = "--min/--opt/--max"
        elif not tensor.dynamic:
            shapes = (tensor.shape,) * 3
            source = "the ONNX"
        elif meta is not None and meta.input_name == tensor.name:
            shapes = _shapes_from_meta(tensor, meta)
            source = "ModelMeta"
        else:
            graph_shape = format_shape(tensor.shape)
            raise EngineBuildError(
                f"{facts.path}: input '{tensor.name}' has dynamic dimensions ({graph_shape}) and "
                f"no ModelMeta describes it; give --min/--opt/--max {tensor.name}:SHAPE"
            )
        fitted = [
            _fit_to_graph(tensor, s, f"{which} (from {source})", meta)
            for which, s in zip(("min", "opt", "max"), shapes)
        ]
        low, opt, high = fitted
        if not all(a <= b <= c for a, b, c in zip(low, opt, high)):
            raise EngineBuildError(
                f"input '{tensor.name}': shapes must satisfy min <= opt <= max in every dimension, got "
                f"min {format_shape(low)}, opt {format_shape(opt)}, max {format_shape(high)} (from {source})"
            )
        profiles.append(ProfileShapes(tensor.name, low, opt, high))
    return tuple(profiles)


def calibration_input(facts: OnnxFacts, config: BuildConfig, batch: int) -> Tuple[int, Tuple[int, int]]:
    """(batch size, (height, width)) for calibration batches: the optimisation profile's opt
    shape, at ``batch`` images unless the ONNX or the profile (DLA's) fixes the batch. Needs
    ModelMeta (the layout)."""
    meta = facts.require_meta("implicit INT8 calibration preprocesses images as ModelMeta says")
    if len(facts.inputs) != 1:
        raise EngineBuildError(f"{facts.path}: implicit INT8 calibration from images feeds models with one input")
    profile = dla_profiles(config, plan_profiles(facts, config.shapes))[0][0]
    opt = profile.opt
    fixed_batch = facts.inputs[0].shape[0] > 0 or profile.min[0] == profile.max[0]
    size = (opt[1], opt[2]) if meta.input_layout == "NHWC" else (opt[2], opt[3])
    return (opt[0] if fixed_batch else batch), size


# -- one decision each ----------------------------------------------------------------------
def check_casts(facts: OnnxFacts, caps: Capabilities) -> None:
    """Refuse a graph with a Cast TensorRT cannot build: uint8 from or to anything but
    float32/float16 (an fcn-edge export before the mask was cast through float has one:
    ArgMax -> int32 -> uint8)."""
    bad = [c for c in facts.casts if c.source and "uint8" in (c.source, c.target)
           and not {c.source, c.target} <= set(UINT8_CONVERTS_WITH)]
    if not bad:
        return
    found = "; ".join(f"node '{c.name}' (Cast) converts {c.source} to {c.target}" for c in bad)
    raise EngineBuildError(
        f"{facts.path.name}: {found}, which TensorRT {caps.version} cannot build (its uint8 converts only "
        "from and to float32/float16): re-export the model with a current fcn-edge, which casts the mask "
        "through float (`fcn-edge export MODEL --output-kind mask`), or export an int32 mask "
        "(--mask-dtype int32)"
    )


# The newest ONNX opset each TensorRT major's parser reads (8.5 and 8.6: 17, as their ONNX
# support matrices say); later majors read every opset fcn-edge writes.
MAX_PARSER_OPSET = {8: 17}


def check_opset(facts: OnnxFacts, caps: Capabilities) -> None:
    """Refuse, before any build, an ONNX newer than this TensorRT's parser reads."""
    newest = MAX_PARSER_OPSET.get(version_tuple(caps.version)[0])
    if facts.opset is None or newest is None or facts.opset <= newest:
        return
    hint = ("quantize it for TensorRT 8 (`fcn-edge quantize MODEL.onnx --precision int8 --min-tensorrt 8 "
            "--calib ...`: FP32 Q/DQ at the export's opset)" if facts.has_qdq else
            "export it at opset 17 (`fcn-edge export ... --opset 17`, the default)")
    raise EngineBuildError(
        f"{facts.path.name} is ONNX opset {facts.opset}, and TensorRT {caps.version}'s parser reads up to "
        f"opset {newest}: {hint}"
    )


def choose_precision(facts: OnnxFacts, config: BuildConfig) -> str:
    """The engine's precision: what the ONNX carries unless asked otherwise, never less."""
    onnx_precision = facts.precision
    wanted = onnx_precision if config.precision == "auto" else config.precision
    if config.precision == "auto" and config.int8_mode == "implicit":
        wanted = "int8"  # asking for the calibrator means asking for INT8
    name = facts.path.name
    if onnx_precision == "int8" and wanted != "int8":
        raise EngineBuildError(
            f"{name} is already quantised ({facts.describe_precision()}), so its engine is INT8; "
            f"for a {wanted.upper()} engine build the unquantised ONNX instead"
        )
    if onnx_precision == "fp16" and wanted == "fp32":
        raise EngineBuildError(
            f"{name} carries FP16 ({facts.describe_precision()}); for an FP32 engine build the FP32 ONNX"
        )
    if onnx_precision == "fp16" and wanted == "int8" and config.int8_mode == "implicit":
        raise EngineBuildError(
            f"{name} carries FP16 ({facts.describe_precision()}); implicit INT8 calibration needs the FP32 "
            f"ONNX, or make a Q/DQ ONNX with `{QUANTIZE_INT8.format(onnx='MODEL.onnx')}`"
        )
    if config.fp16_fallback and wanted != "int8":
        raise EngineBuildError("--fp16-fallback only applies to INT8 builds; for FP16 use --precision fp16")
    return wanted


def choose_int8_mode(precision: str, facts: OnnxFacts, config: BuildConfig, caps: Capabilities) -> str:
    """"explicit" (Q/DQ in the ONNX), "implicit" (the legacy calibrator), or "" without INT8."""
    if precision != "int8":
        return ""
    onnx_name = facts.path.name
    if config.int8_mode == "explicit" and not facts.has_qdq:
        raise EngineBuildError(
            f"--int8-mode explicit needs a Q/DQ ONNX and {onnx_name} has none "
            f"({facts.describe_precision()}): make one with `{QUANTIZE_INT8.format(onnx=onnx_name)}`"
            + (", or use --int8-mode implicit --calib IMAGES (TensorRT's legacy calibrator)"
               if caps.legacy_calibrator else
               f" (TensorRT {caps.version} has no legacy calibrator: explicit Q/DQ is the only INT8 path)")
        )
    if config.int8_mode == "implicit" and not caps.legacy_calibrator:
        raise unavailable(
            "The legacy INT8 calibrator (IInt8EntropyCalibrator2/IInt8MinMaxCalibrator)", caps.version,
            "TensorRT 11 supports explicit quantisation only: make a Q/DQ ONNX with "
            f"`{QUANTIZE_INT8.format(onnx=onnx_name)}` and build it with --int8-mode explicit (the default)",
        )
    return config.int8_mode


def choose_typing(precision: str, int8_mode: str, facts: OnnxFacts, config: BuildConfig, caps: Capabilities) -> str:
    """"strong" (the ONNX decides each tensor's type) or "weak" (builder flags choose)."""
    version, onnx_name = caps.version, facts.path.name
    weak_available = caps.fp16_flag or caps.int8_flag
    graph_carries_precision = precision == "fp32" or precision == facts.precision
    if config.typing == "strong":
        if not caps.strongly_typed:
            raise unavailable(
                "A strongly typed network (NetworkDefinitionCreationFlag.STRONGLY_TYPED)", version,
                "use --typing weak (or auto), which sets the FP16/INT8 builder flags",
            )
        if not graph_carries_precision:
            quantize = QUANTIZE_FP16 if precision == "fp16" else QUANTIZE_INT8
            raise EngineBuildError(
                f"a strongly typed network runs the precision the ONNX carries, and {onnx_name} is "
                f"{facts.precision.upper()} ({facts.describe_precision()}); for {precision.upper()} make "
                f"that ONNX first (`{quantize.format(onnx=onnx_name)}`) or use --typing weak"
            )
        if config.fp16_fallback:
            raise EngineBuildError(
                "--fp16-fallback applies to weakly typed builds; in a strongly typed network the ONNX decides "
                "each layer's precision (make the unquantised parts FP16 in the ONNX instead)"
            )
        return "strong"
    if config.typing == "weak":
        if not weak_available:
            raise unavailable(
                "Weak typing (precision chosen by builder flags)", version,
                "TensorRT 11 builds strongly typed networks only; put the precision in the ONNX "
                f"(`{QUANTIZE_FP16.format(onnx=onnx_name)}` or `{QUANTIZE_INT8.format(onnx=onnx_name)}`) "
                "and use --typing auto",
            )
        return "weak"
    strong = caps.strongly_typed and graph_carries_precision and int8_mode != "implicit"
    strong = strong and not config.fp16_fallback
    if config.dla_core is not None and weak_available:
        # DLA's documented path before TensorRT 11 is the precision flags (trtexec
        # --useDLACore --fp16/--int8 --allowGPUFallback).
        strong = False
    if strong or weak_available:
        return "strong" if strong else "weak"
    # TensorRT 11, and the ONNX lacks what was asked for (or --fp16-fallback asks for flags).
    if config.fp16_fallback:
        raise unavailable(
            "--fp16-fallback (BuilderFlag.FP16 in a weakly typed INT8 build)", version,
            "TensorRT 11 builds strongly typed networks only, where the ONNX decides each layer's "
            "precision: drop --fp16-fallback",
        )
    quantize = QUANTIZE_FP16 if precision == "fp16" else QUANTIZE_INT8
    raise unavailable(
        f"{precision.upper()} from builder flags (BuilderFlag.{precision.upper()})", version,
        "TensorRT 11 builds strongly typed networks only, so the precision must be in the ONNX: "
        f"make it with `{quantize.format(onnx=onnx_name)}` and build that ONNX",
    )


def network_flags(typing: str, caps: Capabilities) -> Tuple[str, ...]:
    """NetworkDefinitionCreationFlag members to set."""
    flags: List[str] = []
    if caps.explicit_batch_flag:
        flags.append("EXPLICIT_BATCH")
    if typing == "strong" and (caps.fp16_flag or caps.int8_flag):
        # Where weak typing still exists the flag chooses strong; TensorRT 11 types every
        # network strongly and ignores the (deprecated) flag, so it is not set there.
        flags.append("STRONGLY_TYPED")
    return tuple(flags)


def builder_flags(precision: str, typing: str, facts: OnnxFacts, config: BuildConfig, caps: Capabilities) -> Tuple[str, ...]:
    """BuilderFlag members to set: the weak-typing precision flags and DLA's GPU fallback."""
    flags: List[str] = []
    if typing == "weak" and precision == "int8":
        flags.append("INT8")
        # FP16 beside INT8 by default: without it every layer left unquantised runs FP32,
        # and the INT8 engine can end up slower than the FP16 one
        if config.fp16_fallback and not caps.fp16_flag:
            raise unavailable("BuilderFlag.FP16", caps.version, "drop --fp16-fallback")
        if caps.fp16_flag:
            flags.append("FP16")
    elif typing == "weak" and precision == "fp16":
        flags.append("FP16")
    if config.dla_core is not None:
        if typing == "weak" and precision == "int8" and "FP16" not in flags and caps.fp16_flag:
            flags.append("FP16")  # DLA runs no FP32: layers without INT8 run FP16
        flags.append("GPU_FALLBACK")
    if config.version_compatible:
        flags.append("VERSION_COMPATIBLE")
        if config.exclude_lean_runtime:
            flags.append("EXCLUDE_LEAN_RUNTIME")
    return tuple(flags)


def choose_calibrator(
    int8_mode: str, config: BuildConfig, caps: Capabilities, calibration_source: str, onnx_name: str,
) -> Tuple[str, Optional[Path], Tuple[str, ...]]:
    """(TensorRT calibrator class or "", its cache file, notes) for implicit INT8."""
    if int8_mode != "implicit":
        unused = "calibration data is not used: only --int8-mode implicit calibrates (a Q/DQ ONNX carries its scales)"
        return "", None, ((unused,) if calibration_source else ())
    cache = config.calibration_cache
    has_cache = cache is not None and Path(cache).is_file()
    if not calibration_source and not has_cache:
        raise EngineBuildError(
            "--int8-mode implicit needs calibration images (--calib DIR_OR_MANIFEST) or an "
            "existing --calibration-cache file" + (f"; {cache} does not exist" if cache else "")
        )
    notes: List[str] = []
    if caps.strongly_typed:
        notes.append(
            "the legacy calibrator is deprecated since TensorRT 10.1 and gone in 11; the explicit "
            f"path (`{QUANTIZE_INT8.format(onnx=onnx_name)}`) works on every version"
        )
    if has_cache:
        notes.append(f"calibration scales are read from {cache}; delete it to recalibrate")
    return CALIBRATOR_CLASSES[config.calibrator], cache, tuple(notes)


def check_dla(precision: str, config: BuildConfig, caps: Capabilities, dla_cores: Optional[int]) -> Tuple[str, ...]:
    """Refuse a DLA build this TensorRT or device cannot do; notes for one it can."""
    if config.dla_core is None:
        return ()
    if not caps.dla:
        raise unavailable("DLA (DeviceType.DLA with GPU fallback)", caps.version, DLA_HINT)
    if config.int8_mode == "implicit" and config.calibrator != "entropy":
        raise EngineBuildError(
            f"--calibrator {config.calibrator} with --dla-core: DLA requires IInt8EntropyCalibrator2 "
            "(TensorRT's calibrator documentation); use --calibrator entropy (the default)"
        )
    if dla_cores is not None and config.dla_core >= dla_cores:
        raise EngineBuildError(
            f"--dla-core {config.dla_core}: this device has {dla_cores} DLA core(s)"
            + (" (DLA exists on Jetson Xavier and Orin, not on desktop GPUs); omit --dla-core"
               if dla_cores == 0 else f"; use 0..{dla_cores - 1}")
        )
    if precision == "fp32":
        raise EngineBuildError(
            "DLA runs FP16 and INT8 only; build an FP16 or INT8 engine for --dla-core "
            "(e.g. --precision fp16), or omit --dla-core to run FP32 on the GPU"
        )
    return ("layers the DLA cannot run fall back to the GPU; the build summary counts them",)


def dla_profiles(config: BuildConfig, profiles: Tuple[ProfileShapes, ...]) -> Tuple[Tuple[ProfileShapes, ...], Tuple[str, ...]]:
    """DLA runs one shape per input (min = opt = max: TensorRT's DLA restrictions): a range
    from ModelMeta is narrowed to its opt shape, with a note; one given by --min/--max is
    refused, naming the flag to pass."""
    if config.dla_core is None:
        return profiles, ()
    given = set(config.shapes.names())
    fixed, notes = [], []
    for profile in profiles:
        if profile.min == profile.opt == profile.max:
            fixed.append(profile)
            continue
        if profile.input_name in given or ("" in given and len(profiles) == 1):
            raise EngineBuildError(
                f"--dla-core: DLA runs one shape per input (min = opt = max), and input '{profile.input_name}' "
                f"was given min {format_shape(profile.min)}, opt {format_shape(profile.opt)}, max "
                f"{format_shape(profile.max)}; give one shape with --opt {profile.input_name}:"
                f"{format_shape(profile.opt)} (and no --min/--max)"
            )
        fixed.append(ProfileShapes(profile.input_name, profile.opt, profile.opt, profile.opt))
        notes.append(
            f"DLA runs one shape: input '{profile.input_name}' is fixed at {format_shape(profile.opt)} (the opt "
            f"shape of ModelMeta's range {format_shape(profile.min)} .. {format_shape(profile.max)}); "
            "give --opt for another"
        )
    return tuple(fixed), tuple(notes)


def check_compatibility(
    config: BuildConfig, caps: Capabilities, jetson: Optional[bool], compute_capability: Optional[Tuple[int, int]],
) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    """Refuse a version- or hardware-compatible engine this TensorRT or platform cannot build;
    (OnnxParserFlag members to set, notes) for one it can."""
    notes: List[str] = []
    if config.version_compatible:
        if not caps.version_compatible:
            raise unavailable("Version-compatible engines (BuilderFlag.VERSION_COMPATIBLE)", caps.version,
                              "they need TensorRT 8.6 or later: omit --version-compatible")
        notes.append(
            "a version-compatible engine runs on later TensorRT releases (within its major, and 8 -> 10, "
            "10 -> 11), possibly slower; " + (
                "its lean runtime is excluded: the runtime must load the lean runtime library of TensorRT "
                f"{caps.version} (FCN_EDGE_LEAN_RUNTIME=/path/to/libnvinfer_lean.so)"
                if config.exclude_lean_runtime else
                "its lean runtime is embedded: fcn-edge allows that host code on load (the engine's SHA-256 "
                "matches its sidecar)"
            )
        )
    level = config.hardware_compatibility
    if level != "none":
        if not caps.hardware_compatibility or (level == "same_compute_capability" and not caps.same_compute_capability):
            raise unavailable(
                f"Hardware compatibility level {level.upper()} (IBuilderConfig.hardware_compatibility_level)",
                caps.version, "AMPERE_PLUS needs TensorRT 8.6+, SAME_COMPUTE_CAPABILITY a later 10.x (10.13 has it, "
                "10.3 not); omit "
                "--hardware-compatibility or pick the other level",
            )
        if jetson or config.dla_core is not None:
            raise EngineBuildError(
                "--hardware-compatibility: TensorRT supports hardware-compatible engines on Ampere and later "
                "desktop and server GPUs, not on JetPack (nor, therefore, with --dla-core); build the engine "
                "on each Jetson it runs on"
            )
        if compute_capability is not None and compute_capability < (8, 0):
            raise EngineBuildError(
                f"--hardware-compatibility: hardware-compatible engines are built on Ampere or later GPUs "
                f"(compute capability 8.0+), and this GPU's is {compute_capability[0]}.{compute_capability[1]}"
            )
        notes.append(
            "a hardware-compatible engine runs on " + ("any Ampere or later GPU" if level == "ampere_plus"
                                                       else "GPUs of this compute capability") + ", possibly slower"
        )
    parser_flags = ("NATIVE_INSTANCENORM",) if config.version_compatible or level != "none" else ()
    return parser_flags, tuple(notes)


def check_builder_options(config: BuildConfig, caps: Capabilities) -> None:
    """Refuse a workspace, optimisation level or timing cache this TensorRT cannot take."""
    if config.workspace_bytes is not None and not caps.memory_pool_limit:
        raise unavailable("IBuilderConfig.set_memory_pool_limit", caps.version, "omit --workspace")
    if config.optimization_level is not None and not caps.optimization_level:
        raise unavailable(
            "The builder optimisation level (IBuilderConfig.builder_optimization_level)", caps.version,
            "omit --opt-level (it was added in TensorRT 8.6)",
        )
    if config.timing_cache is not None and not caps.timing_cache:
        raise unavailable("A timing cache", caps.version, "omit --timing-cache")


def precision_notes(
    precision: str, flags: Tuple[str, ...], facts: OnnxFacts, caps: Capabilities, platform_fast_fp16: Optional[bool],
) -> Tuple[str, ...]:
    """What the user should know about how FP16 is reached on this TensorRT and GPU."""
    notes: List[str] = []
    if precision == "fp16" and "FP16" in flags and facts.precision == "fp32" and caps.strongly_typed:
        notes.append(
            "FP16 comes from the builder flag on the FP32 ONNX (weak typing, removed in TensorRT 11); the "
            f"strongly typed path builds an FP16 ONNX made with `{QUANTIZE_FP16.format(onnx=facts.path.name)}`"
        )
    if (precision == "fp16" or "FP16" in flags or facts.has_fp16) and platform_fast_fp16 is False:
        notes.append("this GPU has no fast FP16: TensorRT will keep FP32 kernels where FP16 would be slower")
    return tuple(notes)


def plan_build(
    facts: OnnxFacts,
    config: BuildConfig,
    caps: Capabilities,
    platform_fast_fp16: Optional[bool] = None,
    dla_cores: Optional[int] = None,
    calibration_source: str = "",
    jetson: Optional[bool] = None,
    compute_capability: Optional[Tuple[int, int]] = None,
) -> BuildPlan:
    """The build's decisions, or :class:`EngineBuildError` saying what to do instead.

    ``calibration_source`` names the calibration batches the build will be given ("" for
    none); ``platform_fast_fp16`` and ``dla_cores`` are what the builder reports, ``jetson``
    and ``compute_capability`` what the machine is (all None in a dry run).
    """
    check_casts(facts, caps)
    check_opset(facts, caps)
    precision = choose_precision(facts, config)
    int8_mode = choose_int8_mode(precision, facts, config, caps)
    typing = choose_typing(precision, int8_mode, facts, config, caps)
    flags = builder_flags(precision, typing, facts, config, caps)
    calibrator, calibration_cache, calibration_notes = choose_calibrator(
        int8_mode, config, caps, calibration_source, facts.path.name)
    dla_notes = check_dla(precision, config, caps, dla_cores)
    profiles, profile_notes = dla_profiles(config, plan_profiles(facts, config.shapes))
    check_builder_options(config, caps)
    parser_flags, compatibility_notes = check_compatibility(config, caps, jetson, compute_capability)
    return BuildPlan(
        trt_version=caps.version,
        precision=precision,
        typing=typing,
        int8_mode=int8_mode,
        network_flags=network_flags(typing, caps),
        builder_flags=flags,
        calibrator=calibrator,
        calibration=calibration_source if calibrator else "",
        calibration_cache=calibration_cache,
        profiles=profiles,
        needs_profile=any(t.dynamic for t in facts.inputs),
        workspace_bytes=config.workspace_bytes,
        optimization_level=config.optimization_level,
        timing_cache=config.timing_cache,
        dla_core=config.dla_core,
        notes=calibration_notes + precision_notes(precision, flags, facts, caps, platform_fast_fp16) + dla_notes
        + profile_notes + compatibility_notes,
        version_compatible=config.version_compatible,
        lean_runtime=("excluded" if config.exclude_lean_runtime else "embedded") if config.version_compatible else "",
        hardware_compatibility=config.hardware_compatibility,
        parser_flags=parser_flags,
    )
