"""Reduced-precision ONNX variants, made and measured on a CPU before they reach a GPU.

- :mod:`.calibration`: calibration sets -> batches through the runtime's preprocessing
  (also feeds the legacy TensorRT calibrator in :mod:`fcn_edge.engine`).
- :mod:`.quantize`: INT8 Q/DQ ONNX for TensorRT (symmetric int8) or ONNX Runtime (uint8).
- :mod:`.fp16`: FP16 ONNX keeping the graph's input/output types.
- :mod:`.compare`: accuracy and speed of variants against the FP32 model.

Import the submodules; this package imports nothing heavy itself.
"""
