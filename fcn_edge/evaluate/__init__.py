"""Segmentation accuracy as the FCN paper measures it, streamed over a dataset with any
predictor (the runtime's Segmenter on an engine, ONNX or checkpoint; training's in-process
model). Needs numpy only; the predictor brings its own backend."""

from fcn_edge.evaluate.metrics import ConfusionMatrix, SegmentationMetrics
from fcn_edge.evaluate.protocol import FramePredictor
from fcn_edge.evaluate.report import format_metrics
from fcn_edge.evaluate.runner import EvaluateConfig, EvaluationReport, evaluate_dataset, evaluate_model

__all__ = [
    "ConfusionMatrix",
    "EvaluateConfig",
    "EvaluationReport",
    "FramePredictor",
    "SegmentationMetrics",
    "evaluate_dataset",
    "evaluate_model",
    "format_metrics",
]
