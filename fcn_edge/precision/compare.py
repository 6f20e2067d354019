"""How far a FP16/INT8 variant is from its FP32 model: accuracy, agreement, logits, speed, size.

Every model runs in ONNX Runtime on the CPU, fed by the runtime's own preprocessing and
decoded by the runtime's own decoder, so the numbers are those a deployment would see
(TensorRT's kernels differ in rounding, not in what is quantised).

- mean IU and pixel accuracy against the dataset's labels (Long et al.'s definitions; the
  ignore label is left out, classes absent from both labels and prediction are skipped);
- argmax agreement with the reference (first) model, pixel by pixel at network resolution;
- max / mean absolute logit difference, when both graphs output logits;
- median ORT CPU latency of one batch-1 frame at the model's input size, and file size.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
from tqdm import tqdm

from fcn_edge.artifacts import ModelMeta, read_onnx_meta
from fcn_edge.errors import PrecisionError
from fcn_edge.optional import require
from fcn_edge.paths import PathLike



@dataclass(frozen=True)
class CompareConfig:
    limit: Optional[int] = None  # evaluate only the first N images
    latency_runs: int = 10  # 0 skips timing
    warmup_runs: int = 2
    threads: int = 0  # ORT intra-op threads; 0 = ORT's default
    progress: bool = True


@dataclass(frozen=True)
class VariantReport:
    name: str
    path: Path
    precision: str
    mean_iu: float
    pixel_accuracy: float
    agreement: float  # fraction of pixels whose class equals the reference model's
    max_abs_diff: Optional[float]
    mean_abs_diff: Optional[float]
    latency_ms: Optional[float]
    file_bytes: int
    images: int
    split: str = ""

    def as_dict(self) -> Dict[str, object]:
        out = dict(self.__dict__)
        out["path"] = str(self.path)
        return out


def _session(path: Path, threads: int):
    ort = require("onnxruntime", "comparing ONNX variants")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT's own exception types
        raise PrecisionError(f"{path}: ONNX Runtime cannot load it: {exc}") from exc


def _class_map(output: np.ndarray, meta: ModelMeta) -> np.ndarray:
    """(h, w) class indices of one frame's output, at network resolution."""
    if meta.fused_argmax:
        return output[0] if output.ndim == 3 else output
    return np.argmax(output, axis=0)


def _random_feed(meta: ModelMeta) -> np.ndarray:
    rng = np.random.default_rng(0)
    shape = meta.input_shape(1)
    if meta.input_dtype == "uint8":
        return rng.integers(0, 256, shape, dtype=np.uint8)
    return rng.standard_normal(shape).astype(meta.input_dtype)


def time_sessions(sessions: Sequence, metas: Sequence[ModelMeta], runs: int, warmup: int) -> List[Optional[float]]:
    """Median milliseconds of one batch-1 inference at each model's input size.

    The sessions take turns run by run, so load from other processes on the machine
    slows every variant alike instead of whichever happened to be timed at that moment.
    """
    if runs <= 0:
        return [None for _ in sessions]
    feeds = [{s.get_inputs()[0].name: _random_feed(m)} for s, m in zip(sessions, metas)]
    for _ in range(warmup):
        for session, feed in zip(sessions, feeds):
            session.run(None, feed)
    times: List[List[float]] = [[] for _ in sessions]
    for _ in range(runs):
        for k, (session, feed) in enumerate(zip(sessions, feeds)):
            start = time.perf_counter()
            session.run(None, feed)
            times[k].append((time.perf_counter() - start) * 1000.0)
    return [float(np.median(t)) for t in times]


def time_session(session, meta: ModelMeta, runs: int, warmup: int) -> Optional[float]:
    return time_sessions([session], [meta], runs, warmup)[0]


