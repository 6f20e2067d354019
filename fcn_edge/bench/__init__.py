"""Latency benchmarking: per-stage percentiles, throughput, sweeps, system facts, reports.

``run_sweep`` times variants (model x backend x input size) through the runtime's
Segmenter; ``fcn_edge.bench.report`` prints and saves the result; ``fcn_edge.bench.plot``
draws it. Importing this package pulls neither torch nor matplotlib.
"""

from fcn_edge.bench.runner import BenchmarkError, RunConfig, RunResult, run_benchmark, synthetic_frames
from fcn_edge.bench.stats import LatencyStats, instability_warning, summarize
from fcn_edge.bench.sweep import Accuracy, BenchReport, VariantResult, benchmark_variant, run_sweep
from fcn_edge.bench.sysinfo import JetsonInfo, SystemInfo, collect_system_info
from fcn_edge.bench.variants import Variant, expand_models, expand_variants

__all__ = [
    "Accuracy", "BenchReport", "BenchmarkError", "JetsonInfo", "LatencyStats", "RunConfig", "RunResult",
    "SystemInfo", "Variant", "VariantResult", "benchmark_variant", "collect_system_info",
    "expand_models", "expand_variants", "instability_warning", "run_benchmark",
    "run_sweep", "summarize", "synthetic_frames",
]
