"""The CUDA-buffer interface (:mod:`fcn_edge.runtime.cuda_api`) on cuda-python.

NVIDIA's own bindings, as TensorRT's samples use them since 10.14: the CUDA runtime API of
``cuda.bindings.runtime`` (``cuda.cudart`` in cuda-python before 12.6). It installs from
wheels, with no compiler and no CUDA toolkit; its CUDA major must not be newer than the
driver's (cuda-python 12.x for a CUDA 12 driver such as JetPack 6's). Every call returns
``(error, *values)``; :func:`_call` turns an error into :class:`CudaError` naming the call.

The runtime API works on the device's primary context, the one TensorRT uses:
``cudaSetDevice`` makes it current on the calling thread, so a :class:`CudaContext` is
"pushed" by setting its device (and popped by restoring the previous one) and a Segmenter
made on one thread runs on another. Every TensorRT stream-capture rule of the backend holds
here as with pycuda; the graph calls are the runtime's own.
"""

from __future__ import annotations

import ctypes
import sys
import threading
import weakref
from contextlib import contextmanager
from typing import Any, Iterator, List, Optional, Tuple

import numpy as np

from fcn_edge.errors import MissingDependencyError
from fcn_edge.runtime.cuda_api import ContextScope, CudaError

NAME = "cuda-python"
INSTALL = "pip install cuda-python  (its CUDA major must not exceed the driver's: 'cuda-python<13' for CUDA 12)"

_module: Optional[Any] = None
_lock = threading.Lock()


def _cudart() -> Any:
    """``cuda.bindings.runtime`` (or the older ``cuda.cudart``), imported on first use."""
    global _module
    if _module is None:
        with _lock:
            try:
                from cuda.bindings import runtime as cudart
            except ImportError:
                try:
                    from cuda import cudart  # cuda-python < 12.6
                except ImportError as exc:
                    raise MissingDependencyError(
                        f"the Python package 'cuda-python' is not installed (needed for running TensorRT engines "
                        f"with cuda-python): install it with: {INSTALL}. Import error: {exc}"
                    ) from exc
            _module = cudart
    return _module


def _error_text(cudart: Any, error: Any) -> str:
    try:
        _, name = cudart.cudaGetErrorName(error)
        _, text = cudart.cudaGetErrorString(error)
        return f"{name.decode()} ({text.decode()})"
    except Exception:  # noqa: BLE001 - the error itself is what matters
        return f"cudaError {int(error)}"


def _call(what: str, result: Any) -> Any:
    """The value(s) of a cuda-python call, or :class:`CudaError` naming ``what`` and the error."""
    error, *values = result if isinstance(result, tuple) else (result,)
    if int(error) != 0:
        raise CudaError(f"{what} failed: {_error_text(_cudart(), error)}")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def device_count() -> int:
    cudart = _cudart()
    return int(_call("cudaGetDeviceCount", cudart.cudaGetDeviceCount()))


class CudaContext(ContextScope):
    """Device ``device``'s primary context, current on each thread that enters it.

    Use as ``with ctx:`` (or ``ctx.push()``/``ctx.pop()``) around every CUDA call; nesting
    is allowed. The runtime API retains the primary context for the process, so
    :meth:`close` only ends this object's use of it.
    """

    def __init__(self, device: int = 0):
        cudart = _cudart()
        count = device_count()
        if not 0 <= device < count:
            raise CudaError(f"CUDA device {device} does not exist; this machine has {count}")
        self._cudart = cudart
        self.device_index = device
        props = _call(f"cudaGetDeviceProperties({device})", cudart.cudaGetDeviceProperties(device))
        name = props.name
        self._name = (name.split(b"\0")[0].decode() if isinstance(name, bytes) else str(name)).strip()
        self._capability = (int(props.major), int(props.minor))
        self._memory = int(props.totalGlobalMem)
        self._previous = threading.local()
        self._closed = False
        with self:
            pass  # creates the primary context now, not inside the first timed call

    @property
    def api(self):
        """This implementation (the module), for the objects the backend makes next."""
        return sys.modules[__name__]

    @property
    def name(self) -> str:
        return self._name

    @property
    def compute_capability(self) -> Tuple[int, int]:
        return self._capability

    @property
    def total_memory(self) -> int:
        return self._memory

    def push(self) -> None:
        if self._closed:
            raise CudaError("the CUDA context is closed")
        stack: List[int] = self._previous.__dict__.setdefault("stack", [])
        stack.append(int(_call("cudaGetDevice", self._cudart.cudaGetDevice())))
        _call(f"cudaSetDevice({self.device_index})", self._cudart.cudaSetDevice(self.device_index))

    def pop(self) -> None:
        stack: List[int] = self._previous.__dict__.setdefault("stack", [])
        if not stack:
            raise CudaError("pop of a CUDA context that is not pushed on this thread")
        previous = stack.pop()
        if previous != self.device_index:
            _call(f"cudaSetDevice({previous})", self._cudart.cudaSetDevice(previous))

    def synchronize(self) -> None:
        with self:
            _call("cudaDeviceSynchronize", self._cudart.cudaDeviceSynchronize())

    def close(self) -> None:
        self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed


