"""fcn-edge's engine-build control flow, run against FakeTensorRT (tests/fake_tensorrt.py).

The fake builds nothing: these tests check what fcn-edge *asks* of TensorRT per version
(typing, flags, profiles, calibrator, caches, DLA), what it writes (engine + sidecar,
atomically) and how it refuses. Real builds are in tests/test_engine_trt.py (marker trt).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from fake_tensorrt import DLA_OPS, FakeDevice, fake_plan, make_fake_tensorrt
from fcn_edge.artifacts import check_engine_compatible, read_engine_sidecar
from fcn_edge.engine.artifact import write_engine
from fcn_edge.engine.build import build_engine, run_build
from fcn_edge.engine.capabilities import probe
from fcn_edge.engine.config import BuildConfig, ShapeOverrides, parse_shape_arguments
from fcn_edge.engine.summary import summarize_engine
from fcn_edge.errors import DataError, EngineBuildError, EngineMismatchError, MissingDependencyError
from tiny_models import make_images, make_tiny_onnx
from trt_usage import load_surfaces

# The tiny models' optimisation profile, from their ModelMeta: sizes 16x16..128x160, opt
# 32x48, batch 1..4 (tests/tiny_models.py).
PROFILE_NCHW = [[1, 3, 16, 16], [1, 3, 32, 48], [4, 3, 128, 160]]
PROFILE_NHWC = [[1, 16, 16, 3], [1, 32, 48, 3], [4, 128, 160, 3]]


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    """The product's own graphs: exported fcn8s_tiny, and its FP16 and Q/DQ INT8 variants."""
    root = tmp_path_factory.mktemp("onnx")
    make_tiny_onnx(root / "tiny_fp32.onnx")
    make_tiny_onnx(root / "tiny_fp16.onnx", precision="fp16")
    make_tiny_onnx(root / "tiny_int8.onnx", precision="int8")
    make_tiny_onnx(root / "tiny_fused.onnx", fused=True)
    make_tiny_onnx(root / "tiny_static.onnx", dynamic=False)
    return root


def graph_ops(path: Path):
    import onnx

    return [node.op_type for node in onnx.load(str(path)).graph.node]


def build(onnx: Path, version: str, config: BuildConfig = BuildConfig(), **fake_kwargs):
    trt = make_fake_tensorrt(version, **fake_kwargs)
    result = run_build(onnx, config, trt=trt, device=FakeDevice())
    return result, fake_plan(result.engine), trt


# -- the fake is honest about which names each release has ------------------------------------
@pytest.mark.parametrize("version", ["8.6.1", "10.3.0", "10.16.1.11", "11.4.0.106"])
def test_fake_has_only_names_the_real_release_has(version):
    surface = next(s for s in load_surfaces() if s.label == version)
    trt = make_fake_tensorrt(version)
    for holder in ("NetworkDefinitionCreationFlag", "BuilderFlag", "IBuilderConfig", "Builder", "ParserError"):
        names = [n for n in vars(getattr(trt, holder)) if not n.startswith("_")]
        absent = [n for n in names if not surface.has(n)]
        assert not absent, f"FakeTensorRT {version} {holder} has {absent}, the real one does not"
    for name in ("IInt8EntropyCalibrator2", "IInt8MinMaxCalibrator"):
        assert hasattr(trt, name) == surface.has(name)
    assert hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED") == surface.has("STRONGLY_TYPED")
    assert hasattr(trt.BuilderFlag, "FP16") == surface.has("FP16")


