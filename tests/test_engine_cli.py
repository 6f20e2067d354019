"""``fcn-edge build-engine --dry-run`` and ``fcn-edge info``, without TensorRT."""

from __future__ import annotations

import json
import sys

import pytest

from engine_onnx_fixtures import make_tiny_onnx
from fake_tensorrt import FakeDevice, make_fake_tensorrt
from fcn_edge.cli.main import main
from fcn_edge.engine.artifact import write_engine
from fcn_edge.engine.build import run_build
from fcn_edge.engine.config import BuildConfig
from fcn_edge.engine.summary import summarize_engine


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    return {v: make_tiny_onnx(root / f"tiny_{v}.onnx", v) for v in ("fp32", "fp16", "int8", "fused")}


@pytest.fixture
def no_tensorrt(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)


def dry_run(capsys, *args):
    code = main(["build-engine", *map(str, args), "--dry-run"])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize(
    "version, variant, precision, expected",
    [
        ("8.6", "fp32", "fp16", ["weakly typed", "network flags     EXPLICIT_BATCH", "builder flags     FP16"]),
        ("10.3", "fp16", "auto", ["strongly typed", "network flags     STRONGLY_TYPED", "builder flags     (none)"]),
        ("11.4", "fp16", "auto", ["strongly typed (every network is", "network flags     (none)",
                                  "builder flags     (none)", "engine precision  fp16"]),
        ("8.6", "int8", "auto", ["builder flags     INT8", "int8 mode         explicit", "calibrator        none"]),
        ("10.3", "int8", "auto", ["strongly typed", "engine precision  int8"]),
        ("11.4", "int8", "int8", ["strongly typed", "engine precision  int8"]),
    ],
)
def test_dry_run_plans_per_version(capsys, no_tensorrt, models, version, variant, precision, expected):
    code, out, err = dry_run(capsys, models[variant], "--trt-version", version, "--precision", precision)
    assert code == 0, err
    assert f"declared capabilities of TensorRT {version}" in out
    assert "optimisation profile 'input': min 1x3x16x16, opt 1x3x32x48, max 4x3x64x64" in out
    for phrase in expected:
        assert phrase in out


def test_dry_run_implicit_int8_on_10_and_11(capsys, no_tensorrt, models, tmp_path):
    code, out, err = dry_run(capsys, models["fp32"], "--trt-version", "10.3", "--int8-mode", "implicit",
                             "--calib", tmp_path, "-o", tmp_path / "m.engine")
    assert code == 0, err
    assert f"calibrator        IInt8EntropyCalibrator2 over {tmp_path}" in out
    assert f"calibration cache {tmp_path / 'm.engine.calib.cache'}" in out
    code, out, err = dry_run(capsys, models["fp32"], "--trt-version", "11.4", "--int8-mode", "implicit",
                             "--calib", tmp_path)
    assert code == 2 and "not available on TensorRT 11.4" in err and "--int8-mode explicit" in err


def test_dry_run_refusal_is_one_line_and_exit_2(capsys, no_tensorrt, models):
    code, out, err = dry_run(capsys, models["fp32"], "--trt-version", "11.4", "--precision", "fp16")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "fcn-edge quantize tiny_fp32.onnx --precision fp16" in err


def test_dry_run_needs_a_version_without_tensorrt(capsys, no_tensorrt, models):
    code, _, err = dry_run(capsys, models["fp32"])
    assert code == 2 and "--trt-version" in err


def test_dry_run_fused_shapes_in_nhwc(capsys, no_tensorrt, models):
    code, out, err = dry_run(capsys, models["fused"], "--trt-version", "10.16", "--opt", "2x64x64x3", "--max", "4x64x64x3")
    assert code == 0, err
    assert "min 2x64x64x3, opt 2x64x64x3, max 4x64x64x3" in out
    code, _, err = dry_run(capsys, models["fused"], "--trt-version", "10.16", "--opt", "1x3x64x64")
    assert code == 2 and "NxHxWx3" in err


def test_real_build_without_tensorrt_says_how_to_install(capsys, no_tensorrt, models, tmp_path):
    code = main(["build-engine", str(models["fp16"]), "-o", str(tmp_path / "m.engine")])
    err = capsys.readouterr().err
    assert code == 2 and "pip install tensorrt" in err and "python3-libnvinfer" in err
    assert not (tmp_path / "m.engine").exists()


def test_info_onnx(capsys, models):
    assert main(["info", str(models["int8"])]) == 0
    out = capsys.readouterr().out
    assert "graph precision   int8" in out and "Q/DQ nodes" in out
    assert "input             input: float32 ?x3x?x?" in out and "classes           4" in out
    assert main(["info", str(models["fused"]), "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["inputs"][0]["dtype"] == "uint8" and data["meta"]["input_layout"] == "NHWC"


def test_info_engine_from_sidecar_without_tensorrt(capsys, models, tmp_path, monkeypatch):
    trt = make_fake_tensorrt("10.3.0")
    result = run_build(models["fp16"], BuildConfig(), trt=trt, device=FakeDevice())
    engine, _ = write_engine(tmp_path / "m.engine", result, summarize_engine(trt, result.engine),
                             ["fcn-edge", "build-engine", str(models["fp16"]), "-o", str(tmp_path / "m.engine")])
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    assert main(["info", str(engine)]) == 0
    out = capsys.readouterr().out
    assert "built with        TensorRT 10.3.0 on Orin (fake) (compute capability 8.7)" in out
    assert "engine precision  fp16, strong typing" in out
    assert "input   (sidecar) input: float32 ?x3x?x?  profile 1x3x16x16 / 1x3x32x48 / 4x3x64x64" in out
    assert "tensorrt is not installed" in out
    (tmp_path / "m.engine.json").unlink()
    assert main(["info", str(engine)]) == 2
    assert "sidecar m.engine.json is missing" in capsys.readouterr().err


def test_build_command_prints_the_summary_and_writes_both_files(capsys, models, tmp_path, monkeypatch):
    """The non-dry-run path of the command, with FakeTensorRT standing in for TensorRT."""
    import fcn_edge.engine.cuda_driver as cuda_driver

    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_tensorrt("8.6.1", num_dla_cores=2))
    monkeypatch.setattr(cuda_driver, "cuda_driver", lambda: FakeDevice("Xavier (fake)", (7, 2)))
    engine = tmp_path / "m.engine"
    code = main(["build-engine", str(models["fused"]), "-o", str(engine), "--precision", "fp16", "--dla-core", "1",
                 "--workspace", "256M", "--opt-level", "4", "--timing-cache", str(tmp_path / "t.cache")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"built {engine} in" in out and "on Xavier (fake) (compute capability 7.2)" in out
    assert "builder flags     FP16, GPU_FALLBACK" in out and "workspace         256 MiB" in out
    assert "DLA               5 of 7 layers can run on DLA core 1; 2 fall back to the GPU" in out
    assert "layer precision   fp16 7" in out and "timing cache      saved to" in out
    section = json.loads((tmp_path / "m.engine.json").read_text())["engine"]
    assert section["dla_core"] == 1 and section["optimization_level"] == 4
    assert "--dla-core 1" in section["rebuild_command"] and "--precision fp16" in section["rebuild_command"]
    assert engine.is_file()
