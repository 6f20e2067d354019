"""ONNX file in, engine file and sidecar out: the library calls behind ``fcn-edge build-engine``.

:func:`build_engine_file` reads the ONNX's facts (parse and SHA-256) once, refuses an ONNX
without ModelMeta before minutes of building, plans, builds, asks the engine inspector for
a summary, refuses an engine without the asked precision (unless allowed), and writes the
engine and its ``<engine>.json`` atomically.
:func:`plan_engine_build` is the dry run: the same decisions for the installed TensorRT, or
for a declared version where none is installed. The CLI only parses, calls and prints.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

from fcn_edge.engine.artifact import write_engine
from fcn_edge.engine.build import BuildResult, load_tensorrt, run_build
from fcn_edge.engine.calibrator import Batch
from fcn_edge.engine.capabilities import Capabilities, declared, probe
from fcn_edge.engine.config import BuildConfig
from fcn_edge.engine.onnx_facts import OnnxFacts, read_onnx_facts
from fcn_edge.engine.plan import BuildPlan, plan_build
from fcn_edge.engine.precision_check import PrecisionCheck, check_engine_precision
from fcn_edge.engine.summary import EngineSummary, summarize_engine
from fcn_edge.errors import EngineBuildError
from fcn_edge.optional import is_available
from fcn_edge.paths import PathLike

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineBuild:
    """What :func:`build_engine_file` built and wrote."""

    engine_path: Path
    sidecar_path: Path
    result: BuildResult
    summary: Optional[EngineSummary]  # None when the engine inspector failed
    summary_error: str = ""
    precision_check: Optional[PrecisionCheck] = None


@dataclass(frozen=True)
class PlannedBuild:
    """What :func:`plan_engine_build` decided, and for which TensorRT."""

    facts: OnnxFacts
    plan: BuildPlan
    capabilities: Capabilities
    probed: bool  # True: asked of the installed tensorrt; False: a declared version's table


def _facts(onnx: Union[PathLike, OnnxFacts]) -> OnnxFacts:
    return onnx if isinstance(onnx, OnnxFacts) else read_onnx_facts(onnx)


def build_engine_file(
    onnx: Union[PathLike, OnnxFacts],
    engine_path: PathLike,
    config: BuildConfig = BuildConfig(),
    calibration: Optional[Iterable[Batch]] = None,
    trt: Any = None,
    device: Any = None,
    rebuild_args: Sequence[str] = (),
) -> EngineBuild:
    """Build ``onnx`` (a path, or its :class:`OnnxFacts` already read) into ``engine_path``
    and ``<engine_path>.json``.

    ``calibration`` is an iterable of ``{input_name: array}`` batches for implicit INT8;
    ``rebuild_args`` the command line that rebuilds the engine, recorded in the sidecar for
    mismatch messages. ``trt`` and ``device`` as in :func:`fcn_edge.engine.build.run_build`.
    """
    facts = _facts(onnx)
    facts.require_meta()  # refuse before minutes of building
    trt = trt if trt is not None else load_tensorrt()
    result = run_build(facts, config, calibration, trt=trt, device=device)
    summary, summary_error = None, ""
    try:
        summary = summarize_engine(trt, result.engine, str(engine_path),
                                   host_code_allowed=result.plan.lean_runtime == "embedded")
    except Exception as exc:  # noqa: BLE001 - the summary is a report; the engine is good without it
        summary_error = str(exc) or type(exc).__name__
        log.warning("%s: the engine inspector failed (%s); the engine is written without its summary",
                    engine_path, summary_error)
    check = _checked_precision(engine_path, result, config, summary, summary_error)
    written, sidecar = write_engine(engine_path, result, summary, rebuild_args, check)
    return EngineBuild(written, sidecar, result, summary, summary_error, check)


def _checked_precision(engine_path: PathLike, result: BuildResult, config: BuildConfig,
                       summary: Optional[EngineSummary], summary_error: str) -> PrecisionCheck:
    """The inspector's verdict on the asked precision; a mismatch refuses the engine unless
    ``config.allow_precision_mismatch``."""
    check = check_engine_precision(result.plan.precision, summary, summary_error)
    wanted = result.plan.precision.upper()
    if check.verdict == "mismatch":
        problem = (f"{engine_path}: an {wanted} engine was asked for, but TensorRT {result.capabilities.version} "
                   f"built one in which {check.detail}")
        if not config.allow_precision_mismatch:
            if result.facts.precision == result.plan.precision:
                hint = "the ONNX carries it, so TensorRT found no faster kernels in it on this GPU"
            else:
                hint = (("TensorRT keeps FP32 kernels where the GPU has no faster FP16 ones; " if wanted == "FP16"
                         else "") + "make the precision part of the ONNX (`fcn-edge quantize "
                        f"{result.facts.path.name} --precision {result.plan.precision}`) and build that")
            raise EngineBuildError(f"{problem}; {hint}, or pass --allow-precision-mismatch to keep this engine")
        log.warning("%s (kept: --allow-precision-mismatch)", problem)
    elif check.verdict == "unchecked":
        log.warning("%s: cannot check that the engine runs %s: %s", engine_path, wanted, check.detail)
    return check


def plan_engine_build(
    onnx: Union[PathLike, OnnxFacts],
    config: BuildConfig = BuildConfig(),
    trt_version: Optional[str] = None,
    calibration_source: str = "",
) -> PlannedBuild:
    """The build's decisions without building: for TensorRT ``trt_version`` from the table
    of declared capabilities (no TensorRT needed), else for the installed TensorRT."""
    if trt_version:
        caps, probed = declared(trt_version), False
    elif is_available("tensorrt"):
        caps, probed = probe(load_tensorrt()), True
    else:
        raise EngineBuildError(
            "planning a build without TensorRT installed needs a TensorRT version: --trt-version, "
            "e.g. --trt-version 10.3 (a JetPack 6.1/6.2 Jetson) or 8.6 (JetPack 6.0)"
        )
    facts = _facts(onnx)
    return PlannedBuild(facts, plan_build(facts, config, caps, calibration_source=calibration_source), caps, probed)
