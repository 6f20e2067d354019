"""``build_engine(onnx_path, BuildConfig) -> bytes``: the TensorRT build itself.

The decisions (typing, flags, calibrator, profiles) are made by
:func:`fcn_edge.engine.plan.plan_build` from the probed capabilities of the tensorrt module
at hand; this module only carries them out in TensorRT's API. Implicit INT8 takes an
iterable of ``{input_name: array}`` calibration batches (:mod:`fcn_edge.engine.calibrator`);
this layer never reads images. File in, engine and sidecar out is
:func:`fcn_edge.engine.engine_file.build_engine_file`. Every TensorRT name used
here is checked against the real bindings of 8.6, 10.x and 11.x by
tests/test_engine_api_surface.py; branches that only some versions reach carry a
``# trt-versions:`` marker (see that test).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, List, Optional, Tuple, Union

from fcn_edge.artifacts.shapes import format_shape
from fcn_edge.atomic import write_bytes_atomic
from fcn_edge.engine.calibrator import Batch, calibration_shapes, calibration_source, first_batch, make_calibrator
from fcn_edge.engine.capabilities import Capabilities, probe
from fcn_edge.engine.config import BuildConfig
from fcn_edge.engine.onnx_facts import OnnxFacts, read_onnx_facts
from fcn_edge.engine.plan import BuildPlan, plan_build
from fcn_edge.errors import EngineBuildError, FcnEdgeError, MissingDependencyError
from fcn_edge.optional import require
from fcn_edge.paths import PathLike

if TYPE_CHECKING:  # annotations only; run_build imports tensorrt lazily
    import tensorrt as trt  # noqa: F401

log = logging.getLogger(__name__)


def load_tensorrt() -> Any:
    """Import tensorrt, or raise the one clear error that says how to install it.

    A tensorrt package that is present but cannot load libnvinfer (a CUDA or driver
    mismatch) gets its own message: "not installed" would send the user the wrong way.
    """
    import importlib.util

    try:
        present = importlib.util.find_spec("tensorrt") is not None
    except (ValueError, ImportError):
        present = False
    if not present:
        return require("tensorrt", "building and running TensorRT engines")
    try:
        import tensorrt
    except ImportError as exc:
        from fcn_edge.optional import install_hint

        raise MissingDependencyError(
            f"the Python package 'tensorrt' is installed but cannot load TensorRT's libraries ({exc}): "
            "its version must match the installed CUDA driver and libraries; "
            f"{install_hint('tensorrt')}"
        ) from exc
    return tensorrt


@dataclass(frozen=True)
class BuildResult:
    engine: bytes
    plan: BuildPlan
    facts: OnnxFacts
    capabilities: Capabilities
    gpu_name: str
    compute_capability: str
    build_seconds: float
    network_layers: int
    dla_gpu_fallback_layers: Optional[int]  # layers the DLA cannot run, when building for DLA
    timing_cache_saved: Optional[Path]
    warnings: Tuple[str, ...]


def _make_logger(trt: Any) -> "trt.ILogger":
    """A TensorRT logger that forwards to Python logging and keeps the errors for messages."""
    severity = trt.ILogger.Severity
    levels = {
        severity.INTERNAL_ERROR: logging.ERROR,
        severity.ERROR: logging.ERROR,
        severity.WARNING: logging.WARNING,
        severity.INFO: logging.DEBUG,
        severity.VERBOSE: logging.DEBUG,
    }
    trt_log = logging.getLogger("fcn_edge.engine.tensorrt")

    class ForwardingLogger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: List[str] = []
            self.warnings: List[str] = []

        def log(self, sev, msg) -> None:
            level = levels.get(sev, logging.INFO)
            if level >= logging.ERROR:
                self.errors.append(str(msg))
            elif level == logging.WARNING:
                self.warnings.append(str(msg))
            trt_log.log(level, "%s", msg)

    return ForwardingLogger()


def _parser_error_text(trt: Any, parser: "trt.OnnxParser", facts: OnnxFacts, caps: Capabilities) -> str:
    lines = []
    for i in range(parser.num_errors):
        error = parser.get_error(i)
        if caps.parser_node_names:  # trt-versions: >=10
            name, op = error.node_name(), error.node_operator()
            where = f"node '{name}' ({op})" if name or op else f"node {facts.node_label(error.node())}"
        else:
            index = error.node()
            where = f"node {facts.node_label(index)}" if index >= 0 else "the graph"
        lines.append(f"  {where}: {error.desc()} [{error.code()}]")
    return "\n".join(lines)


def _logged(logger: Any) -> str:
    """TensorRT's last logged errors, as a parenthesis for a message ("" when it logged none)."""
    errors = getattr(logger, "errors", [])[-3:]
    return f" (TensorRT: {' | '.join(errors)})" if errors else ""