# -- typing and flags per version -------------------------------------------------------------
CASES = [
    # version, variant, precision, expected typing, network flags, builder flags
    ("8.6.1", "fp32", "auto", "weak", ["EXPLICIT_BATCH"], []),
    ("8.6.1", "fp32", "fp16", "weak", ["EXPLICIT_BATCH"], ["FP16"]),
    ("8.6.1", "fp16", "auto", "weak", ["EXPLICIT_BATCH"], ["FP16"]),
    ("8.6.1", "int8", "auto", "weak", ["EXPLICIT_BATCH"], ["INT8", "FP16"]),  # FP16 beside INT8 by default
    ("10.3.0", "fp32", "auto", "strong", ["STRONGLY_TYPED"], []),
    ("10.3.0", "fp32", "fp16", "weak", [], ["FP16"]),
    ("10.3.0", "fp16", "auto", "strong", ["STRONGLY_TYPED"], []),
    ("10.3.0", "int8", "int8", "strong", ["STRONGLY_TYPED"], []),
    ("10.16.1.11", "int8", "auto", "strong", ["STRONGLY_TYPED"], []),
    ("11.4.0.106", "fp16", "auto", "strong", [], []),  # every network is strongly typed on 11
    ("11.4.0.106", "int8", "auto", "strong", [], []),
    ("11.4.0.106", "fp32", "fp32", "strong", [], []),
]


@pytest.mark.parametrize("version, variant, precision, typing, network_flags, builder_flags", CASES)
def test_typing_and_flags_per_version(onnx_dir, version, variant, precision, typing, network_flags, builder_flags):
    result, plan, _ = build(onnx_dir / f"tiny_{variant}.onnx", version, BuildConfig(precision=precision))
    assert result.plan.typing == typing
    assert plan["network_flags"] == network_flags
    assert [f for f in plan["builder_flags"]] == builder_flags
    expected_precision = {"fp32": precision if precision != "auto" else "fp32"}.get(variant, variant)
    assert result.plan.precision == expected_precision
    assert plan["profiling_verbosity"] == "DETAILED"


def test_forced_weak_typing_on_10x_uses_flags(onnx_dir):
    result, plan, _ = build(onnx_dir / "tiny_int8.onnx", "10.3.0", BuildConfig(typing="weak", fp16_fallback=True))
    assert result.plan.typing == "weak"
    assert plan["network_flags"] == [] and plan["builder_flags"] == ["INT8", "FP16"]


def test_platform_without_fast_fp16_is_said_not_hidden(onnx_dir):
    result, plan, _ = build(onnx_dir / "tiny_fp32.onnx", "8.6.1", BuildConfig(precision="fp16"), fast_fp16=False)
    assert plan["builder_flags"] == ["FP16"]
    assert any("no fast FP16" in note for note in result.plan.notes)


# -- refusals ----------------------------------------------------------------------------------
REFUSALS = [
    ("11.4.0.106", "fp32", BuildConfig(precision="fp16"),
     ["FP16 from builder flags (BuilderFlag.FP16) is not available on TensorRT 11.4.0.106",
      "fcn-edge quantize tiny_fp32.onnx --precision fp16"]),
    ("11.4.0.106", "fp32", BuildConfig(precision="int8", int8_mode="implicit"),
     ["legacy INT8 calibrator", "not available on TensorRT 11.4.0.106", "--int8-mode explicit"]),
    ("11.4.0.106", "fp16", BuildConfig(typing="weak"), ["Weak typing", "not available on TensorRT 11.4.0.106"]),
    ("8.6.1", "fp16", BuildConfig(typing="strong"),
     ["STRONGLY_TYPED) is not available on TensorRT 8.6.1", "--typing weak"]),
    ("8.5.2", "fp32", BuildConfig(optimization_level=5),
     ["builder optimisation level", "not available on TensorRT 8.5.2", "omit --opt-level"]),
    ("10.3.0", "fp32", BuildConfig(precision="int8"),
     ["--int8-mode explicit needs a Q/DQ ONNX", "fcn-edge quantize tiny_fp32.onnx --precision int8 --calib",
      "--int8-mode implicit"]),
    ("11.4.0.106", "fp32", BuildConfig(precision="int8"),
     ["needs a Q/DQ ONNX", "has no legacy calibrator"]),
    ("10.3.0", "int8", BuildConfig(precision="fp16"), ["already quantised", "unquantised ONNX"]),
    ("10.3.0", "fp16", BuildConfig(precision="fp32"), ["carries FP16", "FP32 ONNX"]),
    ("10.3.0", "fp32", BuildConfig(precision="int8", int8_mode="implicit"),
     ["needs calibration images (--calib"]),
    ("10.3.0", "fp16", BuildConfig(fp16_fallback=True, precision="fp16"), ["--fp16-fallback"]),
    ("10.3.0", "fp16", BuildConfig(dla_core=0), ["--dla-core 0: this device has 0 DLA core(s)", "omit --dla-core"]),
    ("10.3.0", "fp16", BuildConfig(typing="strong", precision="fp16", dla_core=0), ["0 DLA core"]),
]


