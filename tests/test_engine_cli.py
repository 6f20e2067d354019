"""``fcn-edge build-engine`` (dry run, and real builds with FakeTensorRT standing in for
TensorRT) and ``fcn-edge info``."""

from __future__ import annotations

import json
import sys

import pytest

from fake_tensorrt import DLA_OPS, FakeDevice, expected_precisions, fake_plan, make_fake_tensorrt
from fcn_edge.cli.main import main
from fcn_edge.engine.config import BuildConfig
from fcn_edge.engine.engine_file import build_engine_file
from tiny_models import make_images, make_tiny_checkpoint, make_tiny_onnx

PROFILE_TEXT = "optimisation profile 'input': min 1x3x16x16, opt 1x3x32x48, max 4x3x128x160"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    return {
        "fp32": make_tiny_onnx(root / "tiny_fp32.onnx"),
        "fp16": make_tiny_onnx(root / "tiny_fp16.onnx", precision="fp16"),
        "int8": make_tiny_onnx(root / "tiny_int8.onnx", precision="int8"),
        "int8-trt8": make_tiny_onnx(root / "tiny_int8-trt8.onnx", precision="int8", min_tensorrt=8),
        "fused": make_tiny_onnx(root / "tiny_fused.onnx", fused=True),
    }


@pytest.fixture
def fake_machine(monkeypatch):
    """FakeTensorRT 10.3.0 importable as tensorrt, and a fake GPU behind cuda_driver()."""
    import fcn_edge.engine.cuda_driver as cuda_driver

    trt = make_fake_tensorrt("10.3.0")
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(cuda_driver, "cuda_driver", lambda: FakeDevice())
    return trt


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
        ("8.6", "int8-trt8", "auto", ["builder flags     INT8", "int8 mode         explicit", "calibrator        none"]),
        ("10.3", "int8", "auto", ["strongly typed", "engine precision  int8"]),
        ("11.4", "int8", "int8", ["strongly typed", "engine precision  int8"]),
    ],
)
def test_dry_run_plans_per_version(capsys, no_tensorrt, models, version, variant, precision, expected):
    code, out, err = dry_run(capsys, models[variant], "--trt-version", version, "--precision", precision)
    assert code == 0, err
    assert f"declared capabilities of TensorRT {version}" in out
    assert PROFILE_TEXT in out
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


def test_dry_run_refuses_an_old_uint8_mask_head(capsys, no_tensorrt, tmp_path):
    from test_engine_build_fake import int32_to_uint8_mask

    path = int32_to_uint8_mask(tmp_path / "old.onnx")
    code, out, err = dry_run(capsys, path, "--trt-version", "8.6")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "node '/model/Cast_1' (Cast) converts int32 to uint8, which TensorRT 8.6 cannot build" in err


def test_dry_run_needs_a_version_without_tensorrt(capsys, no_tensorrt, models):
    code, _, err = dry_run(capsys, models["fp32"])
    assert code == 2 and "--trt-version" in err


