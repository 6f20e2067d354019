"""FP16 variants: types inside and at the boundary, FP32 islands, closeness to FP32."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

from fcn_edge.artifacts import read_onnx_meta
from fcn_edge.errors import PrecisionError
from fcn_edge.precision.calibration import CalibrationConfig, CalibrationData
from fcn_edge.precision.fp16 import FP16Config, convert_fp16

from tiny_models import make_images, make_tiny_onnx

ort = pytest.importorskip("onnxruntime")

UPSCORE8 = "/head/upscore8/ConvTranspose"  # the output path of fcn8s_tiny


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("fp16")
    make_images(root / "imgs", 6, seed=5)
    return {"root": root, "unfused": make_tiny_onnx(root / "tiny.onnx"),
            "fused": make_tiny_onnx(root / "tiny_fused.onnx", fused=True, output_kind="mask")}


def _io(model):
    return [(v.name, v.type.tensor_type.elem_type) for v in list(model.graph.input) + list(model.graph.output)]


def _run(path, feeds):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, f)[0] for f in feeds])


@pytest.mark.parametrize("kind", ["unfused", "fused"])
def test_fp16_keeps_io_types_and_runs_close_to_fp32(models, tmp_path, kind):
    result = convert_fp16(models[kind], tmp_path / "m.fp16.onnx")
    model = onnx.load(str(result.path))
    onnx.checker.check_model(model, full_check=True)
    assert _io(model) == _io(onnx.load(str(models[kind])))
    if kind == "fused":
        assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.UINT8
        assert model.graph.output[0].type.tensor_type.elem_type == TensorProto.UINT8
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert len(convs) == 8 and all(weights[c.input[1]].dtype == np.float16 for c in convs[1:])
    # the first conv reads the image and stays FP32 by default, as does fused preprocessing
    assert convs[0].name.endswith("/backbone/stem/Conv")
    assert weights[convs[0].input[1]].dtype == np.float32 and convs[0].name in result.kept_float
    if kind == "fused":  # normalisation of the uint8 frame stays FP32: its Cast still makes FLOAT
        first_cast = [n for n in model.graph.node if n.op_type == "Cast"][0]
        assert [a.i for a in first_cast.attribute if a.name == "to"] == [TensorProto.FLOAT]
    # the last upsampling stays FP32 by default; the two before it do not
    ups = {n.name.rsplit("/head/", 1)[1]: n for n in model.graph.node if n.op_type == "ConvTranspose"}
    assert {k: weights[n.input[1]].dtype for k, n in ups.items()} == {
        "upscore2/ConvTranspose": np.float16, "upscore_pool4/ConvTranspose": np.float16,
        "upscore8/ConvTranspose": np.float32}
    assert ups["upscore8/ConvTranspose"].name in result.kept_float
    meta = read_onnx_meta(models[kind])
    feeds = list(CalibrationData(models["root"] / "imgs", meta, CalibrationConfig(progress=False)))
    ref, out = _run(models[kind], feeds), _run(result.path, feeds)
    assert out.dtype == ref.dtype
    if kind == "unfused":
        assert np.abs(out - ref).max() < 1e-2 * np.abs(ref).max()
        assert not np.array_equal(out, ref)
    else:
        assert (out == ref).mean() > 0.99


def test_fp16_meta_and_options(models, tmp_path):
    result = convert_fp16(models["unfused"], tmp_path / "a.onnx",
                          FP16Config(include_input_path=True, include_output_path=True,
                                     keep_float=("/backbone/block/Conv",)))
    meta = read_onnx_meta(result.path)
    assert meta.precision == "fp16" and meta.history[-1].startswith("fp16:")
    model = onnx.load(str(result.path))
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    dtypes = {n.name: weights[n.input[1]].dtype for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose")}
    assert dtypes["/backbone/block/Conv"] == np.float32 and dtypes[UPSCORE8] == np.float16
    assert dtypes["/backbone/stem/Conv"] == np.float16
    assert result.kept_float == ("/backbone/block/Conv",)
    with pytest.raises(PrecisionError, match="already fp16"):
        convert_fp16(result.path, tmp_path / "b.onnx")
    with pytest.raises(PrecisionError, match=r"keep_float \(--keep-float\) names no node .*'no_such_node'"):
        convert_fp16(models["unfused"], tmp_path / "c.onnx", FP16Config(keep_float=("no_such_node",)))
