"""INT8 Q/DQ variants of the tiny FCN-8s (fcn8s_tiny through the real exporter): graph
validity, placement, fidelity, metadata, the calibration cache and bad calibration sets.

The graph has 8 Conv (stem, residual block, strides 8/16/32, three score layers) and 3
ConvTranspose (upscore2, upscore_pool4, upscore8); upscore8 is the output path, the stem
conv the input path."""

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from fcn_edge.artifacts import read_onnx_meta
from fcn_edge.errors import DataError, PrecisionError
from fcn_edge.precision.calibration import CalibrationData, CalibrationConfig
from fcn_edge.precision.quantize import QuantizeConfig, quantize_int8

from tiny_models import make_images, make_tiny_onnx

ort = pytest.importorskip("onnxruntime")

CONVS, DECONVS = 8, 3
OUTPUT_PATH = "/head/upscore8/ConvTranspose"
FUSED_PREFIX = ""  # the heads are grafted around the network; its node names stay as exported


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("int8")
    make_images(root / "calib", 12, seed=3)
    return {
        "root": root,
        "unfused": make_tiny_onnx(root / "tiny.onnx"),
        "fused": make_tiny_onnx(root / "tiny_fused.onnx", fused=True, output_kind="mask"),
    }


def _quantize(models, kind, tmp_path, **kw):
    kw.setdefault("cache_dir", str(tmp_path / "cache"))
    kw.setdefault("include_input_path", True)  # quantise every conv but the last upsampling
    kw.setdefault("progress", False)
    out = tmp_path / f"{kind}-{kw.get('target', 'tensorrt')}.onnx"
    return quantize_int8(models[kind], models["root"] / "calib", out, QuantizeConfig(**kw))


def _initializers(model):
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def _nodes(model, op):
    return [n for n in model.graph.node if n.op_type == op]


def _weight_dq(model, conv):
    producer = {o: n for n in model.graph.node for o in n.output}
    dq = producer[conv.input[1]]
    assert dq.op_type == "DequantizeLinear", f"{conv.name}'s weight is not dequantised"
    return dq


@pytest.mark.parametrize("kind", ["unfused", "fused"])
@pytest.mark.parametrize("min_tensorrt", [8, 10])
def test_tensorrt_qdq_graph_is_valid_and_symmetric(models, tmp_path, kind, min_tensorrt):
    """TensorRT >= 10: int8 weight initialisers, FP16 scales, every float layer FP16 at opset
    19; TensorRT 8: float weights with Q/DQ and FP32 scales at the export's opset 17. Both:
    Conv weights per output channel, ConvTranspose weights per tensor, zero points int8 0."""
    result = _quantize(models, kind, tmp_path, min_tensorrt=min_tensorrt)
    model = onnx.load(str(result.path))
    onnx.checker.check_model(model, full_check=True)
    opset = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")][0]
    assert opset == (19 if min_tensorrt == 10 else 17)
    inits = _initializers(model)
    weighted = _nodes(model, "Conv") + _nodes(model, "ConvTranspose")
    quantised = [n for n in weighted if n.name not in result.kept_float]
    assert len(weighted) == CONVS + DECONVS and len(quantised) == CONVS + DECONVS - 1
    assert result.kept_float == ((FUSED_PREFIX if kind == "fused" else "") + OUTPUT_PATH,)
    scale_type = np.float16 if min_tensorrt == 10 else np.float32
    producer = {o: n for n in model.graph.node for o in n.output}
    for conv in quantised:
        dq = _weight_dq(model, conv)
        scale = inits[dq.input[1]]
        axes = [a.i for a in dq.attribute if a.name == "axis"]
        if min_tensorrt == 10:
            weight_src = inits[dq.input[0]]
            assert weight_src.dtype == np.int8 and np.abs(weight_src.astype(int)).max() <= 127
        else:
            assert producer[dq.input[0]].op_type == "QuantizeLinear"
            weight_src = inits[producer[dq.input[0]].input[0]]
            assert weight_src.dtype == np.float32
        assert scale.dtype == scale_type
        if conv.op_type == "Conv":
            assert axes == [0] and scale.shape == (weight_src.shape[0],), "Conv weights per output channel"
        else:
            assert axes == [] and scale.shape == (), "ConvTranspose weights per tensor for TensorRT"
    for node in _nodes(model, "QuantizeLinear") + _nodes(model, "DequantizeLinear"):
        zp = inits[node.input[2]]
        assert zp.dtype == np.int8 and not zp.any(), f"{node.name}: zero point must be int8 0 for TensorRT"
        assert inits[node.input[1]].dtype == scale_type
    for conv in quantised:  # every quantised conv reads a dequantised activation
        assert producer[conv.input[0]].op_type == "DequantizeLinear"
    # the residual Add's skip input is quantised; its other input comes straight from the
    # block conv, into which TensorRT folds the Add
    (add,) = [n for n in _nodes(model, "Add") if n.name.endswith("/backbone/Add")]
    block, skip = (add.input if producer[add.input[0]].op_type == "Conv" else add.input[::-1])
    assert producer[block].name.endswith("/backbone/block/Conv")
    assert producer[skip].op_type == "DequantizeLinear"


