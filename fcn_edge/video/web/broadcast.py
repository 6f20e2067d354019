"""One stream's newest picture, encoded to JPEG once for every viewer.

The render stage hands each drawn frame to :meth:`FrameSlot.publish`, which only keeps a
reference (no copy, no encoding: the render stage never waits for a viewer). A thread of
the slot's own encodes the newest picture when, and only when, someone is watching; while
it encodes, newer pictures replace each other, so a slow encoder skips frames instead of
queueing them. Each viewer then waits for a JPEG newer than the one it sent last and sends
that one: a viewer whose connection is slow skips the frames it had no time for, alone,
and one that reads nothing blocks only its own connection's thread.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Deque, Dict, Iterator, List, Optional

from fcn_edge.optional import require
from fcn_edge.video.live import FrameEvent

log = logging.getLogger(__name__)

_WINDOW = 30  # frames in the rolling means


@dataclass(frozen=True)
class EncodedFrame:
    """A JPEG of one picture. ``number`` counts the slot's encodes (1, 2, ...), so a gap
    between two a viewer sent is what it skipped; ``index`` is the pipeline's frame index."""

    number: int
    index: int
    t_capture: float
    jpeg: bytes
    width: int
    height: int


@dataclass
class ViewerRecord:
    """One connected viewer, for the statistics: what it was sent and what it skipped."""

    id: int
    kind: str  # "mjpeg" (a stream) or "frame" (one-off requests)
    peer: str
    joined_at: int  # the slot's encode number when it connected
    first_picture: int  # the newest picture when it connected: it is never sent an older one
    frames_sent: int = 0
    skipped: int = 0  # encodes that came out while it was still sending an older one
    last_number: int = 0
    t_joined: float = field(default_factory=time.time)


class FrameSlot:
    """The newest picture of one stream and its JPEG; see the module's docstring."""

    def __init__(self, name: str, jpeg_quality: int = 80):
        self.name = name
        self.jpeg_quality = jpeg_quality
        self._cond = threading.Condition()
        self._event: Optional[FrameEvent] = None
        self._published = 0  # pictures handed in so far
        self._encoded_of = 0  # the value of _published the newest JPEG was made from
        self._jpeg: Optional[EncodedFrame] = None
        self._jpeg_of = 0  # the value of _published the current JPEG was made from
        self._viewers: Dict[int, ViewerRecord] = {}
        self._ids = itertools.count(1)
        self._closed = False
        self._encode_ms: Deque[float] = collections.deque(maxlen=_WINDOW)
        self._jpeg_bytes: Deque[int] = collections.deque(maxlen=_WINDOW)
        self.frames_encoded = 0
        self.encode_skipped = 0  # pictures replaced before the encoder got to them, while watched
        self._thread = threading.Thread(target=self._encode_loop, name=f"fcn-edge-jpeg-{name}", daemon=True)
        self._thread.start()

    # -- the render stage --------------------------------------------------------------------
    def publish(self, event: FrameEvent) -> None:
        with self._cond:
            self._event = event
            self._published += 1
            self._cond.notify_all()

    @property
    def latest(self) -> Optional[FrameEvent]:
        with self._cond:
            return self._event

    # -- viewers -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def watching(self, kind: str, peer: str) -> Iterator[ViewerRecord]:
        """Count a viewer while the block runs: the encoder works only while there is one."""
        with self._cond:
            record = ViewerRecord(next(self._ids), kind, peer, self.frames_encoded, self._published)
            self._viewers[record.id] = record
            self._cond.notify_all()
        try:
            yield record
        finally:
            with self._cond:
                self._viewers.pop(record.id, None)

    def next_frame(self, record: ViewerRecord, timeout: float, after: int = 0) -> Optional[EncodedFrame]:
        """The newest JPEG for ``record``'s viewer: newer than the last it was sent (and than
        ``after``), made from a picture no older than the newest when it connected (a viewer
        never starts with a stale frame). Waits up to ``timeout`` seconds; None on timeout or
        once the slot is closed."""
        deadline = time.monotonic() + timeout
        after = max(after, record.last_number)
        with self._cond:
            while not self._closed:
                jpeg = self._jpeg
                if jpeg is not None and jpeg.number > after and self._jpeg_of >= record.first_picture:
                    return jpeg
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
            return None

    @staticmethod
    def sent(record: ViewerRecord, frame: EncodedFrame) -> None:
        """Book ``frame`` as sent to ``record``'s viewer (called by that viewer's thread)."""
        if record.last_number:
            record.skipped += max(0, frame.number - record.last_number - 1)
        record.last_number = frame.number
        record.frames_sent += 1

    # -- the encoder thread ------------------------------------------------------------------
    def _encode_loop(self) -> None:
        cv2 = require("cv2", "encoding the page's JPEG stream")
        params = [cv2.IMWRITE_JPEG_QUALITY, int(self.jpeg_quality)]
        while True:
            with self._cond:
                while not self._closed and not (self._viewers and self._published != self._encoded_of):
                    self._cond.wait()
                if self._closed:
                    return
                event, published = self._event, self._published
                if self._encoded_of:
                    self.encode_skipped += max(0, published - self._encoded_of - 1)
            t0 = time.perf_counter()
            ok, data = cv2.imencode(".jpg", event.picture, params)  # releases the GIL
            ms = (time.perf_counter() - t0) * 1e3
            with self._cond:
                self._encoded_of = published
                if not ok:
                    log.error("stream %s: OpenCV could not encode frame %d as JPEG", self.name, event.index)
                    continue
                self.frames_encoded += 1
                height, width = event.picture.shape[:2]
                self._jpeg = EncodedFrame(self.frames_encoded, event.index, event.t_capture, data.tobytes(), width, height)
                self._jpeg_of = published
                self._encode_ms.append(ms)
                self._jpeg_bytes.append(len(self._jpeg.jpeg))
                self._cond.notify_all()

    # -- statistics and end ---------------------------------------------------------------------
    def stats(self) -> Dict[str, object]:
        with self._cond:
            viewers: List[Dict[str, object]] = [
                {"id": r.id, "kind": r.kind, "peer": r.peer, "frames_sent": r.frames_sent, "skipped": r.skipped,
                 # encodes since it joined that it has not been sent (skipped, or still queued behind a slow send)
                 "missed": max(0, self.frames_encoded - r.joined_at - r.frames_sent)}
                for r in self._viewers.values()
            ]
            return {
                "viewers": len(viewers),
                "viewer_list": viewers,
                "frames_published": self._published,
                "frames_encoded": self.frames_encoded,
                "encode_skipped": self.encode_skipped,
                "encode_ms": _mean(self._encode_ms),
                "jpeg_kb": None if not self._jpeg_bytes else _mean(self._jpeg_bytes) / 1024.0,
            }

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(5.0)


def _mean(values) -> Optional[float]:
    return float(sum(values) / len(values)) if values else None
