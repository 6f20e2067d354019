"""How far a FP16/INT8 variant is from its FP32 model: accuracy, agreement, logits, speed, size.

Every model runs through the runtime's own :class:`~fcn_edge.runtime.Segmenter` on ONNX
Runtime's CPU provider, the one evaluation path of the project: frames are preprocessed,
run and decoded exactly as a deployment runs them (TensorRT's kernels differ in rounding,
not in what is quantised).

- mean IU and pixel accuracy against the dataset's labels (:mod:`fcn_edge.evaluate`'s
  confusion matrix: the ignore label is left out, classes absent from both labels and
  prediction are skipped), and the IU of every class: a mean hides that INT8 hurts the
  small, rare classes first, so each variant's per-class drop against the reference is
  reported and drops over ``CompareConfig.class_drop`` (1 point by default) are flagged;
- agreement with the reference (first) model: the fraction of pixels of the masks the
  Segmenter returns, at each image's own resolution, whose class equals the reference's;
- max / mean absolute difference of the raw network outputs (:meth:`Segmenter.infer`, at
  network resolution), when both graphs output logits;
- the median compute time the backend reports for one frame, and the file size.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from fcn_edge.data.formats import DataLike, dataset_spec
from fcn_edge.errors import PrecisionError
from fcn_edge.paths import PathLike


@dataclass(frozen=True)
class CompareConfig:
    latency_runs: int = 10  # 0 skips timing
    warmup_runs: int = 2
    threads: Optional[int] = None  # ONNX Runtime intra-op threads; None = ORT's default
    progress: bool = True
    class_drop: float = 0.01  # flag classes whose IU falls by more than this (1 point)

    def __post_init__(self) -> None:
        if not 0.0 <= self.class_drop <= 1.0:
            raise PrecisionError(f"class_drop must be a fraction in [0, 1] (0.01 = 1 point), got {self.class_drop}")
        if self.latency_runs < 0 or self.warmup_runs < 0:
            raise PrecisionError(f"latency_runs and warmup_runs must be >= 0, got {self.latency_runs} "
                                 f"and {self.warmup_runs}")
        if self.threads is not None and self.threads < 1:
            raise PrecisionError(f"threads must be >= 1 (or None for ONNX Runtime's choice), got {self.threads}")


@dataclass(frozen=True)
class VariantReport:
    name: str
    path: Path
    precision: str
    mean_iu: float
    pixel_accuracy: float
    agreement: float  # fraction of frame pixels whose class equals the reference model's
    max_abs_diff: Optional[float]  # raw network outputs (logits), network resolution
    mean_abs_diff: Optional[float]
    compute_ms: Optional[float]  # median backend compute time of one frame
    file_bytes: int
    images: int
    split: str = ""
    class_iu: Tuple[Tuple[str, Optional[float]], ...] = ()  # (class, IU or None when undefined)
    class_drop: Tuple[Tuple[str, float], ...] = ()  # (class, reference IU - this IU), the reference's classes
    flagged: Tuple[str, ...] = ()  # classes whose drop exceeds CompareConfig.class_drop

    @property
    def worst_class(self) -> Optional[Tuple[str, float]]:
        """(class, IU drop) of the class that lost most against the reference, or None."""
        return max(self.class_drop, key=lambda item: item[1]) if self.class_drop else None

    def as_dict(self) -> Dict[str, object]:
        out = dict(self.__dict__)
        out["path"] = str(self.path)
        out["per_class"] = [{"class": name, "iu": iu, "drop": dict(self.class_drop).get(name)}
                            for name, iu in self.class_iu]
        out["flagged"] = list(self.flagged)
        del out["class_iu"], out["class_drop"]
        return out


def open_cpu_segmenter(path: PathLike, threads: Optional[int] = None):
    """A Segmenter of ``path`` on ONNX Runtime's CPU provider: where variants are compared."""
    from fcn_edge.runtime import load_segmenter

    return load_segmenter(path, "onnxruntime", providers=["cpu"], threads=threads)


def time_segmenters(segmenters: Sequence, frame: np.ndarray, runs: int, warmup: int) -> List[Optional[float]]:
    """Median milliseconds of backend compute for one ``frame`` on each segmenter.

    The segmenters take turns run by run, so load from other processes on the machine
    slows every variant alike instead of whichever happened to be timed at that moment.
    """
    if runs <= 0:
        return [None for _ in segmenters]
    for _ in range(warmup):
        for segmenter in segmenters:
            segmenter.segment(frame)
    times: List[List[float]] = [[] for _ in segmenters]
    for _ in range(runs):
        for k, segmenter in enumerate(segmenters):
            times[k].append(segmenter.segment(frame).timings.compute_ms)
    return [float(np.median(t)) for t in times]