@pytest.mark.parametrize("version, variant, config, phrases", REFUSALS)
def test_refusals_say_what_to_do(onnx_dir, version, variant, config, phrases):
    with pytest.raises(EngineBuildError) as info:
        build(onnx_dir / f"tiny_{variant}.onnx", version, config)
    for phrase in phrases:
        assert phrase in str(info.value)


def test_dla_fp32_is_refused_and_fp16_falls_back(onnx_dir):
    with pytest.raises(EngineBuildError, match="DLA runs FP16 and INT8 only"):
        build(onnx_dir / "tiny_fp32.onnx", "10.3.0", BuildConfig(dla_core=1), num_dla_cores=2)
    result, plan, _ = build(onnx_dir / "tiny_fused.onnx", "8.6.1", BuildConfig(precision="fp16", dla_core=1),
                            num_dla_cores=2)
    assert plan["device"] == "DLA" and plan["dla_core"] == 1
    assert plan["builder_flags"] == ["FP16", "GPU_FALLBACK"]
    # the fused graph's Cast, Transpose and shape arithmetic cannot run on the (fake) DLA
    ops = graph_ops(onnx_dir / "tiny_fused.onnx")
    assert result.network_layers == len(ops)
    assert result.dla_gpu_fallback_layers == sum(op not in DLA_OPS for op in ops) > 0
    # an INT8 Q/DQ model on DLA before 11: weak typing, INT8 with FP16 for the rest
    result, plan, _ = build(onnx_dir / "tiny_int8.onnx", "10.3.0", BuildConfig(dla_core=0), num_dla_cores=2)
    assert result.plan.typing == "weak" and plan["builder_flags"] == ["INT8", "FP16", "GPU_FALLBACK"]
    # on 11 DLA networks are strongly typed like all others
    result, plan, _ = build(onnx_dir / "tiny_fp16.onnx", "11.4.0.106", BuildConfig(dla_core=0), num_dla_cores=2)
    assert result.plan.typing == "strong" and plan["builder_flags"] == ["GPU_FALLBACK"]


def test_parser_errors_name_nodes_and_ops(tmp_path):
    import onnx

    path = make_tiny_onnx(tmp_path / "bad.onnx")
    model = onnx.load(str(path))
    model.graph.node[1].op_type = "FakeUnsupportedOp"
    model.graph.node[1].name = "mystery_1"
    onnx.save(model, str(path))
    for version in ("8.6.1", "10.3.0"):  # node index -> ONNX name on 8.x, node_name() on 10.x
        with pytest.raises(EngineBuildError) as info:
            build(path, version)
        message = str(info.value)
        assert "bad.onnx" in message and "1 error(s)" in message
        assert "node 'mystery_1' (FakeUnsupportedOp): No importer registered" in message


# -- profiles ----------------------------------------------------------------------------------
def test_profile_shapes_come_from_meta(onnx_dir):
    _, plan, _ = build(onnx_dir / "tiny_fp32.onnx", "10.3.0")
    assert plan["profiles"] == [{"input": PROFILE_NCHW}]
    _, plan, _ = build(onnx_dir / "tiny_fused.onnx", "10.3.0")
    assert plan["profiles"] == [{"input": PROFILE_NHWC}]


