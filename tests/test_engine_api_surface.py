"""Every TensorRT name that fcn_edge.engine and fcn_edge.runtime use exists in the real
Python bindings of every TensorRT version whose code path uses it.

The surfaces in tests/data/trt_api_surface/ are extracted by tools/trt_api_surface.py from
the ``tensorrt*-bindings`` wheels (8.6.1, 10.3.0, 10.13.3.9, 10.16.1.11, 11.4.0.106). How
code declares version-gated branches, dynamic names and TensorRT objects is described at
the top of tests/trt_usage.py; in short::

    if caps.fast_fp16_query:  # trt-versions: <11
        fast = builder.platform_has_fast_fp16
    config.set_flag(getattr(trt.BuilderFlag, name))  # trt-names: FP16[<11] INT8[<11] GPU_FALLBACK
    def io_tensors(trt, engine: "trt.ICudaEngine"): ...

Run ``pytest tests/test_engine_api_surface.py -v -s`` to see the per-version report.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fcn_edge.engine.capabilities import DECLARED, SURFACE_OF_ROW, WITNESS
from trt_usage import (
    REPO, collect_usages, load_surface, load_surfaces, missing_names, spec_admits, version_tuple,
)

SURFACES = load_surfaces()
REQUIRED_LABELS = {"8.6.1", "10.3.0", "10.16.1.11", "11.4.0.106"}


@pytest.fixture(scope="module")
def collected():
    return collect_usages()


def test_surfaces_for_every_required_version_are_committed():
    labels = {s.label for s in SURFACES}
    assert REQUIRED_LABELS <= labels, f"missing surfaces: {REQUIRED_LABELS - labels}"
    for surface in SURFACES:
        assert len(surface.names) > 1000, f"{surface.path} looks truncated ({len(surface.names)} names)"


def test_surfaces_tell_the_versions_apart():
    by_label = {s.label: s for s in SURFACES}
    trt8, trt10, trt11 = by_label["8.6.1"], by_label["10.3.0"], by_label["11.4.0.106"]
    assert not trt8.has("STRONGLY_TYPED") and trt10.has("STRONGLY_TYPED") and trt11.has("STRONGLY_TYPED")
    assert trt8.has("num_bindings") and not trt10.has("num_bindings")  # bindings API removed in 10
    for gone_in_11 in ("FP16", "IInt8EntropyCalibrator2", "platform_has_fast_fp16", "OBEY_PRECISION_CONSTRAINTS"):
        assert trt10.has(gone_in_11) and not trt11.has(gone_in_11), gone_in_11
    # Names the linker stores only as the tail of a longer literal are listed exactly ...
    for tail_merged in ("INT8", "Builder", "Runtime", "Logger", "serialize"):
        assert all(s.has(tail_merged) for s in SURFACES), tail_merged
    # ... and a tail that the bindings never register is not a name.
    for tail in ("NT8", "uilder", "_builder_config", "async_v3"):
        assert not any(s.has(tail) for s in SURFACES), tail


# What each layer is known to call. If the collector stops seeing one of these (a refactor
# that hides the tensorrt module from it, a moved file), every surface check above would
# pass vacuously: this fails instead.
ENGINE_NAMES = {
    "Builder", "create_network", "OnnxParser", "parse_from_file", "create_builder_config",
    "set_flag", "BuilderFlag", "set_memory_pool_limit", "create_optimization_profile", "set_shape",
    "build_serialized_network", "create_timing_cache", "IInt8EntropyCalibrator2", "get_batch",
    "read_calibration_cache", "create_engine_inspector", "num_io_tensors", "STRONGLY_TYPED", "FP16",
    "set_calibration_profile", "deserialize_cuda_engine", "add_optimization_profile", "hardware_compatibility_level",
    "HardwareCompatibilityLevel", "OnnxParserFlag", "engine_host_code_allowed",
}
RUNTIME_NAMES = {
    "Runtime", "Logger", "deserialize_cuda_engine", "create_execution_context", "num_io_tensors",
    "get_tensor_name", "get_tensor_mode", "get_tensor_shape", "get_tensor_dtype", "get_tensor_profile_shape",
    "TensorIOMode", "set_input_shape", "set_tensor_address", "execute_async_v3", "engine_host_code_allowed",
    "load_runtime",
}


DOCTOR_NAMES = {"Builder", "Logger", "num_DLA_cores", "platform_has_fast_fp16", "platform_has_fast_int8"}


@pytest.mark.parametrize("package, expected", [("fcn_edge/engine/", ENGINE_NAMES), ("fcn_edge/runtime/", RUNTIME_NAMES),
                                               ("fcn_edge/doctor/", DOCTOR_NAMES)])
def test_collector_finds_the_names_each_layer_uses(collected, package, expected):
    names = {u.name for u in collected.usages if u.path.startswith(package)}
    assert expected <= names, f"the collector lost track of {package}: it missed {sorted(expected - names)}"


def test_dynamic_names_are_declared(collected):
    assert not collected.dynamic_without_names, "\n".join(collected.dynamic_without_names)


@pytest.mark.parametrize("surface", SURFACES, ids=[f"tensorrt-{s.label}" for s in SURFACES])
def test_used_names_exist(collected, surface):
    applicable = [u for u in collected.usages if not u.probe and u.applies_to(surface.version)]
    gated = {u.name for u in applicable if u.spec}
    missing = missing_names(collected, surface)
    print(
        f"\nTensorRT {surface.label}: {len(surface.names)} identifiers; "
        f"{len({u.name for u in applicable})} used names apply ({len(gated)} of them version-gated), "
        f"{len(missing)} missing"
    )
    assert not missing, "\n".join(missing)


def test_gates_agree_with_the_capability_witnesses(collected):
    """``if caps.X:  # trt-versions: SPEC`` must admit exactly the versions that have X."""
    checked = 0
    for gate in collected.gates:
        witness = WITNESS.get(gate.capability)
        if witness is None:
            continue
        for surface in SURFACES:
            has = surface.has(witness)
            admits = spec_admits(gate.spec, surface.version)
            assert has == admits, (
                f"{gate.path}:{gate.line}: gate 'caps.{gate.capability}' is marked trt-versions: {gate.spec}, "
                f"but TensorRT {surface.label} {'has' if has else 'lacks'} {witness}"
            )
            checked += 1
    assert checked > 0


