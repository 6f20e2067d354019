"""Network output -> class mask (and confidence) at the original frame's size.

The graph gives either scores (N, C, h, w) or, when the argmax is fused, a mask (N, h, w)
or (N, 1, h, w). Decoding crops away the letterbox padding the preprocessor added, takes
the argmax when the graph did not, and resizes to the frame: nearest on the mask
(``filter_mode="point"``, cheap), or bilinear on the scores before the argmax
(``filter_mode="linear"``, smooth edges instead of the blocky upscaled masks jetson-inference
users complain about; it needs scores, so a fused-argmax model cannot do it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import cv2
import numpy as np

from fcn_edge.artifacts import ModelMeta
from fcn_edge.errors import MetaError, RuntimeInputError, UsageError
from fcn_edge.runtime.preprocess import Placement

FILTER_MODES = ("point", "linear")
# Pixel-centre nearest neighbour; plain INTER_NEAREST shifts masks by half an input pixel.
_NEAREST = getattr(cv2, "INTER_NEAREST_EXACT", cv2.INTER_NEAREST)


@dataclass(frozen=True)
class DecodeConfig:
    """How scores become a mask: ``filter_mode`` point|linear, and whether to give confidence."""

    filter_mode: str = "point"
    confidence: bool = False

    def __post_init__(self) -> None:
        if self.filter_mode not in FILTER_MODES:
            raise UsageError(f"filter_mode {self.filter_mode!r} is not one of {', '.join(FILTER_MODES)}")


def mask_dtype(num_classes: int) -> np.dtype:
    return np.dtype(np.uint8) if num_classes <= 256 else np.dtype(np.int32)


def argmax_channels(scores: np.ndarray, out: np.ndarray, best: np.ndarray, hit: np.ndarray) -> np.ndarray:
    """Argmax over axis 0 of (C, H, W) into ``out``; first maximum wins, as np.argmax.

    A running maximum over channel planes touches memory contiguously and ran about 1.6x
    faster than ``np.argmax(scores, axis=0)`` on (21, 256, 320) float32 here.
    """
    np.copyto(best, scores[0])
    out.fill(0)
    for c in range(1, scores.shape[0]):
        np.greater(scores[c], best, out=hit)
        np.maximum(best, scores[c], out=best)
        np.copyto(out, c, where=hit, casting="unsafe")
    return out


def softmax_max(scores: np.ndarray, best: np.ndarray, acc: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    """Probability of the winning class, 1 / sum_c exp(s_c - max), into ``acc``."""
    np.copyto(best, scores[0])
    for c in range(1, scores.shape[0]):
        np.maximum(best, scores[c], out=best)
    acc.fill(0.0)
    for c in range(scores.shape[0]):
        np.subtract(scores[c], best, out=tmp)
        np.exp(tmp, out=tmp)
        acc += tmp
    np.reciprocal(acc, out=acc)
    return acc


def crop_box(place: Placement, input_size: Tuple[int, int], output_size: Tuple[int, int]) -> Tuple[slice, slice]:
    """The rows/columns of the output that hold the frame (outputs may be strided)."""
    sy = output_size[0] / input_size[0]
    sx = output_size[1] / input_size[1]
    top = int(round(place.top * sy))
    left = int(round(place.left * sx))
    bottom = max(top + 1, int(round((place.top + place.height) * sy)))
    right = max(left + 1, int(round((place.left + place.width) * sx)))
    return slice(top, bottom), slice(left, right)


class Decoder:
    """Turns one frame's slice of the network output into its mask at frame size.

    Scratch planes at network resolution are kept between calls; only the returned mask
    (and confidence) are new arrays, since callers keep them.
    """

    def __init__(self, meta: ModelMeta, input_size: Tuple[int, int], config: DecodeConfig = DecodeConfig()):
        if meta.fused_argmax and config.filter_mode == "linear":
            raise MetaError(
                f"model '{meta.architecture}' outputs a class mask (argmax fused into the graph), "
                "so filter_mode='linear' has no scores to interpolate: use filter_mode='point', "
                "or export the model without the fused argmax"
            )
        if meta.fused_argmax and config.confidence:
            raise MetaError(
                f"model '{meta.architecture}' outputs a class mask (argmax fused into the graph), "
                "so it has no scores to give confidence from: export it without the fused argmax"
            )
        self.meta = meta
        self.config = config
        self.input_size = tuple(input_size)
        self.dtype = mask_dtype(meta.num_classes)
        self._scratch: dict = {}

    def _planes(self, shape: Tuple[int, int]):
        planes = self._scratch.get(shape)
        if planes is None:
            planes = (
                np.empty(shape, np.float32),  # running max
                np.empty(shape, bool),  # hit
                np.empty(shape, self.dtype),  # argmax
                np.empty(shape, np.float32),  # softmax accumulator
                np.empty(shape, np.float32),  # exp temp
            )
            self._scratch[shape] = planes
        return planes

    def __call__(self, output: np.ndarray, place: Placement) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """``output`` is one frame's (C, h, w) scores or (h, w) / (1, h, w) mask."""
        if self.meta.fused_argmax:
            return self._decode_mask(output, place), None
        if output.ndim != 3:
            raise RuntimeInputError(
                f"model output for one frame has shape {output.shape}; expected scores (C, H, W)"
            )
        if output.shape[0] != self.meta.num_classes:
            raise RuntimeInputError(
                f"model output has {output.shape[0]} channels but ModelMeta lists "
                f"{self.meta.num_classes} classes"
            )
        rows, cols = crop_box(place, self.input_size, output.shape[1:])
        scores = output[:, rows, cols]
        if scores.dtype != np.float32:
            scores = scores.astype(np.float32)
        frame_hw = place.frame_size
        if self.config.filter_mode == "linear" and scores.shape[1:] != frame_hw:
            scores = self._resize_scores(scores, frame_hw)
        best, hit, idx, acc, tmp = self._planes(scores.shape[1:])
        mask = argmax_channels(scores, idx, best, hit)
        confidence = softmax_max(scores, best, acc, tmp) if self.config.confidence else None
        if mask.shape != frame_hw:
            mask = cv2.resize(mask, (frame_hw[1], frame_hw[0]), interpolation=_NEAREST)
            if confidence is not None:
                confidence = cv2.resize(confidence, (frame_hw[1], frame_hw[0]), interpolation=cv2.INTER_LINEAR)
        else:
            mask = mask.copy()
            if confidence is not None:
                confidence = confidence.copy()
        return mask, confidence

    def _decode_mask(self, output: np.ndarray, place: Placement) -> np.ndarray:
        if output.ndim == 3 and output.shape[0] == 1:
            output = output[0]
        if output.ndim != 2:
            raise RuntimeInputError(
                f"model output for one frame has shape {output.shape}; a fused-argmax model "
                "should give a (H, W) or (1, H, W) mask"
            )
        rows, cols = crop_box(place, self.input_size, output.shape)
        mask = output[rows, cols]
        if mask.dtype != self.dtype:
            mask = mask.astype(self.dtype)
        frame_hw = place.frame_size
        if mask.shape != frame_hw:
            return cv2.resize(np.ascontiguousarray(mask), (frame_hw[1], frame_hw[0]), interpolation=_NEAREST)
        return np.array(mask, copy=True)

    @staticmethod
    def _resize_scores(scores: np.ndarray, frame_hw: Tuple[int, int]) -> np.ndarray:
        h, w = frame_hw
        out = np.empty((scores.shape[0], h, w), np.float32)
        for c in range(scores.shape[0]):
            out[c] = cv2.resize(scores[c], (w, h), interpolation=cv2.INTER_LINEAR)
        return out
