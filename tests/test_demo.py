"""`fcn-edge demo --quick` runs the whole chain and leaves every artifact it promises, valid;
a second run reuses them."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from fcn_edge.artifacts import read_onnx_meta
from fcn_edge.cli.main import main

from video_fixtures import read_all

pytest.importorskip("torch")
pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FCN_EDGE_CACHE", str(tmp_path_factory.mktemp("cache")))
        assert main(["demo", "--quick", "-o", str(out)]) == 0
        yield out


def test_variants_are_onnx_files_with_their_precision(demo_run):
    import onnx

    for name, precision in (("model.onnx", "fp32"), ("model.fp16.onnx", "fp16"), ("model.int8.onnx", "int8")):
        path = demo_run / name
        onnx.checker.check_model(str(path))
        meta = read_onnx_meta(path)
        assert meta.precision == precision
        assert meta.fused_preprocess and meta.fused_argmax  # the deployment variant
        assert meta.architecture == "fcn8s_mobilenetv3" and meta.num_classes == 7


def test_accuracy_table_covers_every_variant(demo_run):
    reports = json.loads((demo_run / "accuracy.json").read_text())["reports"]
    assert [r["precision"] for r in reports] == ["fp32", "fp16", "int8"]
    for row in reports:
        assert row["mean_iu"] > 0.5 and row["pixel_accuracy"] > 0.5  # a trained model, far above chance
    assert reports[0]["agreement"] == 1.0 and reports[1]["agreement"] > 0.99
    assert "mean IU" in (demo_run / "accuracy.txt").read_text()


def test_overlay_video_plays(demo_run):
    frames = read_all(demo_run / "street_overlay.mp4")
    summary = json.loads((demo_run / "video_summary.json").read_text())
    assert len(frames) == summary["frames_out"] == 8
    assert frames[0].shape == (480, 640, 3) and float(np.std(frames[0])) > 5


def test_benchmark_outputs(demo_run):
    from fcn_edge.bench.schema import schema_errors

    report = json.loads((demo_run / "benchmark.json").read_text())
    assert schema_errors(report) == []
    with open(demo_run / "benchmark.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows, "benchmark.csv has no rows"
    png = (demo_run / "benchmark.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert "Summary" in (demo_run / "benchmark.txt").read_text()


def test_second_run_reuses_everything(demo_run, capsys):
    stamps = {p.name: p.stat().st_mtime_ns for p in demo_run.iterdir()}
    capsys.readouterr()
    assert main(["demo", "--quick", "-o", str(demo_run)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("up to date: reusing") == printed.count("$ fcn-edge ") >= 6
    for path in demo_run.iterdir():
        if path.name in stamps and not path.name.startswith("."):
            assert path.stat().st_mtime_ns == stamps[path.name], f"{path.name} was rewritten"


@pytest.mark.parametrize("tensorrt", [False, True], ids=["without-tensorrt", "with-tensorrt"])
def test_every_demo_step_is_a_valid_command_line(tmp_path, monkeypatch, tensorrt):
    """The command line each step prints parses with the real `fcn-edge` parser, with and
    without TensorRT present (the engine branch no CI machine can run is at least a valid
    command), and says what the step's library call does."""
    import fcn_edge.demo as demo
    from fcn_edge.cli.main import build_parser

    monkeypatch.setattr(demo, "is_available", lambda name: tensorrt if name == "tensorrt" else True)
    steps = demo.demo_steps(demo.DemoConfig(out_dir=tmp_path), tmp_path / "model.pt", tmp_path / "data",
                            tmp_path / "clip.mp4")
    parser = build_parser()
    parsed = [parser.parse_args(list(step.argv)) for step in steps]
    commands = [args.command for args in parsed]
    engines = [step for step in steps if step.argv[0] == "build-engine"]
    assert len(engines) == (3 if tensorrt else 0)
    assert commands[:4] == ["export", "quantize", "quantize", "compare"] and commands[-2:] == ["run", "benchmark"]
    export = demo.deployment_export_config((256, 320))  # what the export step's library call uses
    assert (parsed[0].fuse_preprocess, parsed[0].output_kind, parsed[0].max_batch) == (
        export.fuse_preprocess, export.output, export.max_batch)
    assert parsed[2].calib == "default"  # the built-in calibration set, by name
    video = parsed[commands.index("run")]
    assert video.model.endswith("model.int8.engine" if tensorrt else "model.onnx") and video.legend


def test_engine_step_writes_engine_and_sidecar_with_its_command(tmp_path):
    """The engine step's control flow on a fake TensorRT (no GPU here): the library build
    writes the engine and a sidecar whose rebuild command is the step's command line."""
    from fake_tensorrt import FakeDevice, make_fake_tensorrt

    import fcn_edge.demo as demo
    from fcn_edge.artifacts import file_sha256, read_engine_sidecar
    from tiny_models import make_tiny_onnx

    onnx = make_tiny_onnx(tmp_path / "model.onnx", fused=True, output_kind="mask")
    engine = tmp_path / "model.engine"
    argv = ("build-engine", str(onnx), "-o", str(engine))
    printed = demo._engine(onnx, engine, argv, trt=make_fake_tensorrt("10.3.0"), device=FakeDevice())
    meta, record = read_engine_sidecar(engine)
    assert engine.is_file() and printed.startswith(f"built {engine}")
    assert meta.fused_argmax and record.rebuild_command == "fcn-edge " + " ".join(argv)
    assert record.engine_sha256 == file_sha256(engine)