def test_profile_shapes_from_the_command_line_in_the_input_layout(onnx_dir):
    shapes = ShapeOverrides(min=parse_shape_arguments(["1x8x8x3"]), opt=parse_shape_arguments(["input:2x32x32x3"]),
                            max=parse_shape_arguments(["4x128x128x3"]))
    _, plan, _ = build(onnx_dir / "tiny_fused.onnx", "8.6.1", BuildConfig(shapes=shapes))
    assert plan["profiles"] == [{"input": [[1, 8, 8, 3], [2, 32, 32, 3], [4, 128, 128, 3]]}]
    nchw = ShapeOverrides(opt=parse_shape_arguments(["1x3x32x32"]))
    with pytest.raises(EngineBuildError) as info:
        build(onnx_dir / "tiny_fused.onnx", "8.6.1", BuildConfig(shapes=nchw))
    assert "NHWC" in str(info.value) and "NxHxWx3" in str(info.value) and "fixes it to 3" in str(info.value)
    backwards = ShapeOverrides(min=parse_shape_arguments(["1x3x64x64"]), max=parse_shape_arguments(["1x3x32x32"]))
    with pytest.raises(EngineBuildError, match="min <= opt <= max"):
        build(onnx_dir / "tiny_fp32.onnx", "10.3.0", BuildConfig(shapes=backwards))
    with pytest.raises(EngineBuildError, match="does not have"):
        build(onnx_dir / "tiny_fp32.onnx", "10.3.0",
              BuildConfig(shapes=ShapeOverrides(opt=parse_shape_arguments(["image:1x3x32x32"]))))


def test_static_onnx_needs_no_profile(onnx_dir):
    result, plan, _ = build(onnx_dir / "tiny_static.onnx", "10.3.0")
    assert plan["profiles"] == [] and not result.plan.needs_profile
    assert result.plan.profiles[0].opt == (1, 3, 32, 48)


# -- workspace, optimisation level, timing cache -----------------------------------------------
def test_workspace_opt_level_and_timing_cache(onnx_dir, tmp_path):
    cache = tmp_path / "timing.cache"
    config = BuildConfig(workspace_bytes=1 << 30, optimization_level=5, timing_cache=cache)
    result, plan, _ = build(onnx_dir / "tiny_fp32.onnx", "10.3.0", config)
    assert plan["pools"] == {"WORKSPACE": 1 << 30} and plan["optimization_level"] == 5
    assert cache.read_bytes() == b"fake-timing-cache|timed" and result.timing_cache_saved == cache
    build(onnx_dir / "tiny_fp32.onnx", "10.3.0", config)  # loads the saved cache and extends it
    assert cache.read_bytes() == b"fake-timing-cache|timed|timed"
    cache.write_bytes(b"fake-timing-cache-other-gpu|timed")
    with pytest.raises(EngineBuildError, match="made by another GPU or TensorRT version"):
        build(onnx_dir / "tiny_fp32.onnx", "10.3.0", config)
    cache.write_bytes(b"garbage")
    with pytest.raises(EngineBuildError, match="cannot read this timing cache.*delete it"):
        build(onnx_dir / "tiny_fp32.onnx", "10.3.0", config)


# -- implicit INT8: the legacy calibrator, fed an iterable of batches ---------------------------
def _image_batches(folder: Path, count: int, batch: int):
    from fcn_edge.artifacts import read_onnx_meta
    from fcn_edge.precision.calibration import calibration_batches

    make_images(folder, count)
    meta = read_onnx_meta(make_tiny_onnx(folder.parent / "meta_source.onnx"))
    return calibration_batches(folder, meta, batch_size=batch, pad_last=True, progress=False, input_size=(32, 48))


