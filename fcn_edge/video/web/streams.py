"""The streams a page shows: each a name, a model's classes, a frame slot, live controls and statistics.

The server takes any number of named streams (one per source when several run in one
process) and the page lays out however many it lists. :func:`attach_pipeline` wires a
:class:`~fcn_edge.video.pipeline.VideoPipeline` in: its drawn frames into the stream's
slot, its controls and its counters into the page.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from fcn_edge.artifacts import ModelMeta
from fcn_edge.errors import UsageError
from fcn_edge.runtime.render import class_shares
from fcn_edge.video.live import FrameEvent, LiveControls
from fcn_edge.video.web.broadcast import FrameSlot
from fcn_edge.video.web.control import apply_control, parse_control, settings

STREAM_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
# Stages the page shows, in pipeline order (the names StageRecorder gets from the pipeline).
STAGES = ("capture", "queue_wait", "preprocess", "network", "decode", "inference", "smoothing", "render", "write", "end_to_end")
_FPS_WINDOW_S = 2.0


class ViewStream:
    """One stream of the page. ``stats`` returns its pipeline's counters (see
    :func:`pipeline_stats`); ``controls`` None: the page shows it without controls."""

    def __init__(self, name: str, meta: ModelMeta, slot: FrameSlot, label: str = "",
                 controls: Optional[LiveControls] = None, stats: Optional[Callable[[], Dict[str, Any]]] = None):
        if not STREAM_NAME.match(name):
            raise UsageError(f"stream name {name!r}: 1 to 32 of A-Z a-z 0-9 _ -")
        self.name = name
        self.label = label or name
        self.meta = meta
        self.slot = slot
        self.controls = controls
        self._stats = stats or (lambda: {})
        self._frames: Deque[Tuple[float, int]] = deque()
        self._lock = threading.Lock()

    def publish(self, event: FrameEvent) -> None:
        """The pipeline's frame observer: hand the drawn frame to the slot (a reference, no copy)."""
        self.slot.publish(event)

    def describe(self) -> Dict[str, Any]:
        """What does not change while the stream runs: its name, model and classes."""
        return {
            "name": self.name,
            "label": self.label,
            "model": self.meta.architecture,
            "classes": [{"index": i, "name": name, "colour": "#%02x%02x%02x" % tuple(int(c) for c in colour)}
                        for i, (name, colour) in enumerate(zip(self.meta.class_names, self.meta.palette))],
            "scores": not self.meta.fused_argmax,
            "controls": self.controls is not None,
        }

    def snapshot(self) -> Dict[str, Any]:
        """Counters, rates, latency, class shares of the newest frame, the live settings."""
        data = dict(self._stats())
        view = self.slot.stats()
        data["fps"] = self._fps(time.monotonic(), int(data.get("frames_out", view["frames_published"])))
        latest = self.slot.latest
        if latest is not None:
            shares = class_shares(latest.mask, self.meta.num_classes)
            data["shares"] = [round(float(v), 4) for v in shares]
            data["frame_index"] = latest.index
            data["frame_age_ms"] = max(0.0, (time.time() - latest.t_capture) * 1e3)
        data["view"] = view
        if self.controls is not None:
            data["settings"] = settings(self.controls)
        return data

    def control(self, payload: Any) -> Dict[str, Any]:
        """Apply a control request (see :mod:`.control`); returns the settings after it."""
        if self.controls is None:
            raise UsageError(f"stream {self.name!r} takes no controls")
        apply_control(parse_control(payload), self.controls)
        return settings(self.controls)

    def _fps(self, now: float, frames_out: int) -> float:
        """Frames out per second over the last two seconds: 0 when paused or ended, which
        the pipeline's own rolling meter (the last 30 frames) would not show."""
        with self._lock:
            self._frames.append((now, frames_out))
            while len(self._frames) > 2 and now - self._frames[1][0] >= _FPS_WINDOW_S:
                self._frames.popleft()
            (t0, n0), (t1, n1) = self._frames[0], self._frames[-1]
            return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0


def pipeline_stats(pipeline) -> Dict[str, Any]:
    """A running VideoPipeline's counters and the mean of each stage over its last frames (ms)."""
    latency = {stage: pipeline.stages.recent_mean(stage) for stage in STAGES}
    summary = pipeline.summary
    state = "ended" if summary is not None else "paused" if pipeline.controls.paused else "running"
    return {
        "state": state,
        "stopped_by": summary.stopped_by if summary is not None else None,
        "live": pipeline.live,
        "frames_in": pipeline.frames_in,
        "frames_inferred": pipeline.frames_inferred,
        "frames_out": pipeline.frames_out,
        "dropped": pipeline.dropped,
        "reconnects": int(getattr(pipeline.source, "reconnects", 0)),
        "latency_ms": {stage: ms for stage, ms in latency.items() if ms is not None},
    }


def attach_pipeline(server, pipeline, name: str = "0", label: Optional[str] = None) -> ViewStream:
    """Show ``pipeline`` on ``server`` (a :class:`~fcn_edge.video.web.server.ViewServer`) as
    stream ``name``: its frames, statistics and controls."""
    stream = server.add_stream(name, pipeline.segmenter.meta, label=label or str(getattr(pipeline.source, "uri", name)),
                               controls=pipeline.controls, stats=lambda: pipeline_stats(pipeline))
    pipeline.add_observer(stream.publish)
    return stream


def snapshot_all(streams: List[ViewStream]) -> Dict[str, Any]:
    return {"time": time.time(), "streams": {stream.name: stream.snapshot() for stream in streams}}
