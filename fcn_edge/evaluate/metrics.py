"""Confusion-matrix metrics exactly as the FCN paper (Long et al. 2015, section 5) defines them.

With ``n_ij`` the number of pixels of class ``i`` predicted as class ``j``, ``t_i = sum_j n_ij``
the pixels of class ``i``, and ``n_cl`` the number of classes counted:

* pixel accuracy          ``sum_i n_ii / sum_i t_i``
* mean accuracy           ``(1/n_cl) sum_i n_ii / t_i``
* mean IU                 ``(1/n_cl) sum_i n_ii / (t_i + sum_j n_ji - n_ii)``
* frequency weighted IU   ``(sum_k t_k)^-1 sum_i t_i n_ii / (t_i + sum_j n_ji - n_ii)``

Pixels whose ground truth is the ignore index are not counted. A class that appears in
neither the ground truth nor the prediction has an undefined IU (0/0); it is left out of
the means and listed in :attr:`SegmentationMetrics.absent`. Mean accuracy likewise averages
only over classes with ground-truth pixels (``t_i > 0``), since ``n_ii / t_i`` is otherwise
undefined; a class predicted but never in the ground truth keeps IU 0 and drags mean IU
down, as it should. Frequency-weighted IU needs no exclusion (absent classes weigh 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from fcn_edge.errors import DataError


class ConfusionMatrix:
    """Accumulates ``n_ij`` over any number of (prediction, ground truth) mask pairs."""

    def __init__(self, num_classes: int, ignore_index: Optional[int] = 255):
        if num_classes < 1:
            raise DataError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = np.zeros((num_classes, num_classes), np.int64)  # rows: truth, cols: prediction

    def update(self, prediction: np.ndarray, truth: np.ndarray, source: str = "sample") -> None:
        prediction = np.asarray(prediction)
        truth = np.asarray(truth)
        if prediction.shape != truth.shape:
            raise DataError(
                f"{source}: prediction shape {prediction.shape} differs from ground truth {truth.shape}"
            )
        keep = truth != self.ignore_index if self.ignore_index is not None else np.ones(truth.shape, bool)
        gt = truth[keep].astype(np.int64)
        pred = prediction[keep].astype(np.int64)
        n = self.num_classes
        if gt.size and (gt.min() < 0 or gt.max() >= n):
            bad = sorted(set(np.unique(gt[(gt < 0) | (gt >= n)]).tolist()))[:8]
            raise DataError(f"{source}: ground-truth values {bad} are outside 0..{n - 1} and not the ignore index")
        if pred.size and (pred.min() < 0 or pred.max() >= n):
            bad = sorted(set(np.unique(pred[(pred < 0) | (pred >= n)]).tolist()))[:8]
            raise DataError(f"{source}: predicted class ids {bad} are outside 0..{n - 1}")
        self.matrix += np.bincount(gt * n + pred, minlength=n * n).reshape(n, n)

    def merge(self, other: "ConfusionMatrix") -> None:
        if other.num_classes != self.num_classes:
            raise DataError(f"cannot merge a confusion matrix of {other.num_classes} classes into one of {self.num_classes}")
        self.matrix += other.matrix

    def metrics(self, class_names: Optional[Sequence[str]] = None) -> "SegmentationMetrics":
        return SegmentationMetrics.from_matrix(self.matrix, class_names)


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


@dataclass(frozen=True)
class SegmentationMetrics:
    """The paper's four numbers plus per-class IU and accuracy; NaN marks "undefined"."""

    class_names: Tuple[str, ...]
    matrix: np.ndarray
    pixel_accuracy: float
    mean_accuracy: float
    mean_iu: float
    frequency_weighted_iu: float
    iu: np.ndarray  # per class; NaN for absent classes
    accuracy: np.ndarray  # per class; NaN where the ground truth has no pixels of the class
    absent: Tuple[str, ...]  # in neither prediction nor ground truth: excluded from the means
    no_ground_truth: Tuple[str, ...]  # no ground-truth pixels: excluded from mean accuracy

    @classmethod
    def from_matrix(cls, matrix: np.ndarray, class_names: Optional[Sequence[str]] = None) -> "SegmentationMetrics":
        matrix = np.asarray(matrix, np.int64)
        n = matrix.shape[0]
        names = tuple(class_names) if class_names is not None else tuple(str(i) for i in range(n))
        if len(names) != n:
            raise DataError(f"{len(names)} class names for a {n}x{n} confusion matrix")
        diag = np.diag(matrix).astype(np.float64)
        t = matrix.sum(axis=1).astype(np.float64)  # ground-truth pixels per class
        predicted = matrix.sum(axis=0).astype(np.float64)
        union = t + predicted - diag
        iu = _divide(diag, union)
        acc = _divide(diag, t)
        total = t.sum()
        present = union > 0
        nan = float("nan")
        return cls(
            class_names=names,
            matrix=matrix,
            pixel_accuracy=float(diag.sum() / total) if total > 0 else nan,
            mean_accuracy=float(np.nanmean(acc)) if (t > 0).any() else nan,
            mean_iu=float(np.nanmean(iu)) if present.any() else nan,
            frequency_weighted_iu=float((t[present] * iu[present]).sum() / total) if total > 0 else nan,
            iu=iu,
            accuracy=acc,
            absent=tuple(names[i] for i in range(n) if not present[i]),
            no_ground_truth=tuple(names[i] for i in range(n) if t[i] == 0),
        )

    @property
    def pixels(self) -> int:
        return int(self.matrix.sum())

    def per_class(self) -> List[Dict[str, object]]:
        """One row per class: name, IU, accuracy, ground-truth and predicted pixel counts."""
        t = self.matrix.sum(axis=1)
        p = self.matrix.sum(axis=0)
        return [
            {
                "class": name,
                "iu": None if np.isnan(self.iu[i]) else float(self.iu[i]),
                "accuracy": None if np.isnan(self.accuracy[i]) else float(self.accuracy[i]),
                "gt_pixels": int(t[i]),
                "predicted_pixels": int(p[i]),
            }
            for i, name in enumerate(self.class_names)
        ]

    def to_dict(self) -> Dict[str, object]:
        clean = lambda v: None if np.isnan(v) else float(v)  # noqa: E731
        return {
            "pixel_accuracy": clean(self.pixel_accuracy),
            "mean_accuracy": clean(self.mean_accuracy),
            "mean_iu": clean(self.mean_iu),
            "frequency_weighted_iu": clean(self.frequency_weighted_iu),
            "pixels": self.pixels,
            "absent_classes": list(self.absent),
            "classes_without_ground_truth": list(self.no_ground_truth),
            "per_class": self.per_class(),
            "confusion_matrix": self.matrix.tolist(),
        }