@pytest.mark.parametrize("calibrator", ["entropy", "minmax"])
def test_implicit_int8_calibrates_then_reuses_the_cache(onnx_dir, tmp_path, calibrator):
    batches = _image_batches(tmp_path / "calib", 5, batch=2)
    cache = tmp_path / "model.calib.cache"
    config = BuildConfig(int8_mode="implicit", calibration_cache=cache, calibrator=calibrator)
    device = FakeDevice()
    trt = make_fake_tensorrt("8.6.1")
    result = run_build(onnx_dir / "tiny_fp32.onnx", config, batches, trt=trt, device=device)
    plan = fake_plan(result.engine)
    assert result.plan.precision == "int8" and result.plan.typing == "weak"
    assert result.plan.calibrator == {"entropy": "IInt8EntropyCalibrator2", "minmax": "IInt8MinMaxCalibrator"}[calibrator]
    assert result.plan.calibration == str(tmp_path / "calib")
    assert plan["builder_flags"] == ["INT8", "FP16"]
    assert plan["calibration"] == {"batch_size": 1, "batches": 3, "from_cache": False}  # 5 images, last padded
    assert device.uploads == 3 and device.memory == {}  # batch buffers freed after the build
    # the calibration profile is the first batch's shape
    assert plan["calibration_profile"] == {"input": [[2, 3, 32, 48]] * 3}
    assert cache.read_bytes().startswith(b"TRT-fake-EntropyCalibration2")

    cached = BuildConfig(int8_mode="implicit", calibration_cache=cache)  # no batches needed now
    result2, plan2, _ = build(onnx_dir / "tiny_fp32.onnx", "10.3.0", cached)
    assert plan2["calibration"]["from_cache"] is True and plan2["calibration"]["batches"] == 0
    assert result2.plan.calibration == "" and plan2["calibration_profile"] is None
    assert any("deprecated since TensorRT 10.1" in n for n in result2.plan.notes)


def _batches(shapes, dtype=np.float32):
    """A one-shot generator of {input: zeros(shape)} batches: it cannot be rewound."""
    for shape in shapes:
        yield {"input": np.zeros(shape, dtype)}


def test_a_one_shot_generator_calibrates_on_every_batch(onnx_dir, tmp_path):
    config = BuildConfig(int8_mode="implicit", calibration_cache=tmp_path / "c.cache")
    device = FakeDevice()
    result = run_build(onnx_dir / "tiny_fp32.onnx", config, _batches([(4, 3, 64, 80)] * 3),
                       trt=make_fake_tensorrt("10.3.0"), device=device)
    plan = fake_plan(result.engine)
    assert plan["calibration"]["batches"] == 3 and device.uploads == 3  # the first batch was not lost
    assert plan["calibration_profile"] == {"input": [[4, 3, 64, 80]] * 3}
    assert result.plan.calibration == "(calibration batches)"


@pytest.mark.parametrize(
    "shapes, phrases",
    [
        ([], ["the data loader provided no data", "a generator cannot be rewound"]),
        ([(8, 3, 32, 48)], ["are 8x3x32x48", "outside the optimisation profile 1x3x16x16 .. 4x3x128x160",
                            "opt shape 1x3x32x48"]),
        ([(2, 3, 32, 48), (2, 3, 32, 48), (2, 3, 64, 64)], ["batch 2 of input 'input'", "every batch must have the same shape"]),
    ],
)
def test_calibration_batches_are_checked(onnx_dir, tmp_path, shapes, phrases):
    config = BuildConfig(int8_mode="implicit", calibration_cache=tmp_path / "c.cache")
    device = FakeDevice()
    with pytest.raises(DataError) as info:
        run_build(onnx_dir / "tiny_fp32.onnx", config, _batches(shapes), trt=make_fake_tensorrt("10.3.0"), device=device)
    for phrase in phrases:
        assert phrase in str(info.value)
    assert device.memory == {}  # freed even when calibration failed
    assert not (tmp_path / "c.cache").exists()  # no scales from a calibration that failed


def test_unreadable_calibration_images_are_a_data_error(onnx_dir, tmp_path):
    from fcn_edge.artifacts import read_onnx_meta
    from fcn_edge.precision.calibration import calibration_batches

    (tmp_path / "list.txt").write_text("missing.png\n")
    batches = calibration_batches(tmp_path / "list.txt", read_onnx_meta(onnx_dir / "tiny_fp32.onnx"), progress=False)
    config = BuildConfig(int8_mode="implicit", calibration_cache=tmp_path / "c.cache")
    with pytest.raises(DataError, match="missing.png"):
        run_build(onnx_dir / "tiny_fp32.onnx", config, batches, trt=make_fake_tensorrt("10.3.0"), device=FakeDevice())


