"""Runtime on ONNX Runtime (CPU) and PyTorch: masks, decoding, rendering, errors."""

from __future__ import annotations

import numpy as np
import pytest

from fcn_edge.artifacts import meta_for_classes
from fcn_edge.errors import FcnEdgeError, MetaError, RuntimeInputError
from fcn_edge.runtime import (
    DecodeConfig, Decoder, Placement, RenderConfig, Renderer, class_shares, load_segmenter, palette_lut,
)
from fcn_edge.runtime.preprocess import Preprocessor, placement_for
from runtime_fixtures import NUM_CLASSES, make_onnx, sample_frame, tiny_net

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    d = tmp_path_factory.mktemp("runtime-models")
    return {
        "unfused": make_onnx(d, "unfused"),
        "fused": make_onnx(d, "fused"),
        "unfused-letterbox": make_onnx(d, "unfused", resize_mode="letterbox"),
        "fused-letterbox": make_onnx(d, "fused", resize_mode="letterbox"),
    }


def _meta(**kw):
    return meta_for_classes("hand", ["a", "b", "c"], input_size=(4, 6), **kw)


# -- decoding on hand-made scores ----------------------------------------------------------
def test_decode_argmax_and_nearest_upscale():
    scores = np.zeros((3, 4, 6), np.float32)
    scores[0, :, :3] = 5.0  # left half class 0
    scores[2, :, 3:] = 5.0  # right half class 2
    scores[1, 0, 0] = 9.0  # one pixel of class 1
    place = placement_for((8, 12), (4, 6), "stretch")
    mask, conf = Decoder(_meta(), (4, 6))(scores, place)
    assert mask.shape == (8, 12) and mask.dtype == np.uint8 and conf is None
    assert (mask[:, :6][2:] == 0).all() and (mask[:, 6:] == 2).all()
    assert (mask[:2, :2] == 1).all() and mask[2, 2] == 0  # one input pixel -> a 2x2 block


def test_decode_ties_take_the_first_class_like_numpy():
    scores = np.ones((3, 4, 6), np.float32)
    mask, _ = Decoder(_meta(), (4, 6))(scores, placement_for((4, 6), (4, 6), "stretch"))
    assert (mask == 0).all()
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(3, 4, 6)).astype(np.float32)
    mask, _ = Decoder(_meta(), (4, 6))(scores, placement_for((4, 6), (4, 6), "stretch"))
    np.testing.assert_array_equal(mask, scores.argmax(0))


def test_decode_confidence_is_softmax_of_winner():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(3, 4, 6)).astype(np.float32) * 3
    mask, conf = Decoder(_meta(), (4, 6), DecodeConfig(confidence=True))(
        scores, placement_for((4, 6), (4, 6), "stretch"))
    e = np.exp(scores - scores.max(0))
    np.testing.assert_allclose(conf, (e / e.sum(0)).max(0), rtol=1e-5)
    assert conf.min() >= 1 / 3 - 1e-6 and conf.max() <= 1.0


def test_decode_undoes_letterbox():
    # frame 2x6 into a 4x6 input: content in rows 1..2, padding rows 0 and 3
    place = placement_for((2, 6), (4, 6), "letterbox")
    assert (place.top, place.height, place.left, place.width) == (1, 2, 0, 6)
    scores = np.zeros((3, 4, 6), np.float32)
    scores[1] = 1.0  # padding rows say class 1
    scores[2, 1:3] = 5.0  # content rows say class 2
    mask, _ = Decoder(_meta(), (4, 6))(scores, place)
    assert mask.shape == (2, 6) and (mask == 2).all()


def test_decode_linear_is_smoother_than_point():
    scores = np.zeros((3, 4, 6), np.float32)
    scores[0, :, :3] = 1.0
    scores[2, :, 3:] = 1.0
    scores[1, 1:3, 2:4] = 1.5  # a small square of class 1
    place = placement_for((40, 60), (4, 6), "stretch")
    point, _ = Decoder(_meta(), (4, 6))(scores, place)
    linear, _ = Decoder(_meta(), (4, 6), DecodeConfig(filter_mode="linear"))(scores, place)
    assert set(np.unique(point)) == set(np.unique(linear)) == {0, 1, 2}
    # point gives a square block of class 1; bilinear scores give a rounded blob with fewer pixels
    assert (point == 1).sum() == 20 * 20
    assert 0 < (linear == 1).sum() < (point == 1).sum()


