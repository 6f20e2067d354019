"""Time a Segmenter frame after frame: end-to-end with perf_counter, stages from its timings.

One timed call is one ``segment`` (batch 1) or ``segment_batch`` (batch B) call on the same
frames every time, so only the runtime's own work is measured, not image decoding. The
end-to-end time wraps the whole call; the stages come from the result timings, which the
backend fills from CUDA events where it has them (TensorRT) and from perf_counter
otherwise. Throughput is frames over the wall time of the whole timed loop, as trtexec
reports it, so gaps between calls count too.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from fcn_edge.bench.errors import BenchmarkError
from fcn_edge.bench.stats import LatencyStats, instability_warning, summarize, throughput_fps

log = logging.getLogger(__name__)

STAGES = ("preprocess", "h2d", "compute", "d2h", "decode")
DEVICE_STAGES = ("h2d", "compute", "d2h")
END_TO_END = "end_to_end"
HOST_CLOCK = "perf_counter"
DEVICE_CLOCK = "cuda_event"


@dataclass(frozen=True)
class RunConfig:
    """How long to time one variant, and what to feed it.

    Exactly one of ``iterations`` and ``duration_s`` bounds the timed loop; a duration run
    still makes at least ``min_iterations`` calls so the statistics mean something.
    ``warmup`` untimed calls come first (lazy allocation, autotuning, caches).
    ``frame_size`` is the (height, width) of the synthetic frames fed, as from a camera;
    the preprocessing stage resizes them to the network input. ``image`` feeds a real
    image (every frame of a batch) instead, at its own size.
    """

    iterations: Optional[int] = None
    duration_s: Optional[float] = 3.0
    warmup: int = 5
    min_iterations: int = 10
    frame_size: Tuple[int, int] = (480, 640)
    seed: int = 0
    cv_threshold: Optional[float] = None  # fraction; None: 1% for CUDA events, 5% for perf_counter
    image: Optional[str] = None
    rounds: int = 1

    def __post_init__(self) -> None:
        if (self.iterations is None) == (self.duration_s is None):
            raise BenchmarkError("give exactly one of iterations and duration_s")
        if self.iterations is not None and self.iterations < 1:
            raise BenchmarkError(f"iterations must be >= 1, got {self.iterations}")
        if self.duration_s is not None and self.duration_s <= 0:
            raise BenchmarkError(f"duration must be > 0 s, got {self.duration_s}")
        if self.warmup < 0:
            raise BenchmarkError(f"warmup must be >= 0 calls, got {self.warmup}")
        if self.rounds < 1:
            raise BenchmarkError(f"rounds must be >= 1, got {self.rounds}")
        if self.iterations is not None and self.iterations < self.rounds:
            raise BenchmarkError(f"{self.iterations} iterations cannot be split into {self.rounds} rounds")
        if min(self.frame_size) < 1:
            raise BenchmarkError(f"frame size must be positive, got {self.frame_size}")

    def as_dict(self) -> Dict[str, object]:
        return {
            "iterations": self.iterations, "duration_s": self.duration_s, "warmup": self.warmup,
            "min_iterations": self.min_iterations, "frame_size": list(self.frame_size),
            "seed": self.seed, "cv_threshold": self.cv_threshold, "image": self.image,
            "rounds": self.rounds,
        }

    def round_config(self, index: int) -> "RunConfig":
        """The share of round ``index`` of ``rounds``: iterations or seconds split evenly;
        the full warm-up first, then one call per round to refill caches."""
        import dataclasses

        if self.rounds == 1:
            return self
        iterations = None
        if self.iterations is not None:
            iterations = self.iterations // self.rounds + (1 if index < self.iterations % self.rounds else 0)
        return dataclasses.replace(
            self,
            iterations=iterations,
            duration_s=None if self.duration_s is None else self.duration_s / self.rounds,
            min_iterations=-(-self.min_iterations // self.rounds),
            warmup=self.warmup if index == 0 else min(self.warmup, 1),
            rounds=1,
        )


@dataclass(frozen=True)
class RunResult:
    """Timings of one variant at one batch size. Latencies are per call (per batch), in ms."""

    batch: int
    iterations: int
    wall_s: float
    end_to_end: LatencyStats
    stages: Dict[str, LatencyStats]
    clocks: Dict[str, str]
    samples_ms: Tuple[float, ...]
    warnings: Tuple[str, ...] = field(default_factory=tuple)
    unstable_clocks: Tuple[str, ...] = field(default_factory=tuple)  # clocks of the warnings
    stage_samples_ms: Dict[str, Tuple[float, ...]] = field(default_factory=dict, repr=False)

    @property
    def throughput_fps(self) -> float:
        return throughput_fps(self.iterations * self.batch, self.wall_s)

    @property
    def overhead_ms(self) -> float:
        """Mean end-to-end time not covered by the five stages (Python, result objects)."""
        return self.end_to_end.mean - sum(s.mean for s in self.stages.values())

    def as_dict(self, samples: bool = True) -> Dict[str, object]:
        out: Dict[str, object] = {
            "batch": self.batch,
            "iterations": self.iterations,
            "wall_s": self.wall_s,
            "throughput_fps": self.throughput_fps,
            "latency_ms": {END_TO_END: self.end_to_end.as_dict(),
                           **{k: v.as_dict() for k, v in self.stages.items()}},
            "clocks": dict(self.clocks),
            "warnings": list(self.warnings),
        }
        if samples:
            out["samples_ms"] = list(self.samples_ms)
        return out


def synthetic_frames(batch: int, frame_size: Tuple[int, int], seed: int = 0) -> List[np.ndarray]:
    """Deterministic BGR frames: smooth gradients plus noise, so decode sees varied classes."""
    rng = np.random.default_rng(seed)
    h, w = frame_size
    ys, xs = np.mgrid[0:h, 0:w]
    frames = []
    for i in range(batch):
        base = np.stack([(xs * 255 // max(w - 1, 1)), (ys * 255 // max(h - 1, 1)),
                         ((xs + ys + 40 * i) % 256)], axis=-1)
        noise = rng.integers(-24, 25, size=(h, w, 3))
        frames.append(np.clip(base + noise, 0, 255).astype(np.uint8))
    return frames


def timing_clocks(segmenter) -> Dict[str, str]:
    """Which clock each stage was measured with.

    A backend may say so with a ``timing_clock`` attribute ("cuda_event" or
    "perf_counter"); without one, the TensorRT backend (which records CUDA events around
    its copies and ``execute_async_v3``) counts as CUDA events and every other backend as
    perf_counter on the host.
    """
    backend = segmenter.backend
    default = DEVICE_CLOCK if getattr(backend, "name", "") == "tensorrt" else HOST_CLOCK
    device_clock = getattr(backend, "timing_clock", None) or default
    clocks = {stage: HOST_CLOCK for stage in STAGES}
    for stage in DEVICE_STAGES:
        clocks[stage] = device_clock
    clocks[END_TO_END] = HOST_CLOCK
    return clocks


def run_benchmark(segmenter, batch: int, config: RunConfig) -> RunResult:
    """Warm up, then time ``segment``/``segment_batch`` calls until the config's bound."""
    if batch < 1:
        raise BenchmarkError(f"batch must be >= 1, got {batch}")
    limit = getattr(segmenter, "batch_limit", None)
    if batch > 1 and limit is not None and batch > limit:
        raise BenchmarkError(
            f"batch {batch} exceeds what {getattr(segmenter, 'description', 'this model')} runs "
            f"in one call ({limit}); export/build with a larger max batch or lower --batch"
        )
    if config.image:
        from fcn_edge.data.images import read_image

        frames = [read_image(config.image)] * batch
    else:
        frames = synthetic_frames(batch, config.frame_size, config.seed)

    if batch == 1:
        frame = frames[0]

        def call():
            return [segmenter.segment(frame)]
    else:

        def call():
            return segmenter.segment_batch(frames)

    log.info("timing %s at batch %d", getattr(segmenter, "description", "model"), batch)
    for _ in range(config.warmup):
        call()

    e2e: List[float] = []
    per_stage: Dict[str, List[float]] = {stage: [] for stage in STAGES}
    perf = time.perf_counter
    loop_start = perf()
    while True:
        t0 = perf()
        results = call()
        t1 = perf()
        e2e.append((t1 - t0) * 1e3)
        # segment_batch shares batch stages out among its frames: the call's cost is the sum.
        totals = dict.fromkeys(STAGES, 0.0)
        for result in results:
            timings = result.timings
            for stage in STAGES:
                totals[stage] += float(getattr(timings, f"{stage}_ms"))
        for stage in STAGES:
            per_stage[stage].append(totals[stage])
        done = len(e2e)
        if config.iterations is not None:
            if done >= config.iterations:
                break
        elif t1 - loop_start >= config.duration_s and done >= config.min_iterations:
            break
    wall = perf() - loop_start
    stage_samples = {stage: tuple(values) for stage, values in per_stage.items()}
    return build_result(batch, wall, tuple(e2e), stage_samples, timing_clocks(segmenter), config.cv_threshold)