class Stream:
    """One CUDA stream; ``handle`` is the integer TensorRT's execute_async_v3 takes."""

    def __init__(self):
        self._cudart = _cudart()
        self._stream = _call("cudaStreamCreate", self._cudart.cudaStreamCreate())

    @property
    def handle(self) -> int:
        return int(self._stream)

    @property
    def native(self) -> Any:
        return self._stream

    def synchronize(self) -> None:
        _call("cudaStreamSynchronize", self._cudart.cudaStreamSynchronize(self._stream))

    def __del__(self) -> None:
        stream, self._stream = getattr(self, "_stream", None), None
        if stream is not None:
            self._cudart.cudaStreamDestroy(stream)


class DeviceBuffer:
    """``nbytes`` of device memory, allocated once; ``ptr`` goes to set_tensor_address."""

    def __init__(self, nbytes: int):
        self._cudart = _cudart()
        self.nbytes = int(nbytes)
        self._ptr: Optional[int] = int(_call(f"cudaMalloc({self.nbytes})", self._cudart.cudaMalloc(max(self.nbytes, 1))))

    @property
    def ptr(self) -> int:
        if self._ptr is None:
            raise CudaError("device buffer already freed")
        return self._ptr

    def free(self) -> None:
        if self._ptr is not None:
            ptr, self._ptr = self._ptr, None
            _call("cudaFree", self._cudart.cudaFree(ptr))


def _free_host(cudart: Any, ptr: int) -> None:
    cudart.cudaFreeHost(ptr)


def pinned_empty(shape, dtype) -> np.ndarray:
    """A page-locked host array (cudaHostAlloc): async copies from/to it overlap with compute.
    The memory is freed with cudaFreeHost when the array is garbage."""
    cudart = _cudart()
    dtype = np.dtype(dtype)
    shape = tuple(int(d) for d in shape)
    nbytes = max(int(np.prod(shape)) * dtype.itemsize, 1)
    ptr = int(_call(f"cudaHostAlloc({nbytes})", cudart.cudaHostAlloc(nbytes, cudart.cudaHostAllocPortable)))
    raw = (ctypes.c_uint8 * nbytes).from_address(ptr)
    weakref.finalize(raw, _free_host, cudart, ptr)
    return np.frombuffer(raw, np.uint8, count=int(np.prod(shape)) * dtype.itemsize).view(dtype).reshape(shape)


def _copy(what: str, dst: int, src: int, nbytes: int, kind: Any, stream: Stream) -> None:
    cudart = _cudart()
    _call(what, cudart.cudaMemcpyAsync(dst, src, nbytes, kind, stream.native))


def copy_htod_async(dst: DeviceBuffer, src: np.ndarray, stream: Stream) -> None:
    if src.nbytes > dst.nbytes:
        raise CudaError(f"host->device copy of {src.nbytes} bytes into a {dst.nbytes}-byte buffer")
    if not src.flags.c_contiguous:
        raise CudaError("host->device copy needs a C-contiguous array")
    kind = _cudart().cudaMemcpyKind.cudaMemcpyHostToDevice
    _copy("cudaMemcpyAsync (host to device)", dst.ptr, src.ctypes.data, src.nbytes, kind, stream)