def compare_variants(reference: PathLike, variants: Sequence[PathLike], data: DataLike = "synthetic",
                     config: CompareConfig = CompareConfig()) -> List[VariantReport]:
    """Reports for ``reference`` (first row) and each of ``variants`` on ``data`` (a
    :class:`~fcn_edge.data.DatasetSpec`, a dataset folder or "synthetic"; default split val)."""
    from fcn_edge.evaluate.metrics import ConfusionMatrix
    from fcn_edge.evaluate.runner import check_classes

    paths = [Path(reference)] + [Path(v) for v in variants]
    spec = dataset_spec(data)
    with contextlib.ExitStack() as stack:
        segmenters = [stack.enter_context(open_cpu_segmenter(p, config.threads)) for p in paths]
        metas = [s.meta for s in segmenters]
        for path, meta in zip(paths[1:], metas[1:]):
            if meta.class_names != metas[0].class_names:
                raise PrecisionError(f"{path} has other classes than {paths[0]}; compare variants of one model")
        dataset = spec.open()
        check_classes(segmenters[0], dataset)
        count = spec.count(dataset)
        confusion = [ConfusionMatrix(dataset.num_classes, dataset.ignore_index) for _ in paths]
        agree = np.zeros(len(paths), np.int64)
        pixels = 0
        logits = [m.output_kind == "logits" for m in metas]
        max_diff = [0.0 for _ in paths]
        sum_diff = [0.0 for _ in paths]
        diff_count = [0 for _ in paths]
        progress = tqdm(total=count, desc="compare", unit="img", leave=False, disable=not config.progress)
        for i in range(count):
            sample = dataset[i]
            runs = [s.infer([sample.image]) for s in segmenters]
            ref_mask, ref_out = runs[0][0][0].mask, runs[0][1][0]
            pixels += ref_mask.size
            for k, (results, output) in enumerate(runs):
                mask = results[0].mask
                confusion[k].update(mask, sample.mask, str(sample.mask_path))
                agree[k] += int(np.count_nonzero(mask == ref_mask))
                if logits[0] and logits[k]:
                    if output[0].shape != ref_out.shape:
                        raise PrecisionError(f"{paths[k]} outputs {output[0].shape} scores, {paths[0]} {ref_out.shape}")
                    diff = np.abs(output[0].astype(np.float32) - ref_out.astype(np.float32))
                    max_diff[k] = max(max_diff[k], float(diff.max()))
                    sum_diff[k] += float(diff.sum())
                    diff_count[k] += diff.size
            progress.update(1)
        progress.close()
        times = time_segmenters(segmenters, dataset[0].image, config.latency_runs, config.warmup_runs)
    reports = []
    names = list(metas[0].class_names)
    reference_iu = confusion[0].metrics().iu
    for k, (path, meta, compute) in enumerate(zip(paths, metas, times)):
        has_diff = logits[0] and logits[k]
        scores = confusion[k].metrics()
        class_iu = tuple((name, None if np.isnan(v) else float(v)) for name, v in zip(names, scores.iu))
        drops = tuple((name, float(np.nan_to_num(ref, nan=0.0) - np.nan_to_num(v, nan=0.0)))
                      for name, ref, v in zip(names, reference_iu, scores.iu) if not np.isnan(ref))
        reports.append(VariantReport(
            name=path.name, path=path, precision=meta.precision,
            mean_iu=scores.mean_iu, pixel_accuracy=scores.pixel_accuracy,
            agreement=float(agree[k] / pixels),
            max_abs_diff=max_diff[k] if has_diff else None,
            mean_abs_diff=sum_diff[k] / diff_count[k] if has_diff and diff_count[k] else None,
            compute_ms=compute, file_bytes=_file_bytes(path), images=count, split=dataset.split or "",
            class_iu=class_iu, class_drop=drops if k else (),
            flagged=tuple(name for name, drop in drops if drop > config.class_drop) if k else (),
        ))
    return reports


def _file_bytes(path: Path) -> int:
    size = path.stat().st_size
    data = path.with_name(path.name + ".data")
    return size + (data.stat().st_size if data.is_file() else 0)


def format_table(reports: Sequence[VariantReport]) -> str:
    """The comparison as a fixed-width text table (what ``fcn-edge compare`` prints)."""
    header = ("variant", "precision", "mean IU", "pixel acc", "agree", "max |dlogit|",
              "mean |dlogit|", "compute ms", "size MB")
    rows = [header]
    for r in reports:
        rows.append((
            r.name, r.precision, f"{100 * r.mean_iu:.2f}", f"{100 * r.pixel_accuracy:.2f}",
            f"{100 * r.agreement:.3f}%",
            "-" if r.max_abs_diff is None else f"{r.max_abs_diff:.4g}",
            "-" if r.mean_abs_diff is None else f"{r.mean_abs_diff:.3g}",
            "-" if r.compute_ms is None else f"{r.compute_ms:.1f}",
            f"{r.file_bytes / 1e6:.1f}",
        ))
    widths = [max(len(row[c]) for row in rows) for c in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if c == 0 else cell.rjust(w) for c, (cell, w) in enumerate(zip(row, widths)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_class_table(reports: Sequence[VariantReport], threshold: float = CompareConfig.class_drop) -> str:
    """Per-class IU of every variant beside the reference's, drops over ``threshold`` marked
    with '!' (what ``fcn-edge compare`` prints under the main table)."""
    if not reports or not reports[0].class_iu:
        return ""
    header = ["class", reports[0].name] + [r.name for r in reports[1:]]
    rows = [header]
    for c, (name, ref) in enumerate(reports[0].class_iu):
        row = [name, "-" if ref is None else f"{100 * ref:.2f}"]
        for r in reports[1:]:
            iu = r.class_iu[c][1]
            drop = dict(r.class_drop).get(name)
            cell = "-" if iu is None else f"{100 * iu:.2f}"
            if drop is not None:
                cell += f" ({-100 * drop:+.2f}){'!' if drop > threshold else ' '}"
            row.append(cell)
        rows.append(row)
    widths = [max(len(row[c]) for row in rows) for c in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if c == 0 else cell.rjust(w) for c, (cell, w) in enumerate(zip(row, widths)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    flagged = [f"{r.name}: {', '.join(r.flagged)}" for r in reports[1:] if r.flagged]
    lines.append(f"IU per class; '!' marks a drop of more than {100 * threshold:g} points"
                 + (" -- " + "; ".join(flagged) if flagged else ": none"))
    return "\n".join(lines)
