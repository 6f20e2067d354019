"""The shipped default model's FP16 and INT8 variants meet the fidelity targets on the
synthetic val split: INT8 for TensorRT (the variant the demo makes: the sensitivity search
keeps the most harmful layers in FP16) within 0.3 mean-IU points of FP32 with >= 99.5% pixel
agreement, FP16 within 0.05 points with >= 99.99%. Slow: exports, calibrates, searches
(minutes) and evaluates."""

import pytest

from fcn_edge.precision.calibration import resolve_calibration_source

pytestmark = pytest.mark.slow

CALIBRATION = resolve_calibration_source("default")
ROWS = {"fp16": 1, "int8 tensorrt": 2, "int8 onnxruntime": 3, "int8 tensorrt + fallback": 4}


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    from fcn_edge.export import ExportConfig, export_checkpoint
    from fcn_edge.precision.fp16 import convert_fp16
    from fcn_edge.precision.quantize import QuantizeConfig, quantize_int8
    from fcn_edge.precision.sensitivity import SensitivityConfig, quantize_with_fallback
    from fcn_edge.weights import default_checkpoint

    root = tmp_path_factory.mktemp("default_model")
    fp32 = root / "default.onnx"
    export_checkpoint(default_checkpoint(), fp32, ExportConfig(input_size=(256, 320)))
    fp16 = convert_fp16(fp32).path
    config = QuantizeConfig(cache_dir=str(root), progress=False)
    int8 = quantize_int8(fp32, CALIBRATION, None, config).path
    int8_ort = quantize_int8(fp32, CALIBRATION, None, QuantizeConfig(
        target="onnxruntime", cache_dir=str(root), progress=False)).path
    fallback = quantize_with_fallback(fp32, CALIBRATION, root / "default.int8-fallback.onnx", config,
                                      SensitivityConfig(target_agreement=0.995, progress=False))
    assert fallback.target_met and 0 < len(fallback.kept) <= 12  # measured: 6 layers
    return fp32, fp16, int8, int8_ort, fallback.quantize.path


@pytest.fixture(scope="module")
def reports(variants):
    from fcn_edge.data import DatasetSpec
    from fcn_edge.precision.compare import CompareConfig, compare_variants

    fp32, *others = variants
    return compare_variants(fp32, others, DatasetSpec("synthetic", "val"), CompareConfig(latency_runs=0, progress=False))


def test_reference_is_a_trained_model(reports):
    assert reports[0].images >= 50 and reports[0].mean_iu > 0.5


def test_fp16_meets_fidelity_target(reports):
    ref, r16 = reports[0], reports[ROWS["fp16"]]
    assert 100 * (ref.mean_iu - r16.mean_iu) <= 0.05
    assert r16.agreement >= 0.9999


@pytest.mark.parametrize("row", ["int8 tensorrt", "int8 onnxruntime", "int8 tensorrt + fallback"])
def test_int8_meets_mean_iu_target(reports, row):
    ref, r8 = reports[0], reports[ROWS[row]]
    assert 100 * (ref.mean_iu - r8.mean_iu) <= 0.3
    assert not r8.flagged  # no class loses more than a point of IU


def test_int8_with_fallback_meets_agreement_target(reports):
    """Measured: 99.55% agreement (mean IU 71.45 against 71.43), 6 high-resolution layers in FP16."""
    assert reports[ROWS["int8 tensorrt + fallback"]].agreement >= 0.995


@pytest.mark.xfail(strict=True, reason="plain post-training INT8 of the MobileNetV3 default model reaches "
                   "99.18% (TensorRT placement, percentile) / 99.29% (ORT) agreement of the masks the runtime "
                   "returns, short of 99.5%: the sensitivity fallback (or QAT) is what meets it")
@pytest.mark.parametrize("row", ["int8 tensorrt", "int8 onnxruntime"])
def test_plain_ptq_misses_the_agreement_target(reports, row):
    assert reports[ROWS[row]].agreement >= 0.995
