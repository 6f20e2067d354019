"""fcn_edge.export: parity of each variant in ONNX Runtime, fused preprocessing, the mask
output, ModelMeta in metadata_props, and the checks that make an export fail."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from fcn_edge.artifacts import file_sha256, meta_for_classes, meta_for_dataset, read_onnx_meta
from fcn_edge.errors import ExportError
from fcn_edge.export import ExportConfig, export_checkpoint, export_model, exported_meta
from fcn_edge.models import build_model
from fcn_edge.models.checkpoint import save_checkpoint
from fcn_edge.runtime.preprocess import Preprocessor

pytestmark = pytest.mark.usefixtures("torch_single_thread")
SIZE = (96, 128)


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def small_model(name="fcn8s_resnet18", classes=5, seed=0):
    """A random model whose eval-mode activations and logits have a realistic range.

    Fresh BatchNorm statistics (mean 0, var 1) and zero-initialised residual gammas would
    leave logits near 0, where argmax ties hide a wrong graph; a few train-mode forwards
    and wider score weights fix that.
    """
    torch.manual_seed(seed)
    model = build_model(name, classes)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.momentum = None  # running stats = plain average of the batches below
            elif isinstance(m, nn.Conv2d) and m.out_channels == classes:
                m.weight.normal_(0, 0.2)
        model.train()
        for _ in range(2):
            model(torch.randn(2, 3, 64, 64))
    return model.eval(), meta_for_classes(name, [f"c{i}" for i in range(classes)])


VARIANTS = {
    "logits": ExportConfig(input_size=SIZE),
    "fused-logits": ExportConfig(input_size=SIZE, fuse_preprocess=True),
    "mask-uint8": ExportConfig(input_size=SIZE, output="mask"),
    "fused-mask-int32-fixed": ExportConfig(input_size=SIZE, fuse_preprocess=True, output="mask",
                                           mask_dtype="int32", dynamic_batch=False, dynamic_shape=False),
}
SLOW_VARIANTS = {
    "logits-fixed-no-simplify": ExportConfig(input_size=SIZE, dynamic_batch=False, dynamic_shape=False, simplify=False),
    "dynamo": ExportConfig(input_size=SIZE, exporter="dynamo"),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Each default variant exported once from the same model; the tests below share them."""
    directory = tmp_path_factory.mktemp("export")
    model, meta = small_model()
    reports = {name: export_model(model, meta, directory / f"{name}.onnx", config) for name, config in VARIANTS.items()}
    return model, meta, reports


def check_variant(report, config):
    parity = report.parity  # the bare network vs PyTorch: logits, always
    assert parity is not None and parity.passed and parity.against == "PyTorch"
    assert parity.argmax_agreement == 1.0 and parity.max_abs_diff <= parity.tolerance
    assert parity.max_abs_reference > 1.0  # the check compared real signal
    heads = report.head_parity  # the grafted heads vs host preprocessing and argmax
    if not (config.fuse_preprocess or config.output == "mask"):
        assert heads is None and report.heads == "no heads"
    else:
        assert heads.passed and heads.argmax_agreement == 1.0 and heads.against.startswith("host")
        assert (heads.max_abs_diff is None) == (config.output == "mask")
    graph = onnx.load(str(report.path)).graph
    assert [i.name for i in graph.input] == ["input"]
    assert [o.name for o in graph.output] == ["mask" if config.output == "mask" else "logits"]
    elem = {1: "float32", 2: "uint8", 6: "int32", 7: "int64"}
    assert elem[graph.input[0].type.tensor_type.elem_type] == ("uint8" if config.fuse_preprocess else "float32")
    out_type = elem[graph.output[0].type.tensor_type.elem_type]
    assert out_type == (config.mask_dtype if config.output == "mask" else "float32")
    shape = report.input_shape
    if config.dynamic_shape:
        assert {"batch", "height", "width"} <= set(shape)
        assert len(report.parity.shapes) == 2 and report.parity.shapes[0][0] == 2
    else:
        assert all(isinstance(d, int) for d in shape)
    if config.simplify and config.exporter == "legacy":  # onnxslim finds nothing to fold in dynamo graphs
        assert report.nodes_final < report.nodes_exported
    siblings = sorted(p.name for p in report.path.parent.iterdir() if p.name.startswith(report.path.stem))
    assert siblings == [report.path.name]  # one file: no .onnx.data, no temporary left


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_parity_and_boundary(exported, variant):
    check_variant(exported[2][variant], VARIANTS[variant])


