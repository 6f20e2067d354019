"""The runtime: frames in, class masks out, through TensorRT, ONNX Runtime or PyTorch.

Importing this package needs numpy and OpenCV only; each backend imports its engine
(tensorrt + pycuda, onnxruntime, torch) when it is built, and torch never otherwise.
"""

from fcn_edge.runtime.decode import DecodeConfig, Decoder
from fcn_edge.runtime.preprocess import Placement, Preprocessor, check_frame
from fcn_edge.runtime.legend import Legend
from fcn_edge.runtime.render import (
    DEFAULT_ALPHA, RenderConfig, Renderer, class_index, class_shares, colorize, palette_lut, render,
)
from fcn_edge.runtime.result import InferTimings, SegmentationResult, StageTimings
from fcn_edge.runtime.segmenter import Segmenter, load_segmenter

__all__ = [
    "DecodeConfig", "Decoder", "InferTimings", "Placement", "Preprocessor", "RenderConfig",
    "Renderer", "SegmentationResult", "Segmenter", "StageTimings", "check_frame", "class_shares",
    "colorize", "load_segmenter", "palette_lut", "render",
]
