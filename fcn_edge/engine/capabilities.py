"""What a TensorRT can do, asked of the module itself or, for ``--dry-run``, of a table.

A real build calls :func:`probe` on the imported tensorrt module (``hasattr``, never
version arithmetic). ``fcn-edge build-engine --dry-run --trt-version X`` has no TensorRT
to ask, so it uses :data:`DECLARED`: one row per TensorRT release that fcn-edge knows.
Each capability names the *witness* identifier that :func:`probe` looks for; the test
tests/test_engine_api_surface.py checks every row against the API surface extracted from
that release's real bindings (tests/data/trt_api_surface/), so the table cannot drift from
what TensorRT actually ships.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Dict, Optional, Tuple

from fcn_edge.artifacts.compatibility import version_tuple
from fcn_edge.errors import EngineBuildError


@dataclass(frozen=True)
class Capabilities:
    """The parts of a TensorRT release that change what fcn-edge's build does."""

    version: str
    strongly_typed: bool  # NetworkDefinitionCreationFlag.STRONGLY_TYPED (10.0+)
    # NetworkDefinitionCreationFlag.EXPLICIT_BATCH has an effect: required before 10.0,
    # ignored (deprecated) from 10.0, the release that made every network explicit-batch and
    # added STRONGLY_TYPED; removed in 11. Set only where it matters.
    explicit_batch_flag: bool
    fp16_flag: bool  # BuilderFlag.FP16: weak-typing FP16 (gone in 11)
    int8_flag: bool  # BuilderFlag.INT8: weak-typing INT8, needed for Q/DQ on 8.x (gone in 11)
    legacy_calibrator: bool  # IInt8EntropyCalibrator2 / IInt8MinMaxCalibrator (gone in 11)
    optimization_level: bool  # IBuilderConfig.builder_optimization_level (8.6+)
    memory_pool_limit: bool  # IBuilderConfig.set_memory_pool_limit (8.4+)
    timing_cache: bool  # IBuilderConfig.create_timing_cache
    dla: bool  # DLA with GPU fallback in this release (dla_in_release: the names exist where DLA does not)
    fast_fp16_query: bool  # Builder.platform_has_fast_fp16 (gone in 11)
    parser_node_names: bool  # ParserError.node_name / node_operator (10.0+)
    engine_inspector: bool  # ICudaEngine.create_engine_inspector (8.2+)
    version_compatible: bool = False  # BuilderFlag.VERSION_COMPATIBLE / EXCLUDE_LEAN_RUNTIME (8.6+)
    hardware_compatibility: bool = False  # HardwareCompatibilityLevel.AMPERE_PLUS (8.6+)
    same_compute_capability: bool = False  # HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY (10.13 has it, 10.3 not)


# DLA by TensorRT release, from the release notes and "Working with DLA": 8.5 and 8.6 (JetPack
# 5 and 6.0) and 10.0 to 10.7 (JetPack 6.1/6.2 ship 10.3) on Jetson Xavier and Orin; "TensorRT
# 10.7 was the last 10.x release that supported DLA"; none in 11.0 to 11.3; 11.4.0 only on
# Windows on ARM (beta, no GPU fallback); 11.4.1 on Jetson AGX Orin with JetPack 7.2.2 or later
# (strongly typed, GPU fallback as in 10.x). Jetson Thor and desktop GPUs have no DLA. The
# bindings of every release name DeviceType.DLA, so the release, not hasattr, tells.
DLA_RELEASES = (((8, 5), (10, 7, 99)), ((11, 4, 1), (11, 99)))
DLA_HINT = (
    "DLA builds need a Jetson Xavier or Orin with TensorRT 8.5/8.6 (JetPack 5, 6.0), 10.3 "
    "(JetPack 6.1/6.2) or 11.4.1 (JetPack 7.2.2, AGX Orin); TensorRT 10.8 to 11.4.0 on Linux, "
    "Jetson Thor and desktop GPUs have no DLA: omit --dla-core"
)


def dla_in_release(version: str) -> bool:
    """True when TensorRT ``version`` builds for DLA on Linux (a Jetson), per its release notes."""
    wanted = version_tuple(version)
    padded = wanted + (0,) * (4 - len(wanted))
    return any(low + (0,) * (4 - len(low)) <= padded <= high + (0,) * (4 - len(high))
               for low, high in DLA_RELEASES)


def _has(obj: Any, *path: str) -> bool:
    for name in path:
        if not hasattr(obj, name):
            return False
        obj = getattr(obj, name)
    return True


