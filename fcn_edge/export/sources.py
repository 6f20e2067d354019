"""What the user names -> the exporter that reads it: the one entry point of ``fcn-edge export``.

A registry architecture (random weights, for benchmarks and tests) or a model: a file told
by its content (:func:`fcn_edge.artifacts.model_kind`), never by its suffix, or a
keras_segmentation checkpoint (its folder, ``<prefix>_config.json`` or prefix). Each goes to
the exporter registered for its kind in :data:`FILE_EXPORTERS`; a file of another kind is
refused with what it is ("this is a TensorRT engine, not ..."). Exporters are imported when
used: an ONNX goes through without torch.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

from fcn_edge.artifacts import model_kind
from fcn_edge.classes import ClassList
from fcn_edge.errors import UsageError
from fcn_edge.export.config import ExportConfig, ExportReport, SourceHints
from fcn_edge.paths import PathLike

KERAS_CONFIG_SUFFIX = "_config.json"  # keras_segmentation's <prefix>_config.json
_ALL_HINTS = tuple(f.name for f in dataclasses.fields(SourceHints))


@dataclass(frozen=True)
class FileExporter:
    """``target``: "module:function"; ``hints``: the SourceHints fields it reads (passed as keywords)."""

    target: str
    hints: Tuple[str, ...] = ()

    def check_hints(self, hints: SourceHints, what: str) -> None:
        refused = [f"--{name.replace('_', '-')}" for name in _ALL_HINTS
                   if name not in self.hints and getattr(hints, name) is not None]
        if refused:
            raise UsageError(f"{', '.join(refused)} describe{'s' if len(refused) == 1 else ''} an ONNX made elsewhere; "
                             f"{what} carries its own (its ModelMeta, or what its format records)")

    def __call__(self, path: Path, out: PathLike, config: ExportConfig, classes: Optional[ClassList],
                 architecture: Optional[str], hints: SourceHints, what: str) -> ExportReport:
        self.check_hints(hints, what)
        module, name = self.target.split(":")
        exporter = getattr(importlib.import_module(module), name)
        if self.hints == _ALL_HINTS:
            return exporter(path, out, config, classes=classes, architecture=architecture, hints=hints)
        kwargs = {name: getattr(hints, name) for name in self.hints}
        return exporter(path, out, config, classes=classes, architecture=architecture, **kwargs)


KERAS = FileExporter("fcn_edge.export.exporter:export_keras", ("preprocessing",))
# model kind -> the exporter of that kind of file
FILE_EXPORTERS: Dict[str, FileExporter] = {
    "checkpoint": FileExporter("fcn_edge.export.exporter:export_checkpoint"),
    "onnx": FileExporter("fcn_edge.export.foreign:export_foreign_onnx", _ALL_HINTS),
    "hdf5": KERAS,
    "keras": KERAS,
}
# what to do with a file of a kind no exporter reads
OTHER_KIND_HINTS: Dict[str, str] = {
    "engine": "an engine is built from an ONNX, not exported; export or find the ONNX it was built from",
    "torchscript": "save the weights instead: torch.save(model.state_dict(), path), and name --arch",
}
READS = ("export reads fcn-edge, torchvision and pytorch-fcn checkpoints, Keras FCN-8/FCN-32 weights "
         "and segmentation ONNX models")


def _is_keras_checkpoint(path: Path) -> bool:
    """A keras_segmentation checkpoint named by its folder, config or prefix (its weight
    files are HDF5 and go through the Keras exporter by their content)."""
    return (path.is_dir() or path.name.endswith(KERAS_CONFIG_SUFFIX)
            or (not path.exists() and Path(str(path) + KERAS_CONFIG_SUFFIX).is_file()))


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
    """``source`` (a model file or keras_segmentation checkpoint, or a registry architecture
    name) -> ONNX at ``out``.

    ``classes``: names and palette (:func:`fcn_edge.classes.resolve_classes`) of a model
    whose file names none, or to replace those it names. ``architecture``: of a bare
    state_dict or Keras weights (or the name a foreign ONNX's ModelMeta records). ``seed``:
    of a registry model's random weights. ``hints``: what a model made elsewhere does not
    say (an ONNX: all of them; Keras weights: ``preprocessing``).
    """
    path = Path(source)
    if _is_keras_checkpoint(path):
        return KERAS(path, out, config, classes, architecture, hints, "a keras_segmentation checkpoint")
    if not path.exists() and not path.suffix and len(path.parts) == 1:  # a registry name (needs torch)
        from fcn_edge.models.registry import UnknownModelError, list_models

        if str(source) not in list_models():
            raise UnknownModelError(f"{source}: no such file, and not a registry architecture; known ones "
                                    f"are: {', '.join(list_models())}")
        from fcn_edge.export.exporter import export_architecture

        FileExporter("").check_hints(hints, "a registry architecture")
        return export_architecture(str(source), out, config, classes=classes, seed=seed)
    kind = model_kind(path)
    kind.require(*FILE_EXPORTERS, purpose=READS, hint=OTHER_KIND_HINTS.get(kind.kind, ""))
    return FILE_EXPORTERS[kind.kind](path, out, config, classes, architecture, hints, kind.description)
