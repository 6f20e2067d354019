"""Benchmark every variant, optionally score its accuracy, and gather one report.

Each variant is loaded, timed at batch 1 (latency) and at the chosen batch (throughput),
scored on a dataset when one is given (through :mod:`fcn_edge.evaluate`, at the same
input size), compared with trtexec when asked, and closed before the next is loaded so
two models never compete for memory or cores.
"""

from __future__ import annotations

import datetime as _dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from fcn_edge.bench.errors import BenchmarkError
from fcn_edge.bench.runner import RunConfig, RunResult, batches_to_run, merge_runs, run_benchmark
from fcn_edge.bench.sysinfo import SystemInfo
from fcn_edge.bench.trtexec import TrtexecError, TrtexecSummary, run_trtexec
from fcn_edge.bench.variants import Variant
from fcn_edge.errors import FcnEdgeError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Accuracy:
    """The evaluation figures the sweep table shows (fractions in [0, 1])."""

    mean_iu: float
    pixel_accuracy: float
    images: int
    dataset: str

    def as_dict(self) -> Dict[str, object]:
        return {"mean_iu": self.mean_iu, "pixel_accuracy": self.pixel_accuracy,
                "images": self.images, "dataset": self.dataset}


@dataclass(frozen=True)
class VariantResult:
    model: str
    architecture: str
    precision: str
    backend: str
    backend_description: str
    input_size: Tuple[int, int]
    fused_preprocess: bool
    fused_argmax: bool
    runs: Tuple[RunResult, ...]
    accuracy: Optional[Accuracy] = None
    trtexec: Optional[TrtexecSummary] = None
    notes: Tuple[str, ...] = field(default_factory=tuple)
    server: Dict[int, Any] = field(default_factory=dict)  # batch -> ServerStats of a triton:// model

    @property
    def label(self) -> str:
        return f"{Path(self.model).name} {self.input_size[0]}x{self.input_size[1]} {self.backend}"

    def run_at(self, batch: int) -> Optional[RunResult]:
        return next((r for r in self.runs if r.batch == batch), None)

    @property
    def latency_run(self) -> RunResult:
        return self.runs[0]

    @property
    def throughput_run(self) -> RunResult:
        return self.runs[-1]

    @property
    def warnings(self) -> Tuple[str, ...]:
        return tuple(w for run in self.runs for w in run.warnings)

    def as_dict(self, samples: bool = True) -> Dict[str, object]:
        out: Dict[str, object] = {
            "model": self.model,
            "architecture": self.architecture,
            "precision": self.precision,
            "backend": self.backend,
            "backend_description": self.backend_description,
            "input_size": list(self.input_size),
            "fused_preprocess": self.fused_preprocess,
            "fused_argmax": self.fused_argmax,
            "runs": [run.as_dict(samples) for run in self.runs],
            "accuracy": self.accuracy.as_dict() if self.accuracy else None,
            "trtexec": None,
            "notes": list(self.notes),
            "server": {str(b): stats.as_dict() for b, stats in self.server.items()} or None,
        }
        if self.trtexec is not None:
            out["trtexec"] = {**self.trtexec.as_dict(),
                              "overhead_ratio": self.trtexec.overhead_ratio(self.latency_run.end_to_end.mean)}
        return out


@dataclass(frozen=True)
class BenchReport:
    system: SystemInfo
    config: RunConfig
    batch: int
    variants: Tuple[VariantResult, ...]
    created: str = ""

    @property
    def has_accuracy(self) -> bool:
        return any(v.accuracy is not None for v in self.variants)

    def as_dict(self, samples: bool = True) -> Dict[str, object]:
        from fcn_edge import __version__

        return {
            "schema_version": SCHEMA_VERSION,
            "tool": f"fcn-edge {__version__}",
            "created": self.created,
            "system": self.system.as_dict(),
            "config": {**self.config.as_dict(), "batch": self.batch},
            "variants": [v.as_dict(samples) for v in self.variants],
        }


Evaluator = Callable[..., Accuracy]  # (segmenter, dataset) -> Accuracy


def evaluate_accuracy(segmenter, dataset, limit: Optional[int] = None) -> Accuracy:
    """Mean IU and pixel accuracy of ``segmenter`` on ``dataset`` through fcn_edge.evaluate."""
    from fcn_edge.evaluate import evaluate_dataset

    report = evaluate_dataset(segmenter, dataset, limit=limit, progress=False,
                              model_name=segmenter.description)
    metrics = report.metrics
    return Accuracy(float(metrics.mean_iu), float(metrics.pixel_accuracy), report.images, report.dataset)


def _load(variant: Variant):
    """The variant's Segmenter; providers go to an ONNX model only, a CUDA graph and the CUDA
    library to an engine only (the only files those backends run), devices to neither for a
    triton:// model (the server has its own), so one sweep can mix them all."""
    from fcn_edge.artifacts import model_kind
    from fcn_edge.runtime import load_segmenter
    from fcn_edge.runtime.triton_uri import is_triton_uri

    if is_triton_uri(variant.model):  # the server decides devices and providers
        kind = "triton"
    else:
        kind = model_kind(variant.model).kind
    kwargs: Dict[str, Any] = {"input_size": variant.input_size, "threads": variant.threads}
    if kind != "triton":
        kwargs["device"] = variant.device
    if kind == "onnx" and variant.providers:
        kwargs["providers"] = list(variant.providers)
    if kind == "engine" and variant.cuda_graph:
        kwargs["cuda_graph"] = True
    if kind == "engine" and variant.cuda:
        kwargs["cuda"] = variant.cuda
    return load_segmenter(variant.model, variant.backend, **kwargs)


