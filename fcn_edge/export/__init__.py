"""Any model -> a deployable ONNX: the bare network exported (PyTorch) or taken as it is (a
foreign ONNX), the deployment heads grafted onto the graph (fused preprocessing and resize,
argmax mask), ModelMeta in metadata_props, onnx.checker, onnxslim, and parity checks in
ONNX Runtime.

:func:`export_onnx` is the entry point (a model file or a registry name -> ONNX);
:func:`export_model` exports a PyTorch model already in memory; :func:`export_foreign_onnx`
makes an ONNX from elsewhere deployable. Names are imported on first use, so the graph-level
modules (:mod:`.heads`, :mod:`.graph_meta_check`, :mod:`.foreign`) work without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DEFAULT_OPSET": "config", "ExportConfig": "config", "ExportReport": "config", "ParityResult": "config",
    "export_architecture": "exporter", "export_checkpoint": "exporter", "export_model": "exporter",
    "exported_meta": "exporter", "export_keras": "exporter", "export_onnx": "sources",
    "export_foreign_onnx": "foreign",
    "Heads": "heads", "NetworkIO": "heads", "graft_heads": "heads",
    "meta_graph_problems": "graph_meta_check",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fcn_edge.export' has no attribute {name!r}")
    return getattr(importlib.import_module(f"fcn_edge.export.{module}"), name)
