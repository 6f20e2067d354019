"""TensorRT backend: name-based I/O, pinned host buffers, one stream, optional CUDA graph.

Per call: one async host-to-device copy of the (pinned) input, ``execute_async_v3``, one
async device-to-host copy of the output into pinned memory, all on one CUDA stream, timed
with CUDA events. Device buffers are allocated once, for the largest shape of the engine's
optimisation profile; nothing is allocated per frame. Only the name-based tensor API is used
(``num_io_tensors``, ``get_tensor_name``, ``set_input_shape``, ``set_tensor_address``,
``execute_async_v3``), which TensorRT 8.5 to 11.x all have. CUDA work goes through
:mod:`fcn_edge.runtime.cuda_buffers`, the one pycuda module.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from fcn_edge.artifacts import ModelMeta
from fcn_edge.artifacts.dtypes import trt_dtype_name
from fcn_edge.errors import EngineMismatchError, MetaError, RuntimeInputError
from fcn_edge.optional import require
from fcn_edge.runtime.backend import Backend
from fcn_edge.runtime.result import InferTimings

log = logging.getLogger(__name__)

# The dtypes the runtime feeds and reads (trt.nptype is a Python helper whose presence
# differs between releases, so the names come from fcn_edge.artifacts.dtypes).
RUNTIME_DTYPES = ("float32", "float16", "int8", "int32", "int64", "uint8", "bool")


def numpy_dtype(trt_dtype: Any) -> np.dtype:
    name = trt_dtype_name(trt_dtype)
    if name not in RUNTIME_DTYPES:
        raise MetaError(f"TensorRT tensor type {name} has no numpy counterpart the runtime handles")
    return np.dtype(name)


class _Tensor:
    """One I/O tensor: name, dtype, and its device buffer sized for the largest shape."""

    def __init__(self, name: str, dtype: np.dtype, max_shape: Tuple[int, ...], is_input: bool):
        self.name = name
        self.dtype = dtype
        self.max_shape = max_shape
        self.is_input = is_input
        self.device = None  # cuda_buffers.DeviceBuffer
        self.shape: Tuple[int, ...] = max_shape

    @property
    def max_nbytes(self) -> int:
        return int(np.prod(self.max_shape)) * self.dtype.itemsize


class TrtBackend(Backend):
    name = "tensorrt"

    @classmethod
    def from_file(cls, path, device: int = 0, cuda_graph: bool = False) -> "TrtBackend":
        """Deserialise ``path`` once its sidecar says it was built for this TensorRT and GPU
        and the engine is the one the sidecar describes.

        The engine is read once: its bytes are hashed against the sidecar's ``engine_sha256``
        (a replaced engine is refused with the command that rebuilds it) and deserialised.
        """
        from fcn_edge.artifacts import check_engine_compatible, check_engine_file, read_engine_sidecar
        from fcn_edge.runtime.cuda_buffers import CudaContext

        path = Path(path)
        meta, record = read_engine_sidecar(path)
        engine_bytes = path.read_bytes()
        check_engine_file(path, record, engine_bytes)
        trt = require("tensorrt", "running TensorRT engines")
        context = CudaContext(device)
        try:
            check_engine_compatible(record, trt.__version__, context.name, context.compute_capability, engine_path=path)
            return cls(engine_bytes, meta, context, trt=trt, cuda_graph=cuda_graph, source=str(path))
        except BaseException:
            context.close()
            raise

    def __init__(self, engine_bytes: bytes, meta: ModelMeta, context, trt=None, cuda_graph: bool = False,
                 source: str = "<engine>"):
        super().__init__(meta)
        from fcn_edge.runtime import cuda_buffers as cb

        self._cb = cb
        self._trt = trt or require("tensorrt", "running TensorRT engines")
        self.source = source
        self.cuda = context
        self.use_cuda_graph = cuda_graph
        self._graphs: Dict[Tuple[int, ...], Any] = {}
        self._graph_failed: set = set()
        self._warm_shapes: set = set()
        self._current_shape: Optional[Tuple[int, ...]] = None
        self._host_in: Optional[np.ndarray] = None
        self._host_out: Optional[np.ndarray] = None
        self._tensors: List[_Tensor] = []
        self.engine = self.context = self.runtime = None
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
        self.runtime = trt.Runtime(self._logger)
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
        self.context.set_input_shape(self.input_name, self.max_shape)
        for name in names:
            is_input = name == self.input_name
            max_shape = self.max_shape if is_input else tuple(self.context.get_tensor_shape(name))
            if any(d < 0 for d in max_shape):
                raise MetaError(f"{self.source}: output {name} has a data-dependent shape {max_shape}; "
                                "the runtime needs shapes that follow from the input")
            tensor = _Tensor(name, numpy_dtype(self.engine.get_tensor_dtype(name)), max_shape, is_input)
            tensor.device = cb.DeviceBuffer(tensor.max_nbytes)
            self.context.set_tensor_address(name, tensor.device.ptr)
            self._tensors.append(tensor)
        self._in = next(t for t in self._tensors if t.is_input)
        if self._in.dtype != np.dtype(self.meta.input_dtype):
            raise MetaError(
                f"{self.source}: the engine's input {self.input_name} is {self._in.dtype} but its ModelMeta "
                f"says {self.meta.input_dtype}; the sidecar belongs to another build: rebuild the engine"
            )
        self._out = next(t for t in self._tensors if t.name == self.output_name)
        self._host_in = cb.pinned_empty((self._in.max_nbytes,), np.uint8)
        self._host_out = cb.pinned_empty((self._out.max_nbytes,), np.uint8)
        self.stream = cb.Stream()
        self._events = [cb.Event() for _ in range(4)]
        self._current_shape = self.max_shape

    # -- facts -------------------------------------------------------------------------
    @property
    def max_batch(self) -> Optional[int]:
        return int(self.max_shape[0])

    @property
    def input_shape(self) -> Tuple[Optional[int], ...]:
        return tuple(lo if lo == hi else None for lo, hi in zip(self.min_shape, self.max_shape))

    @property
    def description(self) -> str:
        graph = ", CUDA graph" if self.use_cuda_graph else ""
        return f"TensorRT {self._trt.__version__} on {self.cuda.name}{graph}"

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
                f"{self.min_shape} .. {self.max_shape}; rebuild the engine with a wider --shapes range"
            )

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
                if not self.context.set_input_shape(self.input_name, shape):
                    raise RuntimeInputError(f"{self.source}: TensorRT rejected input shape {shape}")
                self._current_shape = shape
                self._out.shape = tuple(self.context.get_tensor_shape(self.output_name))
            out_nbytes = int(np.prod(self._out.shape)) * self._out.dtype.itemsize
            host_out = self._host_out[:out_nbytes].view(self._out.dtype).reshape(self._out.shape)
            graph = self._graph_for(shape, host_in, host_out)
            e0, e1, e2, e3 = self._events
            if graph is not None:
                e0.record(self.stream)
                graph.launch(self.stream)
                e3.record(self.stream)
                e3.synchronize()
                return host_out, InferTimings(0.0, e0.ms_until(e3), 0.0)
            e0.record(self.stream)
            self._enqueue(host_in, host_out, (e1, e2))
            e3.record(self.stream)
            e3.synchronize()
            self._warm_shapes.add(shape)
            return host_out, InferTimings(e0.ms_until(e1), e1.ms_until(e2), e2.ms_until(e3))

    def _enqueue(self, host_in: np.ndarray, host_out: np.ndarray, events=None) -> None:
        cb = self._cb
        cb.copy_htod_async(self._in.device, host_in, self.stream)
        if events:
            events[0].record(self.stream)
        if not self.context.execute_async_v3(self.stream.handle):
            raise RuntimeInputError(f"{self.source}: TensorRT execute_async_v3 failed (see the TensorRT log)")
        if events:
            events[1].record(self.stream)
        cb.copy_dtoh_async(host_out, self._out.device, self.stream)

    def _graph_for(self, shape, host_in, host_out):
        """The CUDA graph for ``shape``, captured after one plain run; None when not used."""
        if not self.use_cuda_graph or shape in self._graph_failed:
            return None
        graph = self._graphs.get(shape)
        if graph is not None:
            return graph
        if shape not in self._warm_shapes:
            return None  # TensorRT wants one ordinary enqueue before capture
        graph = self._cb.CudaGraph()
        try:
            with graph.capture(self.stream):
                self._enqueue(host_in, host_out)
        except Exception as exc:  # e.g. an engine with layers that cannot be captured
            log.warning("%s: CUDA graph capture failed for shape %s (%s); running without a graph",
                        self.source, shape, exc)
            graph.destroy()
            self._graph_failed.add(shape)
            return None
        self._graphs[shape] = graph
        return graph

    # -- lifetime ----------------------------------------------------------------------
    def _release(self) -> None:
        """Free in reverse order of creation, with the context current (TensorRT needs it)."""
        stream = getattr(self, "stream", None)
        if stream is not None:
            stream.synchronize()
        for graph in self._graphs.values():
            graph.destroy()
        self._graphs.clear()
        for tensor in self._tensors:
            if tensor.device is not None:
                tensor.device.free()
                tensor.device = None
        self._tensors = []
        self.context = None
        self.engine = None
        self.runtime = None
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
