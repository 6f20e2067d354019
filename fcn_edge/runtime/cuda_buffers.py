"""CUDA context, stream, pinned host and device buffers, events and graphs: the one pycuda module.

Everything the TensorRT backend needs from CUDA goes through this file, so moving from
pycuda to cuda-python (as NVIDIA's samples did in TensorRT 10.14) touches only it. There
is no ``pycuda.autoinit``: a :class:`CudaContext` retains the device's primary context
(the one the CUDA runtime, TensorRT and PyTorch share) and is pushed around each use, so a
Segmenter made on one thread can run on another. pycuda has no stream-capture API, so CUDA
graphs go through the driver library directly with ctypes; that too stays here.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from contextlib import contextmanager
from typing import Iterator, Tuple

import numpy as np

from fcn_edge.errors import FcnEdgeError
from fcn_edge.optional import require

_init_lock = threading.Lock()
_initialised = False


def _driver():
    """pycuda.driver, initialised once per process (cuInit is cheap but not thread-safe)."""
    global _initialised
    cuda = require("pycuda.driver", "running TensorRT engines")
    with _init_lock:
        if not _initialised:
            cuda.init()
            _initialised = True
    return cuda


class CudaError(FcnEdgeError):
    """A CUDA call failed; the message names the call and the driver's error code."""


def device_count() -> int:
    return _driver().Device.count()


class CudaContext:
    """The primary context of one GPU, retained until :meth:`close`.

    Use as ``with ctx:`` (or ``ctx.push()``/``ctx.pop()``) around every CUDA call; nesting
    is allowed. Any thread may use it, one at a time.
    """

    def __init__(self, device: int = 0):
        cuda = _driver()
        count = cuda.Device.count()
        if not 0 <= device < count:
            raise CudaError(f"CUDA device {device} does not exist; this machine has {count}")
        self._cuda = cuda
        self.device_index = device
        self.device = cuda.Device(device)
        self._ctx = self.device.retain_primary_context()

    @property
    def name(self) -> str:
        return self.device.name()

    @property
    def compute_capability(self) -> Tuple[int, int]:
        return tuple(self.device.compute_capability())  # type: ignore[return-value]

    @property
    def total_memory(self) -> int:
        return int(self.device.total_memory())

    def push(self) -> None:
        if self._ctx is None:
            raise CudaError("the CUDA context is closed")
        self._ctx.push()

    def pop(self) -> None:
        self._cuda.Context.pop()

    def __enter__(self) -> "CudaContext":
        self.push()
        return self

    def __exit__(self, *exc) -> None:
        self.pop()

    def synchronize(self) -> None:
        with self:
            self._cuda.Context.synchronize()

    def close(self) -> None:
        """Release the retained primary context (its memory stays while others retain it)."""
        if self._ctx is not None:
            self._ctx.detach()
            self._ctx = None

    @property
    def closed(self) -> bool:
        return self._ctx is None


class Stream:
    """One CUDA stream; ``handle`` is the integer TensorRT's execute_async_v3 takes."""

    def __init__(self):
        self._stream = _driver().Stream()

    @property
    def handle(self) -> int:
        return int(self._stream.handle)

    @property
    def native(self):
        return self._stream

    def synchronize(self) -> None:
        self._stream.synchronize()


class DeviceBuffer:
    """``nbytes`` of device memory, allocated once; ``ptr`` goes to set_tensor_address."""

    def __init__(self, nbytes: int):
        self.nbytes = int(nbytes)
        self._alloc = _driver().mem_alloc(max(self.nbytes, 1))

    @property
    def ptr(self) -> int:
        if self._alloc is None:
            raise CudaError("device buffer already freed")
        return int(self._alloc)

    def free(self) -> None:
        if self._alloc is not None:
            self._alloc.free()
            self._alloc = None


def pinned_empty(shape, dtype) -> np.ndarray:
    """A page-locked host array: async copies from/to it overlap with compute."""
    return _driver().pagelocked_empty(tuple(shape), np.dtype(dtype))


