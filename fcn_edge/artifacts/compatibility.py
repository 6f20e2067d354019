"""Does an engine fit this machine? TensorRT version, GPU, and the engine file itself.

A TensorRT engine runs only on the TensorRT version and the GPU it was built for, unless it
was built version-compatible (later releases) or hardware-compatible (other GPUs). The
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


# Across majors a version-compatible engine runs only on these (built, running) pairs (the
# support matrix: "TensorRT 10 version-compatible engines can run with a TensorRT 11 runtime,
# and TensorRT 8 version-compatible engines can run with a TensorRT 10 runtime"; 8 -> 9 too).
CROSS_MAJOR = {(8, 9), (8, 10), (10, 11)}
AMPERE = (8, 0)


def _padded(version: Tuple[int, ...]) -> Tuple[int, ...]:
    return version + (0,) * (4 - len(version))


def version_problem(section: Mapping[str, Any], running: str, lean_runtime_loaded: bool = False) -> str:
    """Why TensorRT ``running`` cannot run the engine ``section`` describes ("" when it can).

    An ordinary engine runs on the TensorRT that built it. A version-compatible one also on
    later releases of its major and on the cross-major pairs TensorRT supports; with its lean
    runtime excluded, only where that release's lean runtime library is loaded."""
    built = str(section["tensorrt_version"])
    if same_tensorrt_version(built, running):
        return ""
    if not section.get("version_compatible"):
        return f"built with TensorRT {built}, this machine has TensorRT {running}"
    b, r = version_tuple(built), version_tuple(running)
    if _padded(r) < _padded(b) or (b[0] != r[0] and (b[0], r[0]) not in CROSS_MAJOR):
        return (f"built version-compatible with TensorRT {built}, which runs on later {b[0]}.x releases"
                + "".join(f" and on TensorRT {to}" for frm, to in sorted(CROSS_MAJOR) if frm == b[0])
                + f", not on this machine's TensorRT {running}")
    if section.get("lean_runtime") == "excluded" and not lean_runtime_loaded:
        return (f"built version-compatible with TensorRT {built} and its lean runtime excluded: TensorRT {running} "
                f"runs it only with TensorRT {built}'s lean runtime library loaded (set FCN_EDGE_LEAN_RUNTIME to "
                "the path of its libnvinfer_lean.so)")
    return ""


def gpu_problem(section: Mapping[str, Any], gpu_name: str, compute_capability: Capability) -> str:
    """Why this GPU cannot run the engine ``section`` describes ("" when it can): another GPU,
    unless the engine is hardware-compatible with it."""
    built_cc = format_capability(section["compute_capability"])
    running_cc = format_capability(compute_capability)
    built_gpu = str(section["gpu_name"])
    level = section.get("hardware_compatibility") or ""
    running = tuple(int(n) for n in running_cc.split("."))
    if level == "ampere_plus":
        return "" if running >= AMPERE else (
            f"built hardware-compatible for Ampere and later GPUs (compute capability 8.0+), this GPU is "
            f"{gpu_name} (compute capability {running_cc})")
    if built_cc != running_cc:
        return (f"built for {built_gpu} (compute capability {built_cc}), this GPU is {gpu_name} "
                f"(compute capability {running_cc})")
    if level != "same_compute_capability" and _normalise_gpu(built_gpu) != _normalise_gpu(gpu_name):
        return (f"built for {built_gpu}, this GPU is {gpu_name} (same compute capability {running_cc}, "
                "but the engine's kernels were timed on the other GPU)")
    return ""


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
    lean_runtime_loaded: bool = False,
) -> None:
    """Raise :class:`EngineMismatchError` unless the engine was built for this TensorRT and GPU
    (or is version- or hardware-compatible with them).

    ``sidecar_engine_section`` is the sidecar's ``engine`` object (a dict, or an
    :class:`EngineRecord`); the other arguments describe the running machine, e.g.
    ``trt.__version__``, the CUDA device name and ``(major, minor)``. Every mismatch is
    listed, and the message ends with the command that rebuilds the engine.
    ``lean_runtime_loaded``: the caller loads the build release's lean runtime library, which
    an engine built version-compatible with its lean runtime excluded needs.
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
    problems = [p for p in (version_problem(section, trt_version, lean_runtime_loaded),
                            gpu_problem(section, gpu_name, compute_capability)) if p]
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
