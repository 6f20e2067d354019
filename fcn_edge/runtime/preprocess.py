"""Frame -> network input, as ModelMeta says; the one preprocessing path of the project.

The runtime, the INT8 calibration loader and the legacy TensorRT calibrator all feed
models through :class:`Preprocessor`, so a fused-preprocessing graph is always fed the
uint8 NHWC BGR pixels it was exported for, and an unfused one the normalised float NCHW
RGB tensor. A graph with a fused resize takes frames at their own size: the host's only
work is one copy into the batch buffer. Buffers are allocated once per batch shape and
reused on every call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from fcn_edge.artifacts import ModelMeta
from fcn_edge.errors import RuntimeInputError

LETTERBOX_FILL = 114  # grey padding, as most detection/segmentation letterboxes use


@dataclass(frozen=True)
class Placement:
    """Where a frame's pixels landed inside the network input, to undo it when decoding."""

    frame_size: Tuple[int, int]  # (height, width) of the original frame
    top: int
    left: int
    height: int  # the frame's content inside the network input
    width: int


def check_frame(frame: np.ndarray, source: str = "frame") -> None:
    """Raise :class:`RuntimeInputError` unless ``frame`` is an HxWx3 uint8 BGR image."""
    if not isinstance(frame, np.ndarray):
        raise RuntimeInputError(f"{source}: expected a numpy array, got {type(frame).__name__}")
    if frame.ndim == 2:
        raise RuntimeInputError(
            f"{source}: greyscale frame of shape {frame.shape}; the model takes BGR colour "
            "frames (H, W, 3): convert with cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)"
        )
    if frame.ndim != 3 or frame.shape[2] not in (3,):
        hint = ""
        if frame.ndim == 3 and frame.shape[2] == 4:
            hint = ": drop alpha with cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)"
        raise RuntimeInputError(f"{source}: expected shape (H, W, 3), got {frame.shape}{hint}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise RuntimeInputError(f"{source}: empty frame of shape {frame.shape}")
    if frame.dtype != np.uint8:
        raise RuntimeInputError(
            f"{source}: expected dtype uint8 (8-bit BGR as cv2.imread and VideoCapture give), "
            f"got {frame.dtype}"
        )


def placement_for(frame_size: Tuple[int, int], input_size: Tuple[int, int], mode: str) -> Placement:
    fh, fw = frame_size
    ih, iw = input_size
    if mode == "stretch":
        return Placement(frame_size, 0, 0, ih, iw)
    scale = min(ih / fh, iw / fw)
    h = max(1, min(ih, int(round(fh * scale))))
    w = max(1, min(iw, int(round(fw * scale))))
    return Placement(frame_size, (ih - h) // 2, (iw - w) // 2, h, w)


class Preprocessor:
    """Resize, and when the graph does not fuse it, normalise and transpose to NCHW.

    ``__call__`` returns a view of an internal buffer that the next call overwrites;
    copy it if you keep it (the calibration loader does).
    """

    def __init__(
        self,
        meta: ModelMeta,
        input_size: Optional[Tuple[int, int]] = None,
        allocator: Optional[Callable[[Tuple[int, ...], np.dtype], np.ndarray]] = None,
    ):
        """``allocator(shape, dtype)`` supplies the batch buffers; the TensorRT backend passes
        one that returns views of its pinned input memory, so frames are preprocessed straight
        into the buffer the host-to-device copy reads."""
        self.meta = meta
        self._allocate = allocator or (lambda shape, dtype: np.empty(shape, dtype))
        self.input_size = tuple(input_size or meta.input_size)
        self.fused = meta.fused_preprocess
        self.dtype = np.dtype(meta.input_dtype)
        mean = np.asarray(meta.mean, np.float32)
        std = np.asarray(meta.std, np.float32)
        # x_norm = (x / 255 - mean) / std = x * scale + offset, per RGB channel
        self._scale = (1.0 / (255.0 * std)).astype(np.float32)
        self._offset = (-mean / std).astype(np.float32)
        self._batches: Dict[Tuple[int, Tuple[int, int]], np.ndarray] = {}
        h, w = self.input_size
        self._resized = np.empty((h, w, 3), np.uint8)
        self._plane = np.empty((h, w), np.float32)

    def buffer(self, batch: int, size: Optional[Tuple[int, int]] = None) -> np.ndarray:
        """The reusable input array for ``batch`` frames of ``size`` (a fused resize's frame
        size; else the network's input size), allocated on first use."""
        size = tuple(size or self.input_size)
        buf = self._batches.get((batch, size))
        if buf is None:
            buf = self._allocate(self.meta.input_shape(batch, size), self.dtype)
            if self.fused and self.meta.resize_mode == "letterbox":
                buf.fill(LETTERBOX_FILL)
            self._batches[(batch, size)] = buf
        return buf

    def frame_size(self, frame_hw: Tuple[int, int]) -> Tuple[int, int]:
        """The size a fused-resize graph is fed a frame at: its own, moved into the
        ModelMeta's frame range where it lies outside."""
        (lo_h, lo_w), _, (hi_h, hi_w) = self.meta.input_range
        return min(max(frame_hw[0], lo_h), hi_h), min(max(frame_hw[1], lo_w), hi_w)

    def release(self) -> None:
        """Drop the batch buffers (they may be views of a backend's pinned memory)."""
        self._batches.clear()

    def __call__(self, frames: Sequence[np.ndarray]) -> Tuple[np.ndarray, List[Placement]]:
        if len(frames) == 0:
            raise RuntimeInputError("no frames to preprocess")
        if self.meta.fused_resize:
            return self._copy_frames(frames)
        out = self.buffer(len(frames))
        placements = []
        for i, frame in enumerate(frames):
            check_frame(frame, f"frame {i}")
            placements.append(self._fill(out, i, frame))
        return out, placements

    def _copy_frames(self, frames: Sequence[np.ndarray]) -> Tuple[np.ndarray, List[Placement]]:
        """A fused resize: frames copied as they are; a batch takes its first frame's size
        (in range), and a frame of another size is resized to it on the host."""
        check_frame(frames[0], "frame 0")
        size = self.frame_size(frames[0].shape[:2])
        out = self.buffer(len(frames), size)
        placements = []
        for i, frame in enumerate(frames):
            check_frame(frame, f"frame {i}")
            target = out[i]
            if frame.shape[:2] == size:
                target[...] = frame
            else:
                resized = cv2.resize(frame, (size[1], size[0]), dst=target, interpolation=cv2.INTER_LINEAR)
                if resized is not target:
                    target[...] = resized
            placements.append(placement_for(frame.shape[:2], self.input_size, "stretch"))
        return out, placements

    def _fill(self, out: np.ndarray, index: int, frame: np.ndarray) -> Placement:
        place = placement_for(frame.shape[:2], self.input_size, self.meta.resize_mode)
        # A fused graph takes the resized uint8 pixels as they are: resize straight into the
        # batch buffer. Otherwise resize into scratch, then normalise into the float planes.
        canvas = out[index] if self.fused else self._resized
        if self.meta.resize_mode == "letterbox":
            canvas.fill(LETTERBOX_FILL)
        target = canvas[place.top : place.top + place.height, place.left : place.left + place.width]
        if frame.shape[:2] == (place.height, place.width):
            target[...] = frame
        else:
            # INTER_LINEAR matches what training and evaluation use; AREA would alias less
            # on big downscales but costs 2-3x on a Jetson's CPU.
            resized = cv2.resize(frame, (place.width, place.height), dst=target, interpolation=cv2.INTER_LINEAR)
            if resized is not target:  # OpenCV could not write into the view (strided rows)
                target[...] = resized
        if self.fused:
            return place
        rgb_planes = out[index]  # (3, H, W)
        for c_rgb, c_bgr in ((0, 2), (1, 1), (2, 0)):
            np.multiply(self._resized[:, :, c_bgr], self._scale[c_rgb], out=self._plane)
            self._plane += self._offset[c_rgb]
            rgb_planes[c_rgb] = self._plane
        return place
