"""Validated inputs: the argument parser, truncated and corrupt files, small calibration sets,
hostile sidecars through the CLI, and the fuzz the artifacts tests did not reach yet."""

from __future__ import annotations

import argparse
import json
import logging

import cv2
import numpy as np
import pytest

from fcn_edge.artifacts import EngineRecord, ProfileShapes, write_engine_sidecar
from fcn_edge.artifacts.hashing import file_sha256
from fcn_edge.artifacts.sidecar import sidecar_path
from fcn_edge.cli import args as cli_args
from fcn_edge.cli.main import build_parser, main
from fcn_edge.errors import FcnEdgeError, MetaError
from fcn_edge.precision.calibration import MIN_CALIBRATION_IMAGES, CalibrationConfig, CalibrationData, truncation
from tiny_models import make_images, make_tiny_onnx, tiny_meta
from video_fixtures import write_clip


# -- the argument parser: every number a flag takes is checked there -------------------------------------
RAW_NUMBERS_ALLOWED = {("export", "--seed"), ("train", "--seed"), ("build-engine", "--opt-level")}  # any int is fine
BAD_VALUES = {
    cli_args.positive_int: ["0", "-1", "1.5"],
    cli_args.non_negative_int: ["-1", "x"],
    cli_args.positive_float: ["0", "-5", "nan", "inf"],
    cli_args.non_negative_float: ["-0.5", "nan", "inf"],
    cli_args.frame_rate: ["0", "-5", "0.001", "1e9", "inf"],
    cli_args.fraction: ["-0.1", "1", "nan"],
    cli_args.percent: ["0", "101", "nan"],
    cli_args.alpha_255: ["-1", "256", "nan"],
}


def _numeric_options():
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for command, sub in commands.choices.items():
        for action in sub._actions:
            if action.option_strings and action.type is not None:
                yield command, action.option_strings[-1], action.type


def test_no_flag_takes_an_unchecked_number():
    raw = {(c, flag) for c, flag, kind in _numeric_options() if kind in (int, float)}
    assert raw <= RAW_NUMBERS_ALLOWED, raw - RAW_NUMBERS_ALLOWED


def test_every_checked_number_refuses_zero_negative_and_non_finite_values(capsys):
    checked = 0
    for command, flag, kind in _numeric_options():
        for value in BAD_VALUES.get(kind, []):
            with pytest.raises(SystemExit) as info:
                main([command, flag, value])
            err = capsys.readouterr().err
            assert info.value.code == 2 and f"argument {flag}: " in err, (command, flag, value, err)
            checked += 1
    assert checked > 60  # the walk found the flags: --duration, --output-fps, --lr, --threads, ...


@pytest.mark.parametrize("argv, words", [
    (["benchmark", "--duration", "0"], "argument --duration: expected a positive number, got 0"),
    (["run", "--output-fps", "-5"], "argument --output-fps: expected a positive number, got -5"),
    (["run", "--output-fps", "1e9"], "argument --output-fps: expected a frame rate of 0.01 to 1000"),
    (["train", "--lr", "0"], "argument --lr: expected a positive number, got 0"),
    (["run", "--reconnect-timeout", "inf"], "argument --reconnect-timeout: expected a number >= 0, got inf"),
])
def test_the_issue_s_numbers(capsys, argv, words):
    with pytest.raises(SystemExit):
        main(argv)
    assert words in capsys.readouterr().err


# -- model files the engine layer reads -------------------------------------------------------------
def test_build_engine_dry_run_refuses_empty_foreign_and_empty_graph_files(tmp_path, capsys):
    onnx = pytest.importorskip("onnx")
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x0a\x0b" + bytes(range(256)) * 4)
    hollow = tmp_path / "hollow.onnx"
    onnx.save_model(onnx.helper.make_model(onnx.helper.make_graph([], "g", [], [])), str(hollow))
    expected = {empty: "this is an empty file, not an ONNX model", garbage: "not a readable ONNX model",
                hollow: "the ONNX graph has no nodes"}
    for path, words in expected.items():
        code = main(["build-engine", str(path), "--dry-run", "--trt-version", "10.3"])
        captured = capsys.readouterr()
        assert code == 2 and captured.out == "", (path, captured)
        assert captured.err.count("\n") == 1 and words in captured.err and str(path) in captured.err, captured.err


@pytest.fixture()
def engine(tmp_path):
    path = tmp_path / "m.engine"
    path.write_bytes(b"ftrt" + bytes(60))
    record = EngineRecord(
        tensorrt_version="10.3.0", gpu_name="Orin", compute_capability="8.7", precision="fp32", typing="strong",
        flags=(), profiles=(ProfileShapes("input", (1, 32, 48, 3), (1, 32, 48, 3), (1, 32, 48, 3)),),
        onnx_path="m.onnx", onnx_sha256="ab" * 32, build_seconds=1.0, built_at="2026-11-29T00:00:00Z",
        int8_mode="none", engine_bytes=64, engine_sha256=file_sha256(path))
    write_engine_sidecar(path, tiny_meta(), record)
    return path


