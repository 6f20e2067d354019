"""What one segmented frame gives back: the mask, optional confidence, and stage timings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple, Union

import numpy as np

from fcn_edge.artifacts import ModelMeta
from fcn_edge.runtime.render import DEFAULT_ALPHA, RenderConfig, Renderer, class_index, class_shares


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

    def class_shares(self, ignore_class: Union[int, str, None] = None) -> Dict[str, float]:
        """Fraction of the frame's pixels given to each class; ``ignore_class`` (a class name
        or index) is left out of the total."""
        ignore = class_index(ignore_class, self.meta.class_names)
        shares = class_shares(self.mask, self.meta.num_classes, ignore)
        return {name: float(share) for name, share in zip(self.meta.class_names, shares)}

    def overlay(self, frame: np.ndarray, alpha: float = DEFAULT_ALPHA, ignore_class: Union[int, str, None] = None,
                legend: bool = False) -> np.ndarray:
        """``frame`` (the BGR frame this result came from) with the mask blended over it.

        ``alpha`` 0 (frame only) to 255 (mask only), ``ignore_class`` a class name or index
        left uncoloured, ``legend`` a panel naming the classes in the frame: the CLI's
        ``--alpha``, ``--ignore-class`` and ``--legend``. For video, keep a
        :class:`~fcn_edge.runtime.render.Renderer` instead of calling this per frame.
        """
        config = RenderConfig("overlay", alpha, ignore_class, legend)
        return Renderer(self.meta.palette, config, self.meta.class_names)(frame, self.mask)
