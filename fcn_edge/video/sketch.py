"""Latency percentiles in fixed memory, for runs that last weeks.

:class:`LatencySketch` keeps the first ``exact_limit`` samples (10,000 by default: five
minutes at 30 FPS) and reports exact percentiles while there are no more; past that it
answers from a log-bucketed histogram it has filled from the first sample on (the
DDSketch construction: Masson, Rim and Lee, VLDB 2019), and the sample list is dropped.

Error bound of the histogram: every percentile is within ``relative_accuracy`` (1 %) of a
sample value of the right rank, for values from ``min_value`` (1 microsecond) to
``max_value`` (about 2.8 hours, in ms); smaller values count as 0 (an absolute error
under 1 microsecond), larger ones are clamped. Count, mean and max are exact at any
length. Memory per stage: an array of ``exact_limit`` float64 (80 KB) until the switch,
then one int64 array of about 1,200 buckets (9 KB), whatever the run's length.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence

import numpy as np

from fcn_edge.errors import UsageError


class LatencySketch:
    """Streaming count, mean, max and percentiles of non-negative samples (milliseconds)."""

    def __init__(self, relative_accuracy: float = 0.01, min_value: float = 1e-3, max_value: float = 1e7,
                 exact_limit: int = 10_000):
        if not 0 < relative_accuracy < 1:
            raise UsageError(f"relative_accuracy {relative_accuracy} must be in (0, 1)")
        self.relative_accuracy = relative_accuracy
        self.gamma = (1 + relative_accuracy) / (1 - relative_accuracy)
        self._log_gamma = math.log(self.gamma)
        self.min_value = min_value
        self.max_value = max_value
        self._offset = math.floor(math.log(min_value) / self._log_gamma)
        self._buckets = np.zeros(self._index(max_value) + 1, np.int64)
        self._zeros = 0
        self.exact_limit = exact_limit
        self._exact: Optional[np.ndarray] = np.empty(exact_limit, np.float64)
        self.count = 0
        self.total = 0.0
        self.max = 0.0

    def _index(self, value: float) -> int:
        return math.ceil(math.log(value) / self._log_gamma) - self._offset

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        if value > self.max:
            self.max = value
        if self._exact is not None:
            if self.count <= self.exact_limit:
                self._exact[self.count - 1] = value
            else:
                self._exact = None  # past the limit the histogram answers; free the samples
        if not value >= self.min_value:  # NaN too
            self._zeros += 1
        else:
            self._buckets[self._index(min(value, self.max_value))] += 1

    @property
    def exact(self) -> bool:
        """Whether percentiles are computed from every sample."""
        return self._exact is not None

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def percentiles(self, qs: Sequence[float]) -> List[float]:
        """Percentiles ``qs`` (0-100): exact for short runs, else within the relative accuracy."""
        if not self.count:
            return [0.0 for _ in qs]
        if self._exact is not None:
            return [float(v) for v in np.percentile(self._exact[: self.count], list(qs))]
        cumulative = np.cumsum(self._buckets)
        out = []
        for q in qs:
            rank = q / 100.0 * (self.count - 1)  # the rank np.percentile interpolates at
            if rank < self._zeros:
                out.append(0.0)
                continue
            i = int(np.searchsorted(cumulative, rank - self._zeros, side="right"))
            i = min(i, len(self._buckets) - 1)
            # the bucket (gamma^(k-1), gamma^k] is answered by its point of least relative error
            k = i + self._offset
            out.append(min(2 * self.gamma ** k / (self.gamma + 1), self.max))
        return out

    def state_bytes(self) -> int:
        """Memory held by the samples and buckets (for the soak tool and tests)."""
        exact = 0 if self._exact is None else self._exact.nbytes
        return int(self._buckets.nbytes) + exact

    def as_dict(self) -> Dict[str, float]:
        return {"count": self.count, "mean": self.mean, "max": self.max, "exact": self.exact}
