"""Play a file or an image folder again from the start: ``fcn-edge run clip.mp4 --input-loop -1``,
as jetson-inference's ``--input-loop``, so a recorded clip stands in for a camera (a demo
on the page, a soak test) for as long as needed."""

from __future__ import annotations

import logging
from typing import Optional

import numpy as np

from fcn_edge.errors import UsageError
from fcn_edge.video.sources import FrameSource

log = logging.getLogger(__name__)


class LoopingSource:
    """Wraps an opened, non-live source; at its end it is reopened, ``loops`` more times
    (-1: until the run is stopped). A source that gives nothing after reopening ends the run
    instead of spinning."""

    def __init__(self, inner: FrameSource, loops: int):
        if getattr(inner, "is_live", False):
            raise UsageError(f"--input-loop applies to files and image folders, not the live source {inner.uri!r}")
        if loops < -1:
            raise UsageError(f"--input-loop {loops}: give a count of extra plays, or -1 for forever")
        self.inner = inner
        self.uri = inner.uri
        self.is_live = False
        self.loops = loops
        self.plays = 1

    def __getattr__(self, name: str):
        return getattr(self.inner, name)  # fps, open, close, frame_count: the inner source's

    def read(self) -> Optional[np.ndarray]:
        frame = self.inner.read()
        if frame is not None or self.loops == 0 or (self.loops > 0 and self.plays > self.loops):
            return frame
        self.inner.close()
        self.inner.open()
        self.plays += 1
        log.debug("%s: play %d", self.uri, self.plays)
        return self.inner.read()