def test_decode_fused_mask_and_linear_refused():
    meta = _meta(output_kind="mask", output_dtype="uint8", input_dtype="uint8", input_layout="NHWC")
    m = np.array([[0, 1, 2, 0, 1, 2]] * 4, np.uint8)
    mask, conf = Decoder(meta, (4, 6))(m[None], placement_for((8, 12), (4, 6), "stretch"))
    assert mask.shape == (8, 12) and conf is None and mask[0, 2] == 1
    with pytest.raises(MetaError, match="filter_mode='point'"):
        Decoder(meta, (4, 6), DecodeConfig(filter_mode="linear"))
    with pytest.raises(MetaError, match="confidence|scores"):
        Decoder(meta, (4, 6), DecodeConfig(confidence=True))


# -- rendering --------------------------------------------------------------------------------
def test_palette_overlay_modes_and_ignore_class():
    palette = ((255, 0, 0), (0, 255, 0), (0, 0, 255))  # RGB
    lut = palette_lut(palette)
    assert tuple(lut[0]) == (0, 0, 255)  # BGR
    frame = np.full((2, 3, 3), 100, np.uint8)
    mask = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    over = Renderer(palette, RenderConfig("overlay", alpha=0.5, ignore_class=0))(frame, mask)
    assert (over[0, 0] == 100).all()  # ignored class keeps the frame
    np.testing.assert_allclose(over[0, 1], [50, 178, 50], atol=1)  # 0.5*green + 0.5*grey
    only = Renderer(palette, RenderConfig("mask"))(frame, mask)
    assert tuple(only[1, 0]) == (255, 0, 0)  # class 2 is RGB blue -> BGR (255, 0, 0)
    both = Renderer(palette, RenderConfig("both"))(frame, mask)
    assert both.shape == (2, 6, 3)
    np.testing.assert_allclose(class_shares(mask, 3, ignore_class=0), [0, 0.5, 0.5])
    with pytest.raises(ValueError):
        RenderConfig("sideways")


# -- the Segmenter on ONNX Runtime ---------------------------------------------------------
def test_fused_and_unfused_variants_agree(models):
    frame = sample_frame(120, 160)
    with load_segmenter(models["unfused"]) as a, load_segmenter(models["fused"]) as b:
        ra, rb = a.segment(frame), b.segment(frame)
    assert ra.mask.shape == rb.mask.shape == (120, 160)
    assert len(np.unique(ra.mask)) >= 3  # a real mask, not one class
    assert (ra.mask == rb.mask).mean() > 0.999


@pytest.mark.parametrize("size", [(120, 160), (97, 211), (300, 90)])
def test_letterbox_variants_agree_and_fit_the_frame(models, size):
    frame = sample_frame(*size, seed=3)
    with load_segmenter(models["unfused-letterbox"]) as a, load_segmenter(models["fused-letterbox"]) as b:
        ra, rb = a.segment(frame), b.segment(frame)
    assert ra.mask.shape == size
    assert (ra.mask == rb.mask).mean() > 0.999


def test_onnxruntime_matches_pytorch(models):
    torch = pytest.importorskip("torch")
    from fcn_edge.artifacts import read_onnx_meta
    from fcn_edge.runtime import Segmenter
    from fcn_edge.runtime.torch_backend import TorchBackend

    frame = sample_frame(120, 160, seed=5)
    meta = read_onnx_meta(models["unfused"])
    with Segmenter(TorchBackend(tiny_net(), meta, use_cuda=False)) as ref, load_segmenter(models["fused"]) as fused:
        r_ref, r_fused = ref.segment(frame), fused.segment(frame)
    with load_segmenter(models["unfused"]) as ort:
        r_ort = ort.segment(frame)
    assert "torch" in ref.description.lower() or "pytorch" in ref.description.lower()
    assert (r_ref.mask == r_ort.mask).mean() > 0.999
    assert (r_ref.mask == r_fused.mask).mean() > 0.999
    del torch


