"""Quantisation-aware fine-tuning on the tiny model: fake quantisers where the exported Q/DQ
ONNX has its pairs (found by value), checked against ONNX Runtime, trained, and written back
through the normal export and quantize paths with the learned scales."""

import json

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from fcn_edge.artifacts import read_onnx_meta  # noqa: E402
from fcn_edge.precision.quantize import QuantizeConfig  # noqa: E402
from fcn_edge.training.fakequant import ActivationQuantizer, WeightQuantizer, fake_quantize  # noqa: E402
from fcn_edge.training.qat import QatConfig, qat  # noqa: E402

from tiny_models import make_dataset, make_images, make_tiny_checkpoint  # noqa: E402


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("qat")
    make_images(root / "calib", 8, seed=6)
    data = make_dataset(root / "data", 6)
    checkpoint = make_tiny_checkpoint(root / "tiny.pt")
    config = QatConfig(iters=4, batch_size=2, data=str(data), crop_size=None, progress=False,
                       quantize=QuantizeConfig(cache_dir=str(root / "cache"), progress=False))
    return root, qat(checkpoint, root / "calib", root / "out", config)


def _qdq(path):
    model = onnx.load(str(path))
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    casts = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "Cast"}  # the input's, to FP16
    acts = {casts.get(n.input[0], n.input[0]): float(inits[n.input[1]]) for n in model.graph.node
            if n.op_type == "QuantizeLinear" and n.input[0] not in inits}
    weights = sorted(n.name for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose")
                     and any(p.op_type == "DequantizeLinear" and p.output[0] == n.input[1] for p in model.graph.node))
    return acts, weights


def test_qat_writes_checkpoint_fp32_and_int8_through_the_normal_paths(run):
    root, result = run
    assert result.checkpoint.is_file() and result.fp32_onnx.is_file() and result.int8_onnx.is_file()
    assert result.check_agreement >= 0.98 and result.iterations == 4
    assert [h["iteration"] for h in result.history] == [1, 2, 3, 4]
    assert all(np.isfinite(h["loss"]) and 0.0 <= h["agreement"] <= 1.0 for h in result.history)
    meta = read_onnx_meta(result.int8_onnx)
    assert meta.precision == "int8" and "scales=qat" in meta.history[-1]
    assert any(step.startswith("qat:") for step in meta.history)
    from fcn_edge.models.checkpoint import load_checkpoint

    loaded = load_checkpoint(result.checkpoint)
    assert any(step.startswith("qat:") for step in loaded.meta.history)


def test_the_int8_has_the_quantize_placement_and_the_learned_scales(run, tmp_path):
    from fcn_edge.models.checkpoint import read_checkpoint_file
    from fcn_edge.precision.quantize import quantize_int8

    root, result = run
    ptq = quantize_int8(result.fp32_onnx, root / "calib", tmp_path / "ptq.onnx",
                        QuantizeConfig(cache_dir=str(root / "cache"), progress=False))
    qat_acts, qat_weights = _qdq(result.int8_onnx)
    ptq_acts, ptq_weights = _qdq(ptq.path)
    assert set(qat_acts) == set(ptq_acts) and qat_weights == ptq_weights  # the same placement
    learned = read_checkpoint_file(result.checkpoint)["extra"]["qat"]["scales"]
    assert set(learned) == set(qat_acts)
    for tensor, scale in qat_acts.items():  # stored as FP16, never rounded down
        assert learned[tensor] <= scale <= learned[tensor] * (1 + 2 ** -9) or scale == 2.0 ** -14
    assert any(qat_acts[t] != ptq_acts[t] for t in qat_acts)  # they moved from the calibrated ones


def test_fake_quantize_rounds_clamps_and_passes_gradients():
    x = torch.tensor([-300.0, -1.26, 0.24, 0.26, 1.0, 300.0], requires_grad=True)
    scale = torch.tensor(0.5, requires_grad=True)
    y = fake_quantize(x, scale)
    assert y.tolist() == [-63.5, -1.5, 0.0, 0.5, 1.0, 63.5]
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0]  # straight through inside the range only
    # LSQ: d/ds = round(x/s) - x/s inside, +-127 outside
    expected = -127 + (-3 + 2.52) + (0 - 0.48) + (1 - 0.52) + (2 - 2) + 127
    assert scale.grad.item() == pytest.approx(expected, abs=1e-5)
    w = torch.tensor([[1.0, -0.5], [0.01, 0.02]])
    q = WeightQuantizer(0)(w)
    assert torch.allclose(q[0], torch.tensor([1.0, -64 / 127])) and q[1].abs().max() == pytest.approx(0.02)
    assert ActivationQuantizer("t", 0.25)(torch.tensor([0.3])).item() == pytest.approx(0.25)


def test_qat_writes_a_fused_mask_export_with_the_learned_scales(run, tmp_path):
    from fcn_edge.export import ExportConfig

    root, result = run
    fused = qat(root / "tiny.pt", root / "calib", tmp_path, QatConfig(
        iters=2, batch_size=2, data=str(root / "data"), crop_size=None, progress=False,
        quantize=QuantizeConfig(cache_dir=str(root / "cache"), progress=False)),
        ExportConfig(fuse_preprocess=True, output="mask"))
    meta = read_onnx_meta(fused.int8_onnx)
    assert meta.fused_preprocess and meta.output_kind == "mask" and meta.precision == "int8"
    from fcn_edge.models.checkpoint import read_checkpoint_file

    acts, weights = _qdq(fused.int8_onnx)
    plain_acts, plain_weights = _qdq(result.int8_onnx)
    assert len(acts) == len(plain_acts) and len(weights) == len(plain_weights)
    assert weights == plain_weights  # the heads are grafted around the network: its layers keep their names
    learned = sorted(read_checkpoint_file(fused.checkpoint)["extra"]["qat"]["scales"].values())
    for want, got in zip(learned, sorted(acts.values())):  # every learned scale, on the FP16 grid
        assert want <= got <= want * (1 + 2 ** -9)


def test_qat_cli(run, tmp_path, capsys):
    from fcn_edge.cli.main import main

    root, _ = run
    report = tmp_path / "qat.json"
    assert main(["qat", str(root / "tiny.pt"), "--calib", str(root / "calib"), "--data", str(root / "data"),
                 "--iters", "2", "--batch", "2", "--cache-dir", str(root / "cache"), "-o", str(tmp_path / "out"),
                 "--quiet", "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "fine-tuned 2 iterations" in out and "model.qat.int8.onnx" in out
    assert json.loads(report.read_text())["iterations"] == 2
    assert main(["qat", str(root / "tiny.pt"), "--data", str(root / "data")]) == 2
    assert "--calib" in capsys.readouterr().err
