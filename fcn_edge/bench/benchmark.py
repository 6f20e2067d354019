"""The benchmark step, file to report: model files -> variants -> timed sweep -> BenchReport.

``benchmark_models`` is what ``fcn-edge benchmark`` calls: it finds each model's precision
siblings (``model.int8.onnx`` beside ``model.onnx``, named by :mod:`fcn_edge.artifacts.variants`),
crosses them with backends and input sizes, opens the dataset when accuracy is asked for,
and times every variant through the runtime (:func:`fcn_edge.bench.sweep.run_sweep`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

from fcn_edge.artifacts.shapes import Size
from fcn_edge.artifacts.variants import VARIANT_TAGS
from fcn_edge.bench.errors import BenchmarkError
from fcn_edge.bench.runner import RunConfig
from fcn_edge.bench.sweep import BenchReport, VariantResult, evaluate_accuracy, run_sweep
from fcn_edge.bench.sysinfo import SystemInfo, collect_system_info
from fcn_edge.bench.variants import Variant, expand_models, expand_variants
from fcn_edge.data.formats import DatasetSpec
from fcn_edge.paths import PathLike


@dataclass(frozen=True)
class BenchConfig:
    """What to time and how: the sweep's axes, the runtime's backend options, the timing
    bounds (``run``), accuracy on ``data`` (None: none) and trtexec beside our numbers.

    ``precisions`` empty times the files as given; otherwise each file's siblings of those
    precisions. ``batch`` > 1 adds a throughput run at that batch to the batch-1 latency run.
    """

    precisions: Tuple[str, ...] = ()
    input_sizes: Tuple[Optional[Size], ...] = (None,)
    backends: Tuple[str, ...] = ("auto",)
    providers: Optional[Tuple[str, ...]] = None
    device: int = 0
    threads: Optional[int] = None
    cuda_graph: bool = False
    cuda: Optional[str] = None
    batch: int = 1
    run: RunConfig = field(default_factory=RunConfig)
    data: Optional[DatasetSpec] = None
    trtexec: bool = False
    trtexec_executable: Optional[str] = None

    def __post_init__(self) -> None:
        bad = [p for p in self.precisions if p not in VARIANT_TAGS]
        if bad:
            raise BenchmarkError(f"precision {', '.join(bad)} is not one of {', '.join(VARIANT_TAGS)}")
        if self.batch < 1:
            raise BenchmarkError(f"batch must be >= 1, got {self.batch}")
        if self.device < 0:
            raise BenchmarkError(f"device must be a CUDA device index >= 0, got {self.device}")
        if not self.input_sizes or not self.backends:
            raise BenchmarkError("give at least one input size (None: the model's own) and one backend")

    def variants(self, models: Sequence[PathLike]) -> List[Variant]:
        """Every (model variant, input size, backend) to time, model-major."""
        files = expand_models(list(models), self.precisions or None)  # a triton:// URI stays text
        return expand_variants(files, self.backends, self.input_sizes, self.providers, self.threads,
                               self.device, self.cuda_graph, self.cuda)


def benchmark_models(
    models: Sequence[PathLike],
    config: BenchConfig = BenchConfig(),
    *,
    system: Optional[SystemInfo] = None,
    on_result: Optional[Callable[[VariantResult], None]] = None,
) -> BenchReport:
    """Time every variant of ``models`` as ``config`` says; ``on_result`` sees each result as
    soon as it exists (a long sweep prints as it goes). ``system`` defaults to this machine's."""
    if not models:
        raise BenchmarkError("no model to benchmark")
    if config.trtexec and config.trtexec_executable is None:
        from fcn_edge.bench.trtexec import trtexec_path

        if trtexec_path() is None:
            raise BenchmarkError("--trtexec: trtexec is not on PATH (JetPack: /usr/src/tensorrt/bin)")
    variants = config.variants(models)
    dataset = config.data.open() if config.data is not None else None
    limit = config.data.limit if config.data is not None else None
    return run_sweep(
        variants, config.batch, config.run, system or collect_system_info(), dataset=dataset,
        evaluator=functools.partial(evaluate_accuracy, limit=limit), trtexec=config.trtexec,
        on_result=on_result, trtexec_executable=config.trtexec_executable,
    )
