"""What evaluation needs from a model: the runtime's Segmenter satisfies it, and so does the
small PyTorch predictor training uses for its validation score."""

from __future__ import annotations

from typing import Any, Protocol, Tuple, runtime_checkable

import numpy as np


class HasMask(Protocol):
    mask: np.ndarray  # (H, W) class indices at the frame's size


@runtime_checkable
class FramePredictor(Protocol):
    """Anything with ``meta`` (ModelMeta) and ``segment(frame_bgr) -> result with .mask``."""

    meta: Any

    def segment(self, frame: np.ndarray) -> HasMask: ...


def class_names_of(predictor: FramePredictor) -> Tuple[str, ...]:
    return tuple(predictor.meta.class_names)
