"""Every command that takes a model names the format it found when it cannot use it, and
what to do; files are told by their content, so an ONNX named ``.h5`` is an ONNX and an
HDF5 named ``.onnx`` is an HDF5 (issue 13, part 3). Nobody answers "pickled Python objects"."""

from __future__ import annotations

import shutil
import sys

import cv2
import pytest

from fcn_edge.cli.main import main
from tiny_models import make_dataset, make_tiny_checkpoint, make_tiny_onnx, sample_frame

HDF5_HEAD = b"\x89HDF\r\n\x1a\n" + bytes(504)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("kinds")
    hdf5 = root / "disguised.onnx"  # Keras weights, whatever the suffix says
    hdf5.write_bytes(HDF5_HEAD)
    onnx_as_h5 = root / "weights.h5"  # an ONNX, whatever the suffix says
    shutil.copyfile(make_tiny_onnx(root / "tiny.onnx"), onnx_as_h5)
    image = root / "frame.png"
    cv2.imwrite(str(image), sample_frame(40, 56))
    return {"root": root, "hdf5": hdf5, "onnx": onnx_as_h5, "image": image,
            "checkpoint": make_tiny_checkpoint(root / "tiny.pt"), "data": make_dataset(root / "data", 2)}


def commands(model, files):
    root = files["root"]
    return {
        "export": ["export", str(model), "-o", str(root / "out.onnx"), "--skip-parity"],
        "quantize int8": ["quantize", str(model), "--precision", "int8", "--calib", str(root / "data" / "images"),
                          "-o", str(root / "q.onnx"), "--quiet", "--no-cache"],
        "quantize fp16": ["quantize", str(model), "--precision", "fp16", "-o", str(root / "h.onnx"), "--quiet"],
        "build-engine": ["build-engine", str(model), "--dry-run", "--trt-version", "10.3"],
        "info": ["info", str(model)],
        "segment": ["segment", str(files["image"]), "--model", str(model), "-o", str(root / "seg")],
        "run": ["run", str(files["image"]), "--model", str(model), "--headless"],
        "benchmark": ["benchmark", str(model), "--iterations", "2", "--warmup", "1", "--rounds", "1"],
        "evaluate": ["evaluate", str(model), "--data", str(files["data"]), "--quiet"],
        "compare": ["compare", str(model), str(model), "--data", str(files["data"]), "--quiet"],
    }


@pytest.fixture
def no_tensorrt(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)


@pytest.mark.parametrize("command", ["export", "quantize int8", "quantize fp16", "build-engine", "info", "segment",
                                     "run", "benchmark", "evaluate", "compare"])
def test_an_hdf5_file_is_named_for_what_it_is(files, capsys, no_tensorrt, command):
    argv = commands(files["hdf5"], files)[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    if command == "export":  # export reads HDF5: Keras weights, which this file is not
        assert f"{files['hdf5']}: cannot be read as HDF5" in last, err
    else:
        assert f"{files['hdf5']}: this is an HDF5 file (Keras weights or a Keras model), not " in last, err
    assert "pickled" not in err and "Traceback" not in err
    if command not in ("segment", "run", "benchmark", "evaluate", "compare"):
        assert "fcn-edge export" in last or "Keras" in last  # what to do


@pytest.mark.parametrize("command", ["quantize fp16", "build-engine", "info", "segment", "run", "export"])
def test_an_onnx_named_h5_is_an_onnx(files, capsys, no_tensorrt, command):
    argv = commands(files["onnx"], files)[command]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 0, err
    assert "HDF5" not in err and "pickled" not in err


@pytest.mark.parametrize("command", ["quantize fp16", "build-engine", "info"])
def test_a_checkpoint_where_an_onnx_is_wanted_says_export_it(files, capsys, no_tensorrt, command):
    assert main(commands(files["checkpoint"], files)[command]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "this is a PyTorch checkpoint, not an ONNX model" in last and "fcn-edge export" in last
    assert "pickled" not in last
