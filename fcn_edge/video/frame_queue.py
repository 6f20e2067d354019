"""A bounded queue between pipeline stages, with the drop policy of live sources.

``drop_oldest=False`` (files): ``put`` blocks while the queue is full, so every frame is
processed. ``drop_oldest=True`` (live): ``put`` never blocks; a full queue discards its
oldest item and counts it, so the consumer always gets the newest frame and latency
stays bounded by the queue's size instead of growing with the backlog.
"""

from __future__ import annotations

import collections
import threading
from typing import Any, Deque, Optional

from fcn_edge.errors import UsageError


class QueueClosed(Exception):
    """The producer finished (or the pipeline stopped) and the queue is empty."""


class FrameQueue:
    def __init__(self, maxsize: int, drop_oldest: bool = False):
        if maxsize < 1:
            raise UsageError(f"frame queue maxsize must be >= 1, got {maxsize}")
        self.maxsize = maxsize
        self.drop_oldest = drop_oldest
        self.dropped = 0
        self._items: Deque[Any] = collections.deque()
        self._closed = False
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)

    def put(self, item: Any, timeout: Optional[float] = None) -> Optional[Any]:
        """Add ``item``; returns the item dropped to make room, if any.

        Blocking puts wake when a slot frees or the queue is closed; a put to a closed
        queue is discarded (the consumer is gone), which ends a blocked producer.
        """
        with self._lock:
            dropped = None
            if self.drop_oldest:
                if len(self._items) >= self.maxsize:
                    dropped = self._items.popleft()
                    self.dropped += 1
            else:
                while len(self._items) >= self.maxsize and not self._closed:
                    if not self._not_full.wait(timeout) and timeout is not None:
                        raise TimeoutError("queue full")
            if self._closed:
                return item
            self._items.append(item)
            self._not_empty.notify()
            return dropped

    def get(self, timeout: Optional[float] = None) -> Any:
        """The oldest item; raises QueueClosed once closed and drained, TimeoutError on timeout."""
        with self._lock:
            while not self._items:
                if self._closed:
                    raise QueueClosed()
                if not self._not_empty.wait(timeout) and timeout is not None and not self._items:
                    if self._closed:
                        raise QueueClosed()
                    raise TimeoutError("queue empty")
            item = self._items.popleft()
            self._not_full.notify()
            return item

    def close(self) -> None:
        """No more puts; ``get`` drains what is left, then raises QueueClosed."""
        with self._lock:
            self._closed = True
            self._not_empty.notify_all()
            self._not_full.notify_all()

    def clear(self) -> int:
        """Discard what is queued (an abort); returns how many items were discarded."""
        with self._lock:
            count = len(self._items)
            self._items.clear()
            self._not_full.notify_all()
            return count

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
