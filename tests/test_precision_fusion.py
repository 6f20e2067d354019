"""Where the TensorRT placement puts Q/DQ, and the fusion report that predicts what TensorRT
does with them: no standalone Q/DQ and no FP32 beyond casts/ArgMax for the default model,
MobileNetV3 with its squeeze-excitation blocks (decomposed and native hard-swish), FCN-8s
ResNet-18 and (slow) FCN-8s VGG16; the structural rules (Shape readers, residual input,
Concat scale) on graphs made for them."""

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from fcn_edge.precision.fusion import fusion_report
from fcn_edge.precision.graph import GraphIndex
from fcn_edge.precision.placement import plan_placement
from fcn_edge.precision.quantize import QuantizeConfig, quantize_int8

from tiny_models import make_images, make_tiny_onnx

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def calib(tmp_path_factory):
    root = tmp_path_factory.mktemp("fusion")
    make_images(root / "calib", 6, seed=4, size=(64, 80))
    return root


def _int8(model, calib, tmp_path, **kw):
    kw.setdefault("progress", False)
    kw.setdefault("use_cache", False)
    return quantize_int8(model, calib / "calib", tmp_path / (kw.pop("name", "m") + ".int8.onnx"),
                         QuantizeConfig(**kw))


def _export(arch, path, size=(64, 80), native=False):
    import torch

    from fcn_edge.artifacts import ModelMeta
    from fcn_edge.classes import builtin_classes
    from fcn_edge.export import ExportConfig, export_model
    from fcn_edge.models import build_model
    from fcn_edge.models.mobilenetv3 import use_native_hard_activations

    torch.manual_seed(0)
    classes = builtin_classes("voc")
    model = build_model(arch, len(classes.names)).eval()
    if native:
        assert use_native_hard_activations(model) > 0
    meta = ModelMeta(arch, classes.names, classes.palette, input_size=size)
    export_model(model, meta, path, ExportConfig(input_size=size, check_parity=False))
    return path


def _assert_fuses(report, pointwise_ok=True):
    assert report.pairs > 0 and report.standalone == (), report.standalone
    assert report.fp32_layers == (), report.fp32_layers  # FP32 only where it must be
    assert report.convs["fp32"] == 0 and report.convs["int8"] > 0
    assert report.elements["fp16"] > 0 and report.elements["int8"] > 0


def test_tiny_model_fuses_with_fp16_for_the_rest(calib, tmp_path):
    fp32 = make_tiny_onnx(tmp_path / "tiny.onnx")
    before = fusion_report(fp32)
    assert before.pairs == 0 and before.convs["int8"] == 0 and before.elements["fp16"] == 0
    result = _int8(fp32, calib, tmp_path)
    report = fusion_report(result.path)
    _assert_fuses(report)
    # the stem reads the image: its one Q is the network input's, not counted as standalone
    assert report.q_sites["input"] == 1 and report.q_sites["standalone"] == 0
    assert report.q_sites["add"] == 1  # score_pool4 + crop(upscore2) -> upscore_pool4
    # (block + skip) -> ReLU -> MaxPool -> Q, and crop(upscore2) -> Q: moved across MaxPool / Slice
    assert report.q_sites["across"] == 2
    assert report.weight_storage == {"int8": report.weight_dq, "float": 0}
    legacy = fusion_report(_int8(fp32, calib, tmp_path, min_tensorrt=8, name="legacy").path)
    assert legacy.weight_storage == {"int8": 0, "float": legacy.weight_dq}
    assert legacy.convs["fp16"] == 0 and legacy.fp32_layers  # FP32 Q/DQ: the 8.x builder flag makes it FP16
    assert legacy.file_bytes > report.file_bytes


def test_a_float_conv_before_a_quantised_one_is_reported_standalone(calib, tmp_path):
    fp32 = make_tiny_onnx(tmp_path / "tiny.onnx")
    report = fusion_report(_int8(fp32, calib, tmp_path, keep_float=("/backbone/down8/Conv",)).path)
    assert report.standalone == ("/backbone/relu_2/Relu_output_0",)  # down8 (FP16) -> ReLU -> Q
    assert report.q_sites["standalone"] == 1


