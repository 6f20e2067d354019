"""The runtime: frames in, class masks out, through TensorRT, ONNX Runtime or PyTorch.

Importing this package needs numpy and OpenCV only; each backend imports its engine
(tensorrt + pycuda, onnxruntime, torch) when it is built, and torch never otherwise.
``load_segmenter()`` without a path runs the shipped default model's fused ONNX.

    with load_segmenter() as seg:
        result = seg.segment(frame)                      # BGR uint8 in, class mask out
        picture = result.overlay(frame, legend=True)     # alpha 0-255, ignore_class name or index
"""

from fcn_edge.runtime.decode import DecodeConfig, Decoder
from fcn_edge.runtime.legend import Legend
from fcn_edge.runtime.preprocess import Placement, Preprocessor, check_frame
from fcn_edge.runtime.render import (
    DEFAULT_ALPHA, RenderConfig, Renderer, class_index, class_shares, colorize, palette_lut,
)
from fcn_edge.runtime.result import InferTimings, SegmentationResult, StageTimings
from fcn_edge.runtime.segmenter import LoadOptions, Segmenter, load_segmenter

__all__ = [
    "DEFAULT_ALPHA", "DecodeConfig", "Decoder", "InferTimings", "Legend", "LoadOptions", "Placement",
    "Preprocessor", "RenderConfig", "Renderer", "SegmentationResult", "Segmenter", "StageTimings",
    "check_frame", "class_index", "class_shares", "colorize", "load_segmenter", "palette_lut",
]
