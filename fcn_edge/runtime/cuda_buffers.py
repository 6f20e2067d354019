"""The CUDA-buffer interface (:mod:`fcn_edge.runtime.cuda_api`) on pycuda: the one pycuda module.

Everything the TensorRT backend needs from CUDA goes through this file or its cuda-python
twin (:mod:`fcn_edge.runtime.cuda_python_buffers`), never pycuda directly. There is no
``pycuda.autoinit``: a :class:`CudaContext` retains the device's primary context (the one
the CUDA runtime, TensorRT and PyTorch share) and is pushed around each use, so a
Segmenter made on one thread can run on another. pycuda has no stream-capture API, so CUDA
graphs go through the driver library directly with ctypes; that too stays here.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
from contextlib import contextmanager
from typing import Iterator, Optional, Tuple

import numpy as np

from fcn_edge.optional import require
from fcn_edge.runtime.cuda_api import ContextScope, CudaError

NAME = "pycuda"

_init_lock = threading.Lock()
_initialised = False


def _driver():
    """pycuda.driver, initialised once per process (cuInit is cheap but not thread-safe)."""
    global _initialised
    cuda = require("pycuda.driver", "running TensorRT engines with pycuda")
    with _init_lock:
        if not _initialised:
            cuda.init()
            _initialised = True
    return cuda


def device_count() -> int:
    return _driver().Device.count()


class CudaContext(ContextScope):
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
        self._owner = threading.get_ident()

    @property
    def api(self):
        """This implementation (the module), for the objects the backend makes next."""
        return sys.modules[__name__]

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

    def synchronize(self) -> None:
        with self:
            self._cuda.Context.synchronize()

    def close(self) -> None:
        """Release the retained primary context (its memory stays while others retain it).

        pycuda's ``detach()`` releases a primary context only on the thread that retained it
        (or where it is current); on any other thread it just forgets it, and the retain
        leaks. So off the owning thread the release is made here, through the driver.
        """
        if self._ctx is None:
            return
        ctx, self._ctx = self._ctx, None
        ctx.detach()
        if threading.get_ident() != self._owner:
            _release_primary_context(self.device_index)

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


def _release_primary_context(index: int) -> None:
    lib = _libcuda()
    device = ctypes.c_int()
    _check(lib.cuDeviceGet(ctypes.byref(device), index), f"cuDeviceGet({index})")
    _check(lib.cuDevicePrimaryCtxRelease_v2(device), "cuDevicePrimaryCtxRelease")


def _libcudart() -> Optional[ctypes.CDLL]:
    """The shared CUDA runtime library, where one is installed (pycuda itself needs none)."""
    for name in (ctypes.util.find_library("cudart"), "libcudart.so"):
        if name:
            try:
                return ctypes.CDLL(name)
            except OSError:
                continue
    return None


def clear_error() -> str:
    """Reset the CUDA runtime's last error (after a failed graph capture, as trtexec does);
    the error's name, or "" when there was none or no shared libcudart is loaded. (The driver
    API pycuda uses keeps no last error: its calls return theirs.)"""
    cudart = _libcudart()
    if cudart is None:
        return ""
    error = cudart.cudaGetLastError()
    if not error:
        return ""
    cudart.cudaGetErrorName.restype = ctypes.c_char_p
    return (cudart.cudaGetErrorName(error) or b"").decode() or f"cudaError {error}"


class CudaGraph:
    """Work captured once from a stream and replayed with one launch.

    ``with graph.capture(stream): <async work on stream>`` records instead of running;
    :meth:`launch` replays it. Pointers and kernel parameters are frozen at capture: a graph
    is valid only while the buffers and the shapes it was captured with stay. A failure in
    the body ends the capture, discards the partial graph and re-raises; an invalidated
    capture raises :class:`CudaError`.
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
        _check(self._lib.cuStreamBeginCapture_v2(handle, ctypes.c_int(_CAPTURE_MODE_THREAD_LOCAL)), "cuStreamBeginCapture")
        try:
            yield self
        except BaseException:
            self._lib.cuStreamEndCapture(handle, ctypes.byref(self._graph))
            self.destroy()
            raise
        result = self._lib.cuStreamEndCapture(handle, ctypes.byref(self._graph))
        if result != 0:
            self.destroy()
            _check(result, "cuStreamEndCapture (the capture was invalidated)")
        self._instantiate()

    def _instantiate(self) -> None:
        with_flags = getattr(self._lib, "cuGraphInstantiateWithFlags", None)  # CUDA 11.4+ drivers
        if with_flags is not None:
            result = with_flags(ctypes.byref(self._exec), self._graph, ctypes.c_ulonglong(0))
        else:  # an older driver's five-argument cuGraphInstantiate
            legacy = getattr(self._lib, "cuGraphInstantiate_v2", None)
            if legacy is None:
                raise CudaError("this CUDA driver has no cuGraphInstantiate: update the NVIDIA driver for CUDA graphs")
            result = legacy(ctypes.byref(self._exec), self._graph, None, None, ctypes.c_size_t(0))
        if result != 0:
            self.destroy()
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


def cuda_version() -> Optional[Tuple[int, int]]:
    """The driver's CUDA version, e.g. (12, 6), for messages and ``fcn-edge doctor``."""
    try:
        version = _driver().get_driver_version()
    except Exception:  # no driver, or pycuda without one: doctor reports it as absent
        return None
    return version // 1000, (version % 1000) // 10
