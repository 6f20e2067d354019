"""The deployment heads grafted onto the graph (fcn_edge.export.heads): the uint8 mask cast
TensorRT can build, the reduce argmax (equal to ArgMax, ties included), the fused resize
(frames in at their own size, masks out at it, through the runtime), and ModelMeta
checked against the graph."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from fcn_edge.artifacts import read_onnx_meta, write_onnx_meta
from fcn_edge.errors import ExportError
from fcn_edge.export.graph_meta_check import meta_graph_problems
from tiny_models import INPUT_SIZE, NUM_CLASSES, make_tiny_onnx, sample_frame

pytest.importorskip("onnx_graphsurgeon", reason="grafting heads needs onnx-graphsurgeon (pip install 'fcn-edge[export]')")
ort = pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.usefixtures("torch_single_thread")

FLOATS = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16}


def session(path_or_model):
    source = path_or_model.SerializeToString() if isinstance(path_or_model, onnx.ModelProto) else str(path_or_model)
    return ort.InferenceSession(source, providers=["CPUExecutionProvider"])


def element_types(model) -> dict:
    """Every tensor's element type, after ONNX shape inference."""
    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.input, *graph.output, *graph.value_info]}
    types.update({t.name: t.data_type for t in graph.initializer})
    return types


def casts_to_uint8(model):
    types = element_types(model)
    return [(n.name, types.get(n.input[0])) for n in model.graph.node
            if n.op_type == "Cast" and any(a.name == "to" and a.i == onnx.TensorProto.UINT8 for a in n.attribute)]


def host_masks(frames, logits_model):
    """What the runtime computes on the host with the unfused logits model: the reference."""
    from fcn_edge.runtime.preprocess import Preprocessor

    host_in, _ = Preprocessor(read_onnx_meta(logits_model))(frames)
    (scores,) = session(logits_model).run(None, {"input": host_in.copy()})
    return scores.argmax(axis=1)


# -- issue 18 bug 1: TensorRT converts uint8 only from and to float32/float16 --------------------
@pytest.mark.parametrize("argmax", ["topk", "reduce"])
@pytest.mark.parametrize("fuse_resize", [False, True])
def test_uint8_mask_is_cast_from_float_and_masks_are_unchanged(tmp_path, argmax, fuse_resize):
    path = make_tiny_onnx(tmp_path, fused=True, output_kind="mask", argmax=argmax, fuse_resize=fuse_resize)
    model = onnx.load(str(path))
    casts = casts_to_uint8(model)
    assert casts, "a uint8 mask comes out of a Cast"
    assert all(source in FLOATS for _, source in casts), f"Cast to UINT8 from a non-float type: {casts}"

    frames = [sample_frame(*INPUT_SIZE, seed=s) for s in (1, 2)]
    (mask,) = session(path).run(None, {"input": np.stack(frames)})
    expected = host_masks(frames, make_tiny_onnx(tmp_path / "logits.onnx"))
    assert mask.dtype == np.uint8 and len(np.unique(mask)) > 1
    if fuse_resize:  # frames at network size: the in-graph resizes are identities
        assert (mask == expected).mean() > 0.99
    else:
        np.testing.assert_array_equal(mask, expected)


# -- issue 18 item 4: the reduce argmax is ArgMax, ties included -----------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_reduce_argmax_equals_argmax_with_forced_ties(dtype, layout):
    from fcn_edge.export.heads import argmax_model

    rng = np.random.default_rng(7)
    for classes in (2, 5, 21, 150):
        reduce_head = session(argmax_model(classes, "reduce", dtype, layout))
        topk_head = session(argmax_model(classes, "topk", dtype, layout))
        for trial in range(3):
            shape = (int(rng.integers(1, 4)), classes, int(rng.integers(1, 40)), int(rng.integers(1, 40)))
            levels = int(rng.integers(2, 5)) if trial < 2 else 1 << 11
            # few distinct values force ties between classes; whole pixels of one value tie all classes
            x = (rng.integers(0, levels, shape) * rng.choice([1.0, -0.5, 3.25])).astype(np.float16).astype(np.float32)
            x[:, :, ::3, ::2] = x[:, :1, ::3, ::2]
            x[0, :, 0, 0] = np.float32(65504.0) if dtype == "float16" else np.float32(3.0e38)
            expected = x.argmax(axis=1)  # numpy: the first maximum
            assert (np.sort(x, axis=1)[:, -1] == np.sort(x, axis=1)[:, -2]).mean() > 0.2 or levels > 8
            (got_reduce,) = reduce_head.run(None, {"input": x})
            (got_topk,) = topk_head.run(None, {"input": x})
            np.testing.assert_array_equal(got_reduce, expected)
            np.testing.assert_array_equal(got_topk, expected)


