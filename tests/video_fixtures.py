"""Helpers for the video tests: a generated clip, and fakes of a segmenter, a source and a sink.

The fakes stand in for a model only, to test the pipeline's own control flow (threading,
drop policy, finalisation) with chosen speeds; tests of real models take them from
tests/tiny_models.py and run the real runtime.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from fcn_edge.artifacts import ModelMeta, meta_for_classes

INPUT_SIZE = (32, 40)  # the fake segmenter's nominal network size


def write_clip(path: Path, frames: int = 24, size: Tuple[int, int] = (64, 80), fps: float = 24.0, fourcc: str = "MJPG") -> Path:
    """A moving bright square on a dark gradient; frame i carries i in its first pixel row."""
    h, w = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened(), f"cannot write {path}"
    for i in range(frames):
        writer.write(clip_frame(i, size))
    writer.release()
    return path


def clip_frame(i: int, size: Tuple[int, int] = (64, 80)) -> np.ndarray:
    h, w = size
    frame = np.zeros((h, w, 3), np.uint8)
    frame[:] = np.linspace(20, 80, w, dtype=np.uint8)[None, :, None]
    x = (i * 3) % max(1, w - 16)
    frame[h // 4 : h // 4 + 16, x : x + 16] = (40, 200, 230)
    return frame


@dataclass(frozen=True)
class FakeTimings:
    compute_ms: float

    def as_dict(self) -> Dict[str, float]:
        return {"preprocess_ms": 0.0, "h2d_ms": 0.0, "compute_ms": self.compute_ms, "d2h_ms": 0.0, "decode_ms": 0.0}


@dataclass(frozen=True)
class FakeResult:
    mask: np.ndarray
    confidence: Optional[np.ndarray]
    timings: FakeTimings


@dataclass
class FakeSegmenter:
    """Thresholds brightness into 3 classes after sleeping ``delay_s``: a model of chosen speed."""

    delay_s: float = 0.0
    fail_at: Optional[int] = None
    meta: ModelMeta = field(default_factory=lambda: meta_for_classes("fake", ["dark", "mid", "bright"], input_size=INPUT_SIZE))
    calls: int = 0
    threads: set = field(default_factory=set)

    def segment(self, frame: np.ndarray) -> FakeResult:
        self.threads.add(threading.get_ident())
        if self.fail_at is not None and self.calls == self.fail_at:
            raise RuntimeError(f"fake failure at frame {self.calls}")
        self.calls += 1
        t0 = time.perf_counter()
        if self.delay_s:
            time.sleep(self.delay_s)
        grey = frame.mean(axis=2)
        mask = np.digitize(grey, (85, 170)).astype(np.uint8)
        return FakeResult(mask, None, FakeTimings((time.perf_counter() - t0) * 1e3))

    def close(self) -> None:
        pass


class ListSource:
    """Frames from a list; ``live`` sources pace themselves at ``fps`` like a camera."""

    def __init__(self, frames: List[np.ndarray], live: bool = False, fps: float = 0.0):
        self.frames = frames
        self.uri = "list://"
        self.is_live = live
        self._fps = fps
        self._next = 0
        self.closed = False

    @property
    def fps(self):
        return self._fps or None

    def open(self) -> None:
        self._next = 0

    def read(self):
        if self._next >= len(self.frames):
            return None
        if self.is_live and self._fps:
            time.sleep(1.0 / self._fps)
        frame = self.frames[self._next]
        self._next += 1
        return frame

    def close(self) -> None:
        self.closed = True


class SlowSink:
    """Takes ``delay_s`` per frame and remembers each frame's marker pixel."""

    def __init__(self, delay_s: float = 0.0):
        self.delay_s = delay_s
        self.uri = "slow://"
        self.frames_written = 0
        self.closed = False
        self.shapes: List[tuple] = []

    @property
    def path(self):
        return None

    def write(self, frame: np.ndarray) -> None:
        if self.delay_s:
            time.sleep(self.delay_s)
        self.shapes.append(frame.shape)
        self.frames_written += 1

    def close(self) -> None:
        self.closed = True


def read_all(path: Path) -> List[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames
