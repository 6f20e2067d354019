"""ONNX -> TensorRT engine, across TensorRT 8.5 to 11.x.

``build_engine(onnx_path, BuildConfig) -> bytes`` builds (``run_build`` also returns the
plan and build facts); :mod:`fcn_edge.engine.sidecar` records and checks what an engine
was built for. Importing this package does not import tensorrt, onnx or CUDA: each is
imported inside the function that uses it.

Modules: ``config`` (BuildConfig, shape syntax), ``onnx_facts`` (what the ONNX already
decides), ``capabilities`` (what a TensorRT can do: probed, or declared for --dry-run),
``plan`` (the decisions, no TensorRT needed), ``build`` (carrying them out),
``calibrator`` (legacy INT8 calibrator), ``cuda_driver`` (GPU facts and device memory via
libcuda), ``summary`` (engine inspector), ``artifact`` (atomic engine + sidecar write),
``sidecar`` (the sidecar's engine section and the compatibility check).
"""

from fcn_edge.artifacts import EngineRecord, check_engine_compatible, read_engine_sidecar
from fcn_edge.engine.build import BuildResult, build_engine, run_build
from fcn_edge.engine.config import BuildConfig, ShapeOverrides

__all__ = [
    "BuildConfig", "BuildResult", "EngineRecord", "ShapeOverrides", "build_engine",
    "check_engine_compatible", "read_engine_sidecar", "run_build",
]
