"""Latency benchmarking: per-stage percentiles, throughput, sweeps, system facts, reports.

``benchmark_models`` is the step (model files -> BenchReport): it expands precision
siblings, backends and input sizes into variants and times each through the runtime's
Segmenter (``run_sweep``); ``fcn_edge.bench.report`` prints and saves the result;
``fcn_edge.bench.plot`` draws it. Importing this package pulls neither torch nor matplotlib.
"""

from fcn_edge.bench.benchmark import BenchConfig, benchmark_models
from fcn_edge.bench.errors import BenchmarkError
from fcn_edge.bench.runner import RunConfig, RunResult, run_benchmark, synthetic_frames
from fcn_edge.bench.stats import LatencyStats, instability_warning, summarize
from fcn_edge.bench.sweep import Accuracy, BenchReport, VariantResult, benchmark_variant, run_sweep
from fcn_edge.bench.sysinfo import JetsonInfo, SystemInfo, collect_system_info
from fcn_edge.bench.variants import Variant, expand_models, expand_variants

__all__ = [
    "Accuracy", "BenchConfig", "BenchReport", "BenchmarkError", "JetsonInfo", "LatencyStats", "RunConfig",
    "RunResult", "SystemInfo", "Variant", "VariantResult", "benchmark_models", "benchmark_variant",
    "collect_system_info", "expand_models", "expand_variants", "instability_warning", "run_benchmark",
    "run_sweep", "summarize", "synthetic_frames",
]