def test_mixed_graph_is_fp16_everywhere_but_the_boundary(models, tmp_path):
    from onnx import TensorProto, shape_inference

    result = _quantize(models, "fused", tmp_path)
    inferred = shape_inference.infer_shapes(onnx.load(str(result.path)))
    types = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    float32 = [n for n in inferred.graph.node for o in n.output if types.get(o) == TensorProto.FLOAT]
    # the one FP32 tensor: the logits cast up before ArgMax
    assert [n.op_type for n in float32] == ["Cast"]
    assert [n.op_type for n in inferred.graph.node if n.input and n.input[0] == float32[0].output[0]] == ["ArgMax"]
    fp16 = [n for n in inferred.graph.node if n.op_type in ("Conv", "ConvTranspose")
            and types.get(n.output[0]) == TensorProto.FLOAT16]
    assert len(fp16) == CONVS + DECONVS


@pytest.mark.parametrize("kind", ["unfused", "fused"])
def test_variants_keep_io_and_update_meta(models, tmp_path, kind):
    source = onnx.load(str(models[kind]))
    result = _quantize(models, kind, tmp_path, target="onnxruntime", method="entropy")
    model = onnx.load(str(result.path))
    sig = lambda m: [(v.name, v.type.tensor_type.elem_type) for v in list(m.graph.input) + list(m.graph.output)]
    assert sig(model) == sig(source)
    meta, before = read_onnx_meta(result.path), read_onnx_meta(models[kind])
    assert meta.precision == "int8" and before.precision == "fp32"
    assert meta.history[: len(before.history)] == before.history
    assert "target=onnxruntime" in meta.history[-1] and "method=entropy" in meta.history[-1]
    assert meta.replace(precision="fp32", history=before.history) == before


def _outputs(path, feeds):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, f)[0] for f in feeds])


@pytest.mark.parametrize("target", ["tensorrt", "onnxruntime"])
@pytest.mark.parametrize("method", ["entropy", "minmax", "percentile"])
def test_int8_logits_stay_close_to_fp32(models, tmp_path, target, method):
    result = _quantize(models, "unfused", tmp_path, target=target, method=method)
    meta = read_onnx_meta(models["unfused"])
    feeds = list(CalibrationData(models["root"] / "calib", meta, CalibrationConfig(progress=False)))
    ref, out = _outputs(models["unfused"], feeds), _outputs(result.path, feeds)
    rel = np.linalg.norm(out - ref) / np.linalg.norm(ref)
    assert rel < 0.1, f"relative logit error {rel:.3f}"  # measured 0.012-0.045
    assert not np.array_equal(out, ref)  # it really is quantised


def test_onnxruntime_target_fuses_every_quantised_conv(models, tmp_path):
    result = _quantize(models, "unfused", tmp_path, target="onnxruntime")
    model = onnx.load(str(result.path))
    inits = _initializers(model)
    for node in _nodes(model, "QuantizeLinear"):
        assert inits[node.input[2]].dtype == np.uint8
    assert result.counts["folded_relu"] == 5  # the backbone's five ReLUs follow a conv or the residual Add
    optimised = tmp_path / "optimised.onnx"
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(optimised)
    ort.InferenceSession(str(result.path), options, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(str(optimised)).graph.node]
    assert ops.count("QLinearConv") == CONVS, ops  # every Conv runs on uint8; no float Conv is left
    assert not {"Conv", "FusedConv"} & set(ops), ops
    assert "QLinearAdd" in ops  # the residual Add


def test_calibration_cache_is_reused_and_keyed_by_the_model(models, tmp_path):
    first = _quantize(models, "unfused", tmp_path, method="entropy")
    assert not first.cache_hit and first.cache_file.is_file()
    second = _quantize(models, "unfused", tmp_path, method="percentile")
    assert second.cache_hit and second.cache_file == first.cache_file
    # cached histograms give exactly what a fresh calibration gives
    fresh = _quantize(models, "unfused", tmp_path, method="percentile", use_cache=False)
    assert fresh.ranges == second.ranges
    # another model (other weights) has another hash: its own cache file
    other = make_tiny_onnx(tmp_path / "other.onnx", seed=7)
    third = quantize_int8(other, models["root"] / "calib", tmp_path / "o8.onnx",
                          QuantizeConfig(cache_dir=str(tmp_path / "cache"), progress=False))
    assert not third.cache_hit and third.cache_file != first.cache_file


