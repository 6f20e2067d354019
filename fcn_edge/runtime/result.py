"""What one segmented frame gives back: the mask, optional confidence, and stage timings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np

from fcn_edge.artifacts import ModelMeta


@dataclass(frozen=True)
class InferTimings:
    """Milliseconds a backend spent moving data in, computing, and moving data out.

    Host-only backends (ONNX Runtime on CPU, PyTorch on CPU) report 0 for the copies.
    """

    h2d_ms: float = 0.0
    compute_ms: float = 0.0
    d2h_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        return self.h2d_ms + self.compute_ms + self.d2h_ms


@dataclass(frozen=True)
class StageTimings:
    """Per-stage milliseconds of one ``segment`` call (batch stages are shared by its frames)."""

    preprocess_ms: float
    h2d_ms: float
    compute_ms: float
    d2h_ms: float
    decode_ms: float

    @property
    def infer_ms(self) -> float:
        """Host-to-device copy, engine execution and device-to-host copy together."""
        return self.h2d_ms + self.compute_ms + self.d2h_ms

    @property
    def host_ms(self) -> float:
        """Work the runtime adds around inference: preprocessing and decoding."""
        return self.preprocess_ms + self.decode_ms

    @property
    def total_ms(self) -> float:
        return self.preprocess_ms + self.infer_ms + self.decode_ms

    def as_dict(self) -> Dict[str, float]:
        return {
            "preprocess_ms": self.preprocess_ms,
            "h2d_ms": self.h2d_ms,
            "compute_ms": self.compute_ms,
            "d2h_ms": self.d2h_ms,
            "decode_ms": self.decode_ms,
            "infer_ms": self.infer_ms,
            "total_ms": self.total_ms,
        }


@dataclass(frozen=True)
class SegmentationResult:
    """The class mask of one frame at the frame's own size.

    ``mask`` is (H, W) uint8 (int32 for models with more than 256 classes) holding class
    indices; ``confidence`` is (H, W) float32 softmax probability of the chosen class, or
    None when it was not asked for. ``timings`` are the stages of the call that produced it.
    """

    mask: np.ndarray
    confidence: Optional[np.ndarray]
    timings: StageTimings
    meta: ModelMeta

    @property
    def frame_size(self) -> Tuple[int, int]:
        return tuple(self.mask.shape[:2])  # type: ignore[return-value]

    @property
    def class_names(self) -> Tuple[str, ...]:
        return self.meta.class_names

    def class_shares(self, ignore_class: Optional[int] = None) -> Dict[str, float]:
        """Fraction of the frame's pixels given to each class (ignored pixels left out)."""
        from fcn_edge.runtime.render import class_shares

        shares = class_shares(self.mask, self.meta.num_classes, ignore_class)
        return {name: float(share) for name, share in zip(self.meta.class_names, shares)}
