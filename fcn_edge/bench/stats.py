"""Latency statistics in the terms trtexec users know: mean, min, max, percentiles, CV.

Percentiles interpolate linearly between the two nearest samples (numpy's default), so a
p99 of fewer than 100 samples lies between the two largest values rather than being the
maximum itself; :func:`summarize` records the sample count so readers can judge.
The coefficient of variation is the population standard deviation over the mean, the
figure trtexec prints as "coefficient of variance".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional, Sequence

import numpy as np

from fcn_edge.bench.errors import BenchmarkError

PERCENTILES = (50, 90, 95, 99)

# trtexec warns when the GPU compute time varies by more than 1%; timings taken with the
# host clock also carry the OS scheduler's noise, so they get a looser default.
CV_THRESHOLD_DEVICE = 0.01
CV_THRESHOLD_HOST = 0.05
# Below this many samples a p99 is little more than the maximum.
MIN_SAMPLES_FOR_P99 = 100


@dataclass(frozen=True)
class LatencyStats:
    """Summary of one series of latencies, all in milliseconds."""

    count: int
    mean: float
    std: float
    min: float
    max: float
    p50: float
    p90: float
    p95: float
    p99: float

    @property
    def cv(self) -> float:
        """Coefficient of variation (std / mean); 0 for an all-zero series."""
        return self.std / self.mean if self.mean > 0 else 0.0

    @property
    def median(self) -> float:
        return self.p50

    def as_dict(self) -> Dict[str, float]:
        return {
            "count": self.count, "mean": self.mean, "std": self.std, "min": self.min,
            "max": self.max, "p50": self.p50, "p90": self.p90, "p95": self.p95,
            "p99": self.p99, "cv": self.cv,
        }

    @classmethod
    def from_dict(cls, data: Dict[str, float]) -> "LatencyStats":
        return cls(**{k: data[k] for k in ("count", "mean", "std", "min", "max", "p50", "p90", "p95", "p99")})


def summarize(samples_ms: Sequence[float]) -> LatencyStats:
    """Statistics of a non-empty series of finite, non-negative latencies in ms."""
    values = np.asarray(samples_ms, dtype=np.float64).ravel()
    if values.size == 0:
        raise BenchmarkError("no latency samples to summarize")
    if not np.all(np.isfinite(values)):
        raise BenchmarkError(f"latency samples contain {int(np.sum(~np.isfinite(values)))} non-finite values")
    if np.any(values < 0):
        raise BenchmarkError(f"latency samples contain negative values (min {values.min():.6g} ms)")
    p50, p90, p95, p99 = np.percentile(values, PERCENTILES)
    return LatencyStats(
        count=int(values.size),
        mean=float(values.mean()),
        std=float(values.std()),
        min=float(values.min()),
        max=float(values.max()),
        p50=float(p50),
        p90=float(p90),
        p95=float(p95),
        p99=float(p99),
    )


def instability_warning(
    name: str, stats: LatencyStats, clock: str, threshold: Optional[float] = None
) -> Optional[str]:
    """A trtexec-style warning when ``stats`` varies more than ``threshold`` (a fraction).

    The default threshold depends on the clock: 1% for CUDA events (trtexec's), 5% for
    ``perf_counter``. :func:`stability_hint` says what usually steadies the numbers.
    """
    if threshold is None:
        threshold = CV_THRESHOLD_DEVICE if clock == "cuda_event" else CV_THRESHOLD_HOST
    if stats.count < 2 or stats.mean <= 0 or math.isnan(stats.cv) or stats.cv <= threshold:
        return None
    return (f"{name} is unstable, with coefficient of variation = {stats.cv * 100:.2f}% "
            f"(threshold {threshold * 100:g}%)")


def stability_hint(clock: str) -> str:
    if clock == "cuda_event":
        return ("lock the GPU clocks (Jetson: sudo jetson_clocks; desktop: nvidia-smi -lgc) "
                "and keep other work off the GPU")
    return ("pin the CPU frequency (Jetson: sudo jetson_clocks; desktop: cpupower frequency-set "
            "-g performance), stop other load, or run longer (--duration)")


def throughput_fps(frames: int, wall_s: float) -> float:
    """Frames per second over a timed loop; 0 when nothing was timed."""
    return frames / wall_s if wall_s > 0 else 0.0