def copy_htod_async(dst: DeviceBuffer, src: np.ndarray, stream: Stream) -> None:
    if src.nbytes > dst.nbytes:
        raise CudaError(f"host->device copy of {src.nbytes} bytes into a {dst.nbytes}-byte buffer")
    _driver().memcpy_htod_async(dst.ptr, src, stream.native)


def copy_dtoh_async(dst: np.ndarray, src: DeviceBuffer, stream: Stream) -> None:
    if dst.nbytes > src.nbytes:
        raise CudaError(f"device->host copy of {dst.nbytes} bytes from a {src.nbytes}-byte buffer")
    _driver().memcpy_dtoh_async(dst, src.ptr, stream.native)


def copy_dtod_async(dst: DeviceBuffer, src: DeviceBuffer, nbytes: int, stream: Stream) -> None:
    _driver().memcpy_dtod_async(dst.ptr, src.ptr, int(nbytes), stream.native)


class Event:
    """A CUDA event, to time stages on the GPU's own clock."""

    def __init__(self):
        self._event = _driver().Event()

    def record(self, stream: Stream) -> None:
        self._event.record(stream.native)

    def synchronize(self) -> None:
        self._event.synchronize()

    def ms_until(self, later: "Event") -> float:
        return float(self._event.time_till(later._event))


# -- CUDA graphs, through the driver API (pycuda has no stream capture) ----------------------
_CAPTURE_MODE_THREAD_LOCAL = 1


def _libcuda():
    name = ctypes.util.find_library("cuda") or "libcuda.so.1"
    try:
        return ctypes.CDLL(name)
    except OSError as exc:
        raise CudaError(f"cannot load the CUDA driver library ({name}) for CUDA graphs: {exc}") from exc


def _check(result: int, call: str) -> None:
    if result != 0:
        raise CudaError(f"{call} failed with CUDA driver error {result}")


class CudaGraph:
    """Work captured once from a stream and replayed with one launch.

    ``with graph.capture(stream): <async copies and kernels on stream>`` records instead of
    running; :meth:`launch` replays it. Pointers and shapes are frozen at capture, so this
    suits fixed-shape engines with buffers that never move.
    """

    def __init__(self):
        self._lib = _libcuda()
        self._graph = ctypes.c_void_p()
        self._exec = ctypes.c_void_p()

    @contextmanager
    def capture(self, stream: Stream) -> Iterator["CudaGraph"]:
        if self._exec:
            raise CudaError("this CUDA graph was already captured")
        handle = ctypes.c_void_p(stream.handle)
        begin = getattr(self._lib, "cuStreamBeginCapture_v2", None) or self._lib.cuStreamBeginCapture
        _check(begin(handle, ctypes.c_int(_CAPTURE_MODE_THREAD_LOCAL)), "cuStreamBeginCapture")
        failed = False
        try:
            yield self
        except BaseException:
            failed = True
            raise
        finally:
            result = self._lib.cuStreamEndCapture(handle, ctypes.byref(self._graph))
            if not failed:
                _check(result, "cuStreamEndCapture")
        self._instantiate()

    def _instantiate(self) -> None:
        with_flags = getattr(self._lib, "cuGraphInstantiateWithFlags", None)
        if with_flags is not None:
            result = with_flags(ctypes.byref(self._exec), self._graph, ctypes.c_ulonglong(0))
        else:  # CUDA < 11.4
            result = self._lib.cuGraphInstantiate_v2(ctypes.byref(self._exec), self._graph, None, None, ctypes.c_size_t(0))
        _check(result, "cuGraphInstantiate")

    @property
    def ready(self) -> bool:
        return bool(self._exec)

    def launch(self, stream: Stream) -> None:
        if not self._exec:
            raise CudaError("launch of a CUDA graph that was not captured")
        _check(self._lib.cuGraphLaunch(self._exec, ctypes.c_void_p(stream.handle)), "cuGraphLaunch")

    def destroy(self) -> None:
        if self._exec:
            self._lib.cuGraphExecDestroy(self._exec)
            self._exec = ctypes.c_void_p()
        if self._graph:
            self._lib.cuGraphDestroy(self._graph)
            self._graph = ctypes.c_void_p()
