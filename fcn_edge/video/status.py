"""``run --status FILE``: the health of a long run, as a small JSON file rewritten atomically.

A watchdog, a monitoring agent or a person can read it at any moment and see whether the
run is alive and healthy::

    {"schema": "fcn-edge.run-status/1", "state": "running", "pid": 812,
     "started_at": "2026-11-29T08:00:00Z", "updated_at": "2026-11-29T17:42:05Z",
     "uptime_s": 34925.1, "source": "csi://0", "sink": "/data/out.mp4", "live": true,
     "frames_in": 1047312, "frames_out": 1047290, "dropped": 22, "reconnects": 1,
     "fps": 29.97, "fps_mean": 29.99, "last_error": "lost 'csi://0'; reconnecting",
     "last_error_at": "2026-11-29T12:03:44Z", "stopped_by": null, "exit_code": null,
     "output": null, "interval_s": 5.0}

``state`` is starting (opening the source, loading the model), running, then finished,
interrupted (a signal; the output was finalised) or failed; ``exit_code`` is set when the
run has ended. A run is stuck when ``updated_at`` is older than a few intervals, or when
``frames_out`` stops moving while ``state`` is running. Each write goes to a temporary
name and is renamed over the file (:func:`fcn_edge.atomic.write_json_atomic`), so a reader
never sees half a file. A write that fails (a full disk) is logged once and retried at
the next interval; it never stops the run.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from fcn_edge.atomic import write_json_atomic
from fcn_edge.errors import FcnEdgeError, UsageError

log = logging.getLogger(__name__)

SCHEMA = "fcn-edge.run-status/1"
DEFAULT_INTERVAL_S = 5.0


def utc_stamp(seconds: Optional[float] = None) -> str:
    """ISO 8601 UTC, to the second: '2026-11-29T17:42:05Z'."""
    moment = datetime.fromtimestamp(time.time() if seconds is None else seconds, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def pipeline_health(pipeline: Any, source: Any) -> Dict[str, Any]:
    """The live counters of a running VideoPipeline and its source (read without locks:
    each is one int or float written by one thread)."""
    if pipeline is None:
        return {}
    rate = pipeline.rate.rate
    health: Dict[str, Any] = {
        "frames_in": pipeline.frames_in,
        "frames_out": pipeline.frames_out,
        "dropped": pipeline.dropped,
        "reconnects": int(getattr(source, "reconnects", 0)),
        "live": bool(pipeline.live),
        "fps": round(rate, 3) if rate is not None else None,
    }
    last = getattr(source, "last_error", None)
    if last:
        health["last_error"] = last
        at = getattr(source, "last_error_at", None)
        health["last_error_at"] = utc_stamp(at) if at else None
    return health


class StatusFile:
    """Rewrites ``path`` every ``interval_s`` seconds from ``snapshot()`` on a daemon thread.

    ``set(**fields)`` changes fields (state, source, error) and writes at once;
    ``start()`` begins the periodic writes; ``finish(...)`` stops them and writes the
    final state.
    """

    def __init__(self, path: Path, interval_s: float = DEFAULT_INTERVAL_S,
                 snapshot: Callable[[], Dict[str, Any]] = dict):
        if not interval_s > 0:
            raise UsageError(f"status interval {interval_s} must be > 0 seconds")
        self.path = Path(path)
        self.interval_s = float(interval_s)
        self.snapshot = snapshot
        self._started = time.time()
        self._t0 = time.monotonic()
        self._fields: Dict[str, Any] = {
            "schema": SCHEMA, "state": "starting", "pid": os.getpid(), "started_at": utc_stamp(self._started),
            "interval_s": self.interval_s, "frames_in": 0, "frames_out": 0, "dropped": 0, "reconnects": 0,
            "fps": None, "fps_mean": None, "last_error": None, "last_error_at": None, "stopped_by": None,
            "exit_code": None, "output": None,
        }
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._failing = False
        self.writes = 0

    def document(self) -> Dict[str, Any]:
        """The JSON object as it would be written now."""
        with self._lock:
            data = dict(self._fields)
        if data["state"] == "running":
            data.update({k: v for k, v in self.snapshot().items() if v is not None or k not in data})
        uptime = time.monotonic() - self._t0
        data["updated_at"] = utc_stamp()
        data["uptime_s"] = round(uptime, 3)
        if data.get("frames_out") and uptime > 0:
            data["fps_mean"] = round(data["frames_out"] / uptime, 3)
        return data

    def write(self) -> bool:
        """Write the file now; False (logged once per failing stretch) when it cannot be."""
        data = self.document()
        try:
            write_json_atomic(self.path, data)
        except (OSError, FcnEdgeError) as exc:
            if not self._failing:
                log.warning("status file %s: %s (retrying every %g s)", self.path, exc, self.interval_s)
            self._failing = True
            return False
        if self._failing:
            log.info("status file %s: written again", self.path)
        self._failing = False
        self.writes += 1
        return True

    def set(self, **fields: Any) -> None:
        """Change fields and write at once."""
        with self._lock:
            self._fields.update(fields)
        self.write()

    def start(self) -> None:
        """State 'running', rewritten every interval until :meth:`finish`."""
        self.set(state="running")
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="fcn-edge-status", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.write()

    def finish(self, state: str, exit_code: int, error: Optional[str] = None, **fields: Any) -> None:
        """Stop the periodic writes and write the final state (finished, interrupted, failed)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.interval_s + 1.0)
        final = dict(self.snapshot()) if self._fields["state"] == "running" else {}
        final = {k: v for k, v in final.items() if v is not None}
        final.update(fields)
        final.update(state=state, exit_code=exit_code, fps=None)
        if error:
            final.update(last_error=error, last_error_at=utc_stamp())
        with self._lock:
            self._fields.update(final)
        self.write()
