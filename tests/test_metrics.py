"""FCN-paper metrics against confusion matrices worked out by hand."""

import numpy as np
import pytest

from fcn_edge.errors import DataError
from fcn_edge.evaluate.metrics import ConfusionMatrix, SegmentationMetrics
from fcn_edge.evaluate.report import format_metrics


def test_hand_computed_three_classes_with_ignore():
    gt = np.array([[0, 0, 1], [1, 2, 255]], np.uint8)
    pred = np.array([[0, 1, 1], [1, 0, 2]], np.uint8)  # the ignored pixel's prediction must not count
    cm = ConfusionMatrix(3, ignore_index=255)
    cm.update(pred, gt)
    # rows = truth, cols = prediction
    assert cm.matrix.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    m = cm.metrics(["a", "b", "c"])
    # t = [2, 2, 1]; predicted = [2, 3, 0]; n_ii = [1, 2, 0]
    assert m.pixel_accuracy == pytest.approx(3 / 5)
    assert m.mean_accuracy == pytest.approx((1 / 2 + 2 / 2 + 0 / 1) / 3)
    iu = [1 / (2 + 2 - 1), 2 / (2 + 3 - 2), 0 / (1 + 0 - 0)]
    assert m.iu.tolist() == pytest.approx(iu)
    assert m.mean_iu == pytest.approx(sum(iu) / 3)
    assert m.frequency_weighted_iu == pytest.approx((2 * iu[0] + 2 * iu[1] + 1 * iu[2]) / 5)
    assert m.absent == () and m.no_ground_truth == ()


def test_class_absent_from_both_is_excluded_and_reported():
    gt = np.array([0, 0, 1, 1])
    pred = np.array([0, 1, 1, 1])
    m = SegmentationMetrics.from_matrix(_matrix(pred, gt, 4), ["bg", "car", "bus", "tram"])
    # bus and tram never occur: averaging over the 2 present classes only
    assert m.absent == ("bus", "tram")
    assert np.isnan(m.iu[2]) and np.isnan(m.iu[3])
    assert m.mean_iu == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert m.mean_accuracy == pytest.approx((1 / 2 + 1) / 2)
    text = format_metrics(m)
    assert "bus, tram" in text and "left out of the means" in text


def test_class_predicted_but_not_in_ground_truth_counts_as_zero_iu():
    gt = np.array([0, 0, 0, 1])
    pred = np.array([0, 2, 0, 1])  # class 2 is hallucinated
    m = SegmentationMetrics.from_matrix(_matrix(pred, gt, 3))
    assert m.iu[2] == 0.0
    assert m.mean_iu == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert m.no_ground_truth == ("2",) and m.absent == ()
    assert m.mean_accuracy == pytest.approx((2 / 3 + 1) / 2)  # accuracy of class 2 is undefined


def test_accumulation_equals_one_big_update_and_brute_force():
    rng = np.random.default_rng(0)
    cm = ConfusionMatrix(5, ignore_index=255)
    all_p, all_g = [], []
    for _ in range(4):
        g = rng.integers(0, 5, (7, 9)).astype(np.uint8)
        g[rng.random(g.shape) < 0.1] = 255
        p = rng.integers(0, 5, (7, 9)).astype(np.uint8)
        cm.update(p, g)
        all_p.append(p.ravel())
        all_g.append(g.ravel())
    p, g = np.concatenate(all_p), np.concatenate(all_g)
    brute = np.zeros((5, 5), np.int64)
    for pi, gi in zip(p, g):
        if gi != 255:
            brute[gi, pi] += 1
    assert (cm.matrix == brute).all()
    m = cm.metrics()
    ious = [brute[i, i] / (brute[i].sum() + brute[:, i].sum() - brute[i, i]) for i in range(5)]
    assert m.mean_iu == pytest.approx(np.mean(ious))


def test_bad_values_and_shapes_raise_data_error():
    cm = ConfusionMatrix(3)
    with pytest.raises(DataError, match="ground-truth values \\[7\\]"):
        cm.update(np.zeros((2, 2), np.uint8), np.full((2, 2), 7, np.uint8), "m.png")
    with pytest.raises(DataError, match="predicted class ids \\[3\\]"):
        cm.update(np.full((2, 2), 3, np.uint8), np.zeros((2, 2), np.uint8))
    with pytest.raises(DataError, match="m.png: prediction shape"):
        cm.update(np.zeros((2, 3), np.uint8), np.zeros((2, 2), np.uint8), "m.png")
    with pytest.raises(DataError, match="num_classes must be >= 1, got 0"):
        ConfusionMatrix(0)
    with pytest.raises(DataError, match="cannot merge a confusion matrix of 2 classes into one of 3"):
        cm.merge(ConfusionMatrix(2))
    with pytest.raises(DataError, match="2 class names for a 3x3 confusion matrix"):
        cm.metrics(["a", "b"])


def test_all_ignored_gives_nan_not_a_crash():
    cm = ConfusionMatrix(2)
    cm.update(np.zeros((2, 2), np.uint8), np.full((2, 2), 255, np.uint8))
    m = cm.metrics()
    assert np.isnan(m.pixel_accuracy) and np.isnan(m.mean_iu)
    assert m.to_dict()["mean_iu"] is None


def _matrix(pred, gt, n):
    cm = ConfusionMatrix(n, ignore_index=None)
    cm.update(pred, gt)
    return cm.matrix
