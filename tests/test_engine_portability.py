"""Version-compatible and hardware-compatible engines: planned where TensorRT supports them,
refused where it does not (8.5, JetPack, pre-Ampere), recorded in the sidecar, and honoured by
the compatibility check the runtime makes on load. FakeTensorRT stands in for TensorRT."""

from __future__ import annotations

import pytest

from fake_tensorrt import FakeDevice, fake_plan, make_fake_tensorrt
from fcn_edge.artifacts import EngineRecord, check_engine_compatible, read_engine_sidecar
from fcn_edge.engine.config import BuildConfig
from fcn_edge.engine.engine_file import build_engine_file, plan_engine_build
from fcn_edge.errors import EngineBuildError, EngineMismatchError
from tiny_models import make_tiny_onnx


@pytest.fixture(scope="module")
def fp16_onnx(tmp_path_factory):
    return make_tiny_onnx(tmp_path_factory.mktemp("portable") / "tiny_fp16.onnx", precision="fp16")


@pytest.fixture
def not_jetson(monkeypatch):
    import fcn_edge.video.capabilities as capabilities

    monkeypatch.setattr(capabilities, "is_jetson", lambda: False)


def _record(version="10.3.0", cc="8.6", gpu="NVIDIA RTX A4000", **fields) -> EngineRecord:
    return EngineRecord(tensorrt_version=version, gpu_name=gpu, compute_capability=cc, precision="fp16",
                        typing="strong", flags=(), profiles=(), onnx_path="m.onnx", onnx_sha256="", build_seconds=1.0,
                        built_at="2026-11-30T00:00:00Z", rebuild_command="fcn-edge build-engine m.onnx", **fields)


# -- building ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("exclude", [False, True])
def test_a_version_compatible_build_sets_the_flags_and_records_them(fp16_onnx, tmp_path, exclude):
    trt = make_fake_tensorrt("10.3.0")
    config = BuildConfig(version_compatible=True, exclude_lean_runtime=exclude)
    built = build_engine_file(fp16_onnx, tmp_path / "m.engine", config, trt=trt, device=FakeDevice())
    plan = fake_plan(built.result.engine)
    assert plan["builder_flags"] == ["VERSION_COMPATIBLE"] + (["EXCLUDE_LEAN_RUNTIME"] if exclude else [])
    assert plan["parser_flags"] == ["NATIVE_INSTANCENORM"]  # "required when building version-compatible engines"
    # the embedded lean runtime is host code: the build's own summary had to allow it to deserialise
    assert built.summary is not None and built.precision_check.verdict == "ok"
    _, record = read_engine_sidecar(built.engine_path)
    assert record.version_compatible and record.lean_runtime == ("excluded" if exclude else "embedded")
    assert record.hardware_compatibility == ""
    assert any("version-compatible engine runs on later TensorRT releases" in n for n in built.result.plan.notes)


def test_a_hardware_compatible_build_sets_the_level(fp16_onnx, tmp_path, not_jetson):
    trt = make_fake_tensorrt("10.16.1.11")
    device = FakeDevice("NVIDIA RTX A4000", (8, 6))
    built = build_engine_file(fp16_onnx, tmp_path / "m.engine", BuildConfig(hardware_compatibility="same_compute_capability"),
                              trt=trt, device=device)
    assert fake_plan(built.result.engine)["hardware_compatibility_level"] == "SAME_COMPUTE_CAPABILITY"
    assert read_engine_sidecar(built.engine_path)[1].hardware_compatibility == "same_compute_capability"


@pytest.mark.parametrize("version, config, phrase", [
    ("8.5", BuildConfig(version_compatible=True), "Version-compatible engines (BuilderFlag.VERSION_COMPATIBLE) is "
                                                  "not available on TensorRT 8.5: they need TensorRT 8.6"),
    ("8.5", BuildConfig(hardware_compatibility="ampere_plus"), "not available on TensorRT 8.5"),
    ("10.3", BuildConfig(hardware_compatibility="same_compute_capability"),
     "SAME_COMPUTE_CAPABILITY (IBuilderConfig.hardware_compatibility_level) is not available on TensorRT 10.3"),
    ("10.3", BuildConfig(hardware_compatibility="ampere_plus", dla_core=0), "not on JetPack"),
])
def test_the_dry_run_refuses_what_a_release_lacks(fp16_onnx, version, config, phrase):
    with pytest.raises(EngineBuildError) as info:
        plan_engine_build(fp16_onnx, config, trt_version=version)
    assert phrase in str(info.value)


def test_exclude_lean_runtime_needs_version_compatible():
    with pytest.raises(EngineBuildError, match="--exclude-lean-runtime applies to --version-compatible"):
        BuildConfig(exclude_lean_runtime=True)


