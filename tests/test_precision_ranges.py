"""Streaming histograms and the calibration methods (entropy / minmax / percentile)."""

import numpy as np
import pytest

from fcn_edge.errors import PrecisionError
from fcn_edge.precision.histogram import TensorHistogram
from fcn_edge.precision.ranges import (int8_scale, kl_threshold_bin, tensor_range, threshold,
                                       uint8_params)


def _kl_reference(counts, levels=128):
    """A direct, loop-per-candidate transcription of TensorRT's entropy calibration."""
    counts = np.array(counts, np.float64)
    counts[0] = counts[1]
    best_kl, best_i = np.inf, counts.size
    for i in range(levels, counts.size + 1):
        p = counts[:i].copy()
        p[i - 1] += counts[i:].sum()
        nonzero = counts[:i] > 0
        edges = (np.arange(levels + 1) * i) // levels
        q = np.zeros(i)
        for g in range(levels):
            a, b = edges[g], edges[g + 1]
            used = nonzero[a:b].sum()
            if used:
                q[a:b] = np.where(nonzero[a:b], counts[a:b].sum() / used, 0.0)
        p, q = p / p.sum(), q / q.sum()
        if q[i - 1] == 0:
            q[i - 1] = 1e-4  # outliers folded onto an empty bin: smoothed
        m = p > 0
        kl = np.sum(p[m] * np.log(p[m] / q[m]))
        if kl < best_kl:
            best_kl, best_i = kl, i
    return best_i - 1


@pytest.mark.parametrize("seed", [0, 1])
def test_vectorised_kl_search_matches_the_reference(seed):
    rng = np.random.default_rng(seed)
    x = np.abs(rng.standard_t(3, 50_000))
    counts, _ = np.histogram(x, bins=600, range=(0, x.max()))
    assert kl_threshold_bin(counts) == _kl_reference(counts)


def test_streamed_histogram_equals_one_shot_histogram():
    rng = np.random.default_rng(0)
    chunks = [rng.normal(0, s, 10_000).astype(np.float32) for s in (1.0, 3.0, 0.5, 9.0)]
    hist = TensorHistogram(bins=256, max_bins=1024)
    for c in chunks:
        hist.update(c)
    everything = np.abs(np.concatenate(chunks))
    assert hist.counts.sum() == everything.size
    assert hist.counts.size <= 1024
    edges = np.arange(hist.counts.size + 1) * hist.width
    expected, _ = np.histogram(everything, bins=edges)
    expected[-1] += np.count_nonzero(everything >= edges[-1])
    # exact bins up to float rounding at bin edges
    assert np.abs(hist.counts - expected).sum() <= 4
    assert hist.minimum == min(c.min() for c in chunks) and hist.maximum == max(c.max() for c in chunks)


def test_minmax_percentile_entropy_order_on_heavy_tail():
    rng = np.random.default_rng(0)
    hist = TensorHistogram()
    x = rng.standard_normal(200_000).astype(np.float32)
    x[:20] = 60.0  # rare outliers
    hist.update(x)
    t_minmax = threshold(hist, "minmax")
    t_pct = threshold(hist, "percentile", percentile=99.9)
    t_kl = threshold(hist, "entropy")
    assert t_minmax == pytest.approx(60.0)
    assert 3.0 < t_pct < 4.0  # |N(0,1)| 99.9th percentile is 3.29
    assert 2.0 < t_kl < 20.0  # entropy clips the outliers away


def test_ranges_and_quantisation_parameters():
    hist = TensorHistogram()
    hist.update(np.linspace(0.0, 6.0, 1000, dtype=np.float32))  # a ReLU output
    r = tensor_range(hist, "minmax", symmetric=True)
    assert (r.low, r.high) == (-6.0, 6.0) and int8_scale(r) == pytest.approx(6.0 / 127)
    r = tensor_range(hist, "minmax", symmetric=False)
    scale, zp = uint8_params(r)
    assert zp == 0 and scale == pytest.approx(6.0 / 255)
    signed = TensorHistogram()
    signed.update(np.array([-1.0, 3.0], np.float32))
    scale, zp = uint8_params(tensor_range(signed, "minmax", symmetric=False))
    assert -zp * scale == pytest.approx(-1.0, abs=scale) and (255 - zp) * scale == pytest.approx(3.0, abs=scale)


def test_all_zero_tensor_and_unknown_method():
    hist = TensorHistogram()
    hist.update(np.zeros(10, np.float32))
    assert threshold(hist, "entropy") == 0.0
    assert int8_scale(tensor_range(hist, "entropy", True)) == 1.0  # never a zero scale
    with pytest.raises(PrecisionError, match="unknown calibration method"):
        threshold(hist, "mse")
