"""`fcn-edge quantize` and `fcn-edge compare` end to end on the tiny model and a tiny dataset."""

import json

import pytest

from fcn_edge.artifacts import read_onnx_meta
from fcn_edge.cli.main import main

from tiny_models import make_dataset, make_images, make_tiny_onnx

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
                ["--data", str(root / "data"), "--runs", "2", "--json", str(report), "--quiet", "--fusion"]) == 0
    table = capsys.readouterr().out
    assert table.count("TensorRT fusion (predicted") == 1  # the TensorRT INT8 only, not the ORT flavour
    assert list(json.loads(report.read_text())["fusion"]) == ["tiny.int8.onnx"]
    assert "mean IU" in table and "compute ms" in table and "4 images of" in table
    assert "IU per class; '!' marks a drop of more than 1 points" in table
    rows = json.loads(report.read_text())["reports"]
    assert [c["class"] for c in rows[0]["per_class"]] == ["background", "road", "car", "person", "sky"]
    assert all(c["drop"] is None for c in rows[0]["per_class"])  # the reference against itself: no drops
    assert [r["precision"] for r in rows] == ["fp32", "fp16", "int8", "int8"]
    assert rows[0]["agreement"] == 1.0 and rows[0]["max_abs_diff"] == 0.0
    assert all(r["compute_ms"] > 0 and r["images"] == 4 for r in rows)
    assert 0 < rows[1]["max_abs_diff"] < rows[2]["max_abs_diff"]  # fp16 is closer than int8
    assert rows[1]["agreement"] > 0.99


def test_keep_float_and_paths_share_one_vocabulary(setup, capsys, tmp_path):
    root, model = setup
    keep = "/backbone/block/Conv,/backbone/down8/Conv"
    assert main(["quantize", str(model), "--precision", "int8", "--calib", str(root / "calib"), "--keep-float", keep,
                 "--no-cache", "--quiet", "-o", str(tmp_path / "a.onnx")]) == 0
    out = capsys.readouterr().out
    # the two named, and the input and output paths by default (quantising the stem would not
    # spare the one standalone Q, behind the FP16 down8)
    assert "unquantised (--keep-float): /backbone/block/Conv, /backbone/down8/Conv\n" in out
    assert "unquantised (output path): /head/upscore8/ConvTranspose\n" in out
    assert "unquantised (input path): /backbone/stem/Conv\n" in out
    assert "TensorRT fusion (predicted at input 1x3x32x48)" in out and "1 standalone" in out
    assert main(["quantize", str(model), "--precision", "fp16", "--keep-float", "/backbone/block/Conv",
                 "--include-output-path", "--include-input-path", "-o", str(tmp_path / "b.onnx")]) == 0
    assert "kept in FP32: /backbone/block/Conv)" in capsys.readouterr().out


def test_cli_errors_are_one_line_and_nonzero(setup, capsys, tmp_path):
    root, model = setup
    assert main(["quantize", str(model), "--precision", "int8"]) == 2
    assert "--calib" in capsys.readouterr().err
    assert main(["quantize", str(model), "--precision", "int8", "--calib", str(tmp_path / "none"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "none" in err
    assert main(["compare", str(model), str(model), "--data", str(tmp_path / "none"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fcn-edge compare: error: ") and "dataset folder not found" in err
