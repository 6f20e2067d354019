"""What a model file is and holds: ``inspect_model(path) -> ModelInfo`` (``fcn-edge info``).

The kind of file is decided by its content (:func:`fcn_edge.artifacts.model_kind`), so a
checkpoint or a Keras file is named for what it is. For an ONNX the graph's facts are read
with onnx (no TensorRT needed). For an engine the sidecar is read and the engine's SHA-256
checked against it; where TensorRT is installed the engine is also deserialised, its real
I/O tensors and layer precisions reported, and its sidecar checked against this machine's
TensorRT and GPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from fcn_edge.artifacts import (
    EngineRecord, ModelMeta, check_engine_compatible, check_engine_file, model_kind, read_engine_sidecar,
)
from fcn_edge.engine.onnx_facts import OnnxFacts, read_onnx_facts
from fcn_edge.engine.summary import EngineSummary, summarize_engine
from fcn_edge.errors import EngineMismatchError, FcnEdgeError, MetaError
from fcn_edge.paths import PathLike

_EXPORT_FIRST = "make an ONNX from it with `fcn-edge export {path}` and inspect that"
# What to do with a file that is neither an ONNX nor an engine, by its kind.
_HINTS = {
    "checkpoint": _EXPORT_FIRST,
    "torchscript": _EXPORT_FIRST,
    "hdf5": _EXPORT_FIRST,
    "keras": _EXPORT_FIRST,
}


@dataclass(frozen=True)
class LiveEngine:
    """What the installed TensorRT says of the engine on this machine."""

    tensorrt_version: str
    gpu_name: str  # "" when the GPU could not be asked
    compute_capability: str
    compatible: Optional[bool]  # None: no sidecar to check against, or no GPU facts
    problem: str  # why it will not run here; "" when nothing is known against it
    summary: Optional[EngineSummary]


@dataclass(frozen=True)
class EngineFileInfo:
    size_bytes: int
    record: Optional[EngineRecord]  # None when the sidecar is missing or unreadable
    file_problem: str  # the engine is not the one its sidecar describes (SHA-256); "" when it is
    live: Optional[LiveEngine]  # None without TensorRT
    live_unavailable: str  # why there are no live facts


@dataclass(frozen=True)
class ModelInfo:
    """An ONNX's or an engine's facts; ``onnx`` or ``engine`` is set according to ``kind``."""

    kind: str  # "onnx" | "engine"
    path: Path
    meta: Optional[ModelMeta]
    meta_error: str  # why there is no ModelMeta (for an engine: the sidecar's problem)
    onnx: Optional[OnnxFacts] = None
    engine: Optional[EngineFileInfo] = None

    @property
    def problems(self) -> Tuple[str, ...]:
        """What stops the runtime from loading this engine here; empty for an ONNX."""
        if self.engine is None:
            return ()
        found = [self.meta_error] if self.engine.record is None else []  # the runtime needs the sidecar
        if self.engine.file_problem:
            found.append(self.engine.file_problem)
        live = self.engine.live
        if live is not None and live.compatible is False:
            found.append(live.problem)
        return tuple(found)

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON types, for ``fcn-edge info --json``."""
        data: Dict[str, Any] = {
            "kind": self.kind,
            "path": str(self.path),
            "meta": self.meta.to_dict() if self.meta else None,
            "meta_error": self.meta_error,
        }
        if self.onnx is not None:
            facts = self.onnx
            data.update(
                sha256=facts.sha256,
                precision_in_graph=facts.precision,
                precision_markers=facts.describe_precision(),
                inputs=[t.to_dict() for t in facts.inputs],
                outputs=[t.to_dict() for t in facts.outputs],
                nodes=len(facts.node_ops),
            )
        if self.engine is not None:
            engine = self.engine
            data.update(
                size_bytes=engine.size_bytes,
                engine=engine.record.to_dict() if engine.record else None,
                engine_file_problem=engine.file_problem,
                live_unavailable=engine.live_unavailable,
                problems=list(self.problems),
            )
            live = engine.live
            if live is not None:
                data["machine"] = {"tensorrt_version": live.tensorrt_version, "gpu_name": live.gpu_name,
                                   "compute_capability": live.compute_capability}
                data["compatible"] = live.compatible
                data["live_error"] = live.problem
                if live.summary is not None:
                    data["live_io_tensors"] = [t.to_dict() for t in live.summary.io_tensors]
                    data["layer_count"] = live.summary.layer_count
                    data["layer_precisions"] = dict(live.summary.layer_precisions)
                    data["layer_types"] = dict(live.summary.layer_types)
        return data


