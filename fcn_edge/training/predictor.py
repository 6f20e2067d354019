"""A small in-process PyTorch predictor with the runtime's frame-in, mask-out contract.

Training uses it for its validation score without exporting anything; preprocessing is the
runtime's own :class:`~fcn_edge.runtime.preprocess.Preprocessor`, so the score is what the
deployed model would get from the same frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from fcn_edge.artifacts import ModelMeta
from fcn_edge.runtime.preprocess import Preprocessor


@dataclass(frozen=True)
class MaskResult:
    mask: np.ndarray


class TorchPredictor:
    """``segment(frame_bgr)`` -> result with ``.mask`` (uint8, frame size), like Segmenter."""

    def __init__(self, model, meta: ModelMeta, device: str = "cpu"):
        self.model = model
        self.meta = meta
        self.device = device
        self.preprocess = Preprocessor(meta)

    def segment(self, frame: np.ndarray) -> MaskResult:
        import torch

        batch, placements = self.preprocess([frame])
        place = placements[0]
        with torch.inference_mode():
            logits = self.model(torch.from_numpy(batch).to(self.device))
            small = logits.argmax(1)[0].to(torch.uint8).cpu().numpy()
        small = small[place.top : place.top + place.height, place.left : place.left + place.width]
        h, w = place.frame_size
        return MaskResult(cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST))