def build_result(
    batch: int,
    wall_s: float,
    e2e_ms: Tuple[float, ...],
    stage_ms: Dict[str, Tuple[float, ...]],
    clocks: Dict[str, str],
    cv_threshold: Optional[float] = None,
) -> RunResult:
    """Statistics and instability warnings of raw per-call samples."""
    e2e_stats = summarize(e2e_ms)
    stage_stats = {stage: summarize(values) for stage, values in stage_ms.items()}
    warnings, unstable = [], []
    for name, stats, clock in (
        ("end-to-end latency", e2e_stats, HOST_CLOCK),
        ("compute time", stage_stats["compute"], clocks["compute"]),
    ):
        message = instability_warning(name, stats, clock, cv_threshold)
        if message:
            warnings.append(f"batch {batch}: {message}")
            if clock not in unstable:
                unstable.append(clock)
    return RunResult(
        batch=batch,
        iterations=len(e2e_ms),
        wall_s=wall_s,
        end_to_end=e2e_stats,
        stages=stage_stats,
        clocks=clocks,
        samples_ms=tuple(e2e_ms),
        warnings=tuple(warnings),
        unstable_clocks=tuple(unstable),
        stage_samples_ms=stage_ms,
    )


def merge_runs(runs: Sequence[RunResult], cv_threshold: Optional[float] = None) -> RunResult:
    """One result from several rounds of the same variant and batch: samples pooled, walls summed."""
    if not runs:
        raise BenchmarkError("no runs to merge")
    if len({r.batch for r in runs}) != 1:
        raise BenchmarkError(f"cannot merge runs of batches {sorted({r.batch for r in runs})}")
    e2e = tuple(v for r in runs for v in r.samples_ms)
    stages = {stage: tuple(v for r in runs for v in r.stage_samples_ms[stage]) for stage in STAGES}
    return build_result(runs[0].batch, sum(r.wall_s for r in runs), e2e, stages, runs[0].clocks, cv_threshold)


def batches_to_run(batch: int) -> Sequence[int]:
    """Batch 1 always (latency), plus the chosen batch (throughput) when larger."""
    return (1,) if batch == 1 else (1, batch)
