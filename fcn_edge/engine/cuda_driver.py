"""The few CUDA calls a build needs, through the driver API (libcuda) and ctypes.

A build needs the GPU's name and compute capability for the sidecar, and device memory
for the legacy INT8 calibrator's batches. libcuda ships with every NVIDIA driver (desktop
and JetPack) and its C ABI is stable, so this needs neither pycuda nor cuda-python. The
memory lives in the device's primary context, the one TensorRT's runtime API uses.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from fcn_edge.errors import EngineBuildError

_LIBRARY_NAMES = ("libcuda.so.1", "libcuda.so", "nvcuda.dll")
_CC_MAJOR = 75  # CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
_CC_MINOR = 76  # CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR


@dataclass(frozen=True)
class DeviceFacts:
    name: str
    compute_capability: Tuple[int, int]

    @property
    def capability_text(self) -> str:
        return f"{self.compute_capability[0]}.{self.compute_capability[1]}"


class CudaDriver:
    """libcuda, initialised, with device ``index``'s primary context made current."""

    def __init__(self, index: int = 0):
        self._lib = self._load()
        self._check(self._lib.cuInit(0), "cuInit")
        self.device = ctypes.c_int()
        self._check(self._lib.cuDeviceGet(ctypes.byref(self.device), index), f"cuDeviceGet({index})")
        self._context = ctypes.c_void_p()
        self._check(
            self._lib.cuDevicePrimaryCtxRetain(ctypes.byref(self._context), self.device),
            "cuDevicePrimaryCtxRetain",
        )
        self._check(self._lib.cuCtxSetCurrent(self._context), "cuCtxSetCurrent")

    @staticmethod
    def _load() -> ctypes.CDLL:
        names = list(_LIBRARY_NAMES)
        found = ctypes.util.find_library("cuda")
        if found:
            names.append(found)
        for name in names:
            try:
                return ctypes.CDLL(name)
            except OSError:
                continue
        raise EngineBuildError(
            "the CUDA driver library (libcuda.so.1) could not be loaded: building and running "
            "TensorRT engines needs an NVIDIA GPU with its driver installed"
        )

    def _check(self, result: int, what: str) -> None:
        if result != 0:
            message = ctypes.c_char_p()
            self._lib.cuGetErrorString(result, ctypes.byref(message))
            text = message.value.decode() if message.value else f"error {result}"
            raise EngineBuildError(f"CUDA driver call {what} failed: {text}")

    def facts(self) -> DeviceFacts:
        name = ctypes.create_string_buffer(256)
        self._check(self._lib.cuDeviceGetName(name, 256, self.device), "cuDeviceGetName")
        major, minor = ctypes.c_int(), ctypes.c_int()
        self._check(self._lib.cuDeviceGetAttribute(ctypes.byref(major), _CC_MAJOR, self.device), "cuDeviceGetAttribute")
        self._check(self._lib.cuDeviceGetAttribute(ctypes.byref(minor), _CC_MINOR, self.device), "cuDeviceGetAttribute")
        return DeviceFacts(name.value.decode(), (major.value, minor.value))

    def driver_version(self) -> Tuple[int, int]:
        """The CUDA version the driver supports, e.g. (12, 6)."""
        version = ctypes.c_int()
        self._check(self._lib.cuDriverGetVersion(ctypes.byref(version)), "cuDriverGetVersion")
        return version.value // 1000, (version.value % 1000) // 10

    def total_memory(self) -> int:
        total = ctypes.c_size_t()
        self._check(self._lib.cuDeviceTotalMem_v2(ctypes.byref(total), self.device), "cuDeviceTotalMem")
        return int(total.value)

    def alloc(self, nbytes: int) -> int:
        pointer = ctypes.c_uint64()
        self._check(self._lib.cuMemAlloc_v2(ctypes.byref(pointer), ctypes.c_size_t(max(nbytes, 1))), "cuMemAlloc")
        return int(pointer.value)

    def free(self, pointer: int) -> None:
        self._check(self._lib.cuMemFree_v2(ctypes.c_uint64(pointer)), "cuMemFree")

    def upload(self, pointer: int, array: np.ndarray) -> None:
        array = np.ascontiguousarray(array)
        self._check(
            self._lib.cuMemcpyHtoD_v2(ctypes.c_uint64(pointer), array.ctypes.data_as(ctypes.c_void_p),
                                      ctypes.c_size_t(array.nbytes)),
            "cuMemcpyHtoD",
        )

    def download(self, out: np.ndarray, pointer: int) -> np.ndarray:
        if not out.flags.c_contiguous:
            raise EngineBuildError("download needs a C-contiguous array to copy into")
        self._check(
            self._lib.cuMemcpyDtoH_v2(out.ctypes.data_as(ctypes.c_void_p), ctypes.c_uint64(pointer),
                                      ctypes.c_size_t(out.nbytes)),
            "cuMemcpyDtoH",
        )
        return out

    def synchronize(self) -> None:
        self._check(self._lib.cuCtxSynchronize(), "cuCtxSynchronize")


_driver: Optional[CudaDriver] = None


def cuda_driver() -> CudaDriver:
    """The process's one :class:`CudaDriver` (created on first use, never at import)."""
    global _driver
    if _driver is None:
        _driver = CudaDriver()
    return _driver