def test_bad_calibration_sets_are_errors(models, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(DataError, match="x.png"):
        quantize_int8(models["unfused"], bad, tmp_path / "o.onnx", QuantizeConfig(use_cache=False, progress=False))
    assert not (tmp_path / "o.onnx").exists()
    with pytest.raises(DataError, match="no such folder"):
        quantize_int8(models["unfused"], tmp_path / "nowhere", tmp_path / "o.onnx", QuantizeConfig(progress=False))


def test_refuses_quantised_input_and_bad_options(models, tmp_path):
    result = _quantize(models, "unfused", tmp_path)
    with pytest.raises(PrecisionError, match="already int8"):
        quantize_int8(result.path, models["root"] / "calib", tmp_path / "again.onnx", QuantizeConfig(progress=False))
    with pytest.raises(PrecisionError, match=r"keep_float \(--keep-float\) names no Conv/ConvTranspose node: \['no_such_conv'\]"):
        _quantize(models, "unfused", tmp_path, keep_float=("no_such_conv",))
    with pytest.raises(PrecisionError, match="target"):
        QuantizeConfig(target="tflite")


def test_keep_float_and_path_options_change_what_is_quantised(models, tmp_path):
    full = _quantize(models, "unfused", tmp_path, include_output_path=True)
    assert full.kept_float == () and full.counts["quantized_weights"] == CONVS + DECONVS
    partial = _quantize(models, "unfused", tmp_path, keep_float=("/backbone/block/Conv",))
    assert set(partial.kept_float) == {"/backbone/block/Conv", OUTPUT_PATH}
    assert partial.counts["quantized_weights"] == CONVS + DECONVS - 2
    # by default the stem conv stays float for ONNX Runtime; for TensorRT it is quantised,
    # because the Q on its ReLU output could not fuse into an FP16 convolution
    for target, kept in (("onnxruntime", {"/backbone/stem/Conv", OUTPUT_PATH}), ("tensorrt", {OUTPUT_PATH})):
        default = quantize_int8(models["fused"], models["root"] / "calib", tmp_path / f"d-{target}.onnx",
                                QuantizeConfig(target=target, cache_dir=str(tmp_path / "cache"), progress=False))
        assert set(default.kept_float) == {FUSED_PREFIX + name for name in kept}


def test_tiny_weight_scales_survive_the_fp16_grid(models, tmp_path):
    """Folded weights far below FP16's normal range (a conv after a near-zero BatchNorm gamma)
    keep their resolution: their scales go on FP16's subnormal grid, never rounded down."""
    model = onnx.load(str(models["unfused"]))
    (conv,) = [n for n in model.graph.node if n.name == "/backbone/block/Conv"]
    (init,) = [i for i in model.graph.initializer if i.name == conv.input[1]]
    weight = numpy_helper.to_array(init) * np.float32(1e-4)  # per-channel scales ~1e-7: FP16 subnormals
    init.CopyFrom(numpy_helper.from_array(weight, init.name))
    small = tmp_path / "small.onnx"
    onnx.save(model, str(small))
    result = quantize_int8(small, models["root"] / "calib", tmp_path / "small.int8.onnx",
                           QuantizeConfig(use_cache=False, progress=False))
    quantised = onnx.load(str(result.path))
    inits = _initializers(quantised)
    (conv,) = [n for n in quantised.graph.node if n.name == "/backbone/block/Conv"]
    dq = _weight_dq(quantised, conv)
    scale = inits[dq.input[1]].astype(np.float32)
    assert scale.dtype == np.float32 and inits[dq.input[1]].dtype == np.float16
    restored = inits[dq.input[0]].astype(np.float32) * scale[:, None, None, None]
    amax = np.abs(weight).reshape(len(weight), -1).max(axis=1)
    error = np.abs(restored - weight).reshape(len(weight), -1).max(axis=1)
    assert np.all(error <= 0.01 * amax)  # within a per cent of each channel's range (127 levels ~ 0.4 %)


def test_the_runtime_keeps_a_mixed_graphs_biases_float(models, tmp_path):
    """A large bias over a tiny weight scale: ORT's own WeightBiasQuantization would quantise
    it in FP16 and overflow; the runtime's ONNX Runtime backend computes what the graph says
    (as ORT does with no graph optimisation at all)."""
    from fcn_edge.runtime import load_segmenter

    model = onnx.load(str(models["unfused"]))
    (conv,) = [n for n in model.graph.node if n.name == "/backbone/down32/Conv"]
    inits = {i.name: i for i in model.graph.initializer}
    weight = numpy_helper.to_array(inits[conv.input[1]]) * np.float32(1e-3)
    inits[conv.input[1]].CopyFrom(numpy_helper.from_array(weight, conv.input[1]))
    bias = np.full(weight.shape[0], 3.0, np.float32)
    inits[conv.input[2]].CopyFrom(numpy_helper.from_array(bias, conv.input[2]))
    path = tmp_path / "bias.onnx"
    onnx.save(model, str(path))
    int8 = quantize_int8(path, models["root"] / "calib", tmp_path / "bias.int8.onnx",
                         QuantizeConfig(use_cache=False, progress=False)).path
    meta = read_onnx_meta(int8)
    feed = next(iter(CalibrationData(models["root"] / "calib", meta, CalibrationConfig(progress=False))))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    plain = ort.InferenceSession(str(int8), options, providers=["CPUExecutionProvider"])
    expected = plain.run(None, feed)[0].astype(np.float32)
    assert np.isfinite(expected).all()
    with load_segmenter(int8, "onnxruntime", providers=["cpu"]) as segmenter:
        got = np.asarray(segmenter.backend.infer(feed[meta.input_name])[0], np.float32)
    assert np.abs(got - expected).max() <= 1e-2 * np.abs(expected).max()
