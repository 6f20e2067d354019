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
    assert report["parity"]["against"] == "PyTorch" and report["parity"]["max_abs_diff"] < 1e-3
    assert report["head_parity"]["argmax_agreement"] == 1.0 and report["head_parity"]["max_abs_diff"] is None
    assert report["heads"] == "fused preprocessing, int32 mask (topk argmax)"
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


def test_files_are_told_by_content_not_suffix(tmp_path, capsys):
    """An ONNX named .pt is exported as an ONNX (its heads added), an HDF5 named .onnx goes to
    the Keras importer, and an engine or a TorchScript archive is refused for what it is."""
    from tiny_models import make_tiny_onnx

    disguised = tmp_path / "disguised.pt"
    disguised.write_bytes(make_tiny_onnx(tmp_path / "m.onnx").read_bytes())
    assert main(["export", str(disguised), "--output-kind", "mask", "-o", str(tmp_path / "x.onnx")]) == 0
    assert "heads   uint8 mask (topk argmax)" in capsys.readouterr().out
    hdf5 = tmp_path / "weights.onnx"
    hdf5.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    assert main(["export", str(hdf5), "-o", str(tmp_path / "y.onnx")]) == 2
    assert f"{hdf5}: cannot be read as HDF5" in capsys.readouterr().err
    engine = tmp_path / "model.pt"
    engine.write_bytes(b"ftrt" + bytes(64))
    assert main(["export", str(engine), "-o", str(tmp_path / "z.onnx")]) == 2
    err = capsys.readouterr().err
    assert f"{engine}: this is a TensorRT engine, not a PyTorch checkpoint or an ONNX model" in err
    assert "an engine is built from an ONNX" in err and err.count("\n") == 1
    assert not (tmp_path / "y.onnx").exists() and not (tmp_path / "z.onnx").exists()
    assert main(["export", str(tmp_path / "absent.pt")]) == 2
    assert "absent.pt: no such model file" in capsys.readouterr().err


def test_classes_bring_names_and_palette(tmp_path, capsys):
    """--classes FILE gives a bare state_dict its names and colours; on an fcn-edge checkpoint
    it replaces the classes it carries, and the count must match either way."""
    from tiny_models import make_tiny_checkpoint

    torch.manual_seed(0)
    bare = tmp_path / "bare.pt"
    torch.save(build_model("fcn8s_tiny", 3).state_dict(), bare)
    classes = tmp_path / "classes.txt"
    classes.write_text("sky 1 2 3\nroad 4 5 6\ncar 7 8 9\n")
    out = tmp_path / "bare.onnx"
    assert main(["export", str(bare), "--arch", "fcn8s_tiny", "--classes", str(classes), "--input-size", "32x48",
                 "-o", str(out), "--skip-parity"]) == 0
    meta = read_onnx_meta(out)
    assert meta.class_names == ("sky", "road", "car") and meta.palette == ((1, 2, 3), (4, 5, 6), (7, 8, 9))

    own = make_tiny_checkpoint(tmp_path / "own.pt", classes=("a", "b", "c"))  # trained at 32x48
    out = tmp_path / "own.onnx"
    assert main(["export", str(own), "--classes", str(classes), "-o", str(out), "--skip-parity"]) == 0
    meta = read_onnx_meta(out)
    assert meta.class_names == ("sky", "road", "car") and meta.palette[2] == (7, 8, 9)
    assert meta.input_size == (32, 48)  # the checkpoint's own size when --input-size is not given
    assert any(step.startswith("classes replaced") for step in meta.history)
    capsys.readouterr()
    assert main(["export", str(own), "--classes", "voc", "-o", str(out)]) == 2
    assert "the voc class list has 21 classes, the checkpoint 3" in capsys.readouterr().err