@pytest.mark.gpu
def test_torch_on_cuda_matches_onnxruntime(models):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU for torch")
    from fcn_edge.artifacts import read_onnx_meta
    from fcn_edge.runtime import Segmenter
    from fcn_edge.runtime.torch_backend import TorchBackend

    frames = [sample_frame(120, 160, seed=s) for s in range(3)]
    meta = read_onnx_meta(models["unfused"])
    with Segmenter(TorchBackend(tiny_net(), meta, use_cuda=True)) as gpu, load_segmenter(models["fused"]) as ort:
        for frame in frames:
            r_gpu, r_ort = gpu.segment(frame), ort.segment(frame)
            assert (r_gpu.mask == r_ort.mask).mean() > 0.999
        assert r_gpu.timings.h2d_ms > 0 and "cuda" in str(gpu.backend.device)


def test_torch_backend_loads_checkpoint(tmp_path):
    pytest.importorskip("torch")
    from fcn_edge.models.checkpoint import save_checkpoint
    from fcn_edge.models.registry import build_model

    meta = meta_for_classes("fcn32s_resnet18", [f"c{i}" for i in range(3)], input_size=(64, 64))
    path = save_checkpoint(tmp_path / "r18.pt", build_model("fcn32s_resnet18", 3), meta)
    with load_segmenter(path) as seg:
        result = seg.segment(sample_frame(50, 70))
    assert seg.backend.name == "torch"
    assert result.mask.shape == (50, 70) and result.mask.max() < 3


def test_segment_result_timings_confidence_and_shares(models):
    frame = sample_frame(120, 160)
    with load_segmenter(models["unfused"], decode=DecodeConfig(confidence=True)) as seg:
        seg.warmup()
        r = seg.segment(frame)
    t = r.timings
    assert t.preprocess_ms > 0 and t.compute_ms > 0 and t.decode_ms > 0
    assert t.total_ms == pytest.approx(t.preprocess_ms + t.h2d_ms + t.compute_ms + t.d2h_ms + t.decode_ms)
    assert r.confidence.shape == (120, 160) and 0.2 <= r.confidence.min() <= r.confidence.max() <= 1.0
    shares = r.class_shares()
    assert list(shares) == [f"class{i}" for i in range(NUM_CLASSES)]
    assert sum(shares.values()) == pytest.approx(1.0)


def test_segment_batch_matches_single_frames(models):
    frames = [sample_frame(120, 160, seed=s) for s in range(3)] + [sample_frame(77, 99, seed=9)]
    with load_segmenter(models["fused"]) as seg:
        singles = [seg.segment(f).mask for f in frames]
        batched = seg.segment_batch(frames)
    assert len(batched) == 4
    for one, many in zip(singles, batched):
        np.testing.assert_array_equal(one, many.mask)


def test_dynamic_model_runs_at_another_input_size(models):
    with load_segmenter(models["unfused"], input_size=(96, 128)) as seg:
        r = seg.segment(sample_frame(120, 160))
    assert r.mask.shape == (120, 160)
    with pytest.raises(MetaError, match="outside the model's range"):
        load_segmenter(models["unfused"], input_size=(512, 512))


def test_preprocessor_reuses_buffers_and_normalises():
    meta = meta_for_classes("p", ["a", "b"], input_size=(8, 8))
    pre = Preprocessor(meta)
    frame = np.zeros((16, 16, 3), np.uint8)
    frame[..., 2] = 255  # pure red in BGR
    a, places = pre([frame])
    b, _ = pre([frame])
    assert a is b and a.shape == (1, 3, 8, 8) and places[0] == Placement((16, 16), 0, 0, 8, 8)
    np.testing.assert_allclose(a[0, 0], (1 - 0.485) / 0.229, rtol=1e-5)  # R channel first
    np.testing.assert_allclose(a[0, 2], (0 - 0.406) / 0.225, rtol=1e-5)


# -- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize("frame,match", [
    (np.zeros((10, 10), np.uint8), "greyscale"),
    (np.zeros((10, 10, 4), np.uint8), "BGRA2BGR"),
    (np.zeros((0, 10, 3), np.uint8), "empty"),
    (np.zeros((10, 10, 3), np.float32), "uint8"),
    ([[1, 2, 3]], "numpy array"),
])
def test_bad_frames_give_clear_errors(models, frame, match):
    with load_segmenter(models["fused"]) as seg:
        with pytest.raises(RuntimeInputError, match=match):
            seg.segment(frame)


