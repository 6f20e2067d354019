"""PyTorch -> ONNX for fcn-edge models: optional fused preprocessing and argmax, ModelMeta
in metadata_props, onnx.checker, onnxslim, and a parity check in ONNX Runtime. Needs torch,
onnx and onnxruntime (``pip install 'fcn-edge[export]'``).

:func:`export_onnx` is the entry point (a model file or a registry name -> ONNX);
:func:`export_model` exports a model already in memory.
"""

from fcn_edge.export.config import DEFAULT_OPSET, ExportConfig, ExportReport, ParityResult
from fcn_edge.export.exporter import export_architecture, export_checkpoint, export_model, exported_meta
from fcn_edge.export.sources import export_onnx
from fcn_edge.export.wrappers import ArgmaxMask, FusedPreprocess, export_module

__all__ = [
    "DEFAULT_OPSET", "ExportConfig", "ExportReport", "ParityResult", "export_architecture",
    "export_checkpoint", "export_model", "export_onnx", "exported_meta", "ArgmaxMask", "FusedPreprocess",
    "export_module",
]
