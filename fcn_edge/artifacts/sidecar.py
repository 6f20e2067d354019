"""The engine's sidecar ``<name>.engine.json``: ModelMeta plus the ``engine`` section.

The ``.engine`` file stays a plain TensorRT plan (trtexec loads it); everything fcn-edge
knows about it lives here: the model's contract (ModelMeta) and how, where and from what
the engine was built (:class:`EngineRecord`). :mod:`.compatibility` checks it against the
running machine. No tensorrt, no CUDA: the stdlib only.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

from fcn_edge.artifacts.fields import FieldReader
from fcn_edge.artifacts.meta import ModelMeta
from fcn_edge.atomic import write_json_atomic
from fcn_edge.errors import MetaError
from fcn_edge.paths import PathLike

SIDECAR_SUFFIX = ".json"
ENGINE_SECTION = "engine"
ENGINE_SCHEMA_VERSION = 1
ENGINE_PRECISIONS = ("fp32", "fp16", "int8")
TYPINGS = ("strong", "weak")
INT8_MODES = ("", "explicit", "implicit")
LEAN_RUNTIMES = ("", "embedded", "excluded")  # of a version-compatible engine
HARDWARE_LEVELS = ("", "ampere_plus", "same_compute_capability")  # "" = this GPU only
PRECISION_CHECKS = ("", "ok", "mismatch", "unchecked")  # "" = written before the check existed

Capability = Union[str, Sequence[int]]


def sidecar_path(engine: PathLike) -> Path:
    """``model.engine`` -> ``model.engine.json``."""
    engine = Path(engine)
    return engine.with_name(engine.name + SIDECAR_SUFFIX)


@dataclass(frozen=True)
class ProfileShapes:
    """One optimisation profile for one input: shapes in the input's own layout."""

    input_name: str
    min: Tuple[int, ...]
    opt: Tuple[int, ...]
    max: Tuple[int, ...]

    def to_dict(self) -> Dict[str, Any]:
        return {"input": self.input_name, "min": list(self.min), "opt": list(self.opt), "max": list(self.max)}

    @classmethod
    def from_reader(cls, read: FieldReader) -> "ProfileShapes":
        low = read.int_tuple("min")
        opt = read.int_tuple("opt", length=len(low))
        high = read.int_tuple("max", length=len(low))
        if not all(a <= b <= c for a, b, c in zip(low, opt, high)):
            raise read.error("opt", "between min and max in every dimension", list(opt))
        return cls(read.text("input", nonempty=True), low, opt, high)


@dataclass(frozen=True)
class EngineRecord:
    """How and where an engine was built; the sidecar's ``engine`` section.

    ``typing`` is "strong" (strongly typed network: precision comes from the ONNX) or
    "weak" (builder flags choose precision). ``int8_mode`` is "explicit" (Q/DQ in the
    ONNX), "implicit" (legacy calibrator) or "" when the engine has no INT8.
    ``version_compatible`` engines run on later TensorRT releases, with their ``lean_runtime``
    "embedded" or "excluded"; ``hardware_compatibility`` names the GPUs beyond the build GPU
    the engine runs on. ``precision_check`` is the engine inspector's verdict on the asked
    precision (ok / mismatch, kept by --allow-precision-mismatch / unchecked), said in
    ``precision_detail``.
    """

    tensorrt_version: str
    gpu_name: str
    compute_capability: str  # "8.7"
    precision: str
    typing: str
    flags: Tuple[str, ...]
    profiles: Tuple[ProfileShapes, ...]
    onnx_path: str
    onnx_sha256: str
    build_seconds: float
    built_at: str  # ISO 8601, UTC
    int8_mode: str = ""
    workspace_bytes: Optional[int] = None
    optimization_level: Optional[int] = None
    dla_core: Optional[int] = None
    timing_cache: str = ""
    calibration_cache: str = ""
    engine_bytes: int = 0
    engine_sha256: str = ""
    layer_count: Optional[int] = None
    io_tensors: Tuple[Dict[str, Any], ...] = field(default_factory=tuple)
    rebuild_command: str = ""
    fcn_edge_version: str = ""
    version_compatible: bool = False
    lean_runtime: str = ""
    hardware_compatibility: str = ""
    precision_check: str = ""
    precision_detail: str = ""

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data["flags"] = list(self.flags)
        data["profiles"] = [p.to_dict() for p in self.profiles]
        data["io_tensors"] = [dict(t) for t in self.io_tensors]
        data["schema_version"] = ENGINE_SCHEMA_VERSION
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<sidecar>") -> "EngineRecord":
        """Read and check every field; unknown keys are ignored (a newer writer's extras)."""
        read = FieldReader(data, source, ENGINE_SECTION)
        version = read.integer("schema_version", ENGINE_SCHEMA_VERSION, low=0)
        if version > ENGINE_SCHEMA_VERSION:
            raise MetaError(f"{source}: engine schema_version {version} is newer than this fcn-edge "
                            f"understands ({ENGINE_SCHEMA_VERSION}); upgrade fcn-edge")
        version_compatible = read.boolean("version_compatible", False)
        lean_runtime = read.choice("lean_runtime", LEAN_RUNTIMES, "")
        if bool(lean_runtime) != version_compatible:
            raise read.error("lean_runtime", "'embedded' or 'excluded' exactly when version_compatible is true",
                             lean_runtime)
        capability = read.text("compute_capability", nonempty=True)
        try:
            capability = format_capability(capability)
        except MetaError:
            raise read.error("compute_capability", "a compute capability like '8.7'", capability) from None
        trt_version = read.text("tensorrt_version", nonempty=True)
        if not re.fullmatch(r"\d+(\.\d+)*", trt_version.strip()):
            raise read.error("tensorrt_version", "a version like '10.3.0'", trt_version)
        return cls(
            tensorrt_version=trt_version,
            gpu_name=read.text("gpu_name", nonempty=True),
            compute_capability=capability,
            precision=read.choice("precision", ENGINE_PRECISIONS),
            typing=read.choice("typing", TYPINGS),
            flags=read.text_list("flags", ()),
            profiles=tuple(ProfileShapes.from_reader(r) for r in read.objects("profiles", ())),
            onnx_path=read.text("onnx_path", ""),
            onnx_sha256=read.text("onnx_sha256", ""),
            build_seconds=read.number("build_seconds", 0.0, low=0.0),
            built_at=read.text("built_at", ""),
            int8_mode=read.choice("int8_mode", INT8_MODES, ""),
            workspace_bytes=read.integer("workspace_bytes", None, low=1, optional=True),
            optimization_level=read.integer("optimization_level", None, low=0, high=5, optional=True),
            dla_core=read.integer("dla_core", None, low=0, optional=True),
            timing_cache=read.text("timing_cache", ""),
            calibration_cache=read.text("calibration_cache", ""),
            engine_bytes=read.integer("engine_bytes", 0, low=0),
            engine_sha256=read.text("engine_sha256", ""),
            layer_count=read.integer("layer_count", None, low=0, optional=True),
            io_tensors=tuple(dict(r.data) for r in read.objects("io_tensors", ())),
            rebuild_command=read.text("rebuild_command", ""),
            fcn_edge_version=read.text("fcn_edge_version", ""),
            version_compatible=version_compatible,
            lean_runtime=lean_runtime,
            hardware_compatibility=read.choice("hardware_compatibility", HARDWARE_LEVELS, ""),
            precision_check=read.choice("precision_check", PRECISION_CHECKS, ""),
            precision_detail=read.text("precision_detail", ""),
        )


