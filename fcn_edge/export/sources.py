"""What the user names -> the exporter that reads it: the one entry point of ``fcn-edge export``.

A registry architecture (random weights, for benchmarks and tests) or a model file. A file
is told by its content (:func:`fcn_edge.artifacts.model_kind`), never by its suffix, and
goes to the exporter registered for its kind in :data:`FILE_EXPORTERS`; a file of another
kind is refused with what it is ("this is an ONNX model, not a PyTorch checkpoint").
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, Optional

from fcn_edge.artifacts import model_kind
from fcn_edge.classes import ClassList
from fcn_edge.export.config import ExportConfig, ExportReport
from fcn_edge.export.exporter import export_architecture, export_checkpoint
from fcn_edge.models.registry import UnknownModelError, list_models
from fcn_edge.paths import PathLike

FileExporter = Callable[..., ExportReport]  # (path, out, config, *, classes, architecture)

# model kind -> the exporter of that kind of file. Keras (kinds "hdf5"/"keras": FCN-8/32
# weights into the registry's models) and a foreign ONNX (kind "onnx": fused pre/post-
# processing grafted onto it) join here.
FILE_EXPORTERS: Dict[str, FileExporter] = {"checkpoint": export_checkpoint}
# what to do with a file of a kind no exporter reads
OTHER_KIND_HINTS: Dict[str, str] = {
    "onnx": "an fcn-edge ONNX needs no export: quantize, build or run it as it is",
    "engine": "an engine is built from an ONNX, not exported",
    "torchscript": "save the weights instead: torch.save(model.state_dict(), path), and name --arch",
}


def export_onnx(
    source: PathLike,
    out: PathLike,
    config: ExportConfig = ExportConfig(),
    *,
    classes: Optional[ClassList] = None,
    architecture: Optional[str] = None,
    seed: int = 0,
) -> ExportReport:
    """``source`` (a model file, or a registry architecture name) -> ONNX at ``out``.

    ``classes``: names and palette (:func:`fcn_edge.classes.resolve_classes`) of a model
    whose file names none, or to replace those it names. ``architecture``: of a bare
    state_dict. ``seed``: of a registry model's random weights.
    """
    path = Path(source)
    if not path.exists() and str(source) in list_models():
        return export_architecture(str(source), out, config, classes=classes, seed=seed)
    if not path.exists() and not path.suffix and len(path.parts) == 1:
        raise UnknownModelError(
            f"{source}: no such file, and not a registry architecture; known ones are: {', '.join(list_models())}"
        )
    kind = model_kind(path)
    kind.require(*FILE_EXPORTERS, purpose="export reads fcn-edge, torchvision and pytorch-fcn checkpoints",
                 hint=OTHER_KIND_HINTS.get(kind.kind, ""))
    return FILE_EXPORTERS[kind.kind](path, out, config, classes=classes, architecture=architecture)