def test_reduce_argmax_has_no_topk_and_exports_like_topk(tmp_path):
    reduce_path = make_tiny_onnx(tmp_path, output_kind="mask", argmax="reduce")
    topk_path = make_tiny_onnx(tmp_path, output_kind="mask")
    ops = {n.op_type for n in onnx.load(str(reduce_path)).graph.node}
    assert "ArgMax" not in ops and "TopK" not in ops and {"ReduceMax", "Equal", "Where"} <= ops
    assert "ArgMax" in {n.op_type for n in onnx.load(str(topk_path)).graph.node}
    x = np.random.default_rng(3).standard_normal((3, 3, 40, 56)).astype(np.float32)
    (a,) = session(reduce_path).run(None, {"input": x})
    (b,) = session(topk_path).run(None, {"input": x})
    np.testing.assert_array_equal(a, b)
    assert "reduce argmax" in read_onnx_meta(reduce_path).history[-1]


# -- issue 18 item 5: the resize in the graph -------------------------------------------------------
def test_fused_resize_meta_and_graph(tmp_path):
    path = make_tiny_onnx(tmp_path, fused=True, output_kind="mask", fuse_resize=True)
    meta = read_onnx_meta(path)
    assert meta.fused_resize and meta.input_size == INPUT_SIZE
    assert (meta.min_size, meta.max_size) == (INPUT_SIZE, INPUT_SIZE)  # the network has one size
    assert meta.input_range == ((120, 160), (480, 640), (2160, 3840))
    assert meta.input_shape(4) == (4, 480, 640, 3)
    graph = onnx.load(str(path)).graph
    modes = [a.s.decode() for n in graph.node if n.op_type == "Resize" for a in n.attribute if a.name == "mode"]
    assert sorted(modes) == ["linear", "nearest"]
    sess = session(path)
    for shape in [(1, 120, 160, 3), (2, 301, 517, 3)]:
        frames = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
        (mask,) = sess.run(None, {"input": frames})
        assert mask.shape == shape[:3] and mask.dtype == np.uint8


def test_runtime_feeds_frames_at_their_size_and_agrees_with_host_resizing(tmp_path):
    from fcn_edge.runtime import load_segmenter

    fused = make_tiny_onnx(tmp_path, fused=True, output_kind="mask", fuse_resize=True)
    logits = make_tiny_onnx(tmp_path, fused=True, output_kind="logits", fuse_resize=True)
    plain = make_tiny_onnx(tmp_path)
    frames = [sample_frame(480, 640, seed=1), sample_frame(250, 330, seed=2), sample_frame(90, 100, seed=3)]
    with load_segmenter(fused) as seg, load_segmenter(logits) as seg_logits, load_segmenter(plain) as host:
        for frame in frames:
            batch, places = seg.preprocess([frame])
            assert batch.shape == (1, max(frame.shape[0], 120), max(frame.shape[1], 160), 3)  # no resize unless out of range
            if frame.shape[:2] == batch.shape[1:3]:
                np.testing.assert_array_equal(batch[0], frame)  # one copy in
            mask = seg.segment(frame).mask
            reference = host.segment(frame).mask
            assert mask.shape == frame.shape[:2] == reference.shape
            assert (mask == reference).mean() > 0.97
            assert (seg_logits.segment(frame).mask == reference).mean() > 0.97
        results = seg.segment_batch([frames[0], frames[1]])  # a batch takes its first frame's size
        assert [r.mask.shape for r in results] == [frames[0].shape[:2], frames[1].shape[:2]]