@pytest.mark.slow
@pytest.mark.parametrize("variant", list(SLOW_VARIANTS))
def test_slow_variant_parity_and_boundary(tmp_path, variant):
    model, meta = small_model("fcn16s_resnet18", 4)
    check_variant(export_model(model, meta, tmp_path / f"{variant}.onnx", SLOW_VARIANTS[variant]), SLOW_VARIANTS[variant])


def test_dynamic_graph_runs_other_batches_and_sizes(exported):
    model, _, reports = exported
    sess = session(reports["logits"].path)
    for shape in [(1, 3, 33, 47), (3, 3, 160, 96)]:
        x = torch.randn(*shape)
        (out,) = sess.run(None, {"input": x.numpy()})
        with torch.no_grad():
            ref = model(x).numpy()
        assert out.shape == ref.shape
        np.testing.assert_allclose(out, ref, atol=1e-4 * np.abs(ref).max() + 1e-5, rtol=0)


def test_fused_preprocessing_equals_host_preprocessing(exported):
    _, _, reports = exported
    plain, fused = reports["logits"].path, reports["fused-logits"].path
    frames = [np.random.default_rng(i).integers(0, 256, (150, 200, 3), dtype=np.uint8) for i in range(2)]
    host_in, _ = Preprocessor(read_onnx_meta(plain))(frames)
    assert host_in.dtype == np.float32 and host_in.shape == (2, 3, *SIZE)
    raw_in, _ = Preprocessor(read_onnx_meta(fused))(frames)
    assert raw_in.dtype == np.uint8 and raw_in.shape == (2, *SIZE, 3)
    (a,) = session(plain).run(None, {"input": host_in.copy()})
    (b,) = session(fused).run(None, {"input": raw_in.copy()})
    assert np.abs(a).max() > 1.0
    np.testing.assert_allclose(b, a, atol=1e-5 * np.abs(a).max(), rtol=0)


def test_mask_output_equals_argmax_of_logits(exported):
    _, _, reports = exported
    x = np.random.default_rng(0).standard_normal((2, 3, 71, 99)).astype(np.float32)
    (scores,) = session(reports["logits"].path).run(None, {"input": x})
    (classes,) = session(reports["mask-uint8"].path).run(None, {"input": x})
    assert classes.dtype == np.uint8 and classes.shape == (2, 71, 99)
    assert len(np.unique(classes)) > 1
    np.testing.assert_array_equal(classes, scores.argmax(axis=1).astype(np.uint8))

    frame = np.random.default_rng(1).integers(0, 256, (1, *SIZE, 3), dtype=np.uint8)
    host_in, _ = Preprocessor(read_onnx_meta(reports["logits"].path))([frame[0]])
    (scores,) = session(reports["logits"].path).run(None, {"input": host_in.copy()})
    (classes,) = session(reports["fused-mask-int32-fixed"].path).run(None, {"input": frame})
    assert classes.dtype == np.int32
    np.testing.assert_array_equal(classes, scores.argmax(axis=1).astype(np.int32))