def test_shape_readers_do_not_block_the_add_fusion(calib, tmp_path):
    """score_pool4's output is read by the Add and by a Shape (the crop's size): it is still
    the convolution side of the Add, and the crop of upscore2 is the quantised skip."""
    fp32 = make_tiny_onnx(tmp_path / "tiny.onnx")
    index = GraphIndex.build(onnx.load(str(fp32)).graph)
    plan = plan_placement(index, "tensorrt", include_input_path=True)
    (add,) = [n for n in index.graph.node if n.name == "/head/Add"]
    pool4 = [i for i in add.input if index.producer[i].name == "/head/score_pool4/Conv"][0]
    assert [u.op_type for u in index.consumers[pool4]].count("Shape") == 1
    skip = [i for i in add.input if i != pool4][0]
    assert index.producer[skip].op_type == "Slice"
    assert skip in plan.activations and pool4 not in plan.activations
    # the second score Add feeds the unquantised output path: its skip stays float
    (add1,) = [n for n in index.graph.node if n.name == "/head/Add_1"]
    assert not set(add1.input) & set(plan.activations)


def _conv(name, x, w, out):
    return helper.make_node("Conv", [x, w], [out], name=name, pads=[1, 1, 1, 1])


def _graph_model(nodes, inits, opset=17):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    return model


def _weight(name, cin=4, cout=4, seed=0):
    return numpy_helper.from_array(np.random.default_rng(seed).normal(0, 0.2, (cout, cin, 3, 3)).astype(np.float32), name)


@pytest.mark.parametrize("order", ["branch_first", "skip_first"])
def test_residual_input_is_chosen_by_structure_not_order(order):
    """Add(branch, skip) where both inputs come straight from convolutions: the branch (the
    longer path to their common ancestor) is fused, the skip quantised, in either order."""
    nodes = [_conv("stem", "x", "w0", "s"), helper.make_node("Relu", ["s"], ["r"], name="relu"),
             _conv("a", "r", "w1", "a_out"), helper.make_node("Relu", ["a_out"], ["a_r"], name="a_relu"),
             _conv("b", "a_r", "w2", "branch"), _conv("c", "r", "w3", "skip")]
    inputs = ["branch", "skip"] if order == "branch_first" else ["skip", "branch"]
    nodes += [helper.make_node("Add", inputs, ["sum"], name="add"), helper.make_node("Relu", ["sum"], ["sum_r"], name="r2"),
              _conv("d", "sum_r", "w4", "y")]
    model = _graph_model(nodes, [_weight("w0", cin=3)] + [_weight(f"w{i}", seed=i) for i in range(1, 5)])
    plan = plan_placement(GraphIndex.build(model.graph), "tensorrt", include_input_path=True,
                          include_output_path=True)
    assert "skip" in plan.activations and "branch" not in plan.activations


def test_concat_inputs_share_one_scale(tmp_path):
    nodes = [_conv("a", "x", "w0", "a_out"), _conv("b", "x", "w1", "b_out"),
             helper.make_node("Relu", ["a_out"], ["a_r"], name="ra"), helper.make_node("Relu", ["b_out"], ["b_r"], name="rb"),
             helper.make_node("Concat", ["a_r", "b_r"], ["cat"], name="cat", axis=1),
             _conv("c", "cat", "w2", "y")]
    inits = [_weight("w0", cin=3, seed=0), _weight("w1", cin=3, seed=1), _weight("w2", cin=8, seed=2)]
    model = _graph_model(nodes, inits)
    plan = plan_placement(GraphIndex.build(model.graph), "tensorrt", include_input_path=True,
                          include_output_path=True)
    assert plan.shared == {"a_r": "cat", "b_r": "cat"} and "cat" in plan.calibrate
    path = tmp_path / "cat.onnx"
    from fcn_edge.artifacts import ModelMeta, write_onnx_meta

    write_onnx_meta(model, ModelMeta("handmade", ("a", "b", "c", "d"), ((0, 0, 0),) * 4, input_size=(8, 8),
                                     input_name="x", output_name="y"))
    onnx.save(model, str(path))
    images = make_images(tmp_path / "calib", 3, size=(8, 8))
    result = quantize_int8(path, images, tmp_path / "cat.int8.onnx", QuantizeConfig(
        include_output_path=True, use_cache=False, progress=False))
    q = onnx.load(str(result.path))
    inits_q = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
    scales = {n.input[0]: float(inits_q[n.input[1]]) for n in q.graph.node if n.op_type == "QuantizeLinear"}
    assert scales["a_r"] == scales["b_r"] == scales["cat"]
    report = fusion_report(result.path)
    assert report.standalone == () and report.q_sites["across"] == 1  # the Concat's Q moves onto its inputs


