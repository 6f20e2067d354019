"""Bounded memory in long runs: the per-stage statistics and every per-frame structure keep a
fixed size however many frames pass (the soak tool, tools/soak.py, measures the whole process)."""

from __future__ import annotations

import numpy as np
import pytest

from fcn_edge.video.frame_queue import FrameQueue
from fcn_edge.video.reconnect import ReconnectingSource, ReconnectPolicy
from fcn_edge.video.sketch import LatencySketch
from fcn_edge.video.stats import LatencyStats, RateMeter, StageRecorder


def _samples(n: int, seed: int = 0) -> np.ndarray:
    """Latency-like: a log-normal body around 10 ms with a heavy tail, and some zeros."""
    rng = np.random.default_rng(seed)
    values = rng.lognormal(np.log(10.0), 0.5, n)
    values[rng.random(n) < 0.01] *= 30
    values[rng.random(n) < 0.02] = 0.0
    return values


def test_short_runs_get_exact_percentiles():
    values = _samples(5000)
    sketch = LatencySketch(exact_limit=5000)
    for v in values:
        sketch.add(float(v))
    assert sketch.exact
    assert sketch.percentiles([50, 90, 99]) == pytest.approx(list(np.percentile(values, [50, 90, 99])), rel=1e-12)
    exact, streamed = LatencyStats.of(list(values)), LatencyStats.of_sketch(sketch)
    assert streamed.count == exact.count and streamed.max == exact.max and streamed.p99 == exact.p99
    assert streamed.mean == pytest.approx(exact.mean, rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_long_runs_stay_within_the_relative_accuracy(seed):
    values = _samples(60_000, seed)
    sketch = LatencySketch(relative_accuracy=0.01, exact_limit=1000)
    for v in values:
        sketch.add(float(v))
    assert not sketch.exact
    ordered = np.sort(values)
    for q, got in zip((1, 10, 50, 90, 99, 99.9), sketch.percentiles((1, 10, 50, 90, 99, 99.9))):
        truth = ordered[int(q / 100 * (len(values) - 1))]  # the sample of that rank
        assert abs(got - truth) <= 0.01 * truth + 1e-9, (q, got, truth)
    assert sketch.count == len(values) and sketch.max == values.max()
    assert sketch.mean == pytest.approx(values.mean(), rel=1e-9)


def test_odd_values_do_not_break_the_sketch():
    sketch = LatencySketch(exact_limit=2)
    for v in (0.0, -1.0, float("nan"), 1e-9, 5.0, 1e12):
        sketch.add(v)
    p = sketch.percentiles([0, 50, 100])
    assert p[0] == 0.0 and p[2] <= 1e12 and sketch.count == 6


def test_the_recorder_s_memory_stops_growing():
    recorder = StageRecorder(exact_limit=1000)
    stages = ("capture", "inference", "render", "write", "end_to_end")
    for i in range(1500):
        for stage in stages:
            recorder.add(stage, 1.0 + i % 17)
    after_switch = recorder.state_bytes()
    for i in range(30_000):
        for stage in stages:
            recorder.add(stage, 1.0 + i % 17)
    assert recorder.state_bytes() == after_switch < 12 * 1024 * len(stages)
    summary = recorder.summary()
    assert summary["render"].count == 31_500 and summary["render"].max == 17.0
    assert recorder.recent_mean("render") is not None


def test_windows_and_queues_are_bounded():
    meter = RateMeter(window=30)
    for t in range(10_000):
        meter.tick(t / 30)
    assert len(meter._times) == 30 and meter.rate == pytest.approx(30.0)
    live = FrameQueue(2, drop_oldest=True)
    for i in range(1000):
        live.put(i)
    assert len(live) == 2 and live.dropped == 998


def test_a_flapping_source_keeps_counters_not_a_log():
    class Flapping:
        uri, is_live, fps = "rtsp://cam/x", True, 30.0

        def __init__(self):
            self.n = 0

        def open(self):
            pass

        def close(self):
            pass

        def read(self):
            self.n += 1
            return None if self.n % 2 else np.zeros((2, 2, 3), np.uint8)

    source = ReconnectingSource(Flapping(), ReconnectPolicy(initial_delay_s=0.0, max_delay_s=0.0))
    for _ in range(2000):
        source.read()
    assert source.reconnects == source.lost_events == 2000
    assert source.last_error == "lost 'rtsp://cam/x'; reconnecting" and source.last_error_at is not None
    # what the object holds does not grow with the events: only scalars
    assert all(not isinstance(v, (list, dict, set, tuple)) for v in vars(source).values())
