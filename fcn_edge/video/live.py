"""Live control of a running pipeline, and the frames it hands to viewers.

A viewer (the browser page of :mod:`fcn_edge.video.web`) changes how a running pipeline
draws and decodes, and pauses it, from its own threads. :class:`LiveControls` takes those
changes from any thread, checks them at once (a bad value fails in the caller's thread,
with the message it can show, not later in a stage) and hands them to the stage that owns
the object: the render stage swaps its Renderer, the inference stage calls
``Segmenter.set_decode``, both between frames, so no frame is drawn half with the old
settings and the segmenter stays single-threaded.

Pause holds the inference stage before it takes the next frame: a file's capture then
blocks on the full queue (nothing is skipped), a live source keeps being read and its
stale frames are dropped (on resume the newest frame is segmented, and reconnects keep
working while paused).

:class:`FrameEvent` is what the render stage hands its observers for every frame, after
drawing and before writing: the captured frame, its mask and the finished picture. The
arrays are the pipeline's own and are not modified after the event, so an observer may
keep references (no copy) but must not write into them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Optional, Sequence, Tuple

import numpy as np

from fcn_edge.artifacts import ModelMeta
from fcn_edge.errors import UsageError
from fcn_edge.runtime.decode import DecodeConfig, Decoder
from fcn_edge.runtime.render import RenderConfig, Renderer

_PAUSE_POLL_S = 0.1


@dataclass(frozen=True)
class FrameEvent:
    """One drawn frame. ``t_capture`` is the wall-clock time (``time.time()``) the frame
    left the source, so a viewer can tell how old what it shows is."""

    index: int
    t_capture: float
    frame: np.ndarray
    mask: np.ndarray
    picture: np.ndarray


class LiveControls:
    """Render and decode settings and pause of one pipeline, changed from any thread.

    ``decode`` None: the segmenter has no decode settings to change (a stand-in that is
    not fcn_edge.runtime's Segmenter); :meth:`set_decode` then refuses.
    """

    def __init__(self, meta: ModelMeta, input_size: Sequence[int], render: RenderConfig,
                 decode: Optional[DecodeConfig] = None):
        self.meta = meta
        self.input_size: Tuple[int, int] = (int(input_size[0]), int(input_size[1]))
        self._lock = threading.Lock()
        self._render = render
        self._decode = decode
        self._next_renderer: Optional[Renderer] = None
        self._next_decode: Optional[DecodeConfig] = None
        self._running = threading.Event()
        self._running.set()

    # -- state, as the viewers see it -------------------------------------------------------
    @property
    def render(self) -> RenderConfig:
        with self._lock:
            return self._render

    @property
    def decode(self) -> Optional[DecodeConfig]:
        with self._lock:
            return self._decode

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    # -- changes (any thread) --------------------------------------------------------------
    def new_renderer(self, config: RenderConfig) -> Renderer:
        """A Renderer for ``config`` in the stream's palette and class names."""
        return Renderer(self.meta.palette, config, self.meta.class_names, stream=True)

    def set_render(self, config: RenderConfig) -> None:
        """Draw later frames with ``config``; UsageError now if it does not fit the model
        (an ignore class it does not have)."""
        renderer = self.new_renderer(config)  # validates, off the render thread
        with self._lock:
            self._render = config
            self._next_renderer = renderer

    def set_decode(self, config: DecodeConfig) -> None:
        """Decode later frames with ``config``; MetaError now if the model cannot (linear
        filtering or confidence on a fused-argmax model), UsageError without a decoder."""
        if self._decode is None:
            raise UsageError("this pipeline's segmenter has no decode settings to change")
        Decoder(self.meta, self.input_size, config)  # the runtime's own checks, in the caller's thread
        with self._lock:
            self._decode = config
            self._next_decode = config

    def set_filter_mode(self, filter_mode: str) -> None:
        """The decode settings with another filter mode (confidence for smoothing is kept)."""
        self.set_decode(replace(self.decode or DecodeConfig(), filter_mode=filter_mode))

    def set_paused(self, paused: bool) -> None:
        if paused:
            self._running.clear()
        else:
            self._running.set()

    # -- the stages (their own thread) -----------------------------------------------------
    def take_renderer(self) -> Optional[Renderer]:
        """The render stage: the Renderer to use from this frame on, if it changed."""
        with self._lock:
            renderer, self._next_renderer = self._next_renderer, None
            return renderer

    def take_decode(self) -> Optional[DecodeConfig]:
        """The inference stage: the decode settings to use from this frame on, if they changed."""
        with self._lock:
            config, self._next_decode = self._next_decode, None
            return config

    def wait_while_paused(self, stop: threading.Event) -> None:
        """Block the calling stage while paused; a stop request ends the wait."""
        while not self._running.wait(_PAUSE_POLL_S):
            if stop.is_set():
                return
