"""Does an engine fit this machine? TensorRT version, GPU, and the engine file itself.

A TensorRT engine runs only on the TensorRT version and the GPU it was built for. The
sidecar records both so the runtime can refuse a stale engine with a message that gives
the exact command to rebuild it, instead of TensorRT's deserialisation error; and it
records the engine's SHA-256, so an engine replaced after its sidecar was written is
refused too. No tensorrt, no CUDA: callers pass in what they found on the machine.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Mapping, Optional, Tuple

from fcn_edge.artifacts.hashing import file_sha256
from fcn_edge.artifacts.sidecar import ENGINE_SECTION, Capability, EngineRecord, format_capability
from fcn_edge.errors import EngineMismatchError, MetaError
from fcn_edge.paths import PathLike


def version_tuple(version: str) -> Tuple[int, ...]:
    """"10.3.0.30" -> (10, 3, 0, 30); for comparisons and messages, never for capabilities."""
    numbers = re.findall(r"\d+", str(version))
    if not numbers:
        raise MetaError(f"TensorRT version {version!r} has no numbers in it")
    return tuple(int(n) for n in numbers)


def same_tensorrt_version(built: str, running: str) -> bool:
    """True when the versions agree on every component both name ("10.3" matches "10.3.0.30").

    At least major.minor.patch must be present on both sides to compare them that far:
    an engine from 10.3.0 does not load on 10.3.1.
    """
    a, b = version_tuple(built), version_tuple(running)
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


def check_engine_file(engine_path: PathLike, record: EngineRecord, engine_bytes: Optional[bytes] = None) -> None:
    """Raise :class:`EngineMismatchError` when the engine file is not the one its sidecar
    describes (another build copied over it); costs one SHA-256 of the file.

    ``engine_bytes``: the file's content when the caller has read it already (the runtime
    does, to deserialise it), hashed instead of reading the file a second time.
    """
    if not record.engine_sha256:
        return  # written before engine_sha256 was recorded
    digest = hashlib.sha256(engine_bytes).hexdigest() if engine_bytes is not None else file_sha256(engine_path)
    if digest != record.engine_sha256:
        raise EngineMismatchError(
            f"{engine_path}: the engine is not the one its sidecar describes (SHA-256 differs: it was "
            f"replaced after the sidecar was written); {rebuild_hint(record.to_dict())}"
        )