def inspect_model(path: PathLike, trt: Any = None, device: Any = None) -> ModelInfo:
    """The facts of the ONNX model or TensorRT engine at ``path``.

    ``trt`` is the tensorrt module (imported when installed, if None; the tests pass a fake
    one) and ``device`` gives this GPU's facts (:func:`fcn_edge.engine.cuda_driver.cuda_driver`).
    Any other kind of file raises :class:`MetaError` naming what it is and what to do.
    """
    path = Path(path)
    found = model_kind(path)
    found.require("onnx", "engine", purpose="info reads ONNX models and TensorRT engines",
                  hint=_HINTS.get(found.kind, "").format(path=path))
    if found.kind == "onnx":
        from fcn_edge.export.graph_meta_check import meta_io_problems

        facts = read_onnx_facts(path)
        meta_error = facts.meta_error
        problems = meta_io_problems(facts.inputs, facts.outputs, facts.meta) if facts.meta is not None else []
        if problems:
            meta_error = "ModelMeta disagrees with the graph: " + "; ".join(problems)
        return ModelInfo("onnx", path, facts.meta, meta_error, onnx=facts)
    return _inspect_engine(path, trt, device)


def _inspect_engine(path: Path, trt: Any, device: Any) -> ModelInfo:
    from fcn_edge.optional import is_available

    meta: Optional[ModelMeta] = None
    record: Optional[EngineRecord] = None
    meta_error = ""
    try:
        meta, record = read_engine_sidecar(path)
    except MetaError as exc:
        meta_error = str(exc)
    if trt is None and is_available("tensorrt"):
        from fcn_edge.engine.build import load_tensorrt

        trt = load_tensorrt()
    if trt is None and record is None:
        raise MetaError(f"{meta_error}; and without TensorRT the engine itself cannot be read")
    data = path.read_bytes() if trt is not None else None  # read once: hashed and deserialised
    file_problem = ""
    if record is not None:
        try:
            check_engine_file(path, record, data)
        except EngineMismatchError as exc:
            file_problem = str(exc)
    live, unavailable = None, "tensorrt is not installed: I/O tensors are the sidecar's record"
    if trt is not None:
        live, unavailable = _live(trt, device, path, record, data, trusted=not file_problem), ""
    engine = EngineFileInfo(path.stat().st_size, record, file_problem, live, unavailable)
    return ModelInfo("engine", path, meta, meta_error, engine=engine)


def _live(trt: Any, device: Any, path: Path, record: Optional[EngineRecord], data: bytes,
          trusted: bool = False) -> LiveEngine:
    """``trusted``: the engine is the one its sidecar describes, so an embedded lean runtime
    (host code) may be loaded."""
    version = str(getattr(trt, "__version__", "unknown"))
    try:
        if device is None:
            from fcn_edge.engine.cuda_driver import cuda_driver

            device = cuda_driver()
        gpu = device.facts()
    except FcnEdgeError as exc:
        return LiveEngine(version, "", "", None, f"cannot ask the GPU: {exc}", None)
    compatible: Optional[bool] = None
    problem = ""
    if record is not None:
        try:
            check_engine_compatible(record, version, gpu.name, gpu.compute_capability, path)
            compatible = True
        except EngineMismatchError as exc:
            compatible, problem = False, str(exc)
    summary = None
    if compatible is not False:
        try:
            host_code = trusted and record is not None and record.lean_runtime == "embedded"
            summary = summarize_engine(trt, data, str(path), host_code_allowed=host_code)
        except FcnEdgeError as exc:
            compatible, problem = False, str(exc)
    return LiveEngine(version, gpu.name, gpu.capability_text, compatible, problem, summary)