def format_capability(capability: Capability) -> str:
    """(8, 7), [8, 7], "8.7" and "sm_87" all become "8.7"."""
    if isinstance(capability, str):
        text = capability.strip().lower()
        match = re.fullmatch(r"(\d+)\.(\d+)|(?:sm_?)?(\d{2,3})", text)
        if not match:
            raise MetaError(f"compute capability {capability!r} is not like '8.7'")
        if match.group(3) is not None:  # "87" / "sm_87" / "sm_100"
            digits = match.group(3)
            return f"{int(digits[:-1])}.{digits[-1]}"
        return f"{int(match.group(1))}.{int(match.group(2))}"
    if (isinstance(capability, (list, tuple)) and len(capability) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in capability)):
        return f"{capability[0]}.{capability[1]}"
    raise MetaError(f"compute capability {capability!r} is not a (major, minor) pair or a string like '8.7'")


def write_engine_sidecar(engine_path: PathLike, meta: ModelMeta, record: EngineRecord) -> Path:
    """Write ``<engine>.json`` atomically: ModelMeta plus the ``engine`` section."""
    data = {"meta": meta.to_dict(), ENGINE_SECTION: record.to_dict()}
    return write_json_atomic(sidecar_path(engine_path), data)


def read_engine_sidecar(engine_path: PathLike) -> Tuple[ModelMeta, EngineRecord]:
    """Read ``<engine>.json``: (ModelMeta, EngineRecord), or :class:`MetaError` naming the file."""
    path = sidecar_path(engine_path)
    if not path.is_file():
        raise MetaError(
            f"{engine_path}: its sidecar {path.name} is missing; it holds the model's classes and "
            "preprocessing and the TensorRT/GPU the engine was built for. Rebuild with "
            f"`fcn-edge build-engine MODEL.onnx -o {Path(engine_path).name}`, which writes both"
        )
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MetaError(f"{path}: unreadable sidecar: {exc}") from exc
    if not isinstance(data, dict) or "meta" not in data:
        raise MetaError(f"{path}: the sidecar has no 'meta' object")
    meta = ModelMeta.from_dict(data["meta"], str(path))
    section = data.get(ENGINE_SECTION)
    if not isinstance(section, Mapping):
        raise MetaError(
            f"{path}: the sidecar has no '{ENGINE_SECTION}' section (it was not written by "
            "`fcn-edge build-engine`); rebuild the engine with `fcn-edge build-engine`"
        )
    return meta, EngineRecord.from_dict(section, str(path))


def command_line(args: Sequence[str]) -> str:
    """A shell-quoted command line, for ``rebuild_command``."""
    return " ".join(shlex.quote(str(a)) for a in args)