def test_fused_resize_needs_fused_preprocessing_and_stretch():
    from fcn_edge.artifacts import ModelMeta
    from fcn_edge.errors import MetaError
    from fcn_edge.export import ExportConfig

    with pytest.raises(ExportError, match="needs the fused preprocessing"):
        ExportConfig(fuse_resize=True)
    with pytest.raises(ExportError, match="frame sizes apply to a fused resize"):
        ExportConfig(frame_size=(480, 640))
    with pytest.raises(ExportError, match="the network has one size"):
        ExportConfig(fuse_preprocess=True, fuse_resize=True, min_size=(64, 64))
    with pytest.raises(ExportError, match="outside frame_min_size"):
        ExportConfig(fuse_preprocess=True, fuse_resize=True, frame_size=(100, 100), frame_min_size=(120, 160))
    with pytest.raises(MetaError, match="letterbox|stretches"):
        ModelMeta("m", ("a",), ((0, 0, 0),), input_layout="NHWC", input_dtype="uint8", resize_mode="letterbox",
                  frame_size=(480, 640), frame_min_size=(120, 160), frame_max_size=(1080, 1920))


def test_engine_profile_spans_the_frame_range(tmp_path, capsys):
    from fcn_edge.cli.main import main

    path = make_tiny_onnx(tmp_path / "resize.onnx", fused=True, output_kind="mask", fuse_resize=True)
    assert main(["build-engine", str(path), "--dry-run", "--trt-version", "10.3"]) == 0
    text = capsys.readouterr().out
    assert "1x120x160x3" in text and "1x480x640x3" in text and "4x2160x3840x3" in text


# -- ModelMeta against its graph ------------------------------------------------------------------
def test_meta_graph_problems_name_each_disagreement(tmp_path):
    path = make_tiny_onnx(tmp_path)
    model = onnx.load(str(path))
    meta = read_onnx_meta(path)
    assert meta_graph_problems(model, meta) == []
    problems = meta_graph_problems(model, meta.replace(output_name="scores", input_dtype="uint8", input_layout="NHWC",
                                                       channel_order="BGR"))
    assert any("ModelMeta's output 'scores' is not a graph output (['logits'])" in p for p in problems)
    assert any("input 'input' is float32, ModelMeta says uint8" in p for p in problems)
    assert any("channel axis of NHWC" in p and "is it NCHW?" in p for p in problems)
    fewer = meta.replace(class_names=meta.class_names[:3], palette=meta.palette[:3])
    assert meta_graph_problems(model, fewer) == [
        f"output 'logits' (?, {NUM_CLASSES}, ?, ?) has {NUM_CLASSES} channels but ModelMeta lists 3 classes"]
    fixed = onnx.load(str(make_tiny_onnx(tmp_path, dynamic=False)))
    assert meta_graph_problems(fixed, meta) == ["input 'input' fixes the batch at 1, ModelMeta allows up to 4"]
    assert "fixes the height at 32, outside ModelMeta's 64..128" in meta_graph_problems(
        fixed, meta.replace(min_size=(64, 64), input_size=(64, 64)))[0]


def test_export_refuses_a_meta_that_disagrees_with_the_graph(tmp_path):
    from torch import nn

    from fcn_edge.export import ExportConfig, export_model
    from tiny_models import tiny_meta, tiny_torch_model

    meta = tiny_meta()
    fewer = meta.replace(class_names=meta.class_names[:4], palette=meta.palette[:4])
    anonymous = nn.Sequential(tiny_torch_model())  # no num_classes attribute to catch it earlier
    with pytest.raises(ExportError, match="ModelMeta disagrees with the graph: output 'logits' .* has 5 channels "
                                          "but ModelMeta lists 4 classes"):
        export_model(anonymous, fewer, tmp_path / "x.onnx", ExportConfig(input_size=INPUT_SIZE))
    assert not list(tmp_path.iterdir())


def test_info_flags_a_meta_that_disagrees_with_its_graph(tmp_path, capsys):
    from fcn_edge.cli.main import main

    path = make_tiny_onnx(tmp_path / "m.onnx")
    model = onnx.load(str(path))
    write_onnx_meta(model, read_onnx_meta(path).replace(output_name="probabilities"))
    onnx.save(model, str(path))
    main(["info", str(path)])
    assert "ModelMeta's output 'probabilities' is not a graph output (['logits'])" in capsys.readouterr().out
