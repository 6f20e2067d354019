"""The ``engine`` section of ``<name>.engine.json``, and the check that an engine fits here.

A TensorRT engine runs only on the TensorRT version and the GPU it was built for. The
sidecar records both (plus how it was built) so that the runtime can refuse a stale engine
with a message that tells the user the exact command to rebuild it, instead of TensorRT's
deserialisation error. This module imports neither tensorrt nor CUDA: the runtime passes in
what it found on the running machine.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

from fcn_edge.errors import EngineMismatchError, MetaError
from fcn_edge.meta import ModelMeta, PathLike, file_sha256, read_sidecar, write_sidecar

ENGINE_SECTION = "engine"
ENGINE_SCHEMA_VERSION = 1

Capability = Union[str, Sequence[int]]


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
    def from_dict(cls, data: Mapping[str, Any]) -> "ProfileShapes":
        return cls(
            str(data["input"]),
            tuple(int(v) for v in data["min"]),
            tuple(int(v) for v in data["opt"]),
            tuple(int(v) for v in data["max"]),
        )


@dataclass(frozen=True)
class EngineRecord:
    """How and where an engine was built; the sidecar's ``engine`` section.

    ``typing`` is "strong" (strongly typed network: precision comes from the ONNX) or
    "weak" (builder flags choose precision). ``int8_mode`` is "explicit" (Q/DQ in the
    ONNX), "implicit" (legacy calibrator) or "" when the engine has no INT8.
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

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data["flags"] = list(self.flags)
        data["profiles"] = [p.to_dict() for p in self.profiles]
        data["io_tensors"] = [dict(t) for t in self.io_tensors]
        data["schema_version"] = ENGINE_SCHEMA_VERSION
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<sidecar>") -> "EngineRecord":
        known = set(cls.__dataclass_fields__)
        missing = [
            k for k in ("tensorrt_version", "gpu_name", "compute_capability", "precision", "typing")
            if k not in data
        ]
        if missing:
            raise MetaError(f"{source}: the '{ENGINE_SECTION}' section lacks {missing}")
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs.setdefault("flags", ())
        kwargs.setdefault("profiles", ())
        kwargs.setdefault("onnx_path", "")
        kwargs.setdefault("onnx_sha256", "")
        kwargs.setdefault("build_seconds", 0.0)
        kwargs.setdefault("built_at", "")
        kwargs["flags"] = tuple(str(f) for f in kwargs["flags"])
        kwargs["profiles"] = tuple(ProfileShapes.from_dict(p) for p in kwargs["profiles"])
        kwargs["io_tensors"] = tuple(dict(t) for t in kwargs.get("io_tensors", ()))
        kwargs["compute_capability"] = format_capability(kwargs["compute_capability"])
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise MetaError(f"{source}: malformed '{ENGINE_SECTION}' section: {exc}") from exc


def format_capability(capability: Capability) -> str:
    """(8, 7), [8, 7], "8.7" and "sm_87" all become "8.7"."""
    if isinstance(capability, str):
        text = capability.strip().lower()
        match = re.fullmatch(r"(?:sm_?)?(\d+)(?:\.(\d+))?", text)
        if not match:
            raise MetaError(f"compute capability {capability!r} is not like '8.7'")
        if match.group(2) is None:  # "87" / "sm_87"
            digits = match.group(1)
            return f"{digits[:-1]}.{digits[-1]}"
        return f"{int(match.group(1))}.{int(match.group(2))}"
    parts = tuple(int(v) for v in capability)
    if len(parts) != 2:
        raise MetaError(f"compute capability {capability!r} is not a (major, minor) pair")
    return f"{parts[0]}.{parts[1]}"


def _version_tuple(version: str) -> Tuple[int, ...]:
    numbers = re.findall(r"\d+", str(version))
    if not numbers:
        raise MetaError(f"TensorRT version {version!r} has no numbers in it")
    return tuple(int(n) for n in numbers)


def same_tensorrt_version(built: str, running: str) -> bool:
    """True when the versions agree on every component both name ("10.3" matches "10.3.0.30").

    At least major.minor.patch must be present on both sides to compare them that far:
    an engine from 10.3.0 does not load on 10.3.1.
    """
    a, b = _version_tuple(built), _version_tuple(running)
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def _normalise_gpu(name: str) -> str:
    return " ".join(str(name).split()).lower()