def probe(trt: Any) -> Capabilities:
    """Ask the imported tensorrt module what it can do."""
    flags = getattr(trt, "NetworkDefinitionCreationFlag", None)
    builder_flags = getattr(trt, "BuilderFlag", None)
    return Capabilities(
        version=str(getattr(trt, "__version__", "unknown")),
        strongly_typed=_has(flags, "STRONGLY_TYPED"),
        explicit_batch_flag=_has(flags, "EXPLICIT_BATCH") and not _has(flags, "STRONGLY_TYPED"),
        fp16_flag=_has(builder_flags, "FP16"),
        int8_flag=_has(builder_flags, "INT8"),
        legacy_calibrator=_has(trt, "IInt8EntropyCalibrator2") and _has(trt, "IInt8MinMaxCalibrator"),
        optimization_level=_has(trt, "IBuilderConfig", "builder_optimization_level"),
        memory_pool_limit=_has(trt, "IBuilderConfig", "set_memory_pool_limit"),
        timing_cache=_has(trt, "IBuilderConfig", "create_timing_cache"),
        dla=_has(trt, "DeviceType", "DLA") and _has(builder_flags, "GPU_FALLBACK")
        and dla_in_release(str(getattr(trt, "__version__", "0"))),
        fast_fp16_query=_has(trt, "Builder", "platform_has_fast_fp16"),
        parser_node_names=_has(trt, "ParserError", "node_name"),
        engine_inspector=_has(trt, "ICudaEngine", "create_engine_inspector"),
        version_compatible=_has(builder_flags, "VERSION_COMPATIBLE") and _has(builder_flags, "EXCLUDE_LEAN_RUNTIME"),
        hardware_compatibility=_has(trt, "HardwareCompatibilityLevel", "AMPERE_PLUS"),
        same_compute_capability=_has(trt, "HardwareCompatibilityLevel", "SAME_COMPUTE_CAPABILITY"),
    )


# The identifier whose presence each capability stands for, as in the API surfaces.
# None: the flat name list cannot tell (``INT8`` is also DataType.INT8 in every release).
WITNESS: Dict[str, Optional[str]] = {
    "strongly_typed": "STRONGLY_TYPED",
    "explicit_batch_flag": None,  # EXPLICIT_BATCH exists in 10.x too, only without effect
    "fp16_flag": "FP16",
    "int8_flag": None,
    "legacy_calibrator": "IInt8EntropyCalibrator2",
    "optimization_level": "builder_optimization_level",
    "memory_pool_limit": "set_memory_pool_limit",
    "timing_cache": "create_timing_cache",
    "dla": None,  # DeviceType.DLA is in every release's bindings: dla_in_release decides
    "fast_fp16_query": "platform_has_fast_fp16",
    "parser_node_names": "node_name",
    "engine_inspector": "create_engine_inspector",
    "version_compatible": "VERSION_COMPATIBLE",
    "hardware_compatibility": "AMPERE_PLUS",
    "same_compute_capability": "SAME_COMPUTE_CAPABILITY",
}

_TRT8 = Capabilities(
    version="8.6", strongly_typed=False, explicit_batch_flag=True, fp16_flag=True, int8_flag=True,
    legacy_calibrator=True, optimization_level=True, memory_pool_limit=True, timing_cache=True,
    dla=True, fast_fp16_query=True, parser_node_names=False, engine_inspector=True,
    version_compatible=True, hardware_compatibility=True, same_compute_capability=False,
)
_TRT10 = replace(_TRT8, version="10.3", strongly_typed=True, explicit_batch_flag=False, parser_node_names=True)
_TRT11 = replace(
    _TRT10, version="11.4", fp16_flag=False, int8_flag=False,
    legacy_calibrator=False, fast_fp16_query=False, dla=False,
)

# One row per release fcn-edge knows. 8.5 (JetPack 5) differs from 8.6 only in lacking
# builder_optimization_level and version/hardware compatibility (added in 8.6); its
# bindings are not on PyPI, so that row is from the 8.6 release notes rather than from an
# extracted surface. 11.4.1 differs from 11.4.0 only in DLA (Jetson AGX Orin, JetPack 7.2.2).
DECLARED: Dict[str, Capabilities] = {
    "8.5": replace(_TRT8, version="8.5", optimization_level=False, version_compatible=False,
                   hardware_compatibility=False),
    "8.6": _TRT8,
    "10.3": _TRT10,
    "10.13": replace(_TRT10, version="10.13", dla=False, same_compute_capability=True),
    "10.16": replace(_TRT10, version="10.16", dla=False, same_compute_capability=True),
    "11.4": replace(_TRT11, same_compute_capability=True),
    "11.4.1": replace(_TRT11, version="11.4.1", dla=True, same_compute_capability=True),
}

# Which committed surface file each declared row is checked against.
SURFACE_OF_ROW: Dict[str, str] = {
    "8.6": "8.6.1", "10.3": "10.3.0", "10.13": "10.13.3.9", "10.16": "10.16.1.11", "11.4": "11.4.0.106",
}


def declared(version: str) -> Capabilities:
    """The declared capabilities of TensorRT ``version`` for a dry run.

    A version between two rows of the same major takes the nearest row below it (10.8 ->
    10.3) and DLA from :func:`dla_in_release`; the version itself is kept for messages.
    """
    wanted = version_tuple(version)
    rows = sorted(
        ((version_tuple(key), caps) for key, caps in DECLARED.items() if version_tuple(key)[0] == wanted[0]),
        key=lambda item: item[0],
    )
    if not rows:
        known = ", ".join(DECLARED)
        raise EngineBuildError(
            f"TensorRT {version} is not one fcn-edge knows (supported: 8.5 to 11.x; rows: {known}); "
            "give --trt-version as one of those, e.g. --trt-version 10.3"
        )
    def padded(v: Tuple[int, ...]) -> Tuple[int, ...]:
        return v + (0,) * (4 - len(v))

    chosen = rows[0][1]  # older than every row of its major: the oldest row
    for key, caps in rows:
        if padded(key) <= padded(wanted):
            chosen = caps
    return replace(chosen, version=version, dla=chosen.dla and dla_in_release(version))
