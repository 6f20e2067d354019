"""FakeTensorRT's runtime half: an engine to run fcn-edge's TensorRT backend control flow.

A fake, not a model of TensorRT: its "network" copies the first bytes of the uint8 NHWC
input to a uint8 (N, H, W) mask. What it does follow is TensorRT's documented contract for
the execution context, so that backend code which breaks it fails here:

- ``set_input_shape`` returns False outside the optimisation profile;
- every I/O tensor needs an address before ``execute_async_v3`` (else it returns False);
- after ``set_input_shape`` the context's internal state is updated by the next *plain*
  ``execute_async_v3`` ("call enqueueV3() once after an input shape change to update
  internal state" before capturing a CUDA graph); doing it inside a stream capture is
  illegal and invalidates the capture (the enqueue returns False);
- an enqueue's kernels are fixed when enqueued or captured: replaying a captured graph after
  the context's state moved to another shape is undefined (here: the mask comes out 0xEE).

The kernels run through a ``kernels`` object: :class:`fake_cuda.HostKernels` (host memory),
or :class:`DriverKernels` (real device memory through libcuda, for the GPU-marked tests).
"""

from __future__ import annotations

import ctypes
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from fake_tensorrt import _enum

ENGINE_BYTES = b"fake-runtime-engine"


class DriverKernels:
    """The fake network's copy on a real GPU (libcuda), for tests with a device."""

    def __init__(self):
        self.lib = ctypes.CDLL("libcuda.so.1")

    def capturing(self, stream_handle: int) -> bool:
        status = ctypes.c_int()
        self.lib.cuStreamIsCapturing(ctypes.c_void_p(stream_handle), ctypes.byref(status))
        return status.value != 0

    def invalidate(self, stream_handle: int) -> None:
        # a synchronous copy on a capturing stream's context is what TensorRT's state update
        # would do; it invalidates the capture
        self.lib.cuCtxSynchronize()

    def copy(self, dst: int, src: int, nbytes: int, stream_handle: int, valid: Callable[[], bool]) -> None:
        self.lib.cuMemcpyDtoDAsync_v2(ctypes.c_uint64(dst), ctypes.c_uint64(src), ctypes.c_size_t(nbytes),
                                      ctypes.c_void_p(stream_handle))


def make_fake_trt_runtime(kernels: Any, in_shape=(-1, 48, 64, 3), profile=((1, 48, 64, 3), (2, 48, 64, 3)),
                          version: str = "10.3.0") -> Any:
    """A tensorrt-like object whose Runtime deserialises :data:`ENGINE_BYTES` into the fake engine."""
    import types

    trt = types.SimpleNamespace(__version__=version, FAKE=True)
    trt.TensorIOMode = _enum("TensorIOMode", ["NONE", "INPUT", "OUTPUT"])
    trt.DataType = _enum("DataType", ["FLOAT", "HALF", "INT8", "INT32", "BOOL", "UINT8"])
    trt.executions = 0  # plain and captured enqueues that TensorRT accepted
    trt.contexts = []

    class Logger:
        WARNING = 2

        def __init__(self, severity=None):
            self.severity = severity

    class ExecutionContext:
        def __init__(self):
            self.shape: Optional[Tuple[int, ...]] = None
            self.state: Optional[Tuple[int, ...]] = None  # the shape the internal state belongs to
            self.addresses: Dict[str, int] = {}
            self.captures = 0
            trt.contexts.append(self)

        def set_input_shape(self, name: str, shape) -> bool:
            shape = tuple(int(d) for d in shape)
            low, high = profile
            if name != "input" or len(shape) != len(low) or not all(a <= d <= b for a, d, b in zip(low, shape, high)):
                return False
            self.shape = shape
            return True

        def get_tensor_shape(self, name: str):
            return self.shape if name == "input" else self.shape[:3]

        def set_tensor_address(self, name: str, pointer: int) -> bool:
            self.addresses[name] = int(pointer)
            return True

        def execute_async_v3(self, stream_handle: int) -> bool:
            if set(self.addresses) != {"input", "mask"} or self.shape is None:
                return False
            capturing = kernels.capturing(stream_handle)
            if capturing:
                self.captures += 1
            if self.state != self.shape:
                if capturing:  # the state update is synchronous work: illegal while capturing
                    kernels.invalidate(stream_handle)
                    return False
                self.state = self.shape
            token = self.shape
            kernels.copy(self.addresses["mask"], self.addresses["input"], int(np.prod(self.shape[:3])),
                         stream_handle, lambda: self.state == token)
            trt.executions += 1
            return True

    class Engine:
        num_io_tensors = 2

        def get_tensor_name(self, i: int) -> str:
            return ("input", "mask")[i]

        def get_tensor_mode(self, name: str):
            return trt.TensorIOMode.INPUT if name == "input" else trt.TensorIOMode.OUTPUT

        def get_tensor_dtype(self, name: str):
            return trt.DataType.UINT8

        def get_tensor_shape(self, name: str):
            return in_shape if name == "input" else in_shape[:3]

        def get_tensor_profile_shape(self, name: str, index: int):
            return profile[0], profile[0], profile[1]

        def create_execution_context(self) -> ExecutionContext:
            return ExecutionContext()

    class Runtime:
        def __init__(self, logger):
            self.engine_host_code_allowed = False

        def deserialize_cuda_engine(self, data: bytes) -> Optional[Engine]:
            return Engine() if bytes(data) == ENGINE_BYTES else None

    trt.Logger, trt.Runtime = Logger, Runtime
    return trt


def fake_meta(max_batch: int = 2):
    """ModelMeta of the fake engine: uint8 NHWC frames in, a uint8 mask out."""
    from fcn_edge.artifacts import meta_for_classes

    return meta_for_classes("fake", [f"c{i}" for i in range(256)], input_size=(48, 64), input_layout="NHWC",
                            input_dtype="uint8", channel_order="BGR", output_kind="mask", output_dtype="uint8",
                            output_name="mask", max_batch=max_batch)
