"""Lazy imports of optional dependencies, with an install hint when one is missing.

Nothing here runs at import time: :func:`require` is called inside the function that
needs the package, so ``import fcn_edge.runtime`` never pulls torch, tensorrt or pycuda.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from fcn_edge.errors import MissingDependencyError


@dataclass(frozen=True)
class InstallHint:
    pip: str
    jetson: str = ""


HINTS = {
    "torch": InstallHint(
        "pip install 'fcn-edge[export]' torch==2.13.0  (CPU wheel; see pytorch.org for CUDA builds)",
        "NVIDIA's PyTorch wheel for your JetPack (export is best done on a workstation)",
    ),
    "onnx": InstallHint("pip install 'fcn-edge[export]'  (or: pip install onnx)"),
    "onnxruntime": InstallHint(
        "pip install onnxruntime  (onnxruntime-gpu for the CUDA/TensorRT providers)",
        "the onnxruntime-gpu wheel for your JetPack from the Jetson Zoo",
    ),
    "onnxslim": InstallHint("pip install onnxslim"),
    "onnx_graphsurgeon": InstallHint("pip install 'fcn-edge[export]'  (or: pip install onnx-graphsurgeon)"),
    "onnxconverter_common": InstallHint("pip install onnxconverter-common"),
    "tensorrt": InstallHint(
        "pip install tensorrt  (desktop; it must match your CUDA driver)",
        "sudo apt install python3-libnvinfer  (from JetPack); a venv needs --system-site-packages",
    ),
    "pycuda": InstallHint(
        "pip install pycuda  (builds against your CUDA toolkit: nvcc and cuda.h must be present)",
        "sudo apt install python3-pycuda, or pip install pycuda with /usr/local/cuda/bin on PATH",
    ),
    "cv2": InstallHint(
        "pip install opencv-python",
        "JetPack's OpenCV (sudo apt install python3-opencv / nvidia-opencv); do not pip-install over it",
    ),
    "h5py": InstallHint("pip install h5py  (reads Keras .h5 / .weights.h5 / .keras weights)",
                        "pip install h5py, or sudo apt install python3-h5py"),
    "matplotlib": InstallHint("pip install 'fcn-edge[plot]'  (or: pip install matplotlib)"),
    "tritonclient": InstallHint("pip install 'tritonclient[grpc,http]'  (or: pip install 'fcn-edge[triton]')"),
    "pytriton": InstallHint(
        "pip install nvidia-pytriton  (or: pip install 'fcn-edge[serve]'), in a venv made from a Python with a "
        "shared libpython, e.g. /usr/bin/python3 -m venv ~/triton-venv"
    ),
}


def install_hint(package: str) -> str:
    hint = HINTS.get(package, InstallHint(f"pip install {package}"))
    text = f"install it with: {hint.pip}"
    if hint.jetson:
        text += f"; on a Jetson: {hint.jetson}"
    return text


def require(package: str, purpose: str = "") -> ModuleType:
    """Import ``package`` or raise :class:`MissingDependencyError` saying how to get it."""
    try:
        return importlib.import_module(package)
    except ImportError as exc:
        top = package.split(".")[0]
        needed_for = f" (needed for {purpose})" if purpose else ""
        raise MissingDependencyError(
            f"the Python package '{top}' is not installed{needed_for}: {install_hint(top)}. "
            f"Import error: {exc}"
        ) from exc


def is_available(package: str) -> bool:
    """True when ``package`` imports; used to choose backends, never to install."""
    try:
        importlib.import_module(package)
    except ImportError:
        return False
    return True
