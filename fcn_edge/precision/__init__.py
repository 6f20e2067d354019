"""Reduced-precision ONNX variants, made and measured on a CPU before they reach a GPU.

- :mod:`.calibration`: calibration sets -> batches through the runtime's preprocessing
  (also feeds the legacy TensorRT calibrator in :mod:`fcn_edge.engine`).
- :mod:`.quantize`: INT8 Q/DQ ONNX for TensorRT (symmetric int8) or ONNX Runtime (uint8);
  :mod:`.placement` decides where the pairs go, :mod:`.qdq` inserts them, :mod:`.mixed`
  writes the unquantised layers in FP16 for TensorRT >= 10.
- :mod:`.fusion`: how TensorRT would fuse a Q/DQ ONNX, and how much of it runs INT8/FP16/FP32.
- :mod:`.sensitivity`: per-layer sensitivity and the FP16 fallback that meets an accuracy target.
- :mod:`.fp16`: FP16 ONNX keeping the graph's input/output types.
- :mod:`.compare`: accuracy (per class too) and speed of variants against the FP32 model.

Quantisation-aware training, which needs torch, lives in :mod:`fcn_edge.training.qat`.

Import the submodules; this package imports nothing heavy itself.
"""
