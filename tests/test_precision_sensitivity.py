"""Sensitivity analysis and FP16 fallback on the tiny model: every quantised layer ranked
by what it costs alone and what leaving it out restores, the most harmful kept in FP16
until the target holds on held-out images, the search's trials built from one calibration."""

import json

import numpy as np
import onnx
import pytest

from fcn_edge.artifacts import read_onnx_meta
from fcn_edge.errors import PrecisionError
from fcn_edge.precision.quantize import QuantizeConfig
from fcn_edge.precision.sensitivity import SensitivityConfig, Trials, bake_weights, quantize_with_fallback

from tiny_models import make_dataset, make_images, make_tiny_onnx

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("sensitivity")
    make_images(root / "calib", 20, seed=5)
    return root, make_tiny_onnx(root / "tiny.onnx")


def _fallback(setup, tmp_path, **kw):
    root, model = setup
    kw.setdefault("ranking_images", 8)
    kw.setdefault("progress", False)
    return quantize_with_fallback(model, root / "calib", tmp_path / "out.onnx",
                                  QuantizeConfig(cache_dir=str(tmp_path / "cache"), progress=False),
                                  SensitivityConfig(**kw))


def test_a_met_target_keeps_everything_quantised(setup, tmp_path):
    result = _fallback(setup, tmp_path, target_agreement=0.5)
    assert result.kept == () and result.target_met and len(result.checks) == 1
    assert result.checks[0].kept == 0 and result.checks[0].agreement > 0.5
    assert "12 calibration images not used for ranking" in result.holdout
    names = [r.name for r in result.ranking]
    assert len(names) == result.quantize.counts["quantized_weights"] == len(set(names))
    scores = [r.score for r in result.ranking]
    assert scores == sorted(scores, reverse=True)
    for r in result.ranking:
        assert 0.0 < r.alone <= 1.0 and 0.0 < r.left_out <= 1.0 and r.baseline == result.baseline


def test_a_high_target_keeps_the_most_harmful_layers_in_fp16(setup, tmp_path):
    result = _fallback(setup, tmp_path, target_agreement=0.9999)
    order = [r.name for r in result.ranking]
    assert result.kept == tuple(order[: len(result.kept)]) and result.kept  # the most harmful first
    assert [c.kept for c in result.checks] == sorted(c.kept for c in result.checks)
    assert result.final.kept == len(result.kept)
    assert result.target_met == result.final.met
    assert result.target_met or len(result.kept) == len(order)  # met, or everything went to FP16
    assert result.final.agreement >= result.checks[0].agreement
    # the written variant is the one checked: its kept layers are unquantised and recorded
    model = onnx.load(str(result.quantize.path))
    producer = {o: n for n in model.graph.node for o in n.output}
    for node in model.graph.node:
        if node.name in result.kept:
            assert node.input[1] not in producer  # an FP16 initialiser, no DQ
    assert f"kept_fp16={len(result.kept)}" in read_onnx_meta(result.quantize.path).history[-1]
    assert set(result.kept) <= set(result.quantize.kept_float)


def test_trials_reuse_one_calibration_and_bake_weights_exactly(setup, tmp_path):
    from fcn_edge.precision.quantize import calibrate
    from fcn_edge.precision.sensitivity import _feeds

    root, model = setup
    config = QuantizeConfig(min_tensorrt=8, cache_dir=str(tmp_path / "cache"), progress=False)
    calibrated = calibrate(model, root / "calib", config)
    feeds = _feeds(calibrated, sorted((root / "calib").glob("*.png"))[:4])
    trials = Trials(calibrated, config, feeds, None)
    everything = tuple(name for name, _ in trials.layers())
    assert trials.agreement(everything) == 1.0  # nothing quantised, FP32 Q/DQ form: the FP32 masks
    assert trials.agreement(()) < 1.0 and trials.count == 2
    trials.agreement(())
    assert trials.count == 2  # remembered, not rebuilt
    # baked weights compute what the weight Q/DQ pairs compute
    qdq, _, _, _ = calibrated.build(config)
    baked = onnx.ModelProto()
    baked.CopyFrom(qdq)
    bake_weights(baked)
    assert not [n for n in baked.graph.node if n.op_type == "QuantizeLinear" and n.input[0].endswith("weight")]
    import onnxruntime as ort

    def outputs(model):  # no graph optimisation: ORT would fuse some Q/DQ into integer kernels
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        return np.concatenate([session.run(None, feed)[0] for feed in feeds])

    reference = outputs(qdq)
    assert np.abs(outputs(baked) - reference).max() <= 1e-5 * np.abs(reference).max()


def test_holdout_dataset_and_iu_budget(setup, tmp_path):
    root, _ = setup
    data = make_dataset(tmp_path / "data", 6)
    result = _fallback(setup, tmp_path, max_iu_drop=0.5, holdout=str(data))
    assert result.final.iu_drop is not None and result.final.iu_drop <= 0.5 and result.target_met
    assert str(data) in result.holdout
    with pytest.raises(PrecisionError, match="--max-iu-drop needs labelled held-out data"):
        SensitivityConfig(max_iu_drop=0.003)
    with pytest.raises(PrecisionError, match="needs a target"):
        SensitivityConfig()


def test_quantize_cli_target_and_report(setup, tmp_path, capsys):
    from fcn_edge.cli.main import main

    root, model = setup
    report = tmp_path / "ranking.json"
    argv = ["quantize", str(model), "--precision", "int8", "--calib", str(root / "calib"), "--ranking-images", "8",
            "--cache-dir", str(tmp_path / "cache"), "--quiet", "-o", str(tmp_path / "q.onnx")]
    assert main(argv + ["--target-agreement", "50", "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "sensitivity: 10 quantised layers ranked" in out and "-> meets the target" in out
    data = json.loads(report.read_text())
    assert data["target_agreement"] == 0.5 and len(data["ranking"]) == 10 and data["kept_fp16"] == []
    assert {"layer", "agreement_alone", "agreement_left_out", "score"} <= set(data["ranking"][0])
    assert main(argv + ["--target-agreement", "100"]) == 1  # FP16 rounding alone keeps it below 100 %
    assert "the target was NOT met" in capsys.readouterr().out
    assert main(argv + ["--report", str(report)]) == 2
    assert "--report writes the sensitivity ranking" in capsys.readouterr().err
    assert np.isfinite(data["baseline_agreement"])


def test_the_full_demo_makes_the_variant_that_meets_the_target(tmp_path):
    from fcn_edge.demo import INT8_TARGET_AGREEMENT, DemoConfig, demo_steps

    def int8_step(quick):
        steps = demo_steps(DemoConfig(out_dir=tmp_path, quick=quick), tmp_path / "m.pt", tmp_path, tmp_path / "c.mp4")
        (step,) = [s for s in steps if s.outputs[0].name == "model.int8.onnx"]
        return step

    full, quick = int8_step(False), int8_step(True)
    assert INT8_TARGET_AGREEMENT == 99.5
    assert full.command.endswith("--target-agreement 99.5") and "--target-agreement" not in quick.command
