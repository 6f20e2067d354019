"""``fcn-edge export foreign.onnx``: a segmentation ONNX made elsewhere (no ModelMeta; NCHW or
NHWC input read as RGB or BGR; scores as (N, C, H, W), (N, H, W, C) or a softmax over
(N, H*W, C)) becomes a deployable fcn-edge ONNX, and the rest of the chain takes it."""

from __future__ import annotations

import json
import sys

import numpy as np
import onnx
import pytest

from fcn_edge.artifacts import file_sha256, read_onnx_meta
from fcn_edge.cli.main import main
from fcn_edge.export.config import PREPROCESSINGS
from tiny_models import INPUT_SIZE, make_foreign_onnx, make_images, make_tiny_onnx, quantize_and_plan_int8, sample_frame

pytest.importorskip("onnx_graphsurgeon", reason="grafting heads needs onnx-graphsurgeon (pip install 'fcn-edge[export]')")
ort = pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.usefixtures("torch_single_thread")
SIZE = "x".join(map(str, INPUT_SIZE))
CAFFE = PREPROCESSINGS["caffe"]


@pytest.fixture
def no_tensorrt(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)


def original_masks(path, frames, layout, channel_order, mean, std):
    """The original graph's argmax, fed as its authors would: normalised in numpy, in its
    own layout and channel order (independent of fcn-edge's preprocessing)."""
    x = np.stack(frames).astype(np.float32)[..., ::-1] / 255.0  # BGR frames -> RGB in [0, 1]
    x = (x - np.float32(mean)) / np.float32(std)
    if channel_order == "BGR":
        x = x[..., ::-1]
    if layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    (scores,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"images": np.ascontiguousarray(x, np.float32)})
    if scores.ndim == 3:  # (N, H*W, C)
        return scores.argmax(axis=2).reshape(len(frames), *frames[0].shape[:2])
    return scores.argmax(axis=1 if scores.shape[1] == 5 else 3)


@pytest.mark.parametrize("layout, channel_order, scores", [
    ("NCHW", "RGB", "NCHW"),  # torchvision-style
    ("NHWC", "BGR", "NHWC"),  # a TF/Keras export read as BGR
    ("NCHW", "RGB", "NLC"),   # the Keras FCN head: softmax over (N, H*W, C)
])
def test_foreign_onnx_to_fused_mask_equals_the_original(tmp_path, capsys, layout, channel_order, scores):
    source = make_foreign_onnx(tmp_path / "foreign.onnx", layout, channel_order, scores)
    out = tmp_path / "deploy.onnx"
    args = ["export", str(source), "--classes", "5", "--input-size", SIZE, "--fuse-preprocess",
            "--output-kind", "mask", "-o", str(out)]
    if channel_order == "BGR":
        args += ["--preprocessing", "caffe"]
    else:
        args += ["--mean", "0.5,0.4,0.3", "--std", "0.2,0.25,0.3"]
    assert main(args) == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    assert "ONNX Runtime vs the original graph" in text and "ONNX Runtime vs host preprocessing" in text
    meta = read_onnx_meta(out)
    assert (meta.input_dtype, meta.input_layout, meta.output_kind, meta.num_classes) == ("uint8", "NHWC", "mask", 5)
    assert meta.source_hash == file_sha256(source) and meta.architecture == "foreign"
    assert f"input {layout} {channel_order}, scores {scores}" in meta.history[0]
    mean, std = (CAFFE.mean, CAFFE.std) if channel_order == "BGR" else ((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    assert meta.mean == pytest.approx(mean) and meta.std == pytest.approx(std)

    frames = [sample_frame(*INPUT_SIZE, seed=s) for s in (3, 4)]
    (mask,) = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"input": np.stack(frames)})
    expected = original_masks(source, frames, layout, channel_order, mean, std)
    assert len(np.unique(expected)) > 1
    assert (mask == expected).mean() > 0.999  # float rounding of the two normalisations may flip a near-tie


def test_foreign_onnx_goes_through_the_chain(tmp_path, capsys, no_tensorrt):
    """export (fused INT8-ready mask) -> quantize -> build-engine --dry-run (8.6, 10.3, 11.4)
    -> segment -> benchmark."""
    source = make_foreign_onnx(tmp_path / "torchvision_like.onnx")
    fused = tmp_path / "deploy.onnx"
    assert main(["export", str(source), "--classes", "5", "--preprocessing", "imagenet", "--input-size", SIZE,
                 "--max-batch", "2", "--fuse-preprocess", "--output-kind", "mask", "--argmax", "reduce",
                 "-o", str(fused)]) == 0
    make_images(tmp_path / "calib", 8)
    int8 = quantize_and_plan_int8(fused, tmp_path / "calib", capsys, "1x32x48x3")
    assert read_onnx_meta(int8).precision == "int8"
    image = tmp_path / "frame.png"
    import cv2

    cv2.imwrite(str(image), sample_frame(60, 80))
    assert main(["segment", str(image), "--model", str(int8), "-o", str(tmp_path / "seg"), "--save-mask"]) == 0
    masks = list((tmp_path / "seg").rglob("*mask*.png"))
    assert masks and cv2.imread(str(masks[0]), cv2.IMREAD_UNCHANGED).shape[:2] == (60, 80)
    capsys.readouterr()
    assert main(["benchmark", str(fused), "--iterations", "3", "--warmup", "1", "--rounds", "1",
                 "--json", str(tmp_path / "bench.json")]) == 0
    report = json.loads((tmp_path / "bench.json").read_text())
    assert report["variants"][0]["architecture"] == "torchvision_like"


