"""Temporal smoothing of masks for video: an exponential moving average of class scores.

Per frame, ``S = (1 - a) * S + a * s`` over class scores ``s`` and the mask is the argmax
of ``S``, so a pixel changes class only when the new class has out-scored the old one for
a few frames; single-frame flicker at object borders disappears, at the cost of a lag of
about ``1/a`` frames on real motion. Off by default.

The runtime's results carry the class mask and, when asked, the winning class's
probability, not all scores. So ``s`` here is the one-hot mask weighted by that
confidence (or by 1 when the model fuses its argmax and has no confidence): an EMA of
confident votes. Where a result carries full ``scores`` (C, h, w) they are used instead.
The state lives at the network's input size, not the frame's, to keep its cost fixed.
"""

from __future__ import annotations

from typing import Optional, Tuple

import cv2
import numpy as np

from fcn_edge.errors import UsageError

_NEAREST = getattr(cv2, "INTER_NEAREST_EXACT", cv2.INTER_NEAREST)


class TemporalEMA:
    """Smooths a stream of masks; ``alpha`` is the new frame's weight (0 < alpha <= 1)."""

    def __init__(self, num_classes: int, alpha: float, work_size: Tuple[int, int]):
        if not 0.0 < alpha <= 1.0:
            raise UsageError(f"smoothing alpha {alpha} is the new frame's weight: it must be in (0, 1]")
        self.num_classes = num_classes
        self.alpha = alpha
        self.work_size = tuple(work_size)  # (height, width)
        self._state: Optional[np.ndarray] = None
        self._frame_size: Optional[Tuple[int, int]] = None
        h, w = self.work_size
        self._pixels = np.arange(h * w)
        self._dtype = np.uint8 if num_classes <= 256 else np.int32

    def _argmax(self) -> np.ndarray:
        """Argmax over classes plane by plane: contiguous passes, 2-3x np.argmax(axis=0)."""
        state = self._state
        best = state[0].copy()
        out = np.zeros(best.shape, self._dtype)
        hit = np.empty(best.shape, bool)
        for c in range(1, state.shape[0]):
            np.greater(state[c], best, out=hit)
            np.maximum(best, state[c], out=best)
            np.copyto(out, c, where=hit, casting="unsafe")
        return out

    def reset(self) -> None:
        """Forget the past (a scene cut, a reconnect)."""
        self._state = None

    def _to_work(self, plane: np.ndarray, interpolation: int) -> np.ndarray:
        h, w = self.work_size
        if plane.shape[:2] == (h, w):
            return plane
        return cv2.resize(plane, (w, h), interpolation=interpolation)

    def __call__(self, mask: np.ndarray, confidence: Optional[np.ndarray] = None, scores: Optional[np.ndarray] = None) -> np.ndarray:
        """The smoothed mask at ``mask``'s size."""
        frame_size = mask.shape[:2]
        if frame_size != self._frame_size:
            self._frame_size = frame_size
            self.reset()
        a = self.alpha
        h, w = self.work_size
        if scores is not None:
            update = np.stack([self._to_work(np.ascontiguousarray(s, np.float32), cv2.INTER_LINEAR) for s in scores])
            update = update.reshape(self.num_classes, h * w)
            if self._state is None:
                self._state = update.copy()
            else:
                self._state *= 1.0 - a
                self._state += a * update
        else:
            small = self._to_work(mask, _NEAREST).reshape(-1).astype(np.intp, copy=False)
            if confidence is not None:
                weight = self._to_work(confidence.astype(np.float32, copy=False), cv2.INTER_LINEAR).reshape(-1)
            else:
                weight = 1.0
            if self._state is None:
                self._state = np.zeros((self.num_classes, h * w), np.float32)
                self._state[small, self._pixels] = weight
            else:
                self._state *= 1.0 - a
                flat = self._state.reshape(-1)  # one scatter-add into (class, pixel) cells
                flat[small * (h * w) + self._pixels] += a * weight
        smoothed = self._argmax().reshape(h, w)
        if (h, w) != frame_size:
            smoothed = cv2.resize(smoothed, (frame_size[1], frame_size[0]), interpolation=_NEAREST)
        return smoothed
