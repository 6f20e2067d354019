"""``fcn-edge export`` of Keras FCN weights: the Keras importer behind export's dispatch, the
heads grafted as for any model, and the chain to a fused INT8 ONNX and engine plans."""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("h5py")
pytest.importorskip("onnx_graphsurgeon", reason="grafting heads needs onnx-graphsurgeon (pip install 'fcn-edge[export]')")
kr = pytest.importorskip("keras_reference", reason="needs keras 3 (KERAS_BACKEND=torch) and h5py")

from fcn_edge.artifacts import file_sha256, read_onnx_meta  # noqa: E402
from fcn_edge.cli.main import main  # noqa: E402
from fcn_edge.models.keras_fcn import keras_output_size  # noqa: E402
from tiny_models import make_images, quantize_and_plan_int8  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword"),
    pytest.mark.usefixtures("torch_single_thread"),
]
SIZE = (64, 96)
CLASSES = 3


@pytest.fixture(scope="module")
def keras_fcn8(tmp_path_factory):
    """A slim Keras FCN-8 (the VGG layers, a few channels each) as keras_segmentation builds
    it, every weight perturbed, saved with model.save('fcn8.h5')."""
    model = kr.build("fcn_8_vgg", CLASSES, SIZE, "keras_segmentation", kr.SLIM_VGG, kr.SLIM_FC)
    kr.perturb(model, 0, kr.INPUT_STD["sub_mean"])
    return model, kr.save(model, tmp_path_factory.mktemp("keras"), "hdf5-model", "fcn8")


@pytest.fixture
def no_tensorrt(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)


def test_keras_fcn8_h5_to_fused_int8_onnx_and_engine_plans(tmp_path, capsys, keras_fcn8, no_tensorrt):
    model, h5 = keras_fcn8
    fused = tmp_path / "fcn8.onnx"
    assert main(["export", str(h5), "--classes", "3", "--fuse-preprocess", "--output-kind", "mask",
                 "-o", str(fused)]) == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    assert "ONNX Runtime vs PyTorch" in text and "ONNX Runtime vs host preprocessing" in text
    meta = read_onnx_meta(fused)
    assert meta.architecture == "fcn8s_vgg16_keras" and meta.input_size == SIZE and meta.fused_preprocess
    assert meta.source_hash == file_sha256(h5) and meta.history[0].startswith("import: hdf5-model fcn8.h5")

    # the fused mask is keras_segmentation's prediction: the whole (larger) output, argmax
    frame = np.random.default_rng(5).integers(0, 256, (*SIZE, 3), dtype=np.uint8)
    import onnxruntime as ort

    (mask,) = ort.InferenceSession(str(fused), providers=["CPUExecutionProvider"]).run(None, {"input": frame[None]})
    k_out, _ = kr.run(model, kr.keras_input(frame, "sub_mean", "channels_last"))
    out_h, out_w = keras_output_size("fcn8", SIZE)
    assert mask.shape == (1, out_h, out_w)
    assert (mask[0] == k_out[0].reshape(out_h, out_w, CLASSES).argmax(-1)).mean() > 0.999

    make_images(tmp_path / "calib", 8, size=SIZE)
    quantize_and_plan_int8(fused, tmp_path / "calib", capsys, f"1x{SIZE[0]}x{SIZE[1]}x3")


def test_keras_preprocessing_flag_and_refused_onnx_flags(tmp_path, capsys, keras_fcn8):
    _, h5 = keras_fcn8
    out = tmp_path / "divide.onnx"
    assert main(["export", str(h5), "--preprocessing", "divide", "--skip-parity", "-o", str(out)]) == 0
    meta = read_onnx_meta(out)
    assert meta.mean == (0.0, 0.0, 0.0) and meta.std == (1.0, 1.0, 1.0)
    assert any("keras preprocessing: divide" in step for step in meta.history)
    assert main(["export", str(h5), "--preprocessing", "imagenet", "-o", str(out)]) == 2
    assert "unknown Keras preprocessing 'imagenet'; one of sub_mean" in capsys.readouterr().err
    assert main(["export", str(h5), "--mean", "0.5,0.5,0.5", "--std", "0.5,0.5,0.5", "-o", str(out)]) == 2
    assert "--mean, --std describe an ONNX made elsewhere; an HDF5 file" in capsys.readouterr().err


def test_keras_segmentation_checkpoint_by_prefix_and_folder(tmp_path, capsys, keras_fcn8):
    model, _ = keras_fcn8
    folder = tmp_path / "ckpt"
    kr.save_segmentation_checkpoint({1: model, 2: model}, folder, "fcn_8_vgg", CLASSES, SIZE, prefix="fcn")
    for source in (folder / "fcn", folder, folder / "fcn_config.json", folder / "fcn.1"):
        out = tmp_path / "seg.onnx"
        assert main(["export", str(source), "--skip-parity", "-o", str(out)]) == 0, capsys.readouterr().err
        first = read_onnx_meta(out).history[0]
        assert first.startswith("import: keras_segmentation fcn." + ("1" if source.name == "fcn.1" else "2")), first