def test_calibration_batches_without_implicit_int8_are_said_unused(onnx_dir):
    result, plan, _ = build(onnx_dir / "tiny_int8.onnx", "10.3.0")
    assert plan["calibration"] is None
    trt = make_fake_tensorrt("10.3.0")
    result = run_build(onnx_dir / "tiny_int8.onnx", BuildConfig(), _batches([(1, 3, 32, 48)]), trt=trt, device=FakeDevice())
    assert fake_plan(result.engine)["calibration"] is None
    assert any("calibration data is not used" in note for note in result.plan.notes)


# -- artifacts ---------------------------------------------------------------------------------
def test_engine_and_sidecar_content(onnx_dir, tmp_path):
    onnx_path = onnx_dir / "tiny_int8.onnx"
    trt = make_fake_tensorrt("10.3.0")
    result = run_build(onnx_path, BuildConfig(workspace_bytes=1 << 28), trt=trt, device=FakeDevice())
    summary = summarize_engine(trt, result.engine)
    engine, sidecar = write_engine(tmp_path / "out" / "tiny.engine", result, summary,
                                   ["fcn-edge", "build-engine", str(onnx_path), "-o", "tiny.engine"])
    assert engine.read_bytes() == result.engine
    data = json.loads(sidecar.read_text())
    section = data["engine"]
    assert data["meta"]["precision"] == "int8" and data["meta"]["class_names"][1] == "road"
    assert data["meta"]["history"][-1].startswith("build-engine: TensorRT 10.3.0 int8 (strong typing)")
    assert section["tensorrt_version"] == "10.3.0"
    assert section["gpu_name"] == "Orin (fake)" and section["compute_capability"] == "8.7"
    assert section["precision"] == "int8" and section["typing"] == "strong" and section["int8_mode"] == "explicit"
    assert section["flags"] == ["NetworkDefinitionCreationFlag.STRONGLY_TYPED"]
    assert section["profiles"] == [{"input": "input", "min": PROFILE_NCHW[0], "opt": PROFILE_NCHW[1], "max": PROFILE_NCHW[2]}]
    assert section["onnx_sha256"] == hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    assert section["engine_sha256"] == hashlib.sha256(result.engine).hexdigest()
    assert section["workspace_bytes"] == 1 << 28 and section["build_seconds"] == round(result.build_seconds, 3)
    assert section["built_at"].endswith("Z") and section["layer_count"] == len(fake_plan(result.engine)["layers"])
    assert section["io_tensors"][0] == {"name": "input", "mode": "input", "shape": [-1, 3, -1, -1], "dtype": "float32",
                                        "profile": dict(zip(("min", "opt", "max"), PROFILE_NCHW))}
    assert "fcn-edge build-engine" in section["rebuild_command"]
    assert summary.layer_precisions == {"int8": len(fake_plan(result.engine)["layers"])}

    meta, record = read_engine_sidecar(engine)
    assert meta.precision == "int8" and record.typing == "strong"
    check_engine_compatible(section, "10.3.0", "Orin (fake)", (8, 7))
    with pytest.raises(EngineMismatchError, match="rebuild it on this machine with `fcn-edge build-engine"):
        check_engine_compatible(section, "10.16.1.11", "Orin (fake)", (8, 7))
    with pytest.raises(EngineMismatchError, match="compute capability 8.6"):
        check_engine_compatible(section, "10.3.0", "NVIDIA GeForce RTX 3090", "8.6")


