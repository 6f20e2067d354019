"""The artifact contract's small pieces: sizes and shapes, variant names, and what a file is."""

from __future__ import annotations

import pickle
import zipfile

import pytest

from fcn_edge.artifacts import model_kind, variant_path, variant_tag
from fcn_edge.artifacts.shapes import format_shape, parse_byte_size, parse_hw, parse_shape
from fcn_edge.artifacts.variants import split_variant
from fcn_edge.errors import MetaError, UsageError


def test_sizes_shapes_and_byte_sizes_parse_one_way():
    assert parse_hw("256x320") == (256, 320) and parse_hw(" 7X9 ") == (7, 9)
    assert parse_hw("0x0", smallest=0) == (0, 0)
    for bad in ("256", "0x3", "axb", "256*320", "-1x4"):
        with pytest.raises(UsageError, match="HEIGHTxWIDTH|at least"):
            parse_hw(bad)
    assert parse_shape("1x3x256x320") == (1, 3, 256, 320)
    with pytest.raises(UsageError, match="dimension < 1"):
        parse_shape("1x0x3")
    assert parse_byte_size("2G") == 2 << 30 and parse_byte_size("512MiB") == 512 << 20
    assert parse_byte_size("1048576") == 1 << 20
    for bad in ("2 gigs", "0", "-1G"):
        with pytest.raises(UsageError, match="memory size"):
            parse_byte_size(bad)
    assert format_shape((1, 3, -1, None)) == "1x3x?x?"


def test_variant_names_round_trip(tmp_path):
    base = tmp_path / "runs" / "model.onnx"
    assert variant_path(base, "int8") == base.with_name("model.int8.onnx")
    assert variant_path(base, variant_tag("int8", "onnxruntime")) == base.with_name("model.int8-ort.onnx")
    assert variant_path(base.with_name("model.int8-ort.onnx"), "fp16") == base.with_name("model.fp16.onnx")
    assert variant_path(base.with_name("model.fp16.onnx"), "fp32") == base
    assert split_variant(base.with_name("model.v2.int8.onnx")) == ("model.v2", "int8", ".onnx")
    assert variant_path(tmp_path / "m.int8.engine", "fp16") == tmp_path / "m.fp16.engine"
    with pytest.raises(MetaError, match="not one of"):
        variant_path(base, "int4")


def test_model_kind_reads_the_content_before_the_suffix(tmp_path):
    pytest.importorskip("torch")
    from tiny_models import make_tiny_checkpoint, make_tiny_onnx

    onnx = make_tiny_onnx(tmp_path / "m.onnx")
    assert model_kind(onnx).kind == "onnx" and model_kind(onnx).by_content
    disguised = tmp_path / "m.pt"
    disguised.write_bytes(onnx.read_bytes())
    assert model_kind(disguised).kind == "onnx"
    assert model_kind(make_tiny_checkpoint(tmp_path / "c.pt")).kind == "checkpoint"
    (tmp_path / "w.onnx").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    assert model_kind(tmp_path / "w.onnx").kind == "hdf5"
    (tmp_path / "e.onnx").write_bytes(b"ftrt" + bytes(64))
    assert model_kind(tmp_path / "e.onnx").kind == "engine"
    (tmp_path / "legacy.bin").write_bytes(pickle.dumps({"a": 1}, protocol=2))
    assert model_kind(tmp_path / "legacy.bin").kind == "checkpoint"
    with zipfile.ZipFile(tmp_path / "m.keras", "w") as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", b"")
    assert model_kind(tmp_path / "m.keras").kind == "keras"
    with zipfile.ZipFile(tmp_path / "ts.pt", "w") as archive:
        archive.writestr("ts/constants.pkl", b"")
        archive.writestr("ts/data.pkl", b"")
    assert model_kind(tmp_path / "ts.pt").kind == "torchscript"
    (tmp_path / "m.engine.json").write_text('{"meta": {}}')
    assert model_kind(tmp_path / "m.engine.json").kind == "json"
    (tmp_path / "empty.onnx").write_bytes(b"")
    assert model_kind(tmp_path / "empty.onnx").kind == "empty"
    (tmp_path / "odd.engine").write_bytes(b"\x00" * 16)
    unknown_content = model_kind(tmp_path / "odd.engine")
    assert unknown_content.kind == "engine" and not unknown_content.by_content
    with pytest.raises(MetaError, match=r"w.onnx: this is an HDF5 file .*, not an ONNX model"):
        model_kind(tmp_path / "w.onnx").require("onnx")
    with pytest.raises(MetaError, match="no such model file"):
        model_kind(tmp_path / "absent.onnx")