def rebuild_hint(section: Mapping[str, Any]) -> str:
    command = section.get("rebuild_command") or "fcn-edge build-engine MODEL.onnx -o MODEL.engine"
    return f"rebuild it on this machine with `{command}`"


def check_engine_compatible(
    sidecar_engine_section: Mapping[str, Any],
    trt_version: str,
    gpu_name: str,
    compute_capability: Capability,
    engine_path: Optional[PathLike] = None,
) -> None:
    """Raise :class:`EngineMismatchError` unless the engine was built for this TensorRT and GPU.

    ``sidecar_engine_section`` is the sidecar's ``engine`` object (a dict, or an
    :class:`EngineRecord`); the other arguments describe the running machine, e.g.
    ``trt.__version__``, the CUDA device name and ``(major, minor)``. Every mismatch is
    listed, and the message ends with the command that rebuilds the engine.
    """
    section: Mapping[str, Any]
    if isinstance(sidecar_engine_section, EngineRecord):
        section = sidecar_engine_section.to_dict()
    else:
        section = sidecar_engine_section
    where = f"{engine_path}: " if engine_path else ""
    if not isinstance(section, Mapping):
        raise EngineMismatchError(
            f"{where}the sidecar's '{ENGINE_SECTION}' section is not an object; {rebuild_hint({})}"
        )
    missing = [k for k in ("tensorrt_version", "gpu_name", "compute_capability") if not section.get(k)]
    if missing:
        raise EngineMismatchError(
            f"{where}the sidecar's '{ENGINE_SECTION}' section lacks {missing}, so the engine cannot "
            f"be checked against this machine; {rebuild_hint(section)}"
        )
    problems = []
    built_trt = str(section["tensorrt_version"])
    if not same_tensorrt_version(built_trt, trt_version):
        problems.append(f"built with TensorRT {built_trt}, this machine has TensorRT {trt_version}")
    built_cc = format_capability(section["compute_capability"])
    running_cc = format_capability(compute_capability)
    built_gpu = str(section["gpu_name"])
    if built_cc != running_cc:
        problems.append(
            f"built for {built_gpu} (compute capability {built_cc}), this GPU is {gpu_name} "
            f"(compute capability {running_cc})"
        )
    elif _normalise_gpu(built_gpu) != _normalise_gpu(gpu_name):
        problems.append(
            f"built for {built_gpu}, this GPU is {gpu_name} (same compute capability {running_cc}, "
            "but the engine's kernels were timed on the other GPU)"
        )
    if problems:
        raise EngineMismatchError(
            f"{where}the engine does not match this machine: " + "; ".join(problems)
            + f"; {rebuild_hint(section)}"
        )


def check_engine_file(engine_path: PathLike, record: "EngineRecord") -> None:
    """Raise :class:`EngineMismatchError` when the engine file is not the one its sidecar
    describes (another build copied over it); costs one SHA-256 of the file."""
    if not record.engine_sha256:
        return  # written before engine_sha256 was recorded
    if file_sha256(engine_path) != record.engine_sha256:
        raise EngineMismatchError(
            f"{engine_path}: the engine is not the one its sidecar describes (SHA-256 differs: it was "
            f"replaced after the sidecar was written); {rebuild_hint(record.to_dict())}"
        )


def write_engine_sidecar(engine_path: PathLike, meta: ModelMeta, record: EngineRecord) -> Path:
    """Write ``<engine>.json``: ModelMeta plus the ``engine`` section."""
    return write_sidecar(engine_path, meta, {ENGINE_SECTION: record.to_dict()})


def read_engine_sidecar(engine_path: PathLike) -> Tuple[ModelMeta, EngineRecord]:
    """Read ``<engine>.json``; a sidecar without an ``engine`` section is an error."""
    meta, extra = read_sidecar(engine_path)
    section = extra.get(ENGINE_SECTION)
    if not isinstance(section, Mapping):
        raise MetaError(
            f"{engine_path}: its sidecar has no '{ENGINE_SECTION}' section (it was not written by "
            "`fcn-edge build-engine`); rebuild the engine with `fcn-edge build-engine`"
        )
    return meta, EngineRecord.from_dict(section, f"{engine_path}.json")


def command_line(args: Sequence[str]) -> str:
    """A shell-quoted command line, for ``rebuild_command``."""
    return " ".join(shlex.quote(str(a)) for a in args)
