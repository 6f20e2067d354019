"""One CUDA-buffer interface for the TensorRT backend, two implementations, one choice.

The TensorRT backend needs a handful of CUDA things: the device's primary context, one
stream, device buffers allocated once, page-locked host buffers, async copies, events to
time on the GPU's clock, and stream-captured CUDA graphs. Two Python packages give them:

- ``pycuda`` (:mod:`fcn_edge.runtime.cuda_buffers`): JetPack packages it as
  python3-pycuda; from pip it compiles against the board's CUDA toolkit.
- ``cuda-python`` (:mod:`fcn_edge.runtime.cuda_python_buffers`): NVIDIA's own bindings
  (``cuda.bindings.runtime``), which TensorRT's samples use since 10.14; wheels, no compiler,
  but the package's CUDA major must not be newer than the driver's.

Each implementation is a module with the same names (:data:`INTERFACE`): ``NAME``,
``device_count()``, ``CudaContext(device)`` (``name``, ``compute_capability``,
``total_memory``, ``push``/``pop``/``with``, ``synchronize``, ``close``, ``closed``, ``api``:
the module itself), ``Stream()`` (``handle``: the int ``execute_async_v3`` takes,
``synchronize``), ``DeviceBuffer(nbytes)`` (``ptr``, ``nbytes``, ``free``),
``pinned_empty(shape, dtype)``, ``copy_htod_async``/``copy_dtoh_async``/``copy_dtod_async``,
``Event()`` (``record``, ``synchronize``, ``ms_until``), ``CudaGraph()`` (``capture(stream)``
as a context manager, ``launch``, ``destroy``, ``ready``), ``clear_error()`` (reset the
CUDA runtime's last error after a failed capture, as trtexec does) and ``cuda_version()``.
tests/test_runtime_cuda.py runs the same tests on both and checks that each has them all.

:func:`select_cuda` picks one: the name given, else ``$FCN_EDGE_CUDA``, else ``auto``: the
first of pycuda and cuda-python that imports and sees a GPU (pycuda first: where it is
installed it was built against this machine's CUDA).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Dict, List, Optional, Tuple

from fcn_edge.errors import FcnEdgeError, MissingDependencyError, UsageError

ENV_VAR = "FCN_EDGE_CUDA"
CUDA_CHOICES = ("auto", "pycuda", "cuda-python")
IMPLEMENTATIONS: Dict[str, str] = {
    "pycuda": "fcn_edge.runtime.cuda_buffers",
    "cuda-python": "fcn_edge.runtime.cuda_python_buffers",
}
# The names every implementation module defines.
INTERFACE = (
    "NAME", "device_count", "CudaContext", "Stream", "DeviceBuffer", "pinned_empty", "copy_htod_async",
    "copy_dtoh_async", "copy_dtod_async", "Event", "CudaGraph", "clear_error", "cuda_version",
)


class CudaError(FcnEdgeError):
    """A CUDA call failed; the message names the call and the error."""


class ContextScope:
    """``with ctx:`` makes a CUDA context current for the block (``push``) and restores the
    previous one after (``pop``); each implementation's CudaContext defines the two."""

    def push(self) -> None:
        raise NotImplementedError

    def pop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> "ContextScope":
        self.push()
        return self

    def __exit__(self, *exc) -> None:
        self.pop()


def implementation(name: str) -> ModuleType:
    """The implementation module called ``name`` (pycuda / cuda-python); its package is
    imported only when one of its functions runs."""
    if name not in IMPLEMENTATIONS:
        raise UsageError(f"CUDA implementation {name!r} is not one of {', '.join(CUDA_CHOICES)}")
    return importlib.import_module(IMPLEMENTATIONS[name])


def probe(name: str) -> Tuple[bool, str]:
    """(usable, why not): ``name``'s package imports and sees at least one GPU."""
    try:
        count = implementation(name).device_count()
    except MissingDependencyError as exc:
        return False, str(exc).split(". Import error")[0]
    except (FcnEdgeError, OSError, RuntimeError) as exc:
        return False, str(exc)
    return (count > 0, "" if count > 0 else "it sees no CUDA device")


def chosen_name(choice: Optional[str] = None) -> str:
    """The implementation asked for: ``choice``, else ``$FCN_EDGE_CUDA``, else auto."""
    value = (choice or os.environ.get(ENV_VAR) or "auto").strip().lower().replace("_", "-")
    if value == "cuda":  # `pip install cuda-python` users say cuda
        value = "cuda-python"
    if value not in CUDA_CHOICES:
        where = f"${ENV_VAR}" if not choice else "the CUDA implementation"
        raise UsageError(f"{where} is {value!r}; use one of {', '.join(CUDA_CHOICES)}")
    return value


def select_cuda(choice: Optional[str] = None) -> ModuleType:
    """The CUDA implementation to use (see the module docstring for the rule)."""
    name = chosen_name(choice)
    if name != "auto":
        return implementation(name)
    reasons: List[str] = []
    for candidate in ("pycuda", "cuda-python"):
        usable, why = probe(candidate)
        if usable:
            return implementation(candidate)
        reasons.append(f"{candidate}: {why}")
    raise MissingDependencyError(
        "running TensorRT engines needs pycuda or cuda-python with an NVIDIA GPU, and neither works here ("
        + "; ".join(reasons) + "): pip install cuda-python (its CUDA major must not exceed the driver's, e.g. "
        "'cuda-python<13' for CUDA 12), or on a Jetson sudo apt install python3-pycuda"
    )