def benchmark_variant(
    variant: Variant,
    batch: int,
    config: RunConfig,
    dataset=None,
    evaluator: Evaluator = evaluate_accuracy,
    trtexec: bool = False,
    trtexec_executable: Optional[str] = None,
) -> VariantResult:
    """Load ``variant``, time it at batch 1 and ``batch``, score and compare it as asked."""
    segmenter = _load(variant)
    try:
        # a Triton server's own counters around each timed batch size: its queue and compute times
        statistics = getattr(segmenter.backend, "statistics", None)
        runs, server = [], {}
        for b in batches_to_run(batch):
            before = statistics() if statistics else None
            runs.append(run_benchmark(segmenter, b, config))
            if statistics:
                server[b] = statistics().since(before)
        return _finish(variant, segmenter, runs, config, dataset, evaluator, trtexec, trtexec_executable, server)
    finally:
        segmenter.close()


def _finish(variant, segmenter, runs, config, dataset, evaluator, trtexec, trtexec_executable, server=None) -> VariantResult:
    """Score and compare a timed variant, and gather its result."""
    meta = segmenter.meta
    notes: List[str] = []
    accuracy = None
    if dataset is not None:
        log.info("evaluating %s", segmenter.description)
        accuracy = evaluator(segmenter, dataset)
    summary = None
    if trtexec:
        if segmenter.backend.name != "tensorrt":
            notes.append("--trtexec skipped: trtexec runs TensorRT engines, and this variant "
                         f"runs on {segmenter.backend.name}")
        else:
            size = tuple(segmenter.input_size)
            try:
                summary = run_trtexec(
                    variant.model, meta.input_name, meta.input_shape(1, size),
                    dynamic=meta.dynamic_shape or meta.dynamic_batch,
                    duration_s=config.duration_s or 3.0, executable=trtexec_executable,
                )
            except TrtexecError as exc:
                notes.append(f"trtexec failed: {exc}")
    if config.rounds > 1:
        notes.append(f"timed in {config.rounds} rounds interleaved with the other variants; samples pooled")
    if variant.cuda_graph and segmenter.backend.name != "tensorrt":
        notes.append(f"--cuda-graph not used: it applies to TensorRT engines, this variant runs on "
                     f"{segmenter.backend.name}")
    if variant.providers and segmenter.backend.name != "onnxruntime":
        notes.append(f"--providers not used: they apply to ONNX Runtime, this variant runs on "
                     f"{segmenter.backend.name}")
    return VariantResult(
        model=str(variant.model),
        architecture=meta.architecture,
        precision=meta.precision,
        backend=segmenter.backend.name,
        backend_description=segmenter.backend.description,
        input_size=tuple(segmenter.input_size),
        fused_preprocess=meta.fused_preprocess,
        fused_argmax=meta.fused_argmax,
        runs=tuple(runs),
        accuracy=accuracy,
        trtexec=summary,
        notes=tuple(notes),
        server=dict(server or {}),
    )


def _interleaved(variants, batch, config, dataset, evaluator, trtexec, trtexec_executable, on_result):
    """Every variant loaded at once and timed round-robin, ``config.rounds`` times.

    Load from other processes on a shared machine then falls on every variant alike
    instead of on whichever ran during the disturbance; the price is holding all the
    models in memory together.
    """
    segmenters = []
    try:
        for variant in variants:
            segmenters.append(_with_label(variant, _load))
        batches = batches_to_run(batch)
        rounds: Dict[Tuple[int, int], List[RunResult]] = {}
        for index in range(config.rounds):
            round_config = config.round_config(index)
            for i, segmenter in enumerate(segmenters):
                for b in batches:
                    rounds.setdefault((i, b), []).append(run_benchmark(segmenter, b, round_config))
        results = []
        for i, (variant, segmenter) in enumerate(zip(variants, segmenters)):
            runs = [merge_runs(rounds[(i, b)], config.cv_threshold) for b in batches]
            result = _with_label(variant, _finish, segmenter, runs, config, dataset, evaluator, trtexec,
                                 trtexec_executable)
            results.append(result)
            if on_result is not None:
                on_result(result)
        return results
    finally:
        for segmenter in segmenters:
            segmenter.close()


def _with_label(variant: Variant, fn, *args):
    """Call ``fn(variant, *args)``, naming the variant in any fcn-edge error it raises."""
    try:
        return fn(variant, *args)
    except BenchmarkError:
        raise
    except FcnEdgeError as exc:  # say which variant of a long sweep failed
        raise BenchmarkError(f"{variant.label}: {exc}") from exc


def run_sweep(
    variants: Sequence[Variant],
    batch: int,
    config: RunConfig,
    system: SystemInfo,
    dataset=None,
    evaluator: Evaluator = evaluate_accuracy,
    trtexec: bool = False,
    on_result: Optional[Callable[[VariantResult], None]] = None,
    trtexec_executable: Optional[str] = None,
) -> BenchReport:
    """Benchmark each variant in turn (or round-robin when ``config.rounds`` > 1);
    ``on_result`` sees each result as soon as it exists."""
    if config.rounds > 1:
        results = _interleaved(variants, batch, config, dataset, evaluator, trtexec, trtexec_executable, on_result)
    else:
        results = []
        for variant in variants:
            result = _with_label(variant, benchmark_variant, batch, config, dataset, evaluator, trtexec,
                                 trtexec_executable)
            results.append(result)
            if on_result is not None:
                on_result(result)
    created = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    return BenchReport(system, config, batch, tuple(results), created)