def test_output_channels_that_disagree_with_classes_are_refused(tmp_path, capsys):
    source = make_foreign_onnx(tmp_path / "f.onnx")
    assert main(["export", str(source), "--classes", "voc", "--input-size", SIZE, "-o", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err
    assert "output 'out' has shape (1, 5, 32, 48): 5 at the NCHW class axis or 48 at the NHWC class axis, " \
           "but --classes gives 21 classes" in err and err.count("\n") == 1
    assert not (tmp_path / "x.onnx").exists()


def test_what_the_graph_does_not_say_is_asked_for(tmp_path, capsys):
    source = make_foreign_onnx(tmp_path / "f.onnx")
    assert main(["export", str(source), "-o", str(tmp_path / "x.onnx")]) == 2
    assert "dynamic height and width; give the size frames are resized to with --input-size" in capsys.readouterr().err
    assert main(["export", str(source), "--input-size", SIZE, "--mean", "123.675,116.28,103.53",
                 "--std", "58.395,57.12,57.375"]) == 2
    assert "looks like 0..255 values; give them on pixels in [0, 1] (divide by 255: 0.485, 0.456, 0.406)" \
        in capsys.readouterr().err
    assert main(["export", str(source), "--input-size", SIZE, "--mean", "0.5,0.5,0.5"]) == 2
    assert "give --mean and --std together" in capsys.readouterr().err
    assert main(["export", str(source), "--input-size", SIZE, "--output-name", "probs"]) == 2
    assert "the graph has no output 'probs'; its outputs are ['out']" in capsys.readouterr().err
    assert main(["export", str(source), "--input-size", SIZE, "-o", str(source)]) == 2
    assert "would overwrite the ONNX it reads" in capsys.readouterr().err


def test_fixed_graph_and_defaults_are_said(tmp_path, capsys):
    source = make_foreign_onnx(tmp_path / "fixed.onnx", dynamic=False)
    assert main(["export", str(source), "-o", str(tmp_path / "x.onnx")]) == 0
    text = capsys.readouterr().out
    assert "the graph fixes the batch at 2: kept fixed" in text and "the graph fixes the size at 32x48" in text
    assert "normalisation assumed ImageNet's" in text
    meta = read_onnx_meta(tmp_path / "x.onnx")
    assert (meta.input_size, meta.dynamic_batch, meta.dynamic_shape) == (INPUT_SIZE, False, False)
    assert meta.class_names[0] == "class_0"


def test_an_fcn_edge_onnx_gets_its_heads_and_keeps_its_meta(tmp_path, capsys):
    plain = make_tiny_onnx(tmp_path / "plain.onnx")
    out = tmp_path / "fused.onnx"
    assert main(["export", str(plain), "--fuse-preprocess", "--output-kind", "mask", "-o", str(out)]) == 0
    before, after = read_onnx_meta(plain), read_onnx_meta(out)
    assert after.class_names == before.class_names and after.mean == before.mean
    assert (after.min_size, after.max_size, after.max_batch) == (before.min_size, before.max_size, before.max_batch)
    assert after.history[: len(before.history)] == before.history
    assert main(["export", str(out), "--output-kind", "mask", "-o", str(tmp_path / "again.onnx")]) == 2
    assert "already has its heads" in capsys.readouterr().err


def test_onnx_hints_are_refused_for_a_checkpoint(tmp_path, capsys):
    from tiny_models import make_tiny_checkpoint

    ckpt = make_tiny_checkpoint(tmp_path)
    assert main(["export", str(ckpt), "--mean", "0.5,0.5,0.5", "--std", "0.5,0.5,0.5", "-o", str(tmp_path / "x.onnx")]) == 2
    assert "--mean, --std describe an ONNX made elsewhere; a PyTorch checkpoint carries its own" in capsys.readouterr().err


def test_several_outputs_need_output_name(tmp_path, capsys):
    source = make_foreign_onnx(tmp_path / "f.onnx")
    model = onnx.load(str(source))
    model.graph.output.append(onnx.helper.make_tensor_value_info(model.graph.node[0].output[0], onnx.TensorProto.FLOAT, None))
    onnx.save(model, str(source))
    assert main(["export", str(source), "--input-size", SIZE, "-o", str(tmp_path / "x.onnx")]) == 2
    assert "name the one with the class scores with --output-name" in capsys.readouterr().err
    assert main(["export", str(source), "--input-size", SIZE, "--output-name", "out", "-o", str(tmp_path / "x.onnx")]) == 0
    assert [o.name for o in onnx.load(str(tmp_path / "x.onnx")).graph.output] == ["logits"]


def test_foreign_export_needs_no_torch(tmp_path):
    """A foreign ONNX becomes deployable on a machine without torch (a Jetson): the graph path
    needs onnx, onnx-graphsurgeon and ONNX Runtime only."""
    from test_runtime_no_torch import CLI_WITHOUT_TORCH, _run

    source = make_foreign_onnx(tmp_path / "f.onnx", "NHWC", "BGR", "NLC")
    out = tmp_path / "deploy.onnx"
    proc = _run(CLI_WITHOUT_TORCH, "export", str(source), "--classes", "5", "--preprocessing", "caffe",
                "--input-size", SIZE, "--fuse-preprocess", "--fuse-resize", "--output-kind", "mask",
                "--argmax", "reduce", "-o", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "heads   fused preprocessing, resize to 32x48, uint8 mask (reduce argmax" in proc.stdout
    assert read_onnx_meta(out).fused_resize
