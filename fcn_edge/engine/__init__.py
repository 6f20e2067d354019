"""ONNX -> TensorRT engine, across TensorRT 8.5 to 11.x.

One library call per step, as the CLI uses them: ``build_engine_file(onnx, engine, BuildConfig)``
writes the engine and its ``<engine>.json`` sidecar and returns an :class:`EngineBuild`;
``plan_engine_build`` is the dry run (the same decisions, no TensorRT needed with a declared
version); ``inspect_model(path) -> ModelInfo`` is what ``fcn-edge info`` prints.
``build_engine(onnx, BuildConfig) -> bytes`` only builds (Polygraphy's loader style).
Implicit INT8 takes an iterable of ``{input_name: array}`` calibration batches. Importing this
package imports neither tensorrt, onnx nor CUDA: each is imported by the function that uses it.

Modules: ``config`` (BuildConfig, shape syntax), ``onnx_facts`` (what the ONNX already
decides, read once), ``capabilities`` (what a TensorRT can do: probed, or declared for a dry
run), ``plan`` (the decisions, one function each; no TensorRT needed), ``build`` (carrying
them out), ``calibrator`` (the legacy INT8 calibrator over an iterable of batches),
``cuda_driver`` (GPU facts and device memory via libcuda), ``summary`` (engine inspector),
``precision_check`` (did the engine get the asked precision), ``artifact`` (atomic engine +
sidecar write), ``engine_file`` (ONNX file -> engine file + sidecar, and the dry run),
``inspect`` (what a model file holds). The sidecar itself and its
checks are the contract's: :mod:`fcn_edge.artifacts`.
"""

from fcn_edge.engine.build import BuildResult, build_engine, run_build
from fcn_edge.engine.config import BuildConfig, ShapeOverrides
from fcn_edge.engine.engine_file import EngineBuild, PlannedBuild, build_engine_file, plan_engine_build
from fcn_edge.engine.inspect import ModelInfo, inspect_model

__all__ = [
    "BuildConfig", "BuildResult", "EngineBuild", "ModelInfo", "PlannedBuild", "ShapeOverrides", "build_engine",
    "build_engine_file", "inspect_model", "plan_engine_build", "run_build",
]
