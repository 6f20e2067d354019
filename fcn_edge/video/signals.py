"""Ctrl-C and SIGTERM as stop requests, so an interrupted run still finalises its output.

The first signal asks the pipeline to stop reading and drain what is in flight; a second
one discards what is queued. Either way the sink is closed properly: a video file gets its
index written and is renamed into place. Handlers can only be installed from the main
thread; elsewhere this is a no-op and KeyboardInterrupt handling in the pipeline remains.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

from fcn_edge.video.pipeline import VideoPipeline


@contextlib.contextmanager
def stop_on_signals(pipeline: VideoPipeline) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    count = {"n": 0}

    def handler(signum, _frame):
        count["n"] += 1
        name = signal.Signals(signum).name
        pipeline.request_stop(f"{name} received", abort=count["n"] > 1)

    wanted = [signal.SIGINT] + ([signal.SIGTERM] if hasattr(signal, "SIGTERM") else [])
    previous = {sig: signal.signal(sig, handler) for sig in wanted}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
