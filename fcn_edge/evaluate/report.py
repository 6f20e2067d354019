"""Plain-text tables of evaluation results, for the CLI and logs."""

from __future__ import annotations

from typing import List

import numpy as np

from fcn_edge.evaluate.metrics import SegmentationMetrics


def _pct(value: float) -> str:
    return "   n/a" if value is None or np.isnan(value) else f"{100 * value:6.2f}"


def summary_lines(metrics: SegmentationMetrics) -> List[str]:
    lines = [
        f"pixel accuracy   {_pct(metrics.pixel_accuracy)} %",
        f"mean accuracy    {_pct(metrics.mean_accuracy)} %",
        f"mean IU          {_pct(metrics.mean_iu)} %",
        f"f.w. IU          {_pct(metrics.frequency_weighted_iu)} %",
    ]
    if metrics.absent:
        lines.append(
            f"left out of the means (in neither prediction nor ground truth): {', '.join(metrics.absent)}"
        )
    extra = [c for c in metrics.no_ground_truth if c not in metrics.absent]
    if extra:
        lines.append(f"predicted but never in the ground truth (IU 0, no accuracy): {', '.join(extra)}")
    return lines


def per_class_table(metrics: SegmentationMetrics) -> List[str]:
    width = max(12, max(len(n) for n in metrics.class_names) + 2)
    lines = [f"{'class':<{width}} {'IU %':>7} {'acc %':>7} {'GT px %':>8}"]
    total = max(metrics.pixels, 1)
    for row, iu, acc in zip(metrics.per_class(), metrics.iu, metrics.accuracy):
        note = "  (absent: excluded)" if row["class"] in metrics.absent else ""
        lines.append(
            f"{row['class']:<{width}} {_pct(iu):>7} {_pct(acc):>7} {100 * row['gt_pixels'] / total:8.2f}{note}"
        )
    return lines


def format_metrics(metrics: SegmentationMetrics) -> str:
    return "\n".join(summary_lines(metrics) + [""] + per_class_table(metrics))