def test_meta_round_trip_through_onnx(tmp_path):
    model, _ = small_model("fcn8s_resnet18", 19)
    meta = meta_for_dataset("fcn8s_resnet18", "cityscapes", input_size=(256, 512))
    ckpt = save_checkpoint(tmp_path / "city.pt", model, meta)
    config = ExportConfig(input_size=(64, 96), min_size=(32, 32), max_size=(512, 1024), max_batch=4,
                          fuse_preprocess=True, output="mask")
    report = export_checkpoint(ckpt, tmp_path / "city.onnx", config)
    read = read_onnx_meta(report.path)
    assert read.class_names == meta.class_names and read.palette == meta.palette
    assert read.source_hash == file_sha256(ckpt)
    assert (read.input_dtype, read.input_layout, read.channel_order) == ("uint8", "NHWC", "BGR")
    assert (read.output_kind, read.output_dtype, read.output_name) == ("mask", "uint8", "mask")
    assert (read.input_size, read.min_size, read.max_size, read.max_batch) == ((64, 96), (32, 32), (512, 1024), 4)
    assert read.mean == meta.mean and read.std == meta.std
    assert read.history[-1].startswith("export: opset 17")
    expected = exported_meta(meta.with_history("import: fcn-edge checkpoint city.pt"), config, file_sha256(ckpt))
    assert read == expected == report.meta
    assert onnx.load(str(report.path)).opset_import[0].version == 17


@pytest.mark.slow
def test_dynamo_exporter_keeps_batch_dynamic(tmp_path):
    model, meta = small_model("fcn32s_resnet18", 4)
    report = export_model(model, meta, tmp_path / "d.onnx", ExportConfig(input_size=SIZE, exporter="dynamo"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.onnx"]
    assert not isinstance(report.input_shape[0], int)  # batch stayed symbolic (example batch 2)
    (out,) = session(report.path).run(None, {"input": np.random.rand(3, 3, *SIZE).astype(np.float32)})
    assert out.shape == (3, 4, *SIZE)


class ShapeDependent(nn.Module):
    """Traces to a graph that is right only at the example width: parity must catch it."""

    num_classes = 2

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        return y * 3.0 if x.shape[-1] == SIZE[1] else y  # baked in by the tracer


def test_parity_failure_raises_and_writes_nothing(tmp_path):
    meta = meta_for_classes("shape_dependent", ["a", "b"])
    with pytest.raises(ExportError, match="ONNX Runtime disagrees with PyTorch"):
        export_model(ShapeDependent(), meta, tmp_path / "bad.onnx", ExportConfig(input_size=SIZE))
    assert not list(tmp_path.iterdir())


def test_bad_configs_are_refused():
    with pytest.raises(ExportError, match="output 'probs'"):
        ExportConfig(output="probs")
    with pytest.raises(ExportError, match="outside min_size"):
        ExportConfig(input_size=(320, 320), min_size=(400, 400))
    with pytest.raises(ExportError, match="argmax 'max' is not one of"):
        ExportConfig(argmax="max")
    assert ExportConfig(dynamic_batch=False, max_batch=4).example_batch == 4  # a fixed batch is max_batch


def test_uint8_mask_refuses_more_than_256_classes(tmp_path):
    with torch.device("meta"):  # refused before any weight is touched
        model = build_model("fcn32s_mobilenetv3", 300)
    meta = meta_for_classes("fcn32s_mobilenetv3", [f"c{i}" for i in range(300)])
    with pytest.raises(ExportError, match="int32"):
        export_model(model, meta, tmp_path / "x.onnx", ExportConfig(input_size=SIZE, output="mask"))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fcn8s_vgg16", "fcn8s_vgg16_caffe"])
def test_vgg16_export_parity(tmp_path, name):
    torch.manual_seed(0)
    model = build_model(name, 21).eval()
    report = export_model(model, meta_for_dataset(name, "voc"), tmp_path / "v.onnx",
                          ExportConfig(input_size=(320, 320), fuse_preprocess=True))
    assert report.parity.passed and report.parity.argmax_agreement > 0.999
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.onnx"]


@pytest.mark.slow
def test_torchvision_layout_export_parity(tmp_path):
    model, meta = small_model("fcn_resnet50", 21)
    report = export_model(model, meta, tmp_path / "tv.onnx", ExportConfig(input_size=(160, 160)))
    assert report.parity.passed