def test_calib_without_implicit_int8_is_refused(capsys, no_tensorrt, models, tmp_path):
    code, out, err = dry_run(capsys, models["fp32"], "--trt-version", "10.3", "--calib", tmp_path)
    assert code == 2 and out == ""
    assert "--calib feeds TensorRT's legacy calibrator (--int8-mode implicit)" in err
    assert f"fcn-edge quantize {models['fp32']} --precision int8 --calib {tmp_path}" in err


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
    assert "input             input: float32 ?x3x?x?" in out and "classes           5" in out
    assert main(["info", str(models["fused"]), "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["inputs"][0]["dtype"] == "uint8" and data["meta"]["input_layout"] == "NHWC"
    assert data["kind"] == "onnx" and data["precision_in_graph"] == "fp32" and "_meta" not in data


def _engine(models, tmp_path, variant="fp16"):
    trt = make_fake_tensorrt("10.3.0")
    engine = tmp_path / "m.engine"
    build_engine_file(models[variant], engine, BuildConfig(), trt=trt, device=FakeDevice(),
                      rebuild_args=["fcn-edge", "build-engine", str(models[variant]), "-o", str(engine)])
    return engine


def test_info_engine_from_sidecar_without_tensorrt(capsys, no_tensorrt, models, tmp_path):
    engine = _engine(models, tmp_path)
    assert main(["info", str(engine)]) == 0
    out = capsys.readouterr().out
    assert "built with        TensorRT 10.3.0 on Orin (fake) (compute capability 8.7)" in out
    assert "engine precision  fp16, strong typing" in out
    assert "input   (sidecar) input: float32 ?x3x?x?  profile 1x3x16x16 / 1x3x32x48 / 4x3x128x160" in out
    assert "tensorrt is not installed" in out and "problem" not in out
    (tmp_path / "m.engine.json").unlink()
    assert main(["info", str(engine)]) == 2
    assert "sidecar m.engine.json is missing" in capsys.readouterr().err


def test_info_engine_with_tensorrt_checks_it_against_this_machine(capsys, fake_machine, models, tmp_path):
    engine = _engine(models, tmp_path)
    assert main(["info", str(engine)]) == 0
    out = capsys.readouterr().out
    assert "this machine      TensorRT 10.3.0, Orin (fake) (8.7): matches" in out
    assert "input   (engine) input: float32 ?x3x?x?  profile 1x3x16x16 / 1x3x32x48 / 4x3x128x160" in out
    assert "layers            " in out and "fp16" in out
    assert main(["info", str(engine), "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["compatible"] is True and data["problems"] == [] and data["live_io_tensors"][0]["name"] == "input"


def test_info_engine_without_sidecar_reads_the_engine_itself(capsys, fake_machine, models, tmp_path):
    engine = _engine(models, tmp_path)
    (tmp_path / "m.engine.json").unlink()
    assert main(["info", str(engine)]) == 1  # the runtime would refuse it
    out = capsys.readouterr().out
    assert "sidecar           " in out and "m.engine.json is missing" in out
    assert "input   (engine) input: float32 ?x3x?x?" in out and "meta: none" in out


def test_info_reports_an_engine_replaced_after_its_sidecar(capsys, models, tmp_path, monkeypatch):
    engine = _engine(models, tmp_path, "fp16")
    other = _engine(models, tmp_path / "other", "fp32")
    engine.write_bytes(other.read_bytes())  # another build copied over it; the sidecar is still fp16's
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    assert main(["info", str(engine)]) == 1
    out = capsys.readouterr().out
    assert "problem           " in out and "not the one its sidecar describes (SHA-256 differs" in out
    assert f"fcn-edge build-engine {models['fp16']} -o {engine}" in out


def test_info_engine_for_another_tensorrt(capsys, models, tmp_path, monkeypatch):
    import fcn_edge.engine.cuda_driver as cuda_driver

    engine = _engine(models, tmp_path)
    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_tensorrt("10.16.1.11"))
    monkeypatch.setattr(cuda_driver, "cuda_driver", lambda: FakeDevice())
    assert main(["info", str(engine)]) == 1
    out = capsys.readouterr().out
    assert "(8.7): does NOT match" in out and "built with TensorRT 10.3.0, this machine has TensorRT 10.16.1.11" in out


@pytest.mark.parametrize("kind, phrase", [("checkpoint", "a PyTorch checkpoint"), ("hdf5", "an HDF5 file")])
def test_info_names_a_file_that_is_neither_onnx_nor_engine(capsys, tmp_path, kind, phrase):
    if kind == "checkpoint":
        path = make_tiny_checkpoint(tmp_path / "model.pt")
    else:
        path = tmp_path / "weights.h5"
        path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: this is {phrase}" in err and "not an ONNX model or a TensorRT engine" in err
    assert f"`fcn-edge export {path}`" in err


def test_build_command_prints_the_summary_and_writes_both_files(capsys, models, tmp_path, monkeypatch):
    """The non-dry-run path of the command, with FakeTensorRT standing in for TensorRT."""
    import onnx

    import fcn_edge.engine.cuda_driver as cuda_driver

    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_tensorrt("8.6.1", num_dla_cores=2))
    monkeypatch.setattr(cuda_driver, "cuda_driver", lambda: FakeDevice("Xavier (fake)", (7, 2)))
    engine = tmp_path / "m.engine"
    code = main(["build-engine", str(models["fused"]), "-o", str(engine), "--precision", "fp16", "--dla-core", "1",
                 "--workspace", "256M", "--opt-level", "4", "--timing-cache", str(tmp_path / "t.cache")])
    out, err = capsys.readouterr()
    assert code == 0, err
    ops = [node.op_type for node in onnx.load(str(models["fused"])).graph.node]
    on_dla = sum(op in DLA_OPS for op in ops)
    assert f"built {engine} in" in out and "on Xavier (fake) (compute capability 7.2)" in out
    assert "builder flags     FP16, GPU_FALLBACK" in out and "workspace         256 MiB" in out
    assert f"DLA               {on_dla} of {len(ops)} layers can run on DLA core 1; {len(ops) - on_dla} fall back" in out
    counts = expected_precisions(fake_plan(engine.read_bytes()), "fp16")
    listed = ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
    assert f"layer precision   {listed}  (by each layer's first output)" in out and "timing cache      saved to" in out
    section = json.loads((tmp_path / "m.engine.json").read_text())["engine"]
    assert section["dla_core"] == 1 and section["optimization_level"] == 4
    assert "--dla-core 1" in section["rebuild_command"] and "--precision fp16" in section["rebuild_command"]
    assert engine.is_file()


def test_build_command_calibrates_from_images_at_the_profile_opt_size(capsys, models, tmp_path, monkeypatch):
    import fcn_edge.engine.cuda_driver as cuda_driver
    import fcn_edge.engine.onnx_facts as onnx_facts

    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_tensorrt("8.6.1"))
    monkeypatch.setattr(cuda_driver, "cuda_driver", lambda: FakeDevice())
    hashed = []
    real_sha256 = onnx_facts.file_sha256
    monkeypatch.setattr(onnx_facts, "file_sha256", lambda path: hashed.append(path) or real_sha256(path))
    make_images(tmp_path / "calib", 5)
    engine = tmp_path / "m.engine"
    code = main(["build-engine", str(models["fused"]), "-o", str(engine), "--int8-mode", "implicit",
                 "--calib", str(tmp_path / "calib"), "--batch", "2", "--opt", "2x40x56x3", "--max", "4x64x64x3"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert len(hashed) == 1  # the CLI read the ONNX's facts once for the batches and the build
    assert f"calibrator        IInt8EntropyCalibrator2 over {tmp_path / 'calib'}" in out
    plan = fake_plan(engine.read_bytes())
    # 5 images in batches of 2, the last padded; uint8 NHWC frames at the opt size of --opt
    assert plan["calibration"]["batches"] == 3
    assert plan["calibration_profile"] == {"input": [[2, 40, 56, 3]] * 3}
    assert (tmp_path / "m.engine.calib.cache").is_file()
    section = json.loads((tmp_path / "m.engine.json").read_text())["engine"]
    assert f"--calib {tmp_path / 'calib'}" in section["rebuild_command"] and "--batch 2" in section["rebuild_command"]


def test_build_a_portable_engine_and_info_says_so(capsys, models, tmp_path, monkeypatch):
    import fcn_edge.engine.cuda_driver as cuda_driver
    import fcn_edge.video.capabilities as capabilities

    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_tensorrt("10.16.1.11"))
    monkeypatch.setattr(cuda_driver, "cuda_driver", lambda: FakeDevice("NVIDIA RTX A4000", (8, 6)))
    monkeypatch.setattr(capabilities, "is_jetson", lambda: False)
    engine = tmp_path / "m.engine"
    code = main(["build-engine", str(models["fp16"]), "-o", str(engine), "--version-compatible",
                 "--hardware-compatibility", "ampere_plus"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "compatibility     version-compatible, lean runtime embedded" in out
    assert "hardware level    AMPERE_PLUS" in out and "precision check   ok: fp16 in " in out
    section = json.loads((tmp_path / "m.engine.json").read_text())["engine"]
    assert "--version-compatible" in section["rebuild_command"]
    assert "--hardware-compatibility ampere_plus" in section["rebuild_command"]
    assert main(["info", str(engine)]) == 0
    assert "portable          version-compatible (lean runtime embedded), hardware ampere_plus" in capsys.readouterr().out


def test_build_refuses_an_engine_without_the_asked_precision(capsys, models, tmp_path, monkeypatch):
    import fcn_edge.engine.cuda_driver as cuda_driver

    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_tensorrt("8.6.1", fast_fp16=False))
    monkeypatch.setattr(cuda_driver, "cuda_driver", lambda: FakeDevice("Jetson Nano (fake)", (5, 3)))
    engine = tmp_path / "m.engine"
    args = ["build-engine", str(models["fp32"]), "-o", str(engine), "--precision", "fp16"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "an FP16 engine was asked for" in err and "--allow-precision-mismatch" in err and not engine.exists()
    assert main(args + ["--allow-precision-mismatch"]) == 0
    assert "precision check   mismatch: no layer runs fp16" in capsys.readouterr().out
