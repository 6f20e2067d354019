"""Latency statistics on synthetic timing arrays."""

import math

import numpy as np
import pytest

from fcn_edge.bench.errors import BenchmarkError
from fcn_edge.bench.stats import LatencyStats, instability_warning, stability_hint, summarize, throughput_fps


def test_known_series():
    stats = summarize(np.arange(1, 101, dtype=float))  # 1 .. 100 ms
    assert stats.count == 100
    assert stats.min == 1 and stats.max == 100
    assert stats.mean == pytest.approx(50.5)
    # linear interpolation between order statistics: p = 1 + (n - 1) * q
    assert stats.p50 == pytest.approx(50.5)
    assert stats.p90 == pytest.approx(90.1)
    assert stats.p95 == pytest.approx(95.05)
    assert stats.p99 == pytest.approx(99.01)
    assert stats.std == pytest.approx(math.sqrt((100**2 - 1) / 12))  # population std of 1..n
    assert stats.cv == pytest.approx(stats.std / 50.5)


def test_constant_series_has_zero_variation_and_no_warning():
    stats = summarize([4.0] * 20)
    assert stats.cv == 0
    assert stats.p50 == stats.p99 == stats.min == stats.max == 4.0
    assert instability_warning("compute", stats, "cuda_event") is None


def test_percentiles_ordered_on_skewed_samples():
    rng = np.random.default_rng(1)
    samples = rng.lognormal(mean=2.0, sigma=0.6, size=5000)  # a long right tail, like real latencies
    s = summarize(samples)
    assert s.min <= s.p50 <= s.p90 <= s.p95 <= s.p99 <= s.max
    assert s.mean > s.p50  # right-skewed
    assert s.p50 == pytest.approx(np.exp(2.0), rel=0.05)


def test_single_sample():
    s = summarize([7.5])
    assert s.count == 1 and s.mean == s.p99 == 7.5 and s.std == 0
    assert instability_warning("end-to-end", s, "perf_counter") is None


@pytest.mark.parametrize("bad, words", [
    ([], "no latency samples"),
    ([1.0, float("nan")], "non-finite"),
    ([1.0, float("inf")], "non-finite"),
    ([1.0, -0.5], "negative"),
])
def test_bad_samples_are_refused(bad, words):
    with pytest.raises(BenchmarkError, match=words):
        summarize(bad)


def test_instability_thresholds_follow_the_clock():
    # cv of [9, 11] = 1 / 10 = 10%; [99, 101] = 1%; [99.5, 100.5] = 0.5%
    ten = summarize([9.0, 11.0])
    one_and_a_bit = summarize([98.9, 101.1])
    half = summarize([99.5, 100.5])
    assert ten.cv == pytest.approx(0.10)
    assert "10.00%" in instability_warning("compute time", ten, "perf_counter")
    assert instability_warning("compute time", one_and_a_bit, "perf_counter") is None  # host: 5%
    gpu = instability_warning("compute time", one_and_a_bit, "cuda_event")  # device: 1%, as trtexec
    assert gpu and "threshold 1%" in gpu
    assert "jetson_clocks" in stability_hint("cuda_event") and "nvidia-smi -lgc" in stability_hint("cuda_event")
    assert "cpupower" in stability_hint("perf_counter")
    assert instability_warning("compute time", half, "cuda_event") is None
    assert instability_warning("x", half, "cuda_event", threshold=0.001) is not None


def test_dict_round_trip_and_throughput():
    s = summarize([1.0, 2.0, 3.0, 10.0])
    d = s.as_dict()
    assert d["cv"] == pytest.approx(s.cv)
    assert LatencyStats.from_dict(d) == s
    assert throughput_fps(300, 2.0) == 150.0
    assert throughput_fps(10, 0.0) == 0.0
