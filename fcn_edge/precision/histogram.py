"""Streaming per-tensor statistics: min, max and a histogram of |x| that grows as needed.

Calibration must not keep every activation of every image (FCN-8s VGG16 would need
gigabytes), so each batch is folded into a fixed-width histogram and dropped. The bin
width is set by the first batch (its max |x| over ``bins`` bins). When a later batch goes
past the last edge, bins are appended at the same width; when there would be more than
``max_bins``, pairs of bins are merged (width doubles). Both steps are exact: edges always
start at 0 and stay aligned, so no count is ever smeared across bins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict

import numpy as np

DEFAULT_BINS = 2048
MAX_BINS = 2048 * 8


@dataclass
class TensorHistogram:
    """Running statistics of one tensor over all calibration batches."""

    bins: int = DEFAULT_BINS
    max_bins: int = MAX_BINS
    minimum: float = float("inf")
    maximum: float = float("-inf")
    width: float = 0.0
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def absmax(self) -> float:
        return max(abs(self.minimum), abs(self.maximum)) if self.counts.size else 0.0

    def update(self, values: np.ndarray) -> None:
        values = np.asarray(values)
        if values.size == 0:
            return
        if values.dtype != np.float32:
            values = values.astype(np.float32)
        lo, hi = float(values.min()), float(values.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):
            finite = values[np.isfinite(values)]
            if finite.size == 0:
                return
            values, lo, hi = finite, float(finite.min()), float(finite.max())
        self.minimum = min(self.minimum, lo)
        self.maximum = max(self.maximum, hi)
        amax = max(abs(lo), abs(hi))
        if self.width == 0.0:
            if amax == 0.0:
                # all zeros so far: remember them in bin 0 with a provisional width
                self.counts = np.zeros(1, np.int64) if self.counts.size == 0 else self.counts
                self.counts[0] += values.size
                return
            width = amax / self.bins
            previous_zeros = int(self.counts.sum()) if self.counts.size else 0
            self.width = width
            self.counts = np.zeros(self.bins, np.int64)
            self.counts[0] += previous_zeros
        needed = int(np.floor(amax / self.width)) + 1
        while needed > self.max_bins:
            self._merge_pairs()
            needed = int(np.floor(amax / self.width)) + 1
        if needed > self.counts.size:
            self.counts = np.concatenate([self.counts, np.zeros(needed - self.counts.size, np.int64)])
        index = np.abs(values, dtype=np.float32).ravel()
        index *= np.float32(1.0 / self.width)
        idx = index.astype(np.int64)
        np.minimum(idx, self.counts.size - 1, out=idx)
        self.counts += np.bincount(idx, minlength=self.counts.size)

    def _merge_pairs(self) -> None:
        if self.counts.size % 2:
            self.counts = np.append(self.counts, 0)
        self.counts = self.counts.reshape(-1, 2).sum(axis=1)
        self.width *= 2.0

    def resampled(self, bins: int = DEFAULT_BINS):
        """(counts, width) with at most about ``bins`` bins covering [0, max |x|]."""
        counts = self.counts
        width = self.width
        if counts.size > bins:
            factor = int(np.ceil(counts.size / bins))
            pad = (-counts.size) % factor
            counts = np.concatenate([counts, np.zeros(pad, np.int64)]).reshape(-1, factor).sum(axis=1)
            width *= factor
        # drop trailing empty bins so the histogram ends at max |x|
        nonzero = np.flatnonzero(counts)
        if nonzero.size:
            counts = counts[: nonzero[-1] + 1]
        return counts, width

    def to_arrays(self, prefix: str) -> Dict[str, np.ndarray]:
        return {
            f"{prefix}/stats": np.array([self.minimum, self.maximum, self.width, self.bins, self.max_bins], np.float64),
            f"{prefix}/counts": self.counts,
        }

    @classmethod
    def from_arrays(cls, stats: np.ndarray, counts: np.ndarray) -> "TensorHistogram":
        minimum, maximum, width, bins, max_bins = (float(v) for v in stats)
        return cls(bins=int(bins), max_bins=int(max_bins), minimum=minimum, maximum=maximum,
                   width=width, counts=np.asarray(counts, np.int64))
