"""The video loop: capture -> inference -> render/write, overlapped in threads.

::

    capture thread ──FrameQueue──▶ inference thread ──FrameQueue──▶ render/write (caller's thread)

Each stage works on a different frame at the same time, so throughput is set by the slowest
stage (inference, on any real model) instead of by the sum of all of them. The render/write
stage runs on the calling thread because GUI toolkits want windows driven from the main
thread. Queues are bounded: for files the capture thread blocks and every frame is
processed; for live sources it replaces the oldest waiting frame (counted as dropped), so
what is segmented is always recent and latency cannot grow. Stopping (Ctrl-C, SIGTERM, q in
the window, --max-frames, end of input) drains what is in flight and always finalises the
sink; a second stop request discards what is queued and finalises at once.

A viewer (the browser page) changes the render and decode settings and pauses the run
through ``pipeline.controls`` (:mod:`fcn_edge.video.live`), and sees every drawn frame
through :meth:`VideoPipeline.add_observer`.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional

import numpy as np

from fcn_edge.errors import UsageError
from fcn_edge.runtime.render import RenderConfig, Renderer
from fcn_edge.video.frame_queue import FrameQueue, QueueClosed
from fcn_edge.video.hud import draw_hud, hud_lines
from fcn_edge.video.live import FrameEvent, LiveControls
from fcn_edge.video.protocol import SegmenterLike, stage_times_ms
from fcn_edge.video.sinks import FrameSink
from fcn_edge.video.smoothing import TemporalEMA
from fcn_edge.video.sources import FrameSource
from fcn_edge.video.stats import RateMeter, RunSummary, StageRecorder

log = logging.getLogger(__name__)

_POLL_S = 0.1  # how often blocked stages look at the stop flags
_JOIN_S = 10.0

# The inference thread gets the GIL back after every ONNX Runtime / TensorRT call; with
# CPython's default 5 ms switch interval it waited for the render and capture threads,
# and on 2 cores the pipelined loop reached 0.88 x 1/latency. At 0.5 ms it reached 0.95
# (tools/bench_video.py, default model, ORT 1 thread). Restored when the run ends.
GIL_SWITCH_INTERVAL_S = 0.0005


@dataclass(frozen=True)
class PipelineConfig:
    """``drop_frames`` None: drop stale frames for live sources only. ``max_frames`` counts
    frames read from the source. ``smoothing_alpha`` None: no temporal smoothing."""

    render: RenderConfig = field(default_factory=RenderConfig)
    show_stats: bool = True
    max_frames: Optional[int] = None
    drop_frames: Optional[bool] = None
    file_queue_size: int = 4
    live_queue_size: int = 1
    result_queue_size: int = 2
    smoothing_alpha: Optional[float] = None

    def __post_init__(self) -> None:
        if self.max_frames is not None and self.max_frames < 1:
            raise UsageError(f"max_frames {self.max_frames} must be >= 1")
        for name in ("file_queue_size", "live_queue_size", "result_queue_size"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name} {getattr(self, name)} must be >= 1")


@dataclass
class _Captured:
    index: int
    frame: np.ndarray
    t_read: float  # perf_counter when the frame left the source


@dataclass
class _Inferred:
    captured: _Captured
    mask: np.ndarray


class VideoPipeline:
    """Runs ``segmenter`` over an opened ``source`` into ``sink``; closes both when done.

    The segmenter is used from one thread only (the inference thread) and is not closed
    here: the caller owns it.
    """

    def __init__(self, source: FrameSource, segmenter: SegmenterLike, sink: FrameSink, config: PipelineConfig = PipelineConfig()):
        self.source = source
        self.segmenter = segmenter
        self.sink = sink
        self.config = config
        self.live = bool(getattr(source, "is_live", False))
        self.drop = self.live if config.drop_frames is None else config.drop_frames
        self.show_stats = config.show_stats
        self.renderer = Renderer(segmenter.meta.palette, config.render, segmenter.meta.class_names, stream=True)
        self.smoother = (
            TemporalEMA(segmenter.meta.num_classes, config.smoothing_alpha, tuple(getattr(segmenter, "input_size", segmenter.meta.input_size)))
            if config.smoothing_alpha is not None
            else None
        )
        self.stages = StageRecorder()
        self.rate = RateMeter()
        self.controls = LiveControls(segmenter.meta, getattr(segmenter, "input_size", segmenter.meta.input_size),
                                     config.render, getattr(getattr(segmenter, "decode", None), "config", None))
        self._observers: List[Callable[[FrameEvent], None]] = []
        self._stop = threading.Event()
        self._abort = threading.Event()
        self._stop_reason: Optional[str] = None
        self._error: Optional[BaseException] = None
        self._error_lock = threading.Lock()
        self.frames_in = 0
        self.frames_inferred = 0
        self.frames_out = 0
        self.discarded = 0
        self._capture_queue: Optional[FrameQueue] = None
        self._summary: Optional[RunSummary] = None
        self._mode = "pipelined"
        self._t_start = 0.0

    # -- control (any thread, signal handlers included) -------------------------------------
    def request_stop(self, reason: str = "stop requested", abort: bool = False) -> None:
        """Stop reading; drain and finalise. ``abort``: discard queued frames, finalise now."""
        if self._stop_reason is None:
            self._stop_reason = reason
        self._stop.set()
        source_stop = getattr(self.source, "stop", None)
        if isinstance(source_stop, threading.Event):
            source_stop.set()  # cut a reconnect backoff short
        if abort:
            self._abort.set()

    def toggle_stats(self) -> None:
        self.show_stats = not self.show_stats

    def add_observer(self, observer: Callable[[FrameEvent], None]) -> None:
        """Call ``observer`` with every drawn frame, on the render thread, before the sink
        writes it; it must return quickly (hand the work to a thread of its own). One that
        raises is logged and removed: a viewer never stops the run."""
        self._observers.append(observer)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def summary(self) -> Optional[RunSummary]:
        return self._summary

    @property
    def dropped(self) -> int:
        """Frames dropped so far: stale live frames replaced in the capture queue, and frames
        discarded by an abort (what the summary reports at the end)."""
        queue = self._capture_queue
        return (queue.dropped if queue is not None else 0) + self.discarded

    def _fail(self, exc: BaseException) -> None:
        with self._error_lock:
            if self._error is None:
                self._error = exc
        self.request_stop("error", abort=True)

    # -- stages -------------------------------------------------------------------------------
    def _read(self) -> Optional[_Captured]:
        t0 = time.perf_counter()
        frame = self.source.read()
        t1 = time.perf_counter()
        if frame is None:
            return None
        self.stages.add("capture", (t1 - t0) * 1e3)
        item = _Captured(self.frames_in, frame, t1)
        self.frames_in += 1
        return item

    def _infer(self, item: _Captured) -> _Inferred:
        decode = self.controls.take_decode()
        if decode is not None:
            self.segmenter.set_decode(decode)
        t0 = time.perf_counter()
        result = self.segmenter.segment(item.frame)
        t1 = time.perf_counter()
        mask = result.mask
        self.stages.add("queue_wait", (t0 - item.t_read) * 1e3)
        self.stages.add("inference", (t1 - t0) * 1e3)
        times = stage_times_ms(result)
        for name, ms in times.items():
            self.stages.add(name, ms)
        if times:
            self.stages.add("network", sum(times.get(k, 0.0) for k in ("h2d", "compute", "d2h")))
        if self.smoother is not None:
            mask = self.smoother(mask, getattr(result, "confidence", None), getattr(result, "scores", None))
            self.stages.add("smoothing", (time.perf_counter() - t1) * 1e3)
        self.frames_inferred += 1
        return _Inferred(item, mask)

    def _render_and_write(self, item: _Inferred) -> None:
        t0 = time.perf_counter()
        renderer = self.controls.take_renderer()
        if renderer is not None:
            self.renderer = renderer
        picture = self.renderer(item.captured.frame, item.mask)
        if self.show_stats:
            dropped = self._capture_queue.dropped if self._capture_queue is not None else 0
            draw_hud(picture, hud_lines(self.rate, self.stages, dropped, self.live))
        t1 = time.perf_counter()
        if self._observers:
            self._notify(item, picture)
        self.sink.write(picture)
        t2 = time.perf_counter()
        self.frames_out += 1
        self.rate.tick(t2)
        self.stages.add("render", (t1 - t0) * 1e3)
        self.stages.add("write", (t2 - t1) * 1e3)
        self.stages.add("end_to_end", (t2 - item.captured.t_read) * 1e3)

    def _notify(self, item: _Inferred, picture: np.ndarray) -> None:
        captured = item.captured
        event = FrameEvent(captured.index, time.time() - (time.perf_counter() - captured.t_read),
                           captured.frame, item.mask, picture)
        for observer in list(self._observers):
            try:
                observer(event)
            except Exception:  # noqa: BLE001 - a viewer's fault must not end the run
                log.exception("frame observer %r failed; removed", observer)
                self._observers.remove(observer)

    def _reached_max(self) -> bool:
        limit = self.config.max_frames
        if limit is not None and self.frames_in >= limit:
            if self._stop_reason is None:
                self._stop_reason = f"max frames ({limit})"
            return True
        return False

    def _capture_loop(self, out: FrameQueue) -> None:
        try:
            while not self._stop.is_set() and not self._reached_max():
                item = self._read()
                if item is None:
                    if self._stop_reason is None:
                        lost = getattr(self.source, "error", None)
                        self._stop_reason = "source lost" if lost else "end of input"
                    break
                out.put(item)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            self._fail(exc)
        finally:
            out.close()

    def _inference_loop(self, inp: FrameQueue, out: FrameQueue) -> None:
        try:
            while True:
                self.controls.wait_while_paused(self._stop)
                try:
                    item = inp.get(timeout=_POLL_S)
                except TimeoutError:
                    continue
                except QueueClosed:
                    break
                if self._abort.is_set():
                    self.discarded += 1
                    continue
                out.put(self._infer(item))
        except BaseException as exc:  # noqa: BLE001
            self._fail(exc)
            inp.close()
        finally:
            out.close()

    # -- runs ---------------------------------------------------------------------------------
    def run(self) -> RunSummary:
        """Pipelined run; returns the summary, or re-raises a stage's error after finalising."""
        self._mode = "pipelined"
        size = self.config.live_queue_size if self.drop else self.config.file_queue_size
        captured = FrameQueue(size, drop_oldest=self.drop)
        inferred = FrameQueue(self.config.result_queue_size)
        self._capture_queue = captured
        self._t_start = time.perf_counter()
        threads = [
            threading.Thread(target=self._capture_loop, args=(captured,), name="fcn-edge-capture", daemon=True),
            threading.Thread(target=self._inference_loop, args=(captured, inferred), name="fcn-edge-inference", daemon=True),
        ]
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        try:
            for thread in threads:
                thread.start()
            self._write_loop(inferred)
        finally:
            sys.setswitchinterval(switch_interval)
            self.request_stop()
            captured.close()
            inferred.close()
            for thread in threads:
                thread.join(_JOIN_S)
                if thread.is_alive():
                    log.warning("%s did not finish within %.0f s (a blocked read?); finalising anyway", thread.name, _JOIN_S)
            self._finish()
        return self._summary

    def _write_loop(self, inp: FrameQueue) -> None:
        interrupts = 0
        while True:
            try:
                try:
                    item = inp.get(timeout=_POLL_S)
                except TimeoutError:
                    continue
                except QueueClosed:
                    return
                if self._abort.is_set():
                    self.discarded += 1
                    continue
                self._render_and_write(item)
            except KeyboardInterrupt:
                # Without a signal handler installed (fcn_edge.video.signals), Ctrl-C lands here.
                interrupts += 1
                self.request_stop("interrupted", abort=interrupts > 1)
            except BaseException as exc:  # noqa: BLE001
                self._fail(exc)
                return

    def run_sequential(self) -> RunSummary:
        """Read, segment, render and write one frame at a time on this thread (the baseline)."""
        self._mode = "sequential"
        self._capture_queue = None
        self._t_start = time.perf_counter()
        try:
            while not self._stop.is_set() and not self._reached_max():
                try:
                    self.controls.wait_while_paused(self._stop)
                    if self._stop.is_set():
                        break
                    item = self._read()
                    if item is None:
                        if self._stop_reason is None:
                            self._stop_reason = "source lost" if getattr(self.source, "error", None) else "end of input"
                        break
                    self._render_and_write(self._infer(item))
                except KeyboardInterrupt:
                    self.request_stop("interrupted")
                except BaseException as exc:  # noqa: BLE001
                    self._fail(exc)
        finally:
            self._finish()
        return self._summary

    # -- end ----------------------------------------------------------------------------------
    def _finish(self) -> None:
        wall = time.perf_counter() - self._t_start
        errors = []
        for closer in (self.sink.close, self.source.close):
            try:
                closer()
            except BaseException as exc:  # noqa: BLE001 - finalise both, report the first
                errors.append(exc)
        if errors and self._error is None:
            self._error = errors[0]
        dropped = self.dropped
        source_error = getattr(self.source, "error", None)
        self._summary = RunSummary(
            source=str(getattr(self.source, "uri", "?")),
            sink=str(getattr(self.sink, "uri", "?")),
            mode=self._mode,
            live=self.live,
            frames_in=self.frames_in,
            frames_inferred=self.frames_inferred,
            frames_out=self.frames_out,
            dropped=dropped,
            reconnects=int(getattr(self.source, "reconnects", 0)),
            wall_s=wall,
            stopped_by=self._stop_reason or "end of input",
            output=getattr(self.sink, "path", None) or None,
            latency_ms=self.stages.summary(),
            error=str(self._error) if self._error is not None else source_error,
        )
        if self._error is not None:
            raise self._error