def compare_variants(reference: PathLike, variants: Sequence[PathLike], data: PathLike,
                     split: Optional[str] = None, config: CompareConfig = CompareConfig()) -> List[VariantReport]:
    """Reports for ``reference`` (first row) and each of ``variants`` on ``data``'s ``split``
    (default: the dataset's val split, or all images of a folder pair without split lists)."""
    from fcn_edge.data.formats import open_dataset
    from fcn_edge.evaluate.metrics import ConfusionMatrix
    from fcn_edge.runtime.decode import Decoder
    from fcn_edge.runtime.preprocess import Preprocessor

    paths = [Path(reference)] + [Path(v) for v in variants]
    metas = [read_onnx_meta(p) for p in paths]
    ref_meta = metas[0]
    for path, meta in zip(paths[1:], metas[1:]):
        if meta.class_names != ref_meta.class_names:
            raise PrecisionError(f"{path} has other classes than {paths[0]}; compare variants of one model")
    dataset = open_dataset(data, split, class_names=list(ref_meta.class_names))
    count = len(dataset) if config.limit is None else min(config.limit, len(dataset))
    if count == 0:
        raise PrecisionError(f"{data}: the {split} split has no images to compare on")
    sessions = [_session(p, config.threads) for p in paths]
    preprocessors = [Preprocessor(m) for m in metas]
    decoders = [Decoder(m, m.input_size) for m in metas]
    confusion = [ConfusionMatrix(ref_meta.num_classes, ref_meta.ignore_index) for _ in paths]
    agree = np.zeros(len(paths), np.int64)
    pixels = 0
    max_diff = [0.0 for _ in paths]
    sum_diff = [0.0 for _ in paths]
    diff_count = [0 for _ in paths]
    logits = [not m.fused_argmax for m in metas]
    progress = tqdm(total=count, desc="compare", unit="img", leave=False, disable=not config.progress)
    for i in range(count):
        sample = dataset[i]
        outputs = []
        for session, pre, meta in zip(sessions, preprocessors, metas):
            batch, places = pre([sample.image])
            outputs.append(session.run([meta.output_name], {meta.input_name: batch})[0][0])
        ref_map = _class_map(outputs[0], ref_meta)
        pixels += ref_map.size
        for k, (out, meta) in enumerate(zip(outputs, metas)):
            mask, _ = decoders[k](out, places[0])
            confusion[k].update(mask, sample.mask, sample.name)
            class_map = _class_map(out, meta)
            if class_map.shape != ref_map.shape:
                raise PrecisionError(f"{paths[k]} outputs {class_map.shape} maps, {paths[0]} {ref_map.shape}")
            agree[k] += int(np.count_nonzero(class_map == ref_map))
            if logits[0] and logits[k]:
                diff = np.abs(out.astype(np.float32) - outputs[0].astype(np.float32))
                max_diff[k] = max(max_diff[k], float(diff.max()))
                sum_diff[k] += float(diff.sum())
                diff_count[k] += diff.size
        progress.update(1)
    progress.close()
    latencies = time_sessions(sessions, metas, config.latency_runs, config.warmup_runs)
    reports = []
    for k, (path, meta, latency) in enumerate(zip(paths, metas, latencies)):
        has_diff = logits[0] and logits[k]
        scores = confusion[k].metrics()
        reports.append(VariantReport(
            name=path.name, path=path, precision=meta.precision,
            mean_iu=scores.mean_iu, pixel_accuracy=scores.pixel_accuracy,
            agreement=float(agree[k] / pixels),
            max_abs_diff=max_diff[k] if has_diff else None,
            mean_abs_diff=sum_diff[k] / diff_count[k] if has_diff and diff_count[k] else None,
            latency_ms=latency, file_bytes=_file_bytes(path), images=count, split=dataset.split,
        ))
    return reports


def _file_bytes(path: Path) -> int:
    size = path.stat().st_size
    data = path.with_name(path.name + ".data")
    return size + (data.stat().st_size if data.is_file() else 0)


def format_table(reports: Sequence[VariantReport]) -> str:
    """The comparison as a fixed-width text table (what ``fcn-edge compare`` prints)."""
    header = ("variant", "precision", "mean IU", "pixel acc", "agree", "max |dlogit|",
              "mean |dlogit|", "ORT CPU ms", "size MB")
    rows = [header]
    for r in reports:
        rows.append((
            r.name, r.precision, f"{100 * r.mean_iu:.2f}", f"{100 * r.pixel_accuracy:.2f}",
            f"{100 * r.agreement:.3f}%",
            "-" if r.max_abs_diff is None else f"{r.max_abs_diff:.4g}",
            "-" if r.mean_abs_diff is None else f"{r.mean_abs_diff:.3g}",
            "-" if r.latency_ms is None else f"{r.latency_ms:.1f}",
            f"{r.file_bytes / 1e6:.1f}",
        ))
    widths = [max(len(row[c]) for row in rows) for c in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if c == 0 else cell.rjust(w) for c, (cell, w) in enumerate(zip(row, widths)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
