"""Runtime on ONNX Runtime (CPU) and PyTorch: masks, decoding, rendering, errors."""

from __future__ import annotations

import numpy as np
import pytest

from fcn_edge.artifacts import meta_for_classes
from fcn_edge.errors import FcnEdgeError, MetaError, RuntimeInputError, UsageError
from fcn_edge.runtime import (
    DecodeConfig, Decoder, Placement, RenderConfig, Renderer, class_shares, load_segmenter, palette_lut,
)
from fcn_edge.runtime.preprocess import Preprocessor, placement_for
from tiny_models import CLASSES, NUM_CLASSES, make_tiny_onnx, sample_frame, tiny_torch_model

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The tiny FCN-8s as `fcn-edge export` writes it: unfused (float NCHW in, logits out) and
    fused (uint8 NHWC BGR in, argmax mask out), each with stretch and letterbox resizing."""
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    d = tmp_path_factory.mktemp("runtime-models")
    return {
        f"{name}{suffix}": make_tiny_onnx(d, fused=fused, output_kind="mask" if fused else "logits", resize_mode=mode)
        for name, fused in (("unfused", False), ("fused", True))
        for suffix, mode in (("", "stretch"), ("-letterbox", "letterbox"))
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
PALETTE = ((255, 0, 0), (0, 255, 0), (0, 0, 255))  # RGB
NAMES = ("background", "grass", "water")


def test_palette_overlay_modes_and_ignore_class():
    lut = palette_lut(PALETTE)
    assert tuple(lut[0]) == (0, 0, 255)  # BGR
    frame = np.full((2, 3, 3), 100, np.uint8)
    mask = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    over = Renderer(PALETTE, RenderConfig("overlay", alpha=127.5, ignore_class=0))(frame, mask)
    assert (over[0, 0] == 100).all()  # ignored class keeps the frame
    np.testing.assert_allclose(over[0, 1], [50, 178, 50], atol=1)  # alpha 127.5 of 255: half green, half grey
    only = Renderer(PALETTE, RenderConfig("mask", ignore_class=0))(frame, mask)
    assert tuple(only[1, 0]) == (255, 0, 0) and tuple(only[0, 0]) == (0, 0, 0)  # class 2 blue; ignored black
    both = Renderer(PALETTE, RenderConfig("both"))(frame, mask)
    assert both.shape == (2, 6, 3)
    np.testing.assert_allclose(class_shares(mask, 3, ignore_class=0), [0, 0.5, 0.5])
    with pytest.raises(UsageError, match="'sideways' is not one of overlay, mask, both"):
        RenderConfig("sideways")


@pytest.mark.parametrize("alpha, expected", [(0, 100), (255, 255), (150, round(100 + 150 / 255 * 155))])
def test_alpha_is_0_to_255_like_segnet(alpha, expected):
    frame = np.full((2, 2, 3), 100, np.uint8)
    mask = np.ones((2, 2), np.uint8)
    picture = Renderer(PALETTE, RenderConfig(alpha=alpha))(frame, mask)
    assert abs(int(picture[0, 0, 1]) - expected) <= 1  # green channel of class 1
    with pytest.raises(UsageError, match="alpha 300 is outside 0"):
        RenderConfig(alpha=300)


def test_ignore_class_by_name_or_index_is_the_same():
    frame = np.full((4, 4, 3), 90, np.uint8)
    mask = np.arange(16, dtype=np.uint8).reshape(4, 4) % 3
    by = {ref: Renderer(PALETTE, RenderConfig(ignore_class=ref), NAMES)(frame, mask) for ref in ("grass", "GRASS", 1, "1")}
    for picture in by.values():
        np.testing.assert_array_equal(picture, by[1])
    assert (by[1][mask == 1] == 90).all() and not (by[1][mask == 2] == 90).all()
    with pytest.raises(UsageError, match="'sand' is not a class of this model: background, grass, water"):
        Renderer(PALETTE, RenderConfig(ignore_class="sand"), NAMES)
    with pytest.raises(UsageError, match="ignore_class 3 is outside the model's class indices 0..2"):
        Renderer(PALETTE, RenderConfig(ignore_class=3), NAMES)


def _legend_scene(height=240, width=320):
    """Black frame, alpha 255 (the picture is the colour mask): class 0 everywhere, class 2 in
    a busy checkerboard in the top-right corner, class 1 absent."""
    frame = np.zeros((height, width, 3), np.uint8)
    mask = np.zeros((height, width), np.uint8)
    mask[:100, 160:] = 2 * (np.indices((100, 160)).sum(axis=0) // 8 % 2)
    return frame, mask


def _colour_pixels(picture, rgb) -> int:
    return int(np.all(picture == np.array(rgb[::-1], np.uint8), axis=-1).sum())


def test_legend_lists_the_classes_present_where_it_hides_least():
    frame, mask = _legend_scene()
    config = RenderConfig(alpha=255, legend=True)
    plain = Renderer(PALETTE, RenderConfig(alpha=255), NAMES)(frame, mask)
    renderer = Renderer(PALETTE, config, NAMES)
    picture = renderer(frame, mask)
    changed = np.any(picture != plain, axis=-1)
    rows, cols = np.nonzero(changed)
    # the busy top-right corner stays visible: the panel went to the next corner, bottom-right
    assert renderer.legend.corner == "bottom-right"
    assert rows.min() > 120 and cols.min() > 160
    panel = picture[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    assert _colour_pixels(panel, PALETTE[0]) >= 25 and _colour_pixels(panel, PALETTE[2]) >= 25  # swatches
    assert _colour_pixels(picture, PALETTE[1]) == 0  # the absent class is not listed
    text = np.all(panel > 200, axis=-1).sum()
    assert text > 50  # white class names on the darkened panel
    everything = Renderer(PALETTE, RenderConfig(alpha=255, legend=True, legend_classes="all"), NAMES)(frame, mask)
    assert _colour_pixels(everything, PALETTE[1]) >= 25


def test_legend_leaves_out_the_ignored_class_and_goes_on_the_mask_side_by_side():
    frame, mask = _legend_scene()
    renderer = Renderer(PALETTE, RenderConfig("both", alpha=255, ignore_class="background", legend=True), NAMES)
    picture = renderer(frame, mask)
    plain = Renderer(PALETTE, RenderConfig("both", alpha=255, ignore_class="background"), NAMES)(frame, mask)
    changed = np.any(picture != plain, axis=-1)
    assert not changed[:, :320].any() and changed[:, 320:].any()  # the overlay half is untouched
    assert _colour_pixels(picture[:, 320:][changed[:, 320:]][None], PALETTE[0]) == 0  # no background swatch


def test_stream_legend_keeps_its_corner_and_leaves_top_left_to_the_hud():
    frame, mask = _legend_scene()
    renderer = Renderer(PALETTE, RenderConfig(legend=True), NAMES, stream=True)
    renderer(frame, mask)
    assert renderer.legend.corner == "bottom-right"
    speck = mask.copy()
    speck[-12:-10, -40:-30] = 1  # a little structure under the panel: not worth a jump
    renderer(frame, speck)
    assert renderer.legend.corner == "bottom-right"
    busy = mask.copy()
    busy[120:, :] = 2 * (np.indices((120, 320)).sum(axis=0) // 8 % 2)  # the whole bottom gets busy
    busy[:100, 160:] = 0
    renderer(frame, busy)
    assert renderer.legend.corner == "top-right"
    busy[:100, 160:] = 2 * (np.indices((100, 160)).sum(axis=0) // 8 % 2)
    renderer(frame, busy)
    assert renderer.legend.corner != "top-left"  # even where top-left hides least


def test_legend_fits_small_pictures():
    frame = np.zeros((40, 60, 3), np.uint8)
    mask = (np.arange(60)[None, :] // 20 % 3).astype(np.uint8).repeat(40, axis=0)
    picture = Renderer(PALETTE, RenderConfig(legend=True), NAMES)(frame, mask)
    assert picture.shape == (40, 60, 3)


def test_result_overlay_is_the_renderer_with_the_models_names(models):
    frame = sample_frame(120, 160)
    with load_segmenter(models["fused"]) as seg:
        result = seg.segment(frame)
        meta = seg.meta
    config = RenderConfig("overlay", 200, "road", legend=True)
    expected = Renderer(meta.palette, config, meta.class_names)(frame, result.mask)
    np.testing.assert_array_equal(result.overlay(frame, alpha=200, ignore_class="road", legend=True), expected)
    assert result.class_shares("road")["road"] == 0.0 and result.class_shares(1) == result.class_shares("road")


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
    with Segmenter(TorchBackend(tiny_torch_model(), meta, use_cuda=False)) as ref, load_segmenter(models["fused"]) as fused:
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
    with Segmenter(TorchBackend(tiny_torch_model(), meta, use_cuda=True)) as gpu, load_segmenter(models["fused"]) as ort:
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
    assert r.confidence.shape == (120, 160) and r.confidence.dtype == np.float32
    shares = r.class_shares()
    assert list(shares) == list(CLASSES)
    assert sum(shares.values()) == pytest.approx(1.0)
    counts = np.bincount(r.mask.ravel(), minlength=NUM_CLASSES) / r.mask.size
    assert list(shares.values()) == pytest.approx(list(counts))


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


def test_set_decode_switches_to_confidence_where_the_model_has_scores(models):
    frame = sample_frame(120, 160)
    with load_segmenter(models["unfused"]) as seg:
        assert seg.segment(frame).confidence is None
        seg.set_decode(DecodeConfig(confidence=True))
        assert seg.segment(frame).confidence.shape == (120, 160)
    with load_segmenter(models["fused"]) as seg, pytest.raises(MetaError, match="no scores to give confidence"):
        seg.set_decode(DecodeConfig(confidence=True))


def test_training_validates_through_the_runtimes_segmenter(tmp_path):
    """One evaluation path: training's validate() on the in-memory model scores exactly what
    evaluating its checkpoint through load_segmenter (the PyTorch backend) scores."""
    pytest.importorskip("torch")
    from fcn_edge.data.formats import open_dataset
    from fcn_edge.evaluate.runner import evaluate_dataset
    from fcn_edge.training.loop import validate
    from tiny_models import make_dataset, make_tiny_checkpoint, tiny_meta

    dataset = open_dataset(make_dataset(tmp_path / "data", 4))
    checkpoint = make_tiny_checkpoint(tmp_path / "tiny.pt")
    model = tiny_torch_model().train()
    during_training = validate(model, tiny_meta(), dataset, "cpu", None)
    assert model.training  # validate() puts the model back as it found it
    with load_segmenter(checkpoint, "torch") as seg:
        evaluated = evaluate_dataset(seg, dataset, progress=False)
    assert during_training.metrics.to_dict() == evaluated.metrics.to_dict()
    assert during_training.images == evaluated.images == 4


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