def test_bad_model_paths(tmp_path, models):
    with pytest.raises(MetaError, match="no such model file"):
        load_segmenter(tmp_path / "missing.onnx")
    odd = tmp_path / "model.bin"
    odd.write_bytes(b"x")
    with pytest.raises(MetaError, match="model.bin: this is a file of unknown format, not a TensorRT engine"):
        load_segmenter(odd)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx file")
    with pytest.raises(FcnEdgeError, match="broken.onnx"):
        load_segmenter(broken)
    with pytest.raises(MetaError, match="cannot run a onnx file"):
        load_segmenter(models["fused"], backend="tensorrt")
    if not _has_cuda_ep():  # asking for a provider that is absent must not quietly run on CPU
        with pytest.raises(MetaError, match="CUDAExecutionProvider.*not available"):
            load_segmenter(models["fused"], providers=["cuda"])


def _has_cuda_ep() -> bool:
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


def test_onnx_without_meta_or_with_wrong_meta_says_how_to_fix(tmp_path, models):
    onnx = pytest.importorskip("onnx")
    from fcn_edge.artifacts import read_onnx_meta, write_onnx_meta

    proto = onnx.load(str(models["unfused"]))
    del proto.metadata_props[:]
    onnx.save(proto, str(tmp_path / "plain.onnx"))
    with pytest.raises(MetaError, match="write_onnx_meta|fcn-edge export"):
        load_segmenter(tmp_path / "plain.onnx")
    # the meta of the fused variant on the unfused graph: the input types disagree
    write_onnx_meta(proto, read_onnx_meta(models["fused"]))
    onnx.save(proto, str(tmp_path / "mixed.onnx"))
    with pytest.raises(MetaError, match="input input is float32 but its ModelMeta says uint8"):
        load_segmenter(tmp_path / "mixed.onnx")


def test_provider_choice():
    from fcn_edge.runtime.ort_backend import requested_cpu_fallback, resolve_providers

    gpu = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert resolve_providers(None, gpu) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert resolve_providers(["trt", "cuda"], gpu) == gpu
    assert resolve_providers(None, ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    with pytest.raises(MetaError, match="onnxruntime-gpu"):
        resolve_providers(["cuda"], ["CPUExecutionProvider"])
    assert requested_cpu_fallback(["cuda"], ["CPUExecutionProvider"])
    assert not requested_cpu_fallback(None, ["CPUExecutionProvider"])


@pytest.mark.slow
def test_default_architecture_variants_agree_across_backends(tmp_path):
    """The default model (or its architecture with seeded weights): PyTorch, unfused ORT and
    fused ORT give the same masks on 640x480 frames."""
    pytest.importorskip("torch")
    from fcn_edge.artifacts import meta_for_dataset
    from fcn_edge.errors import FcnEdgeError
    from fcn_edge.export.config import ExportConfig
    from fcn_edge.export.exporter import export_checkpoint
    from fcn_edge.models.checkpoint import save_checkpoint
    from fcn_edge.models.registry import build_model

    try:
        from fcn_edge.weights import default_checkpoint

        checkpoint = default_checkpoint()
    except (ImportError, FcnEdgeError):
        import torch

        torch.manual_seed(0)
        meta = meta_for_dataset("fcn8s_mobilenetv3", "synthetic", input_size=(256, 320))
        checkpoint = save_checkpoint(tmp_path / "m.pt", build_model("fcn8s_mobilenetv3", meta.num_classes), meta)
    paths = {}
    for name, fused in (("unfused", False), ("fused", True)):
        paths[name] = tmp_path / f"{name}.onnx"
        export_checkpoint(checkpoint, paths[name], ExportConfig(input_size=(256, 320), fuse_preprocess=fused,
                                                                output="mask" if fused else "logits"))
    frames = [sample_frame(480, 640, seed=s) for s in range(2)]
    with load_segmenter(checkpoint) as ref, load_segmenter(paths["unfused"]) as a, load_segmenter(paths["fused"]) as b:
        for frame in frames:
            r, ra, rb = ref.segment(frame).mask, a.segment(frame).mask, b.segment(frame).mask
            assert r.shape == (480, 640)
            assert (r == ra).mean() > 0.999 and (r == rb).mean() > 0.999
