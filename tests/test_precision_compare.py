"""compare_variants runs every variant through the runtime's Segmenter: its scores are the
evaluator's, its agreement is over the masks the runtime returns at frame size, and its
logit differences come from the raw network outputs."""

import shutil

import pytest

from fcn_edge.data import DatasetSpec, open_dataset
from fcn_edge.errors import DataError, PrecisionError
from fcn_edge.evaluate import EvaluateConfig, evaluate_model
from fcn_edge.precision.compare import CompareConfig, compare_variants
from fcn_edge.runtime import load_segmenter

from tiny_models import make_dataset, make_tiny_onnx

pytest.importorskip("onnxruntime")
QUIET = CompareConfig(latency_runs=0, progress=False)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    data = make_dataset(root / "data", 5)  # 40x56 images for a 32x48 network
    return root, data, make_tiny_onnx(root / "m.onnx"), make_tiny_onnx(root / "m.fp16.onnx", precision="fp16")


def test_scores_are_the_evaluators_and_agreement_is_at_frame_size(setup):
    root, data, model, fp16 = setup
    ref, half = compare_variants(model, [fp16], DatasetSpec(str(data)), QUIET)
    evaluated = evaluate_model(model, str(data), EvaluateConfig(progress=False))
    assert ref.mean_iu == evaluated.metrics.mean_iu and ref.pixel_accuracy == evaluated.metrics.pixel_accuracy
    assert ref.images == half.images == 5 and ref.compute_ms is None
    # agreement by its definition: equal classes in the masks the runtime returns, frame pixels
    same = total = 0
    with load_segmenter(model) as a, load_segmenter(fp16) as b:
        for sample in open_dataset(data):
            mask_a, mask_b = a.segment(sample.image).mask, b.segment(sample.image).mask
            assert mask_a.shape == sample.image.shape[:2] == (40, 56)
            same += int((mask_a == mask_b).sum())
            total += mask_a.size
    assert half.agreement == same / total
    assert 0 < half.max_abs_diff < 0.05 and 0 < half.mean_abs_diff < half.max_abs_diff


def test_identical_copy_and_mask_variant(setup, tmp_path):
    root, data, model, _ = setup
    copy = shutil.copyfile(model, tmp_path / "copy.onnx")
    masked = make_tiny_onnx(tmp_path / "mask.onnx", fused=True, output_kind="mask")  # same weights, argmax inside
    ref, same, fused = compare_variants(model, [copy, masked], DatasetSpec(str(data), limit=2),
                                        CompareConfig(latency_runs=2, warmup_runs=0, progress=False))
    assert same.agreement == 1.0 and same.max_abs_diff == 0.0 and same.mean_iu == ref.mean_iu
    assert fused.max_abs_diff is None and fused.agreement > 0.95 and fused.images == 2
    assert all(r.compute_ms > 0 for r in (ref, same, fused))


def test_refusals(setup, tmp_path):
    root, data, model, _ = setup
    other = make_tiny_onnx(tmp_path / "other.onnx", classes=("a", "b", "c"))
    with pytest.raises(PrecisionError, match="other classes than"):
        compare_variants(model, [other], str(data), QUIET)
    with pytest.raises(DataError, match="differ from the model's 3 classes"):
        compare_variants(other, [], str(data), QUIET)
    with pytest.raises(PrecisionError, match="latency_runs and warmup_runs must be >= 0"):
        CompareConfig(latency_runs=-1)


def test_per_class_iu_and_flagged_drops(setup, tmp_path):
    root, data, model, _ = setup
    int8 = make_tiny_onnx(tmp_path / "m.int8.onnx", precision="int8")
    ref, variant = compare_variants(model, [int8], DatasetSpec(str(data)), CompareConfig(
        latency_runs=0, progress=False, class_drop=0.0))
    names = [name for name, _ in ref.class_iu]
    assert names == ["background", "road", "car", "person", "sky"]
    evaluated = evaluate_model(int8, str(data), EvaluateConfig(progress=False))
    for (name, iu), expected in zip(variant.class_iu, evaluated.metrics.iu):
        assert (iu is None) == (expected != expected) and (iu is None or iu == expected)
    ref_iu = dict(ref.class_iu)
    for name, drop in variant.class_drop:
        assert drop == (ref_iu[name] or 0.0) - (dict(variant.class_iu)[name] or 0.0)
    # threshold 0: every class that lost anything is flagged, and the worst is one of them
    assert set(variant.flagged) == {name for name, drop in variant.class_drop if drop > 0}
    worst = variant.worst_class
    assert worst is not None and worst[1] == max(d for _, d in variant.class_drop)
    row = variant.as_dict()
    assert [c["class"] for c in row["per_class"]] == names and row["flagged"] == list(variant.flagged)
    assert ref.flagged == () and ref.class_drop == ()
    with pytest.raises(PrecisionError, match="class_drop must be a fraction"):
        CompareConfig(class_drop=1.5)