def test_engine_write_is_atomic(onnx_dir, tmp_path, monkeypatch):
    result, _, _ = build(onnx_dir / "tiny_fp32.onnx", "10.3.0")
    target = tmp_path / "m.engine"
    target.write_bytes(b"previous engine")
    real_replace = os.replace

    def failing_replace(src, dst):
        if str(dst) == str(target):
            raise OSError("disk full (simulated)")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated"):
        write_engine(target, result)
    assert target.read_bytes() == b"previous engine"  # never a partial engine under the name
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    monkeypatch.setattr(os, "replace", real_replace)
    write_engine(target, result)
    assert target.read_bytes() == result.engine


def test_onnx_without_meta_builds_but_cannot_be_written(tmp_path):
    import onnx

    path = make_tiny_onnx(tmp_path / "nometa.onnx", dynamic=False)
    model = onnx.load(str(path))
    del model.metadata_props[:]
    onnx.save(model, str(path))
    result, _, _ = build(path, "10.3.0")
    with pytest.raises(EngineBuildError, match="carries no ModelMeta"):
        write_engine(tmp_path / "x.engine", result)
    assert not (tmp_path / "x.engine").exists()


def test_build_engine_returns_bytes(onnx_dir):
    trt = make_fake_tensorrt("11.4.0.106")
    engine = build_engine(onnx_dir / "tiny_fp16.onnx", BuildConfig(), trt=trt, device=FakeDevice())
    assert isinstance(engine, bytes) and fake_plan(engine)["network_flags"] == []


def test_probe_reads_capabilities_from_the_module():
    caps8, caps11 = probe(make_fake_tensorrt("8.5.2")), probe(make_fake_tensorrt("11.4.0.106"))
    assert not caps8.strongly_typed and caps8.fp16_flag and caps8.legacy_calibrator and not caps8.optimization_level
    assert caps11.strongly_typed and not caps11.fp16_flag and not caps11.legacy_calibrator


def test_missing_tensorrt_gives_one_clear_error(onnx_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt -> ImportError
    with pytest.raises(MissingDependencyError) as info:
        run_build(onnx_dir / "tiny_fp32.onnx", BuildConfig(), device=FakeDevice())
    message = str(info.value)
    assert "'tensorrt' is not installed" in message and "pip install tensorrt" in message
    assert "python3-libnvinfer" in message and "--system-site-packages" in message


def test_engine_file_is_checked_against_its_sidecar(onnx_dir, tmp_path):
    from fcn_edge.artifacts import check_engine_file

    result, _, _ = build(onnx_dir / "tiny_fp16.onnx", "10.3.0")
    engine, _ = write_engine(tmp_path / "m.engine", result)
    _, record = read_engine_sidecar(engine)
    check_engine_file(engine, record)
    engine.write_bytes(b"another engine")
    with pytest.raises(EngineMismatchError, match="not the one its sidecar describes"):
        check_engine_file(engine, record)


def test_tensorrt_present_but_broken_is_not_called_missing(onnx_dir, tmp_path, monkeypatch):
    package = tmp_path / "site" / "tensorrt"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('libnvinfer.so.10: cannot open shared object file')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "tensorrt", raising=False)
    with pytest.raises(MissingDependencyError) as info:
        run_build(onnx_dir / "tiny_fp32.onnx", BuildConfig(), device=FakeDevice())
    message = str(info.value)
    assert "installed but cannot load" in message and "libnvinfer.so.10" in message
    assert "pip install tensorrt" in message


# -- the file-to-file step: build_engine_file and the dry run ------------------------------------
def test_build_engine_file_reads_the_onnx_once_and_writes_both_files(onnx_dir, tmp_path, monkeypatch):
    import fcn_edge.engine.onnx_facts as onnx_facts
    from fcn_edge.engine.engine_file import build_engine_file

    hashed = []
    real_sha256 = onnx_facts.file_sha256
    monkeypatch.setattr(onnx_facts, "file_sha256", lambda path: hashed.append(path) or real_sha256(path))
    trt = make_fake_tensorrt("10.3.0")
    built = build_engine_file(onnx_dir / "tiny_fp16.onnx", tmp_path / "m.engine", trt=trt, device=FakeDevice(),
                              rebuild_args=["fcn-edge", "build-engine", "tiny_fp16.onnx"])
    assert hashed == [onnx_dir / "tiny_fp16.onnx"]  # parsed and hashed once for facts, plan and sidecar
    assert built.engine_path.read_bytes() == built.result.engine and built.sidecar_path == tmp_path / "m.engine.json"
    assert built.summary is not None and built.summary.layer_precisions == {"fp16": built.summary.layer_count}
    meta, record = read_engine_sidecar(built.engine_path)
    assert meta.precision == "fp16" and record.layer_count == built.summary.layer_count
    assert record.rebuild_command == "fcn-edge build-engine tiny_fp16.onnx"


