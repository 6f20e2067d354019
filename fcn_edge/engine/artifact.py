"""Write a built engine and its ``<engine>.json`` sidecar, each atomically.

The engine is a plain TensorRT plan (trtexec and any TensorRT runtime load it); everything
fcn-edge knows about it goes into the sidecar: ModelMeta, and the ``engine`` section
(:class:`fcn_edge.artifacts.EngineRecord`). A crash mid-write leaves the previous engine
(or nothing), never a truncated file under the engine's name.
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, Sequence, Tuple

from fcn_edge import __version__
from fcn_edge.artifacts import EngineRecord, ModelMeta, sidecar_path, write_engine_sidecar
from fcn_edge.artifacts.sidecar import command_line
from fcn_edge.atomic import atomic_path
from fcn_edge.engine.build import BuildResult
from fcn_edge.engine.precision_check import PrecisionCheck
from fcn_edge.engine.summary import EngineSummary
from fcn_edge.paths import PathLike


def engine_record(
    result: BuildResult,
    summary: Optional[EngineSummary] = None,
    rebuild_args: Sequence[str] = (),
    precision_check: Optional[PrecisionCheck] = None,
) -> EngineRecord:
    plan = result.plan
    return EngineRecord(
        tensorrt_version=result.capabilities.version,
        gpu_name=result.gpu_name,
        compute_capability=result.compute_capability,
        precision=plan.precision,
        typing=plan.typing,
        flags=tuple(f"NetworkDefinitionCreationFlag.{f}" for f in plan.network_flags)
        + tuple(f"BuilderFlag.{f}" for f in plan.builder_flags),
        profiles=plan.profiles,
        onnx_path=str(result.facts.path),
        onnx_sha256=result.facts.sha256,
        build_seconds=round(result.build_seconds, 3),
        built_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        int8_mode=plan.int8_mode,
        workspace_bytes=plan.workspace_bytes,
        optimization_level=plan.optimization_level,
        dla_core=plan.dla_core,
        timing_cache=str(plan.timing_cache or ""),
        calibration_cache=str(plan.calibration_cache or "") if plan.calibrator else "",
        engine_bytes=len(result.engine),
        engine_sha256=hashlib.sha256(result.engine).hexdigest(),
        layer_count=summary.layer_count if summary else None,
        io_tensors=tuple(t.to_dict() for t in summary.io_tensors) if summary else (),
        rebuild_command=command_line(rebuild_args) if rebuild_args else "",
        fcn_edge_version=__version__,
        version_compatible=plan.version_compatible,
        lean_runtime=plan.lean_runtime,
        hardware_compatibility="" if plan.hardware_compatibility == "none" else plan.hardware_compatibility,
        precision_check=precision_check.verdict if precision_check else "",
        precision_detail=precision_check.detail if precision_check else "",
    )


def engine_meta(result: BuildResult) -> ModelMeta:
    """ModelMeta for the engine: the ONNX's, with the engine's precision and a history step."""
    return result.facts.require_meta().with_history(
        f"build-engine: TensorRT {result.capabilities.version} {result.plan.precision} "
        f"({result.plan.typing} typing) on {result.gpu_name}",
        precision=result.plan.precision,
    )


def write_engine(
    engine_path: PathLike,
    result: BuildResult,
    summary: Optional[EngineSummary] = None,
    rebuild_args: Sequence[str] = (),
    precision_check: Optional[PrecisionCheck] = None,
) -> Tuple[Path, Path]:
    """Write ``engine_path`` and ``<engine_path>.json``; returns both paths.

    The engine bytes go to a temporary file first (the slow part), then the sidecar is
    written atomically, then the engine is renamed into place: at no moment is there a
    partial engine under its final name, and the window in which a new sidecar sits beside
    the old engine is one rename long (the sidecar's ``engine_sha256`` tells them apart).
    """
    engine_path = Path(engine_path)
    meta = engine_meta(result)
    record = engine_record(result, summary, rebuild_args, precision_check)
    with atomic_path(engine_path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(result.engine)
            handle.flush()
            os.fsync(handle.fileno())
        write_engine_sidecar(engine_path, meta, record)
    return engine_path, sidecar_path(engine_path)
