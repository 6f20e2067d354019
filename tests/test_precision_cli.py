"""`fcn-edge quantize` and `fcn-edge compare` end to end on a tiny model and dataset."""

import json

import pytest

from fcn_edge.artifacts import read_onnx_meta
from fcn_edge.cli.main import main

from precision_models import make_dataset, make_images, make_tiny_onnx

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    make_images(root / "calib", 8, seed=2)
    make_dataset(root / "data", 4)
    return root, make_tiny_onnx(root / "tiny.onnx")


def test_quantize_then_compare(setup, capsys, tmp_path):
    root, model = setup
    cache = ["--cache-dir", str(tmp_path / "cache"), "--quiet"]
    assert main(["quantize", str(model), "--precision", "int8", "--calib", str(root / "calib")] + cache) == 0
    assert main(["quantize", str(model), "--precision", "int8", "--calib", str(root / "calib"),
                 "--target", "onnxruntime", "--method", "minmax"] + cache) == 0
    assert main(["quantize", str(model), "--precision", "fp16"]) == 0
    out = capsys.readouterr().out
    assert "tiny.int8.onnx" in out and "tiny.int8-ort.onnx" in out and "cached ranges" in out
    variants = [root / "tiny.fp16.onnx", root / "tiny.int8.onnx", root / "tiny.int8-ort.onnx"]
    assert [read_onnx_meta(v).precision for v in variants] == ["fp16", "int8", "int8"]
    report = tmp_path / "report.json"
    assert main(["compare", str(model)] + [str(v) for v in variants] +
                ["--data", str(root / "data"), "--runs", "2", "--json", str(report), "--quiet"]) == 0
    table = capsys.readouterr().out
    assert "mean IU" in table and "ORT CPU ms" in table
    rows = json.loads(report.read_text())["reports"]
    assert [r["precision"] for r in rows] == ["fp32", "fp16", "int8", "int8"]
    assert rows[0]["agreement"] == 1.0 and rows[0]["max_abs_diff"] == 0.0
    assert all(0.0 <= r["mean_iu"] <= 1.0 and r["latency_ms"] > 0 for r in rows)
    assert rows[1]["max_abs_diff"] > 0 and rows[1]["agreement"] > 0.99


def test_cli_errors_are_one_line_and_nonzero(setup, capsys, tmp_path):
    root, model = setup
    assert main(["quantize", str(model), "--precision", "int8"]) == 2
    assert "--calib" in capsys.readouterr().err
    assert main(["quantize", str(model), "--precision", "int8", "--calib", str(tmp_path / "none"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "none" in err
