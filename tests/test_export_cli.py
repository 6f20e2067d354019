"""`fcn-edge export`: what it prints, what it writes, how it fails."""

from __future__ import annotations

import json

import pytest
import torch

from fcn_edge.artifacts import file_sha256, meta_for_classes, read_onnx_meta
from fcn_edge.cli.main import main
from fcn_edge.models import build_model
from fcn_edge.models.checkpoint import save_checkpoint

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def test_export_registry_model_prints_what_it_wrote(tmp_path, capsys):
    out = tmp_path / "r18.onnx"
    code = main(["export", "fcn8s_resnet18", "--input-size", "64x96", "--classes", "3", "-o", str(out)])
    text = capsys.readouterr().out
    assert code == 0 and out.is_file()
    assert f"wrote {out}" in text and "opset 17" in text
    assert "max abs diff" in text and "argmax agreement 100.0000%" in text
    assert "['batch', 3, 'height', 'width']" in text
    meta = read_onnx_meta(out)
    assert meta.architecture == "fcn8s_resnet18" and meta.num_classes == 3
    assert meta.input_size == (64, 96) and meta.history[0].startswith("random initialisation")


def test_export_checkpoint_fused_mask_json(tmp_path, capsys):
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "m.pt", build_model("fcn16s_resnet18", 4),
                           meta_for_classes("fcn16s_resnet18", "abcd", input_size=(48, 64)))
    out = tmp_path / "m.onnx"
    code = main(["export", str(ckpt), "--fuse-preprocess", "--output-kind", "mask", "--mask-dtype", "int32",
                 "--fixed-shape", "-o", str(out), "--json", "-"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["input_shape"] == [1, 48, 64, 3] and report["output_shape"] == [1, 48, 64]
    assert report["parity"]["argmax_agreement"] == 1.0 and report["parity"]["max_abs_diff"] is None
    assert report["meta"]["source_hash"] == file_sha256(ckpt)
    assert report["meta"]["output_dtype"] == "int32" and report["meta"]["input_dtype"] == "uint8"


def test_bad_checkpoint_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage")
    assert main(["export", str(bad), "-o", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fcn-edge export: error: ") and "bad.pt" in err
    assert not (tmp_path / "x.onnx").exists()


def test_unknown_model_and_list(capsys):
    assert main(["export", "fcn8s_alexnet"]) == 2
    assert "known ones are" in capsys.readouterr().err
    assert main(["export", "--list"]) == 0
    listing = capsys.readouterr().out
    assert "fcn8s_vgg16_caffe" in listing and "fcn_resnet101" in listing


def test_bad_size_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit):
        main(["export", "fcn8s_resnet18", "--input-size", "320"])
    assert "HEIGHTxWIDTH" in capsys.readouterr().err
