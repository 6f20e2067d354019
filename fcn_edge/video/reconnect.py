"""Reconnect a lost camera or network stream with exponential backoff.

A live source that stops delivering frames (a cut RTSP connection, an unplugged USB
camera) is closed and reopened, waiting 0.5 s, 1 s, 2 s ... up to ``max_delay_s``
between tries, until it comes back or ``give_up_after_s`` has passed since it was lost.
Waits are cut short by the pipeline's stop event, so Ctrl-C never waits out a backoff.
Only counters and the last error (with its time, for ``run --status``) are kept, never a
log of every event, so a camera that drops out every minute for weeks costs no memory.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Iterator, Optional

import numpy as np

from fcn_edge.errors import VideoError
from fcn_edge.video.sources import FrameSource

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReconnectPolicy:
    initial_delay_s: float = 0.5
    factor: float = 2.0
    max_delay_s: float = 8.0
    give_up_after_s: Optional[float] = 60.0  # None: keep trying until stopped

    def delays(self) -> Iterator[float]:
        delay = self.initial_delay_s
        while True:
            yield delay
            delay = min(self.max_delay_s, delay * self.factor)


class ReconnectingSource:
    """Wraps a live source; ``read()`` returns None only when stopped or given up."""

    def __init__(self, inner: FrameSource, policy: ReconnectPolicy, stop: Optional[threading.Event] = None):
        self.inner = inner
        self.uri = inner.uri
        self.is_live = inner.is_live
        self.policy = policy
        self.stop = stop or threading.Event()
        self.reconnects = 0
        self.lost_events = 0
        self.error: Optional[str] = None  # set when it gave up: the run ends with it
        self.last_error: Optional[str] = None
        self.last_error_at: Optional[float] = None  # time.time()

    def _note(self, message: str) -> None:
        self.last_error, self.last_error_at = message, time.time()

    @property
    def fps(self) -> Optional[float]:
        return self.inner.fps

    def open(self) -> None:
        self.inner.open()

    def close(self) -> None:
        self.inner.close()

    def read(self) -> Optional[np.ndarray]:
        frame = self.inner.read()
        if frame is not None or self.stop.is_set():
            return frame
        self.lost_events += 1
        self._note(f"lost {self.uri!r}; reconnecting")
        log.warning("lost %s; reconnecting", self.uri)
        if self._reconnect():
            return self.inner.read()
        return None

    def _reconnect(self) -> bool:
        lost_at = time.monotonic()
        self.inner.close()
        attempt = 0
        for delay in self.policy.delays():
            limit = self.policy.give_up_after_s
            if limit is not None and time.monotonic() - lost_at + delay > limit:
                self.error = (
                    f"lost {self.uri!r} and could not reconnect within {limit:g} s "
                    f"({attempt} attempts); the output so far was kept"
                )
                self._note(self.error)
                log.error(self.error)
                return False
            if self.stop.wait(delay):
                return False
            attempt += 1
            try:
                self.inner.open()
            except VideoError as exc:
                self._note(f"reconnect attempt {attempt} to {self.uri!r} failed: {exc}")
                log.info("reconnect attempt %d to %s failed: %s", attempt, self.uri, exc)
                continue
            self.reconnects += 1
            log.warning("reconnected to %s after %.1f s (%d attempts)", self.uri, time.monotonic() - lost_at, attempt)
            return True
        return False  # unreachable: delays() is endless