def test_build_engine_file_refuses_an_onnx_without_meta_before_building(tmp_path, monkeypatch):
    import onnx

    from fcn_edge.engine.engine_file import build_engine_file

    path = make_tiny_onnx(tmp_path / "nometa.onnx")
    model = onnx.load(str(path))
    del model.metadata_props[:]
    onnx.save(model, str(path))
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # had it got as far as TensorRT, this would say so
    with pytest.raises(EngineBuildError, match="carries no ModelMeta.*fcn-edge export"):
        build_engine_file(path, tmp_path / "x.engine")
    assert list(tmp_path.iterdir()) == [path]


def test_a_failing_engine_inspector_is_a_warning(onnx_dir, tmp_path, caplog):
    from fcn_edge.engine.engine_file import build_engine_file

    trt = make_fake_tensorrt("10.3.0")

    def broken_inspector(self):
        raise RuntimeError("inspector exploded (simulated)")

    trt.ICudaEngine.create_engine_inspector = broken_inspector
    built = build_engine_file(onnx_dir / "tiny_fp32.onnx", tmp_path / "m.engine", trt=trt, device=FakeDevice())
    assert built.summary is None and "simulated" in built.summary_error
    assert "engine inspector failed" in caplog.text
    _, record = read_engine_sidecar(built.engine_path)
    assert record.layer_count is None and record.engine_sha256 == hashlib.sha256(built.result.engine).hexdigest()


def test_plan_engine_build_declared_or_probed(onnx_dir, monkeypatch):
    from fcn_edge.engine.engine_file import plan_engine_build

    planned = plan_engine_build(onnx_dir / "tiny_int8.onnx", trt_version="8.6")
    assert not planned.probed and planned.capabilities.version == "8.6"
    assert planned.plan.builder_flags == ("INT8", "FP16") and planned.facts.precision == "int8"
    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_tensorrt("11.4.0.106"))
    planned = plan_engine_build(onnx_dir / "tiny_int8.onnx")
    assert planned.probed and planned.plan.typing == "strong" and planned.plan.network_flags == ()
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(EngineBuildError, match="needs a TensorRT version: --trt-version"):
        plan_engine_build(onnx_dir / "tiny_int8.onnx")


def test_fp16_fallback_on_tensorrt_11_says_to_drop_it(onnx_dir):
    with pytest.raises(EngineBuildError) as info:
        build(onnx_dir / "tiny_int8.onnx", "11.4.0.106", BuildConfig(fp16_fallback=True))
    assert "--fp16-fallback" in str(info.value) and "not available on TensorRT 11.4.0.106" in str(info.value)
    assert "drop --fp16-fallback" in str(info.value)


def test_the_engine_layer_imports_neither_tensorrt_nor_the_precision_layer():
    """Every engine module imports without TensorRT, onnx or torch, and never the precision layer
    (the calibration batches are handed in)."""
    import subprocess

    code = (
        "import pkgutil, importlib, sys, fcn_edge.engine as e\n"
        "names = [importlib.import_module('fcn_edge.engine.' + m.name).__name__ for m in pkgutil.iter_modules(e.__path__)]\n"
        "print(len(names), sorted(m for m in ('tensorrt', 'onnx', 'torch', 'fcn_edge.precision') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    count, loaded = done.stdout.split(" ", 1)
    assert int(count) >= 11 and loaded.strip() == "[]"
