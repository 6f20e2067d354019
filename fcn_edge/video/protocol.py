"""The small surface of a segmenter that the video pipeline relies on.

fcn_edge.runtime.Segmenter satisfies it; so can any object with the same three members,
which is how the pipeline's threading, drop policy and finalisation are tested without
a particular model.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Protocol

import numpy as np

from fcn_edge.artifacts import ModelMeta


class SegmentationLike(Protocol):
    mask: np.ndarray  # (H, W) class indices at the frame's size
    confidence: Optional[np.ndarray]  # (H, W) float32 probability of the chosen class, or None
    timings: Any  # StageTimings (an ``as_dict()`` of *_ms floats) or a mapping of seconds


class SegmenterLike(Protocol):
    meta: ModelMeta

    def segment(self, frame: np.ndarray) -> SegmentationLike: ...

    def close(self) -> None: ...


def stage_times_ms(result: SegmentationLike) -> Dict[str, float]:
    """``{"preprocess": ms, "h2d": ms, "compute": ms, "d2h": ms, "decode": ms}`` from a result.

    Accepts the runtime's StageTimings (fields in ms) or a plain mapping of seconds, as the
    protocol allows; derived totals are left to the caller.
    """
    timings = getattr(result, "timings", None)
    if timings is None:
        return {}
    if hasattr(timings, "as_dict"):
        raw = timings.as_dict()
        out = {k[: -len("_ms")]: float(v) for k, v in raw.items() if k.endswith("_ms")}
        out.pop("total", None)
        out.pop("infer", None)
        return out
    return {str(k): float(v) * 1e3 for k, v in dict(timings).items()}
