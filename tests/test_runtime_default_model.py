"""The shipped default model: its fused ONNX is the export of the shipped checkpoint, it is
what load_segmenter() and the CLI use without a model, and its calibration set ships too."""

from __future__ import annotations

import numpy as np
import pytest

from fcn_edge.artifacts import file_sha256, read_onnx_meta
from fcn_edge.errors import DataError
from fcn_edge.precision.calibration import list_calibration_images, resolve_calibration_source
from fcn_edge.weights import default_calibration, default_checkpoint, default_onnx


def test_the_onnx_is_the_export_of_the_checkpoint():
    """Regenerate with `python tools/make_default_onnx.py` when this fails."""
    meta = read_onnx_meta(default_onnx())
    assert meta.source_hash == file_sha256(default_checkpoint()), "run python tools/make_default_onnx.py"
    assert meta.architecture == "fcn8s_mobilenetv3" and meta.num_classes == 7
    assert meta.fused_preprocess and meta.input_dtype == "uint8" and meta.channel_order == "BGR"
    assert meta.fused_argmax and meta.output_dtype == "uint8"
    assert meta.dynamic_batch and meta.max_batch == 4
    assert meta.size_range == ((128, 160), (256, 320), (512, 640))


def test_the_onnx_gives_the_checkpoints_masks():
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    import cv2

    from fcn_edge.runtime import load_segmenter

    frames = [cv2.imread(str(p)) for p in list_calibration_images(default_calibration())[:3]]
    with load_segmenter(default_checkpoint(), threads=1) as torch_seg, load_segmenter(threads=1) as onnx_seg:
        assert onnx_seg.path == default_onnx() and torch_seg.backend.name == "torch"
        for frame in frames:
            reference, shipped = torch_seg.segment(frame).mask, onnx_seg.segment(frame).mask
            assert len(np.unique(reference)) >= 3
            assert (reference == shipped).mean() > 0.999


def test_the_cli_default_is_the_onnx():
    from fcn_edge.cli.args import default_model

    assert default_model() == default_onnx()


def test_default_calibration_set_ships_with_the_package(tmp_path, monkeypatch):
    images = list_calibration_images(resolve_calibration_source("default"))
    assert len(images) == 64 and all(p.suffix == ".jpg" for p in images)
    assert resolve_calibration_source("") == default_calibration()
    assert resolve_calibration_source(tmp_path / "mine") == tmp_path / "mine"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "default").mkdir()  # a folder named default here wins: the user's own set
    assert resolve_calibration_source("default") == tmp_path.joinpath("default").relative_to(tmp_path)
    with pytest.raises(DataError, match="holds no images"):
        list_calibration_images(resolve_calibration_source("default"))