@pytest.mark.parametrize("edit, words", [
    (lambda d: d["engine"].update(compute_capability=87), "engine.compute_capability must be a non-empty string, got 87"),
    (lambda d: d["engine"]["profiles"][0].update(min="abc"), "engine.profiles[0].min must be a list of integers"),
    (lambda d: d.update(meta=5), "meta must be a JSON object, got int"),
])
@pytest.mark.parametrize("command", ["info", "run", "segment"])
def test_hostile_sidecars_through_the_cli(engine, tmp_path, capsys, edit, words, command):
    """The issue's sidecars: one line naming the sidecar and the field, exit 2, for info and
    for the runtime's check when a model is loaded."""
    side = sidecar_path(engine)
    data = json.loads(side.read_text())
    edit(data)
    side.write_text(json.dumps(data))
    image = make_images(tmp_path / "img", 1)[0]
    argv = {"info": ["info", str(engine)],
            "run": ["run", str(write_clip(tmp_path / "c.avi", 3)), "--model", str(engine), "--headless"],
            "segment": ["segment", str(image), "--model", str(engine), "-o", str(tmp_path / "out")]}[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"{side}: {words}" in err, err


# -- calibration sets ---------------------------------------------------------------------------------
def _jpeg(seed: int = 0) -> bytes:
    image = np.random.default_rng(seed).integers(0, 255, (40, 56, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", image)[1].tobytes()


def test_truncation_is_told_by_the_end_marker():
    jpeg = _jpeg()
    png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    assert truncation(jpeg, ".jpg") == "" and truncation(jpeg + b"\x00\x00", ".JPG") == ""
    assert truncation(jpeg[: len(jpeg) // 2], ".jpg").startswith("truncated JPEG")
    assert truncation(png, ".png") == "" and truncation(png[:-5], ".png") == "truncated PNG: no IEND chunk"
    assert truncation(b"not an image", ".jpg") == ""  # not a JPEG at all: the decoder says so


def test_small_and_half_decoded_calibration_sets_are_reported(tmp_path, caplog):
    folder = tmp_path / "calib"
    good = make_images(folder, 3, size=(40, 56))
    for i in range(2):
        (folder / f"cut{i}.jpg").write_bytes(_jpeg(i)[:300])  # half-written JPEGs decode grey without an error
    data = CalibrationData(folder, tiny_meta(), CalibrationConfig(batch_size=2, progress=False))
    with caplog.at_level(logging.WARNING, logger="fcn_edge.precision.calibration"):
        batches = list(data)
        list(data)  # a second pass warns no more
    assert sum(len(b[tiny_meta().input_name]) for b in batches) == len(good)
    assert [p.name for p, _ in data.skipped] == ["cut0.jpg", "cut1.jpg"]
    assert all(why.startswith("truncated JPEG") for _, why in data.skipped)
    messages = [r.getMessage() for r in caplog.records]
    small = [m for m in messages if f"at least {MIN_CALIBRATION_IMAGES} are needed" in m]
    assert len(small) == 1 and "only 3 images could be used" in small[0]
    assert any("skipped 2 of 5 images" in m and "truncated JPEG" in m for m in messages)


def test_a_one_image_calibration_set_is_accepted_with_a_warning(tmp_path, caplog):
    model = make_tiny_onnx(tmp_path / "m.onnx")
    make_images(tmp_path / "one", 1, size=(40, 56))
    with caplog.at_level(logging.WARNING):
        code = main(["quantize", str(model), "--precision", "int8", "--calib", str(tmp_path / "one"), "--no-cache",
                     "--quiet", "-o", str(tmp_path / "m.int8.onnx")])
    assert code == 0 and (tmp_path / "m.int8.onnx").is_file()
    assert "only 1 image could be used; at least 32 are needed" in caplog.text


# -- videos cut short ---------------------------------------------------------------------------------
def test_a_video_shorter_than_its_container_says_is_reported(tmp_path, caplog):
    clip = write_clip(tmp_path / "clip.avi", 60, size=(120, 160))
    cut = tmp_path / "cut.avi"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])  # the header still says 60 frames
    model = make_tiny_onnx(tmp_path / "m.onnx", fused=True, output_kind="mask")
    with caplog.at_level(logging.WARNING):
        assert main(["run", str(cut), "--model", str(model), "--headless", "-o", "null"]) == 0
    assert f"{cut}: the video ended after " in caplog.text and "of the 60 frames its container declares" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert main(["run", str(clip), "--model", str(model), "--headless", "-o", "null"]) == 0
    assert "its container declares" not in caplog.text


# -- fuzz: what the artifacts tests did not reach ----------------------------------------------------------
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(st.text(max_size=200))
def test_any_text_as_the_onnx_meta_entry_is_read_or_refused(text):
    from fcn_edge.artifacts import meta_from_props
    from fcn_edge.artifacts.onnx_meta import ONNX_KEY

    try:
        meta_from_props({ONNX_KEY: text}, "m.onnx")
    except MetaError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("m.onnx")


@FUZZ
@given(st.binary(max_size=300), st.sampled_from([".onnx", ".engine", ".pt", ".bin"]))
def test_any_bytes_as_a_model_file_is_inspected_or_refused(tmp_path, content, suffix):
    from fcn_edge.engine.inspect import inspect_model

    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(content)
    try:
        inspect_model(path, trt=None)
    except FcnEdgeError as exc:
        assert str(exc) and str(path) in str(exc)