def test_declared_capability_table_matches_the_surfaces():
    """The --dry-run table is derived from, and checked against, the real bindings."""
    by_label = {s.label: s for s in SURFACES}
    for row, label in SURFACE_OF_ROW.items():
        surface = by_label[label]
        caps = DECLARED[row]
        for capability, witness in WITNESS.items():
            if witness is None:
                continue
            assert getattr(caps, capability) == surface.has(witness), (
                f"DECLARED[{row!r}].{capability} is {getattr(caps, capability)}, but TensorRT {label} "
                f"{'has' if surface.has(witness) else 'lacks'} {witness}"
            )


def _without(surface_path: Path, name: str, out: Path) -> Path:
    """A copy of the surface file with the line ``name`` deleted."""
    lines = [line for line in surface_path.read_text().splitlines() if line.strip() != name]
    out.write_text("\n".join(lines) + "\n")
    return out


@pytest.mark.parametrize(
    "name, label",
    [
        ("create_builder_config", "10.3.0"),  # ungated, every version
        ("STRONGLY_TYPED", "10.16.1.11"),  # gated >=10,<11
        ("IInt8EntropyCalibrator2", "8.6.1"),  # gated <11, a dynamic trt-names entry
        ("read_calibration_cache", "10.16.1.11"),  # an override in a TensorRT subclass
        ("execute_async_v3", "10.3.0"),  # the runtime's
        ("Builder", "8.6.1"),  # also the tail of IBuilder, which stays listed
        ("INT8", "10.3.0"),  # also the tail of UINT8
    ],
)
def test_deleting_a_used_name_from_a_surface_file_fails(collected, tmp_path, name, label):
    assert name in {u.name for u in collected.usages}, f"{name} is no longer used: pick another name"
    original = load_surface(REPO / "tests" / "data" / "trt_api_surface" / f"tensorrt-{label}.txt")
    assert not missing_names(collected, original)
    edited = load_surface(_without(original.path, name, tmp_path / f"tensorrt-{label}.txt"))
    missing = missing_names(collected, edited)
    assert missing and all(f"'{name}'" in m for m in missing), missing


def test_collector_catches_ungated_and_undeclared_uses(tmp_path):
    root = tmp_path
    module = root / "fcn_edge" / "engine" / "probe_example.py"
    module.parent.mkdir(parents=True)
    module.write_text(
        "def ungated(trt, config):\n"
        "    return trt.BuilderFlag.FP16\n"
        "def gated(trt):  # trt-versions: <11\n"
        "    return trt.BuilderFlag.INT8 and trt.IInt8MinMaxCalibrator\n"
        "def dynamic(trt, name):\n"
        "    return getattr(trt.BuilderFlag, name)\n"
        "def probed(trt):\n"
        "    return hasattr(trt.BuilderFlag, 'FP16') and getattr(trt, 'IInt8Calibrator', None)\n"
        "def chained(engine: 'trt.ICudaEngine'):\n"
        "    ctx = engine.create_execution_context()\n"
        "    return ctx.made_up_method_name()\n"
        "def tails(trt):\n"
        "    return trt.uilder, trt.DataType.NT8\n"
    )
    collected = collect_usages([module], root=root)
    trt11 = next(s for s in SURFACES if s.label.startswith("11."))
    trt10 = next(s for s in SURFACES if s.label == "10.3.0")
    missing11 = "\n".join(missing_names(collected, trt11))
    missing10 = "\n".join(missing_names(collected, trt10))
    assert "probe_example.py:2: 'FP16'" in missing11  # ungated FP16 breaks on 11
    assert "IInt8MinMaxCalibrator" not in missing11  # gated <11: not checked against 11
    assert "'FP16'" not in missing10 and "IInt8" not in missing10
    assert "made_up_method_name" in missing10  # objects derived from annotated parameters
    assert "IInt8Calibrator" not in missing10 + missing11  # probes may be absent
    assert any("probe_example.py:6" in d for d in collected.dynamic_without_names)
    # the tail of a real name (IBuilder -> "uilder", UINT8 -> "NT8") is not a name
    assert "probe_example.py:13: 'uilder'" in missing10 and "probe_example.py:13: 'NT8'" in missing10


def test_version_specs():
    assert spec_admits("<11", version_tuple("10.16.1.11"))
    assert not spec_admits("<11", version_tuple("11.4.0.106"))
    assert spec_admits(">=8.6,<11", version_tuple("8.6.1"))
    assert not spec_admits(">=10", version_tuple("8.6.1"))
    assert spec_admits("==10", version_tuple("10.3.0"))
