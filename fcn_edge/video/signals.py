"""Ctrl-C, SIGTERM and SIGHUP as stop requests, so an interrupted run still finalises its output.

The first signal asks the pipeline to stop reading and drain what is in flight; a second
one discards what is queued. Either way the sink is closed properly: a video file gets its
index written and is renamed into place. Handlers can only be installed from the main
thread; elsewhere this is a no-op and KeyboardInterrupt handling in the pipeline remains.
The context yields the list of signal numbers received, in order, so the caller can exit
with 128 + the first one after the output is finalised.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator, List

from fcn_edge.video.pipeline import VideoPipeline


@contextlib.contextmanager
def stop_on_signals(pipeline: VideoPipeline) -> Iterator[List[int]]:
    received: List[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum, _frame):
        received.append(int(signum))
        name = signal.Signals(signum).name
        pipeline.request_stop(f"{name} received", abort=len(received) > 1)

    # SIGHUP too: a run started over SSH must not lose its output when the session drops
    wanted = [signal.SIGINT] + [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]
    previous = {sig: signal.signal(sig, handler) for sig in wanted}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