def _timing_cache(builder_config: "trt.IBuilderConfig", path: Path, caps: Capabilities, logger: Any) -> "trt.ITimingCache":
    """The timing cache from ``path`` (empty when the file does not exist). A blob TensorRT
    rejects gives None (or an exception from some bindings): like Polygraphy, build with an
    empty cache instead, which the build then saves over the unreadable file."""
    blob = path.read_bytes() if path.is_file() else b""
    cache, problem = None, ""
    try:
        cache = builder_config.create_timing_cache(blob)
    except Exception as exc:  # noqa: BLE001 - pybind raises TypeError/RuntimeError on some releases
        problem = str(exc) or type(exc).__name__
    if cache is not None:
        return cache
    why = problem or f"it returned no cache{_logged(logger)}"
    log.warning("%s: TensorRT %s rejected this timing cache (%s); building with an empty one, which replaces it",
                path, caps.version, why)
    logger.warnings.append(f"{path}: timing cache rejected ({why}); rebuilt from empty")
    cache = builder_config.create_timing_cache(b"")
    if cache is None:
        raise EngineBuildError(f"TensorRT {caps.version} could not create an empty timing cache{_logged(logger)}")
    return cache


def run_build(
    onnx: Union[PathLike, OnnxFacts],
    config: BuildConfig = BuildConfig(),
    calibration: Optional[Iterable[Batch]] = None,
    trt: Any = None,
    device: Any = None,
) -> BuildResult:
    """Plan the build of ``onnx`` (a path, or its facts already read) for the TensorRT at
    hand and build it.

    ``calibration`` is an iterable of ``{input_name: array}`` batches for the legacy
    calibrator (``int8_mode="implicit"``). ``trt`` is the tensorrt module (imported when
    None; the tests pass a fake one); ``device`` gives GPU facts and device memory
    (:class:`fcn_edge.engine.cuda_driver.CudaDriver`).
    """
    trt = trt if trt is not None else load_tensorrt()
    if device is None:
        from fcn_edge.engine.cuda_driver import cuda_driver

        device = cuda_driver()
    caps = probe(trt)
    facts = onnx if isinstance(onnx, OnnxFacts) else read_onnx_facts(onnx)
    logger = _make_logger(trt)
    builder = trt.Builder(logger)
    fast_fp16 = None
    if caps.fast_fp16_query:  # trt-versions: <11
        fast_fp16 = bool(builder.platform_has_fast_fp16)
    dla_cores = int(builder.num_DLA_cores) if config.dla_core is not None else None
    gpu = device.facts()
    jetson = None
    if config.hardware_compatibility != "none":
        from fcn_edge.video.capabilities import is_jetson

        jetson = is_jetson()
    plan = plan_build(
        facts, config, caps, platform_fast_fp16=fast_fp16, dla_cores=dla_cores,
        calibration_source=calibration_source(calibration) if calibration is not None else "",
        jetson=jetson, compute_capability=tuple(gpu.compute_capability),
    )

    network_flags = 0
    for name in plan.network_flags:
        network_flags |= 1 << int(getattr(trt.NetworkDefinitionCreationFlag, name))  # trt-names: EXPLICIT_BATCH[<10] STRONGLY_TYPED[>=10,<11]
    network = builder.create_network(network_flags)
    parser = trt.OnnxParser(network, logger)
    for name in plan.parser_flags:
        parser.set_flag(getattr(trt.OnnxParserFlag, name))  # trt-names: NATIVE_INSTANCENORM
    if not parser.parse_from_file(str(facts.path)):
        raise EngineBuildError(
            f"{facts.path}: TensorRT {caps.version}'s ONNX parser failed with {parser.num_errors} "
            f"error(s):\n{_parser_error_text(trt, parser, facts, caps)}"
        )

    builder_config = builder.create_builder_config()
    for name in plan.builder_flags:
        builder_config.set_flag(getattr(trt.BuilderFlag, name))  # trt-names: FP16[<11] INT8[<11] GPU_FALLBACK VERSION_COMPATIBLE EXCLUDE_LEAN_RUNTIME
    if plan.hardware_compatibility != "none":
        builder_config.hardware_compatibility_level = getattr(  # trt-names: AMPERE_PLUS SAME_COMPUTE_CAPABILITY[>=10.13]
            trt.HardwareCompatibilityLevel, plan.hardware_compatibility.upper())
    if plan.workspace_bytes is not None:
        builder_config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan.workspace_bytes)
    if plan.optimization_level is not None:
        builder_config.builder_optimization_level = plan.optimization_level
    if config.detailed_profile:
        builder_config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED

    if plan.needs_profile:
        profile = builder.create_optimization_profile()
        for shapes in plan.profiles:
            profile.set_shape(shapes.input_name, shapes.min, shapes.opt, shapes.max)
        if builder_config.add_optimization_profile(profile) < 0:  # -1: "the input is not valid"
            raise EngineBuildError(
                f"{facts.path}: TensorRT {caps.version} rejected the optimisation profile ("
                + "; ".join(f"'{p.input_name}' min {format_shape(p.min)}, opt {format_shape(p.opt)}, "
                            f"max {format_shape(p.max)}" for p in plan.profiles)
                + f"){_logged(logger)}; give other shapes with --min/--opt/--max"
            )

    timing_cache = None
    if plan.timing_cache is not None:
        timing_cache = _timing_cache(builder_config, plan.timing_cache, caps, logger)
        if builder_config.set_timing_cache(timing_cache, False) is False:
            raise EngineBuildError(
                f"{plan.timing_cache}: this timing cache was made by another GPU or TensorRT version; "
                "delete it (it is written anew) or pass another --timing-cache"
            )

    dla_fallback = None
    if plan.dla_core is not None:
        builder_config.default_device_type = trt.DeviceType.DLA
        builder_config.DLA_core = plan.dla_core
        dla_fallback = sum(
            not builder_config.can_run_on_DLA(network.get_layer(i)) for i in range(network.num_layers)
        )

    calibrator = None
    if plan.calibrator:  # trt-versions: <11
        calibrator = _attach_calibrator(trt, builder, builder_config, plan, calibration, device)

    log.info("building a %s engine with TensorRT %s (%s typing); this takes a while",
             plan.precision, caps.version, plan.typing)
    start = time.perf_counter()
    try:
        serialized = builder.build_serialized_network(network, builder_config)
    finally:
        if calibrator is not None:
            calibrator.feeder.release()
    seconds = time.perf_counter() - start
    if calibrator is not None and calibrator.error is not None:
        error = calibrator.error
        if isinstance(error, FcnEdgeError):
            raise error
        raise EngineBuildError(f"INT8 calibration failed: {error}") from error
    if serialized is None:
        details = "\n".join(f"  {e}" for e in logger.errors[-10:]) or "  (TensorRT logged no error)"
        raise EngineBuildError(f"{facts.path}: TensorRT {caps.version} could not build the engine:\n{details}")

    saved_cache = None
    if plan.timing_cache is not None:
        blob = builder_config.get_timing_cache().serialize()
        saved_cache = write_bytes_atomic(plan.timing_cache, bytes(blob), fsync=True)
    return BuildResult(
        engine=bytes(serialized),
        plan=plan,
        facts=facts,
        capabilities=caps,
        gpu_name=gpu.name,
        compute_capability=gpu.capability_text,
        build_seconds=seconds,
        network_layers=int(network.num_layers),
        dla_gpu_fallback_layers=dla_fallback,
        timing_cache_saved=saved_cache,
        warnings=tuple(logger.warnings),
    )


