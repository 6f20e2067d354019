"""``--plot FILE.png``: latency distribution per variant, and accuracy against latency.

The left panel shows each variant's batch-1 end-to-end latencies (box: p25-p75, whiskers:
p1-p99, dot: mean). The right panel plots mean IU against median latency, with a bar to
p99, when a dataset was given; without one it shows where each variant's time goes, stage
by stage, which is the question a latency-only sweep asks next. matplotlib is imported
here only, on the non-interactive Agg backend, so a headless Jetson can write the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List

from fcn_edge.artifacts.variants import split_variant
from fcn_edge.atomic import atomic_path
from fcn_edge.bench.runner import STAGES
from fcn_edge.bench.sweep import BenchReport
from fcn_edge.errors import FcnEdgeError
from fcn_edge.optional import require

PRECISION_COLOURS = {"fp32": "#1f77b4", "fp16": "#ff7f0e", "int8": "#2ca02c", "int8-ort": "#d62728"}
STAGE_COLOURS = {"preprocess": "#9467bd", "h2d": "#8c564b", "compute": "#1f77b4",
                 "d2h": "#e377c2", "decode": "#bcbd22", "other": "#7f7f7f"}
MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def _precision_tags(report: BenchReport) -> List[str]:
    """The file's own precision tag (model.int8-ort.onnx -> int8-ort), else the meta's."""
    return [split_variant(v.model)[1] or v.precision for v in report.variants]


def _unique_labels(report: BenchReport) -> List[str]:
    """'fp16 256x320', naming the model and backend only when the report has several."""
    tags = _precision_tags(report)
    bases = [split_variant(v.model)[0] for v in report.variants]
    several_models = len(set(bases)) > 1
    several_backends = len({v.backend for v in report.variants}) > 1
    labels = []
    for v, base, tag in zip(report.variants, bases, tags):
        label = f"{tag} {v.input_size[0]}x{v.input_size[1]}"
        if several_backends:
            label += f" {v.backend}"
        labels.append(f"{base} {label}" if several_models else label)
    return labels


def write_plot(report: BenchReport, path: Path, dpi: int = 120) -> Path:
    """Render the report to ``path`` (PNG, or any format matplotlib knows by suffix)."""
    if not report.variants:
        raise FcnEdgeError("nothing to plot: the report holds no variants")
    matplotlib = require("matplotlib", "--plot")
    matplotlib.use("Agg", force=True)
    from matplotlib import pyplot as plt

    labels = _unique_labels(report)
    colours = [PRECISION_COLOURS.get(tag, "#333333") for tag in _precision_tags(report)]
    height = max(3.5, 0.45 * len(labels) + 1.8)
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, height), gridspec_kw={"width_ratios": [1.2, 1]})
    try:
        _latency_panel(left, report, labels, colours)
        if report.has_accuracy:
            _accuracy_panel(right, report, labels, colours)
        else:
            _stage_panel(right, report, labels)
        cpu = report.system.gpu or report.system.cpu
        fig.suptitle(f"fcn-edge benchmark on {cpu} (batch 1, {report.variants[0].backend_description})",
                     fontsize=10)
        fig.tight_layout()
        path = Path(path)
        with atomic_path(path) as tmp:  # keeps the suffix, by which savefig picks the format
            fig.savefig(tmp, dpi=dpi)
    finally:
        plt.close(fig)
    return path


def _latency_panel(ax, report: BenchReport, labels: List[str], colours: List[str]) -> None:
    data = [list(v.latency_run.samples_ms) for v in report.variants]
    positions = list(range(len(data), 0, -1))  # first variant on top
    # matplotlib 3.10 added orientation= and deprecated vert=; older ones know only vert=.
    import matplotlib

    major_minor = tuple(int(p) for p in matplotlib.__version__.split(".")[:2])
    horizontal = {"orientation": "horizontal"} if major_minor >= (3, 10) else {"vert": False}
    box = ax.boxplot(data, positions=positions, whis=(1, 99), widths=0.6, patch_artist=True,
                     showfliers=True, flierprops={"markersize": 2, "alpha": 0.5}, **horizontal)
    for patch, colour in zip(box["boxes"], colours):
        patch.set_facecolor(colour)
        patch.set_alpha(0.45)
    means = [v.latency_run.end_to_end.mean for v in report.variants]
    ax.scatter(means, positions, color="black", s=12, zorder=3, label="mean")
    ax.set_yticks(positions)
    ax.set_yticklabels(labels)
    ax.set_xlabel("end-to-end latency per frame, ms (box p25-p75, whiskers p1-p99)")
    ax.set_title("Latency distribution")
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlim(left=0)
    ax.legend(loc="lower right", fontsize=8)


def _accuracy_panel(ax, report: BenchReport, labels: List[str], colours: List[str]) -> None:
    """One point per variant: colour = precision, marker = input size, named in the legends
    (text beside each point collides as soon as two variants score alike)."""
    from matplotlib.lines import Line2D

    sizes: Dict[tuple, str] = {}
    kinds: Dict[str, str] = {}
    for v, tag, colour in zip(report.variants, _precision_tags(report), colours):
        if v.accuracy is None:
            continue
        e2e = v.latency_run.end_to_end
        marker = sizes.setdefault(v.input_size, MARKERS[len(sizes) % len(MARKERS)])
        kinds.setdefault(tag, colour)
        ax.errorbar([e2e.p50], [v.accuracy.mean_iu * 100], xerr=[[0], [e2e.p99 - e2e.p50]], fmt=marker,
                    color=colour, ecolor=colour, capsize=3, markersize=8, alpha=0.85)
    size_handles = [Line2D([], [], marker=m, linestyle="", color="black", label=f"{h}x{w}")
                    for (h, w), m in sizes.items()]
    kind_handles = [Line2D([], [], marker="s", linestyle="", color=c, label=t) for t, c in kinds.items()]
    if size_handles:
        first = ax.legend(handles=size_handles, title="input", fontsize=8, title_fontsize=8, loc="center right")
        ax.add_artist(first)
        ax.legend(handles=kind_handles, title="variant", fontsize=8, title_fontsize=8, loc="best")
    ax.margins(y=0.15)
    ax.set_xlabel("median end-to-end latency, ms (bar to p99)")
    ax.set_ylabel("mean IU, %")
    ax.set_title("Accuracy vs latency")
    ax.grid(alpha=0.3)
    ax.set_xlim(left=0)


def _stage_panel(ax, report: BenchReport, labels: List[str]) -> None:
    positions = list(range(len(labels), 0, -1))
    starts = [0.0] * len(labels)
    parts = list(STAGES) + ["other"]
    for stage in parts:
        widths = []
        for v in report.variants:
            run = v.latency_run
            widths.append(max(run.overhead_ms, 0.0) if stage == "other" else run.stages[stage].mean)
        if not any(w > 0 for w in widths):
            continue
        ax.barh(positions, widths, left=starts, color=STAGE_COLOURS[stage], label=stage, height=0.6)
        starts = [s + w for s, w in zip(starts, widths)]
    ax.set_yticks(positions)
    ax.set_yticklabels(labels)
    ax.set_xlabel("mean time per frame, ms (no --data given: accuracy not measured)")
    ax.set_title("Where the time goes")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=6, fontsize=8, frameon=False)
