"""Calibration methods: a tensor's histogram -> the range its int8/uint8 grid covers.

- ``minmax``: the observed range. Never clips, wastes resolution on rare outliers.
- ``percentile``: clip |x| at a percentile (99.99 by default) of its distribution.
- ``entropy``: the clipping threshold whose quantised distribution is closest, in
  Kullback-Leibler divergence, to the observed one: the algorithm of TensorRT's entropy
  calibrator (Migacz, "8-bit Inference with TensorRT", GTC 2017), with a 2048-bin
  histogram of |x| and 128 quantisation levels (255 for a non-negative tensor that is
  quantised to uint8).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

from fcn_edge.errors import PrecisionError
from fcn_edge.precision.histogram import TensorHistogram

METHODS = ("entropy", "minmax", "percentile")
DEFAULT_PERCENTILE = 99.99
SMOOTHING_EPS = 1e-4


@dataclass(frozen=True)
class TensorRange:
    """The real-valued interval a tensor's quantisation grid must represent."""

    low: float
    high: float

    @property
    def absmax(self) -> float:
        return max(abs(self.low), abs(self.high))


def threshold(hist: TensorHistogram, method: str, percentile: float = DEFAULT_PERCENTILE,
              levels: int = 128) -> float:
    """The clipping threshold T for |x| that ``method`` picks."""
    if method not in METHODS:
        raise PrecisionError(f"unknown calibration method {method!r}; choose one of {METHODS}")
    amax = hist.absmax
    if method == "minmax" or amax == 0.0 or hist.width == 0.0:
        return amax
    counts, width = hist.resampled()
    if method == "percentile":
        if not 0.0 < percentile <= 100.0:
            raise PrecisionError(f"percentile must be in (0, 100], got {percentile}")
        cdf = np.cumsum(counts, dtype=np.float64)
        index = int(np.searchsorted(cdf, cdf[-1] * percentile / 100.0))
        return min(amax, (index + 1) * width)
    return min(amax, (kl_threshold_bin(counts, levels) + 0.5) * width)


def kl_threshold_bin(counts: np.ndarray, levels: int = 128) -> int:
    """The bin count i minimising KL(P_i || Q_i), as TensorRT's entropy calibrator does.

    P_i is the histogram's first i bins with every count beyond folded into bin i-1;
    Q_i is those i bins quantised to ``levels`` levels and expanded back, each level's
    mass spread evenly over the bins that were non-zero. Returns i - 1, the last bin kept.
    Bin 0 is first set to bin 1's count (as NVIDIA's pytorch-quantization does).
    All candidates i are evaluated at once from prefix sums (O(bins x levels)), so the
    search costs milliseconds per tensor instead of a Python loop over 2000 candidates.
    """
    c = np.array(counts, np.float64)
    n = c.size
    # The zero bin of a post-ReLU tensor holds half the mass; left in, it makes the search
    # favour tiny thresholds. NVIDIA's calibrators level it with its neighbour.
    if n > 1:
        c[0] = c[1]
    if n <= levels:
        return n - 1
    total = c.sum()
    csum = np.concatenate([[0.0], np.cumsum(c)])                      # C[i] = sum(c[:i])
    nz = np.concatenate([[0.0], np.cumsum(c > 0)])                    # NZ[i]
    clogc = np.concatenate([[0.0], np.cumsum(np.where(c > 0, c * np.log(np.maximum(c, 1)), 0.0))])
    cand = np.arange(levels, n + 1)                                    # candidate i
    edges = (np.arange(levels + 1)[None, :] * cand[:, None]) // levels  # (m, L+1)
    sums = csum[edges[:, 1:]] - csum[edges[:, :-1]]
    used = nz[edges[:, 1:]] - nz[edges[:, :-1]]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_avg = np.where(sums > 0, np.log(sums / np.maximum(used, 1)), 0.0)
        a2 = np.sum(sums * log_avg, axis=1)
        last = c[cand - 1]
        # bins 0..i-2: sum c log c - sum c log avg + C[i-1] log(C[i]/T)
        a2_main = a2 - last * log_avg[:, -1]
        main = clogc[cand - 1] - a2_main + csum[cand - 1] * np.log(csum[cand] / total)
        # bin i-1 carries the outliers folded in
        p_last = (last + (total - csum[cand])) / total
        q_last = np.exp(log_avg[:, -1]) / csum[cand]
        # outliers folded onto an empty bin: Q is 0 there; smooth it to eps, as TensorRT's
        # calibrator (and MXNet's port of it) smooth zero bins, instead of ruling i out
        q_last = np.where(last == 0, SMOOTHING_EPS, q_last)
        tail = np.where(p_last > 0, p_last * np.log(p_last / q_last), 0.0)
        kl = main / total + tail
    kl = np.where(np.isfinite(kl), kl, np.inf)
    if not np.isfinite(kl).any():
        return n - 1
    return int(cand[int(np.argmin(kl))]) - 1


def tensor_range(hist: TensorHistogram, method: str, symmetric: bool,
                 percentile: float = DEFAULT_PERCENTILE) -> TensorRange:
    """The range to quantise a tensor to.

    Symmetric (int8, TensorRT): [-T, T]. Asymmetric (uint8, ONNX Runtime): the observed
    [min, max] clipped to [-T, T], always containing 0; a non-negative tensor then uses
    all 256 levels over [0, T], which is why entropy searches 255 levels for it.
    """
    nonnegative = hist.minimum >= 0.0
    levels = 255 if (not symmetric and nonnegative) else 128
    t = threshold(hist, method, percentile, levels)
    if symmetric:
        return TensorRange(-t, t)
    low = max(min(hist.minimum, 0.0), -t)
    high = min(max(hist.maximum, 0.0), t)
    return TensorRange(low, high)


def int8_scale(r: TensorRange) -> float:
    """Symmetric int8 scale (zero point 0): amax / 127, never 0."""
    return _nonzero(r.absmax / 127.0)


def uint8_params(r: TensorRange) -> Tuple[float, int]:
    """Asymmetric uint8 (scale, zero point) covering [low, high] with 0 exactly representable."""
    low, high = min(r.low, 0.0), max(r.high, 0.0)
    scale = _nonzero((high - low) / 255.0)
    zero_point = int(np.clip(np.round(-low / scale), 0, 255))
    return scale, zero_point


def _nonzero(scale: float) -> float:
    return float(scale) if scale > 1e-12 else 1.0
