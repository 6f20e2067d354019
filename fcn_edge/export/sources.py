"""What the user names -> the exporter that reads it: the one entry point of ``fcn-edge export``.

A registry architecture (random weights, for benchmarks and tests) or a model file. A file
is told by its content (:func:`fcn_edge.artifacts.model_kind`), never by its suffix, and
goes to the exporter registered for its kind in :data:`FILE_EXPORTERS`; a file of another
kind is refused with what it is ("this is a TensorRT engine, not a PyTorch checkpoint").
Exporters are imported when used: an ONNX goes through without torch.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable, Dict, Optional

from fcn_edge.artifacts import model_kind
from fcn_edge.classes import ClassList
from fcn_edge.errors import UsageError
from fcn_edge.export.config import ExportConfig, ExportReport, SourceHints
from fcn_edge.paths import PathLike

FileExporter = Callable[..., ExportReport]  # (path, out, config, *, classes, architecture, hints)

# model kind -> "module:function" of the exporter of that kind of file. Keras (kinds
# "hdf5"/"keras": FCN-8/32 weights into the registry's models) joins here.
FILE_EXPORTERS: Dict[str, str] = {
    "checkpoint": "fcn_edge.export.exporter:export_checkpoint",
    "onnx": "fcn_edge.export.foreign:export_foreign_onnx",
}
# kinds whose exporter reads SourceHints (what a file made elsewhere does not say)
HINTED_KINDS = ("onnx",)
# what to do with a file of a kind no exporter reads
OTHER_KIND_HINTS: Dict[str, str] = {
    "engine": "an engine is built from an ONNX, not exported; export or find the ONNX it was built from",
    "torchscript": "save the weights instead: torch.save(model.state_dict(), path), and name --arch",
    "hdf5": "Keras FCN-8/FCN-32 weights are not importable in this version",
    "keras": "Keras FCN-8/FCN-32 archives are not importable in this version",
}


def _exporter(kind: str) -> FileExporter:
    module, name = FILE_EXPORTERS[kind].split(":")
    return getattr(importlib.import_module(module), name)


def export_onnx(
    source: PathLike,
    out: PathLike,
    config: ExportConfig = ExportConfig(),
    *,
    classes: Optional[ClassList] = None,
    architecture: Optional[str] = None,
    seed: int = 0,
    hints: SourceHints = SourceHints(),
) -> ExportReport:
    """``source`` (a model file, or a registry architecture name) -> ONNX at ``out``.

    ``classes``: names and palette (:func:`fcn_edge.classes.resolve_classes`) of a model
    whose file names none, or to replace those it names. ``architecture``: of a bare
    state_dict (or the name a foreign ONNX's ModelMeta records). ``seed``: of a registry
    model's random weights. ``hints``: what an ONNX made elsewhere does not say.
    """
    path = Path(source)
    if not path.exists() and not path.suffix and len(path.parts) == 1:  # a registry name (needs torch)
        from fcn_edge.models.registry import UnknownModelError, list_models

        if str(source) not in list_models():
            raise UnknownModelError(f"{source}: no such file, and not a registry architecture; known ones "
                                    f"are: {', '.join(list_models())}")
        from fcn_edge.export.exporter import export_architecture

        _no_hints(hints, "a registry architecture")
        return export_architecture(str(source), out, config, classes=classes, seed=seed)
    kind = model_kind(path)
    kind.require(*FILE_EXPORTERS, purpose="export reads fcn-edge, torchvision and pytorch-fcn checkpoints "
                 "and segmentation ONNX models", hint=OTHER_KIND_HINTS.get(kind.kind, ""))
    if kind.kind in HINTED_KINDS:
        return _exporter(kind.kind)(path, out, config, classes=classes, architecture=architecture, hints=hints)
    _no_hints(hints, kind.description)
    return _exporter(kind.kind)(path, out, config, classes=classes, architecture=architecture)


def _no_hints(hints: SourceHints, what: str) -> None:
    if hints.given:
        raise UsageError(f"{', '.join(hints.given)} describe an ONNX made elsewhere; {what} carries its own "
                         "(its ModelMeta, or the architecture's defaults)")