def copy_dtoh_async(dst: np.ndarray, src: DeviceBuffer, stream: Stream) -> None:
    if dst.nbytes > src.nbytes:
        raise CudaError(f"device->host copy of {dst.nbytes} bytes from a {src.nbytes}-byte buffer")
    if not dst.flags.c_contiguous:
        raise CudaError("device->host copy needs a C-contiguous array")
    kind = _cudart().cudaMemcpyKind.cudaMemcpyDeviceToHost
    _copy("cudaMemcpyAsync (device to host)", dst.ctypes.data, src.ptr, dst.nbytes, kind, stream)


def copy_dtod_async(dst: DeviceBuffer, src: DeviceBuffer, nbytes: int, stream: Stream) -> None:
    kind = _cudart().cudaMemcpyKind.cudaMemcpyDeviceToDevice
    _copy("cudaMemcpyAsync (device to device)", dst.ptr, src.ptr, int(nbytes), kind, stream)


class Event:
    """A CUDA event, to time stages on the GPU's own clock."""

    def __init__(self):
        self._cudart = _cudart()
        self._event = _call("cudaEventCreate", self._cudart.cudaEventCreate())

    def record(self, stream: Stream) -> None:
        _call("cudaEventRecord", self._cudart.cudaEventRecord(self._event, stream.native))

    def synchronize(self) -> None:
        _call("cudaEventSynchronize", self._cudart.cudaEventSynchronize(self._event))

    def ms_until(self, later: "Event") -> float:
        return float(_call("cudaEventElapsedTime", self._cudart.cudaEventElapsedTime(self._event, later._event)))

    def __del__(self) -> None:
        event, self._event = getattr(self, "_event", None), None
        if event is not None:
            self._cudart.cudaEventDestroy(event)


class CudaGraph:
    """Work captured once from a stream and replayed with one launch (the runtime's graphs).

    Same contract as pycuda's twin: a failure in the body ends the capture, discards the
    partial graph and re-raises; an invalidated capture raises :class:`CudaError`.
    """

    def __init__(self):
        self._cudart = _cudart()
        self._graph: Any = None
        self._exec: Any = None

    @contextmanager
    def capture(self, stream: Stream) -> Iterator["CudaGraph"]:
        cudart = self._cudart
        if self._exec is not None:
            raise CudaError("this CUDA graph was already captured")
        mode = cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        _call("cudaStreamBeginCapture", cudart.cudaStreamBeginCapture(stream.native, mode))
        try:
            yield self
        except BaseException:
            error, graph = cudart.cudaStreamEndCapture(stream.native)
            self._graph = graph if int(error) == 0 else None
            self.destroy()
            raise
        error, graph = cudart.cudaStreamEndCapture(stream.native)
        if int(error) != 0:
            raise CudaError(f"cudaStreamEndCapture (the capture was invalidated) failed: {_error_text(cudart, error)}")
        self._graph = graph
        try:
            self._exec = _call("cudaGraphInstantiateWithFlags", cudart.cudaGraphInstantiateWithFlags(graph, 0))
        except CudaError:
            self.destroy()
            raise

    @property
    def ready(self) -> bool:
        return self._exec is not None

    def launch(self, stream: Stream) -> None:
        if self._exec is None:
            raise CudaError("launch of a CUDA graph that was not captured")
        _call("cudaGraphLaunch", self._cudart.cudaGraphLaunch(self._exec, stream.native))

    def destroy(self) -> None:
        if self._exec is not None:
            self._cudart.cudaGraphExecDestroy(self._exec)
            self._exec = None
        if self._graph is not None:
            self._cudart.cudaGraphDestroy(self._graph)
            self._graph = None


def clear_error() -> str:
    """Reset the CUDA runtime's last error (after a failed graph capture, as trtexec does);
    the error's name, or "" when there was none."""
    cudart = _cudart()
    error = cudart.cudaGetLastError()
    error = error[0] if isinstance(error, tuple) else error
    return "" if int(error) == 0 else _error_text(cudart, error)


def cuda_version() -> Optional[Tuple[int, int]]:
    """The driver's CUDA version, e.g. (12, 6), for messages; None without a driver."""
    try:
        version = int(_call("cudaDriverGetVersion", _cudart().cudaDriverGetVersion()))
    except Exception:  # noqa: BLE001 - a fact for messages
        return None
    return (version // 1000, (version % 1000) // 10) if version else None
