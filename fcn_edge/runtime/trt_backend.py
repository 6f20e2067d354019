"""TensorRT backend: name-based I/O, pinned host buffers, one stream, optional CUDA graph.

Per call: one async host-to-device copy of the (pinned) input, the engine, one async
device-to-host copy of the output into pinned memory, all on one CUDA stream, each stage
timed with CUDA events. Device buffers are allocated once, for the largest shape of the
engine's optimisation profile; nothing is allocated per frame. Only the name-based tensor
API is used (``num_io_tensors``, ``get_tensor_name``, ``set_input_shape``,
``set_tensor_address``, ``execute_async_v3``), which TensorRT 8.5 to 11.x all have. CUDA work
goes through the CUDA-buffer interface (:mod:`fcn_edge.runtime.cuda_api`): pycuda or
cuda-python, chosen by :func:`fcn_edge.runtime.cuda_api.select_cuda`.

CUDA graphs (``cuda_graph=True``) follow TensorRT's rules for them. A graph replays the
kernels it captured with the parameters of the shape they were captured at, and the
execution context's internal state belongs to the last shape it *ran*: so a graph is
captured only after a plain ``execute_async_v3`` at the current shape ("call enqueueV3()
once after an input shape change to update internal state"), and any shape change drops it.
A capture that fails clears the CUDA error and turns graphs off for this context, as
trtexec does. Only the engine is captured: the copies stay outside, so their times are
reported on the graph path too.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Optional, Tuple

import numpy as np

from fcn_edge.artifacts import ModelMeta
from fcn_edge.artifacts.dtypes import trt_dtype_name
from fcn_edge.errors import EngineMismatchError, MetaError, RuntimeInputError
from fcn_edge.optional import require
from fcn_edge.runtime.backend import Backend
from fcn_edge.runtime.result import InferTimings

if TYPE_CHECKING:  # annotations only; tensorrt is imported when a backend is made
    import tensorrt as trt  # noqa: F401

log = logging.getLogger(__name__)

# The dtypes the runtime feeds and reads (trt.nptype is a Python helper whose presence
# differs between releases, so the names come from fcn_edge.artifacts.dtypes).
RUNTIME_DTYPES = ("float32", "float16", "int8", "int32", "int64", "uint8", "bool")
# Where the lean runtime library of the TensorRT that built a version-compatible engine
# with --exclude-lean-runtime is (libnvinfer_lean.so of that release).
LEAN_RUNTIME_ENV = "FCN_EDGE_LEAN_RUNTIME"


def numpy_dtype(trt_dtype: Any) -> np.dtype:
    name = trt_dtype_name(trt_dtype)
    if name not in RUNTIME_DTYPES:
        raise MetaError(f"TensorRT tensor type {name} has no numpy counterpart the runtime handles")
    return np.dtype(name)


def make_runtime(trt: Any, logger: Any, source: str, host_code_allowed: bool,
                 lean_runtime: Optional[str]) -> "Tuple[trt.IRuntime, ...]":
    """The runtime that deserialises the engine, last; the runtimes it needs alive before it.

    A version-compatible engine with its lean runtime embedded is host code, which TensorRT
    loads only with ``engine_host_code_allowed`` (the caller has checked the engine's SHA-256
    against its sidecar); one built with its lean runtime excluded is run by the lean runtime
    library ``lean_runtime`` of the TensorRT that built it (``load_runtime``)."""
    runtime = trt.Runtime(logger)
    if lean_runtime:
        lean = runtime.load_runtime(str(lean_runtime))
        if lean is None:
            raise EngineMismatchError(
                f"{source}: TensorRT {trt.__version__} could not load the lean runtime {lean_runtime} "
                f"(${LEAN_RUNTIME_ENV}); it must be libnvinfer_lean.so of the TensorRT that built the engine"
            )
        return runtime, lean
    if host_code_allowed:
        runtime.engine_host_code_allowed = True
    return (runtime,)


class _Tensor:
    """One I/O tensor: name, dtype, and its device buffer sized for the largest shape."""

    def __init__(self, name: str, dtype: np.dtype, max_shape: Tuple[int, ...], is_input: bool):
        self.name = name
        self.dtype = dtype
        self.max_shape = max_shape
        self.is_input = is_input
        self.device = None  # a DeviceBuffer of the CUDA implementation
        self.shape: Tuple[int, ...] = max_shape

    @property
    def max_nbytes(self) -> int:
        return int(np.prod(self.max_shape)) * self.dtype.itemsize


class TrtBackend(Backend):
    name = "tensorrt"

    @classmethod
    def from_file(cls, path, device: int = 0, cuda_graph: bool = False, cuda: Optional[str] = None,
                  lean_runtime: Optional[str] = None) -> "TrtBackend":
        """Deserialise ``path`` once its sidecar says it was built for this TensorRT and GPU
        (or is version- or hardware-compatible with them) and the engine is the one the
        sidecar describes.

        The engine is read once: its bytes are hashed against the sidecar's ``engine_sha256``
        (a replaced engine is refused with the command that rebuilds it) and deserialised.
        ``cuda``: pycuda | cuda-python | auto (default ``$FCN_EDGE_CUDA``, else auto).
        ``lean_runtime``: the libnvinfer_lean.so of the TensorRT that built a version-compatible
        engine whose lean runtime was excluded (default ``$FCN_EDGE_LEAN_RUNTIME``).
        """
        from fcn_edge.artifacts import check_engine_compatible, check_engine_file, read_engine_sidecar
        from fcn_edge.runtime.cuda_api import select_cuda

        path = Path(path)
        meta, record = read_engine_sidecar(path)
        engine_bytes = path.read_bytes()
        check_engine_file(path, record, engine_bytes)
        trt = require("tensorrt", "running TensorRT engines")
        lean_runtime = lean_runtime or os.environ.get(LEAN_RUNTIME_ENV) or None
        context = select_cuda(cuda).CudaContext(device)
        try:
            check_engine_compatible(record, trt.__version__, context.name, context.compute_capability, engine_path=path,
                                    lean_runtime_loaded=bool(lean_runtime))
            return cls(engine_bytes, meta, context, trt=trt, cuda_graph=cuda_graph, source=str(path),
                       host_code_allowed=record.lean_runtime == "embedded",
                       lean_runtime=lean_runtime if record.lean_runtime == "excluded" else None)
        except BaseException:
            context.close()
            raise

    def __init__(self, engine_bytes: bytes, meta: ModelMeta, context, trt=None, cuda_graph: bool = False,
                 source: str = "<engine>", host_code_allowed: bool = False, lean_runtime: Optional[str] = None):
        """``context``: a CudaContext of a CUDA implementation (its ``api`` makes the rest).
        ``host_code_allowed``: the engine is version-compatible with its lean runtime embedded
        and trusted (its SHA-256 matched the sidecar); ``lean_runtime``: the library to load
        for one whose lean runtime was excluded."""
        super().__init__(meta)
        self._cb = context.api
        self._trt = trt or require("tensorrt", "running TensorRT engines")
        self.source = source
        self.cuda = context
        self.use_cuda_graph = cuda_graph
        self._host_code_allowed = host_code_allowed
        self._lean_runtime = lean_runtime
        self._graph: Optional[Any] = None  # captured at _current_shape, after a plain run there
        self._graphs_off = ""  # why graphs stopped on this context ("" while they may be used)
        self._state_ready = False  # the last enqueue ran plainly at _current_shape
        self._current_shape: Optional[Tuple[int, ...]] = None
        self._host_in: Optional[np.ndarray] = None
        self._host_out: Optional[np.ndarray] = None
        self._tensors: List[_Tensor] = []
        self._events: List[Any] = []
        self.stream = None
        self.engine = self.context = self.runtime = None
        self._runtimes: Tuple[Any, ...] = ()
        with self.cuda:
            try:
                self._open(engine_bytes)
            except BaseException:
                self._release()
                raise

    # -- setup -------------------------------------------------------------------------
    def _open(self, engine_bytes: bytes) -> None:
        trt, cb = self._trt, self._cb
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtimes = make_runtime(trt, self._logger, self.source, self._host_code_allowed, self._lean_runtime)
        self.runtime = self._runtimes[-1]
        self.engine = self.runtime.deserialize_cuda_engine(engine_bytes)
        if self.engine is None:
            raise EngineMismatchError(
                f"{self.source}: TensorRT {trt.__version__} could not deserialise the engine (see the "
                "TensorRT log above); it was probably built by another TensorRT version or for another "
                "GPU: rebuild it here with `fcn-edge build-engine`"
            )
        self.context = self.engine.create_execution_context()
        if self.context is None:
            raise EngineMismatchError(f"{self.source}: TensorRT could not create an execution context "
                                      "(out of GPU memory?)")
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        if len(inputs) != 1:
            raise MetaError(f"{self.source}: the runtime feeds one image input; the engine has inputs {inputs}")
        self.input_name = inputs[0]
        self.output_name = self.meta.output_name if self.meta.output_name in outputs else (
            outputs[0] if len(outputs) == 1 else None)
        if self.output_name is None:
            raise MetaError(f"{self.source}: ModelMeta names output {self.meta.output_name!r}; the engine's "
                            f"outputs are {outputs}")
        # The input's range: fixed dims from the engine, dynamic ones from profile 0.
        shape = tuple(self.engine.get_tensor_shape(self.input_name))
        if any(d < 0 for d in shape):
            lo, _opt, hi = self.engine.get_tensor_profile_shape(self.input_name, 0)
            self.min_shape, self.max_shape = tuple(lo), tuple(hi)
        else:
            self.min_shape = self.max_shape = shape
        self.fixed_shape = self.min_shape == self.max_shape
        # Resolve every output's largest shape by setting the largest input shape.
        self._set_shape(self.max_shape)
        for name in names:
            is_input = name == self.input_name
            max_shape = self.max_shape if is_input else tuple(self.context.get_tensor_shape(name))
            if any(d < 0 for d in max_shape):
                raise MetaError(f"{self.source}: output {name} has a data-dependent shape {max_shape}; "
                                "the runtime needs shapes that follow from the input")
            tensor = _Tensor(name, numpy_dtype(self.engine.get_tensor_dtype(name)), max_shape, is_input)
            tensor.device = cb.DeviceBuffer(tensor.max_nbytes)
            if not self.context.set_tensor_address(name, tensor.device.ptr):
                raise RuntimeInputError(f"{self.source}: TensorRT refused the device address of tensor {name}")
            self._tensors.append(tensor)
        self._in = next(t for t in self._tensors if t.is_input)
        if self._in.dtype != np.dtype(self.meta.input_dtype):
            raise MetaError(
                f"{self.source}: the engine's input {self.input_name} is {self._in.dtype} but its ModelMeta "
                f"says {self.meta.input_dtype}; the sidecar belongs to another build: rebuild the engine"
            )
        self._out = next(t for t in self._tensors if t.name == self.output_name)
        self._out.shape = tuple(self.context.get_tensor_shape(self.output_name))
        self._host_in = cb.pinned_empty((self._in.max_nbytes,), np.uint8)
        self._host_out = cb.pinned_empty((self._out.max_nbytes,), np.uint8)
        self.stream = cb.Stream()
        self._events = [cb.Event() for _ in range(4)]

    # -- facts -------------------------------------------------------------------------
    @property
    def max_batch(self) -> Optional[int]:
        return int(self.max_shape[0])

    @property
    def input_shape(self) -> Tuple[Optional[int], ...]:
        return tuple(lo if lo == hi else None for lo, hi in zip(self.min_shape, self.max_shape))

    @property
    def description(self) -> str:
        graph = ", CUDA graph" if self.use_cuda_graph and not self._graphs_off else ""
        return f"TensorRT {self._trt.__version__} on {self.cuda.name} ({self._cb.NAME}){graph}"

    def host_input(self, shape: Tuple[int, ...], dtype) -> np.ndarray:
        """A view of the pinned input buffer: preprocess straight into it, no extra copy."""
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape)) * dtype.itemsize
        if dtype != self._in.dtype or nbytes > self._in.max_nbytes:
            return np.empty(shape, dtype)  # infer() will reject or copy it
        return self._host_in[:nbytes].view(dtype).reshape(shape)

    # -- run ---------------------------------------------------------------------------
    def _check_shape(self, batch: np.ndarray) -> None:
        if batch.dtype != self._in.dtype:
            raise RuntimeInputError(f"{self.source}: input {self.input_name} wants {self._in.dtype}, got {batch.dtype}")
        if len(batch.shape) != len(self.min_shape) or any(
            not lo <= d <= hi for d, lo, hi in zip(batch.shape, self.min_shape, self.max_shape)
        ):
            raise RuntimeInputError(
                f"{self.source}: input shape {batch.shape} is outside the engine's profile "
                f"{self.min_shape} .. {self.max_shape}; rebuild the engine with a wider --min/--max range"
            )

    def _set_shape(self, shape: Tuple[int, ...]) -> None:
        """A new input shape: the captured graph no longer applies, and TensorRT updates the
        context's internal state on the next plain enqueue."""
        self._drop_graph()
        if not self.context.set_input_shape(self.input_name, shape):
            raise RuntimeInputError(f"{self.source}: TensorRT rejected input shape {shape}")
        self._current_shape = shape
        self._state_ready = False
        if self._tensors:
            self._out.shape = tuple(self.context.get_tensor_shape(self.output_name))

    def infer(self, batch: np.ndarray) -> Tuple[np.ndarray, InferTimings]:
        if self._closed:
            raise RuntimeInputError(f"{self.source}: the TensorRT backend is closed")
        self._check_shape(batch)
        with self.cuda:
            shape = tuple(batch.shape)
            host_in = self._host_in[: batch.nbytes].view(batch.dtype).reshape(shape)
            if host_in.ctypes.data != batch.ctypes.data:
                np.copyto(host_in, batch)  # not preprocessed into our pinned buffer
            if shape != self._current_shape:
                self._set_shape(shape)
            out_nbytes = int(np.prod(self._out.shape)) * self._out.dtype.itemsize
            host_out = self._host_out[:out_nbytes].view(self._out.dtype).reshape(self._out.shape)
            graph = self._graph_for_this_shape()
            cb, stream = self._cb, self.stream
            e0, e1, e2, e3 = self._events
            e0.record(stream)
            cb.copy_htod_async(self._in.device, host_in, stream)
            e1.record(stream)
            if graph is not None:
                graph.launch(stream)
            else:
                self._execute()
            e2.record(stream)
            cb.copy_dtoh_async(host_out, self._out.device, stream)
            e3.record(stream)
            e3.synchronize()
            self._state_ready = True  # the context has run at this shape
            return host_out, InferTimings(e0.ms_until(e1), e1.ms_until(e2), e2.ms_until(e3))

    def _execute(self) -> None:
        if not self.context.execute_async_v3(self.stream.handle):
            raise RuntimeInputError(f"{self.source}: TensorRT execute_async_v3 failed (see the TensorRT log)")

    def _graph_for_this_shape(self) -> Optional[Any]:
        """The CUDA graph of the engine at the current shape, captured now if the context
        has run plainly at this shape since it was set; None when not (yet) used."""
        if not self.use_cuda_graph or self._graphs_off or not self._state_ready:
            return None
        if self._graph is None:
            graph = self._cb.CudaGraph()
            try:
                with graph.capture(self.stream):
                    self._execute()
            except Exception as exc:  # an engine with work that cannot be captured
                cleared = self._cb.clear_error()
                self._graphs_off = f"capture failed at shape {self._current_shape}: {exc}" + (
                    f" (cleared {cleared})" if cleared else "")
                log.warning("%s: CUDA graph %s; running without graphs on this context", self.source, self._graphs_off)
                return None
            self._graph = graph
        return self._graph

    def _drop_graph(self) -> None:
        if self._graph is not None:
            self._graph.destroy()
            self._graph = None

    # -- lifetime ----------------------------------------------------------------------
    def _release(self) -> None:
        """Free in reverse order of creation, with the context current (TensorRT needs it)."""
        stream = getattr(self, "stream", None)
        if stream is not None:
            stream.synchronize()
        self._drop_graph()
        for tensor in self._tensors:
            if tensor.device is not None:
                tensor.device.free()
                tensor.device = None
        self._tensors = []
        self.context = None
        self.engine = None
        self.runtime = None
        self._runtimes = ()
        self._host_in = self._host_out = None
        self._events = []
        self.stream = None

    def close(self) -> None:
        if self._closed:
            return
        if not self.cuda.closed:
            with self.cuda:
                self._release()
            self.cuda.close()
        super().close()
