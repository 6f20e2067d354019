"""HostCuda: a stand-in for the CUDA-buffer interface (fcn_edge.runtime.cuda_api), on the host.

A fake, to test the TensorRT backend's own control flow where there is no GPU: which copies,
enqueues, captures and launches it asks for, in which order, on which stream. Device memory
is numpy arrays found by fake pointer; a stream runs each operation when it is submitted,
unless the stream is capturing, when the operation is recorded into the graph instead (as
CUDA stream capture does). A graph launch submits the recorded operations again, so a
replay reads host memory as it is at launch (pinned memory semantics) and runs kernels with
the parameters they were captured with. Every executed operation advances the stream's
clock by one millisecond; events read that clock, so timings are deterministic.

It follows CUDA's documented behaviour where the backend depends on it: work queued on a
capturing stream is not run; a capture invalidated by an illegal operation fails at
``cudaStreamEndCapture`` and leaves the runtime's last error set until ``clear_error()``.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

from fcn_edge.runtime.cuda_api import ContextScope, CudaError

NAME = "host-fake"

MEMORY: Dict[int, np.ndarray] = {}
STREAMS: Dict[int, "Stream"] = {}
_next = [0x10000]
last_error = [""]
cleared: List[str] = []  # what clear_error() reset, in order
contexts_open = [0]


def reset() -> None:
    MEMORY.clear()
    STREAMS.clear()
    last_error[0] = ""
    cleared.clear()
    contexts_open[0] = 0


def _address(nbytes: int) -> int:
    pointer = _next[0]
    _next[0] += max(nbytes, 1) + 4096
    return pointer


def device_count() -> int:
    return 1


class CudaContext(ContextScope):
    def __init__(self, device: int = 0):
        if device != 0:
            raise CudaError(f"CUDA device {device} does not exist; this machine has 1")
        self.device_index = device
        self.name, self.compute_capability, self.total_memory = "HostCuda (fake)", (8, 7), 1 << 30
        self.depth = 0
        self._closed = False
        contexts_open[0] += 1

    @property
    def api(self):
        return sys.modules[__name__]

    def push(self) -> None:
        if self._closed:
            raise CudaError("the CUDA context is closed")
        self.depth += 1

    def pop(self) -> None:
        self.depth -= 1

    def synchronize(self) -> None:
        pass

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            contexts_open[0] -= 1

    @property
    def closed(self) -> bool:
        return self._closed


class Stream:
    def __init__(self):
        self.handle = _address(0)
        STREAMS[self.handle] = self
        self.clock = 0.0
        self.capture: Optional[List[Callable[[], None]]] = None
        self.invalidated = False
        self.executed: List[str] = []  # kinds of operations run, in order

    def submit(self, kind: str, op: Callable[[], None]) -> None:
        if self.capture is not None:
            self.capture.append((kind, op))
            return
        op()
        self.clock += 1.0
        self.executed.append(kind)

    @property
    def capturing(self) -> bool:
        return self.capture is not None

    def invalidate(self) -> None:
        """An operation illegal during capture: the capture fails when it ends."""
        self.invalidated = True
        last_error[0] = "cudaErrorStreamCaptureInvalidated"

    def synchronize(self) -> None:
        pass


class DeviceBuffer:
    def __init__(self, nbytes: int):
        self.nbytes = int(nbytes)
        self._ptr: Optional[int] = _address(self.nbytes)
        MEMORY[self._ptr] = np.zeros(max(self.nbytes, 1), np.uint8)

    @property
    def ptr(self) -> int:
        if self._ptr is None:
            raise CudaError("device buffer already freed")
        return self._ptr

    def free(self) -> None:
        if self._ptr is not None:
            del MEMORY[self._ptr]
            self._ptr = None


def pinned_empty(shape, dtype) -> np.ndarray:
    return np.empty(tuple(shape), np.dtype(dtype))


def copy_htod_async(dst: DeviceBuffer, src: np.ndarray, stream: Stream) -> None:
    if src.nbytes > dst.nbytes:
        raise CudaError(f"host->device copy of {src.nbytes} bytes into a {dst.nbytes}-byte buffer")
    pointer, n = dst.ptr, src.nbytes

    def op() -> None:
        MEMORY[pointer][:n] = src.reshape(-1).view(np.uint8)

    stream.submit("h2d", op)


def copy_dtoh_async(dst: np.ndarray, src: DeviceBuffer, stream: Stream) -> None:
    if dst.nbytes > src.nbytes:
        raise CudaError(f"device->host copy of {dst.nbytes} bytes from a {src.nbytes}-byte buffer")
    pointer, n = src.ptr, dst.nbytes

    def op() -> None:
        dst.reshape(-1).view(np.uint8)[:] = MEMORY[pointer][:n]

    stream.submit("d2h", op)


def copy_dtod_async(dst: DeviceBuffer, src: DeviceBuffer, nbytes: int, stream: Stream) -> None:
    a, b, n = dst.ptr, src.ptr, int(nbytes)

    def op() -> None:
        MEMORY[a][:n] = MEMORY[b][:n]

    stream.submit("d2d", op)


class Event:
    def __init__(self):
        self.time: Optional[float] = None

    def record(self, stream: Stream) -> None:
        def op() -> None:
            self.time = stream.clock

        if stream.capture is not None:
            stream.capture.append(("event", op))
        else:
            op()  # an event marks the clock, it takes no time

    def synchronize(self) -> None:
        pass

    def ms_until(self, later: "Event") -> float:
        return float(later.time - self.time)


class CudaGraph:
    def __init__(self):
        self.ops: Optional[List[Tuple[str, Callable[[], None]]]] = None
        self.destroyed = False
        self.launches = 0

    @contextmanager
    def capture(self, stream: Stream) -> Iterator["CudaGraph"]:
        if self.ops is not None:
            raise CudaError("this CUDA graph was already captured")
        stream.capture, stream.invalidated = [], False
        try:
            yield self
        except BaseException:
            stream.capture = None
            self.destroy()
            raise
        ops, stream.capture = stream.capture, None
        if stream.invalidated:
            self.destroy()
            raise CudaError("cudaStreamEndCapture (the capture was invalidated) failed: cudaErrorStreamCaptureInvalidated")
        self.ops = ops

    @property
    def ready(self) -> bool:
        return self.ops is not None

    def launch(self, stream: Stream) -> None:
        if self.ops is None:
            raise CudaError("launch of a CUDA graph that was not captured")
        self.launches += 1
        for kind, op in self.ops:
            stream.submit(f"graph:{kind}", op)

    def destroy(self) -> None:
        self.destroyed = True
        self.ops = None


def clear_error() -> str:
    error, last_error[0] = last_error[0], ""
    if error:
        cleared.append(error)
    return error


def cuda_version() -> Optional[Tuple[int, int]]:
    return (12, 6)


class HostKernels:
    """How FakeTensorRT's execution context runs its 'network' on HostCuda: a device-to-device
    copy whose size and context state are fixed when it is enqueued (or captured)."""

    def capturing(self, stream_handle: int) -> bool:
        return STREAMS[stream_handle].capturing

    def invalidate(self, stream_handle: int) -> None:
        STREAMS[stream_handle].invalidate()

    def copy(self, dst: int, src: int, nbytes: int, stream_handle: int, valid: Callable[[], bool]) -> None:
        def op() -> None:
            if valid():
                MEMORY[dst][:nbytes] = MEMORY[src][:nbytes]
            else:  # kernels replayed on a context whose state belongs to another shape
                MEMORY[dst][:nbytes] = 0xEE

        STREAMS[stream_handle].submit("kernel", op)