@pytest.mark.slow
def test_mobilenetv3_squeeze_excitation_and_native_hardswish(calib, tmp_path):
    """SE convolutions stay FP16; the SE Mul's input is quantised where its Q fuses into the
    depthwise conv (ReLU blocks; with native hard-swish every block); native hard-swish
    moves Qs from pointwise kernels into the convolutions, more of the work runs INT8, and
    the decomposed form leaves none standalone either."""
    reports, results = {}, {}
    for native in (False, True):
        fp32 = _export("fcn8s_mobilenetv3", tmp_path / f"mnv3_{native}.onnx", native=native)
        ops = {n.op_type for n in onnx.load(str(fp32)).graph.node}
        assert ("HardSwish" in ops) == native and ("HardSigmoid" in ops) == native
        results[native] = _int8(fp32, calib, tmp_path, name=f"mnv3_{native}")
        reports[native] = fusion_report(results[native].path)
        _assert_fuses(reports[native])
    se = [n for n, why in results[False].why_float.items() if why.startswith("squeeze-excitation")]
    assert len(se) == 16  # fc1 and fc2 of the 8 SE blocks
    model = onnx.load(str(results[False].path))
    producer = {o: n for n in model.graph.node for o in n.output}
    se_muls = [n for n in model.graph.node if n.op_type == "Mul" and n.name.endswith("block.2/Mul")]
    quantised_x = [m.name for m in se_muls if any(producer[i].op_type == "DequantizeLinear" for i in m.input)]
    assert len(se_muls) == 8 and len(quantised_x) == 3  # the three ReLU SE blocks (features.4-6)
    assert reports[False].q_sites["pointwise"] > reports[True].q_sites["pointwise"]
    assert reports[True].q_sites["conv"] > reports[False].q_sites["conv"]
    assert reports[True].float_convs_into_q == () and len(reports[False].float_convs_into_q) > 10
    assert reports[True].element_share["int8"] > reports[False].element_share["int8"]


def test_resnet18_fuses(calib, tmp_path):
    fp32 = _export("fcn8s_resnet18", tmp_path / "r18.onnx")
    result = _int8(fp32, calib, tmp_path, name="r18")
    report = fusion_report(result.path)
    _assert_fuses(report)
    assert report.q_sites["input"] == 1  # conv1 + ReLU + MaxPool: its Q could not fuse into an FP16 conv1
    assert report.q_sites["across"] >= 1  # the stem's Q moves across the MaxPool into conv1
    assert report.q_sites["add"] >= 8  # the eight BasicBlocks' residual Adds


def test_default_model_fuses(tmp_path):
    from fcn_edge.precision.calibration import resolve_calibration_source
    from fcn_edge.weights import default_onnx

    result = quantize_int8(default_onnx(), resolve_calibration_source("default"), tmp_path / "d.int8.onnx",
                           QuantizeConfig(limit=4, use_cache=False, progress=False))
    report = fusion_report(result.path)
    _assert_fuses(report)
    assert report.q_sites["input"] == 0  # the first conv stays FP16: its hard-swish carries the Q
    assert report.file_bytes < 0.45 * fusion_report(default_onnx()).file_bytes  # int8 weights + FP16


@pytest.mark.slow
def test_vgg16_fuses(calib, tmp_path):
    """FCN-8s VGG16 with random weights at 64x80 (134 M parameters: slow)."""
    fp32 = _export("fcn8s_vgg16", tmp_path / "vgg16.onnx")
    result = _int8(fp32, calib, tmp_path, name="vgg16", limit=2, batch_size=1)
    report = fusion_report(result.path)
    _assert_fuses(report)
    # 13 convs (conv1_1 too: its ReLU could not carry an FP16 conv's Q), fc6, fc7, score_fr,
    # score_pool4, score_pool3, upscore2, upscore_pool4; upscore8 (the output path) stays FP16
    assert report.convs["int8"] == 20 and report.convs["fp16"] == 1 and report.q_sites["input"] == 1
    assert report.q_sites["across"] >= 4  # ReLU -> MaxPool -> Q: the pools run on INT8


def test_info_and_compare_show_the_report(calib, tmp_path, capsys):
    from fcn_edge.cli.main import main

    fp32 = make_tiny_onnx(tmp_path / "tiny.onnx")
    int8 = _int8(fp32, calib, tmp_path).path
    assert main(["info", str(int8), "--fusion", "--json", str(tmp_path / "info.json")]) == 0
    out = capsys.readouterr().out
    assert "TensorRT fusion (predicted at input 1x3x32x48)" in out and "0 standalone" in out
    fusion = json.loads((tmp_path / "info.json").read_text())["fusion"]
    assert fusion["standalone_pairs"] == 0 and fusion["pairs"] == fusion_report(int8).pairs