def test_hardware_compatibility_is_refused_on_a_jetson_and_before_ampere(fp16_onnx, tmp_path, monkeypatch):
    import fcn_edge.video.capabilities as capabilities

    config = BuildConfig(hardware_compatibility="ampere_plus")
    monkeypatch.setattr(capabilities, "is_jetson", lambda: True)
    with pytest.raises(EngineBuildError, match="not on JetPack"):
        build_engine_file(fp16_onnx, tmp_path / "m.engine", config, trt=make_fake_tensorrt("10.3.0"),
                          device=FakeDevice("Orin (fake)", (8, 7)))
    monkeypatch.setattr(capabilities, "is_jetson", lambda: False)
    with pytest.raises(EngineBuildError, match="built on Ampere or later GPUs .*this GPU's is 7.5"):
        build_engine_file(fp16_onnx, tmp_path / "m.engine", config, trt=make_fake_tensorrt("10.3.0"),
                          device=FakeDevice("Tesla T4", (7, 5)))
    assert not (tmp_path / "m.engine").exists()


# -- running: the compatibility check and the fake runtime agree ----------------------------------------
@pytest.mark.parametrize("built, running, runs", [
    ("10.3.0", "10.16.1.11", True), ("10.3.0", "11.4.0.106", True), ("8.6.1", "10.3.0", True),
    ("8.6.1", "11.4.0.106", False), ("10.16.1.11", "10.3.0", False), ("11.4.0.106", "10.16.1.11", False),
])
def test_a_version_compatible_engine_runs_on_later_releases(built, running, runs):
    record = _record(built, version_compatible=True, lean_runtime="embedded")
    if runs:
        check_engine_compatible(record, running, "NVIDIA RTX A4000", (8, 6))
    else:
        with pytest.raises(EngineMismatchError, match=f"built version-compatible with TensorRT {built}.*not on this "
                                                      f"machine's TensorRT {running}.*rebuild"):
            check_engine_compatible(record, running, "NVIDIA RTX A4000", (8, 6))
    with pytest.raises(EngineMismatchError, match=f"built with TensorRT {built}, this machine has TensorRT {running}"):
        check_engine_compatible(_record(built), running, "NVIDIA RTX A4000", (8, 6))


def test_an_excluded_lean_runtime_needs_the_library_loaded():
    record = _record("10.3.0", version_compatible=True, lean_runtime="excluded")
    check_engine_compatible(record, "10.3.0", "NVIDIA RTX A4000", (8, 6))  # its own release runs it
    with pytest.raises(EngineMismatchError, match="lean runtime excluded.*FCN_EDGE_LEAN_RUNTIME"):
        check_engine_compatible(record, "10.16.1.11", "NVIDIA RTX A4000", (8, 6))
    check_engine_compatible(record, "10.16.1.11", "NVIDIA RTX A4000", (8, 6), lean_runtime_loaded=True)


@pytest.mark.parametrize("level, gpu, cc, runs", [
    ("ampere_plus", "NVIDIA GeForce RTX 4090", (8, 9), True), ("ampere_plus", "NVIDIA H100", (9, 0), True),
    ("ampere_plus", "Tesla T4", (7, 5), False), ("same_compute_capability", "NVIDIA GeForce RTX 3090", (8, 6), True),
    ("same_compute_capability", "NVIDIA GeForce RTX 4090", (8, 9), False), ("", "NVIDIA GeForce RTX 3090", (8, 6), False),
])
def test_a_hardware_compatible_engine_runs_on_other_gpus(level, gpu, cc, runs):
    record = _record(hardware_compatibility=level)
    if runs:
        check_engine_compatible(record, "10.3.0", gpu, cc)
    else:
        with pytest.raises(EngineMismatchError, match="rebuild"):
            check_engine_compatible(record, "10.3.0", gpu, cc)


def test_the_sidecar_fields_are_read_field_by_field(tmp_path):
    from fcn_edge.errors import MetaError

    data = _record(version_compatible=True, lean_runtime="embedded", hardware_compatibility="ampere_plus").to_dict()
    assert EngineRecord.from_dict(data).lean_runtime == "embedded"
    for key, value, phrase in (("version_compatible", "yes", "true or false"),
                               ("lean_runtime", "inside", "one of '', 'embedded', 'excluded'"),
                               ("hardware_compatibility", "any", "one of"),
                               ("precision_check", "fine", "one of")):
        with pytest.raises(MetaError, match=f"engine.{key} must be .*{phrase}"):
            EngineRecord.from_dict(dict(data, **{key: value}), "m.engine.json")
    with pytest.raises(MetaError, match="engine.lean_runtime must be 'embedded' or 'excluded' exactly when"):
        EngineRecord.from_dict(dict(data, version_compatible=False), "m.engine.json")


@pytest.mark.parametrize("exclude, allowed, runs", [(False, True, True), (False, False, False), (True, False, True)])
def test_the_fake_runtime_follows_the_host_code_rule(fp16_onnx, tmp_path, exclude, allowed, runs):
    """An embedded lean runtime is host code: TensorRT deserialises it only with
    engine_host_code_allowed (default False)."""
    trt = make_fake_tensorrt("10.3.0")
    built = build_engine_file(fp16_onnx, tmp_path / "m.engine", BuildConfig(version_compatible=True,
                              exclude_lean_runtime=exclude), trt=trt, device=FakeDevice())
    runtime = trt.Runtime(None)
    runtime.engine_host_code_allowed = allowed
    assert (runtime.deserialize_cuda_engine(built.engine_path.read_bytes()) is not None) is runs