def _attach_calibrator(  # trt-versions: <11
    trt: Any, builder: "trt.Builder", builder_config: "trt.IBuilderConfig", plan: BuildPlan,
    calibration: Optional[Iterable[Batch]], device: Any,
) -> Any:
    """Set up the legacy calibrator, and its profile: the shapes of the first batch."""
    batches = None
    if calibration is not None and plan.calibration:
        first, batches = first_batch(calibration, plan.calibration)
        shapes = calibration_shapes(first, plan.profiles, plan.calibration)
        if plan.needs_profile:
            calibration_profile = builder.create_optimization_profile()
            for name, shape in shapes.items():
                calibration_profile.set_shape(name, shape, shape, shape)
            if not builder_config.set_calibration_profile(calibration_profile):
                raise EngineBuildError(
                    f"TensorRT {getattr(trt, '__version__', '?')} rejected the calibration profile "
                    + ", ".join(f"'{n}' {format_shape(s)}" for n, s in shapes.items())
                    + f" (the first calibration batch's shapes, from {plan.calibration}); make the batches "
                    "the optimisation profile's opt shape"
                )
    source = plan.calibration or str(plan.calibration_cache)
    calibrator = make_calibrator(trt, plan.calibrator, batches, plan.calibration_cache, device, source)
    builder_config.int8_calibrator = calibrator
    return calibrator


def build_engine(
    onnx_path: PathLike,
    config: BuildConfig = BuildConfig(),
    calibration: Optional[Iterable[Batch]] = None,
    trt: Any = None,
    device: Any = None,
) -> bytes:
    """The serialised engine for ``onnx_path`` (loadable by trtexec and any TensorRT runtime)."""
    return run_build(onnx_path, config, calibration, trt=trt, device=device).engine
