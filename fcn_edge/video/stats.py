"""Per-stage latency records, rolling rates for the overlay, and the end-of-run summary.

Everything here has a fixed size however long a run lasts: per stage, a
:class:`~fcn_edge.video.sketch.LatencySketch` (exact percentiles over the first 10,000
frames, then within 1 %) and a 30-sample window for the overlay; the rate meter keeps 30
timestamps.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Deque, Dict, List, Optional

import numpy as np

from fcn_edge.errors import EXIT_FAILED, EXIT_OK, EXIT_SIGNAL_BASE
from fcn_edge.video.sketch import LatencySketch

PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class LatencyStats:
    """Milliseconds over the frames of a run."""

    count: int
    mean: float
    p50: float
    p90: float
    p99: float
    max: float

    @classmethod
    def of(cls, values_ms: List[float]) -> "LatencyStats":
        if not values_ms:
            return cls(0, 0.0, 0.0, 0.0, 0.0, 0.0)
        arr = np.asarray(values_ms, np.float64)
        p50, p90, p99 = np.percentile(arr, PERCENTILES)
        return cls(len(arr), float(arr.mean()), float(p50), float(p90), float(p99), float(arr.max()))

    @classmethod
    def of_sketch(cls, sketch: LatencySketch) -> "LatencyStats":
        if not sketch.count:
            return cls(0, 0.0, 0.0, 0.0, 0.0, 0.0)
        p50, p90, p99 = sketch.percentiles(PERCENTILES)
        return cls(sketch.count, sketch.mean, p50, p90, p99, sketch.max)


class StageRecorder:
    """Thread-safe per-stage times (ms) in fixed memory, plus a short window for the overlay."""

    def __init__(self, window: int = 30, exact_limit: int = 10_000):
        self._lock = threading.Lock()
        self._all: Dict[str, LatencySketch] = collections.defaultdict(lambda: LatencySketch(exact_limit=exact_limit))
        self._recent: Dict[str, Deque[float]] = collections.defaultdict(lambda: collections.deque(maxlen=window))

    def add(self, stage: str, ms: float) -> None:
        with self._lock:
            self._all[stage].add(ms)
            self._recent[stage].append(ms)

    def recent_mean(self, stage: str) -> Optional[float]:
        with self._lock:
            values = self._recent.get(stage)
            return float(sum(values) / len(values)) if values else None

    def summary(self) -> Dict[str, LatencyStats]:
        with self._lock:
            return {stage: LatencyStats.of_sketch(sketch) for stage, sketch in self._all.items()}

    def state_bytes(self) -> int:
        """Memory held by the per-stage records (bounded: see the module's docstring)."""
        with self._lock:
            return sum(sketch.state_bytes() for sketch in self._all.values())


class RateMeter:
    """Events per second over the last ``window`` events (the overlay's FPS)."""

    def __init__(self, window: int = 30):
        self._times: Deque[float] = collections.deque(maxlen=window)

    def tick(self, now: Optional[float] = None) -> None:
        self._times.append(time.perf_counter() if now is None else now)

    @property
    def rate(self) -> Optional[float]:
        if len(self._times) < 2:
            return None
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else None


@dataclass(frozen=True)
class RunSummary:
    """What a run did. ``fps`` counts frames out over the wall time from start to finish."""

    source: str
    sink: str
    mode: str  # "pipelined" or "sequential"
    live: bool
    frames_in: int
    frames_inferred: int
    frames_out: int
    dropped: int
    reconnects: int
    wall_s: float
    stopped_by: str
    output: Optional[str]
    latency_ms: Dict[str, LatencyStats] = field(default_factory=dict)
    error: Optional[str] = None
    stop_signal: Optional[int] = None  # the signal that stopped the run (the output was finalised)

    @property
    def fps(self) -> float:
        return self.frames_out / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def exit_code(self) -> int:
        """The documented exit code of ``fcn-edge run`` (fcn_edge.errors): 1 when the run
        ended on an error, 128 + the signal when one stopped it, else 0."""
        if self.error:
            return EXIT_FAILED
        if self.stop_signal:
            return EXIT_SIGNAL_BASE + self.stop_signal
        return EXIT_OK

    def to_dict(self) -> Dict[str, object]:
        data = asdict(self)
        data["fps"] = self.fps
        return data

    def format(self) -> str:
        lines = [
            f"{self.mode} run of {self.source} -> {self.sink} ({'live' if self.live else 'file'}): {self.stopped_by}",
            f"  frames: in {self.frames_in}, inferred {self.frames_inferred}, out {self.frames_out}, "
            f"dropped {self.dropped}, reconnects {self.reconnects}",
            f"  throughput: {self.fps:.2f} FPS over {self.wall_s:.2f} s",
        ]
        if self.output:
            lines.append(f"  output: {self.output}")
        if self.latency_ms:
            lines.append("  latency ms        p50      p90      p99      max")
            for stage, s in self.latency_ms.items():
                if s.count:
                    lines.append(f"    {stage:<12} {s.p50:8.2f} {s.p90:8.2f} {s.p99:8.2f} {s.max:8.2f}")
        if self.error:
            lines.append(f"  error: {self.error}")
        return "\n".join(lines)
