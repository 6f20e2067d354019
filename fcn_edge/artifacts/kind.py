"""What kind of model file this is, decided by its content (magic bytes), then its suffix.

One decision for every command: ``export``, ``run --model``, ``info`` and the runtime all
ask :func:`model_kind`, so a file is never an ONNX to one command and a checkpoint to
another, and a wrong file is named for what it is ("an HDF5 file", "a TensorRT engine")
instead of failing deep inside a loader that expected something else.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Tuple

from fcn_edge.errors import MetaError
from fcn_edge.paths import PathLike

# kind -> how a message names it
KIND_NAMES: Dict[str, str] = {
    "onnx": "an ONNX model",
    "engine": "a TensorRT engine",
    "checkpoint": "a PyTorch checkpoint",
    "torchscript": "a TorchScript archive",
    "hdf5": "an HDF5 file (Keras weights or a Keras model)",
    "keras": "a Keras 3 archive (.keras)",
    "zip": "a zip archive",
    "json": "a JSON file",
    "empty": "an empty file",
    "unknown": "a file of unknown format",
}
# What to do with a file when an ONNX model is wanted, by its kind.
_EXPORT_FIRST = "make an ONNX of it first with `fcn-edge export {path} -o model.onnx`"
TO_ONNX_HINTS: Dict[str, str] = {
    "checkpoint": _EXPORT_FIRST,
    "torchscript": "save its weights (torch.save(model.state_dict(), path)) and export them with `fcn-edge export`",
    "hdf5": _EXPORT_FIRST,
    "keras": _EXPORT_FIRST,
    "engine": "an engine is built from an ONNX; use the ONNX it was built from",
    "empty": "the file is empty: copy or export it again",
}
# Only where content cannot settle it: a TensorRT plan's header is not documented, and a
# protobuf need not start with ir_version. Checkpoints, HDF5 and zips always carry a signature.
SUFFIX_KINDS: Dict[str, str] = {".onnx": "onnx", ".engine": "engine", ".plan": "engine", ".trt": "engine"}
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
HDF5_OFFSETS = (0, 512, 1024, 2048)  # a user block shifts the superblock by a power of two
ZIP_SIGNATURE = b"PK\x03\x04"
TENSORRT_SIGNATURE = b"ftrt"  # the first bytes of every TensorRT 8+ plan
# ModelProto fields an exporter writes right after ir_version (field 1): producer, graph, opset
_ONNX_SECOND_TAGS = (0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72)


@dataclass(frozen=True)
class ModelKind:
    """``kind`` is a key of :data:`KIND_NAMES`; ``by_content`` False means only the suffix spoke."""

    path: Path
    kind: str
    by_content: bool

    @property
    def description(self) -> str:
        return KIND_NAMES[self.kind]

    def require(self, *kinds: str, purpose: str = "", hint: str = "") -> "ModelKind":
        """This object when its kind is one of ``kinds``, else :class:`MetaError` naming what it is."""
        if self.kind in kinds:
            return self
        wanted = " or ".join(KIND_NAMES[k] for k in kinds)
        found = self.description if self.by_content or self.kind == "unknown" else f"{self.description} by its suffix"
        text = f"{self.path}: this is {found}, not {wanted}"
        if purpose:
            text += f" ({purpose})"
        raise MetaError(text + (f"; {hint}" if hint else ""))


    def require_onnx(self, purpose: str) -> "ModelKind":
        """This object when it is an ONNX model, else :class:`MetaError` naming what it is
        and how to make an ONNX of it."""
        return self.require("onnx", purpose=purpose, hint=TO_ONNX_HINTS.get(self.kind, "").format(path=self.path))


def _zip_kind(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return "zip"
    if "config.json" in names and any(n.endswith(".weights.h5") for n in names):
        return "keras"
    tails = {n.split("/", 1)[-1] for n in names}
    if "constants.pkl" in tails or any(t.startswith("code/") for t in tails):
        return "torchscript"
    if "data.pkl" in tails:
        return "checkpoint"
    return "zip"


def _content_kind(path: Path, head: bytes) -> Tuple[str, bool]:
    if not head:
        return "empty", True
    if head.startswith(TENSORRT_SIGNATURE):
        return "engine", True
    if head.startswith(ZIP_SIGNATURE):
        return _zip_kind(path), True
    if head[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"):
        return "checkpoint", True  # a pickle: torch.save's legacy (pre-1.6) format
    if head.lstrip()[:1] in (b"{", b"["):
        return "json", True
    if len(head) > 2 and head[0] == 0x08 and 1 <= head[1] <= 20 and head[2] in _ONNX_SECOND_TAGS:
        return "onnx", True
    return "", False


def model_kind(path: PathLike) -> ModelKind:
    """The kind of ``path``: its content decides when it is recognised, else its suffix."""
    path = Path(path)
    if not path.is_file():
        raise MetaError(f"{path}: no such model file")
    try:
        with open(path, "rb") as handle:
            head = handle.read(max(HDF5_OFFSETS) + len(HDF5_SIGNATURE))
    except OSError as exc:
        raise MetaError(f"{path}: cannot read it: {exc.strerror or exc}") from exc
    if any(head[o : o + len(HDF5_SIGNATURE)] == HDF5_SIGNATURE for o in HDF5_OFFSETS):
        return ModelKind(path, "hdf5", True)
    kind, recognised = _content_kind(path, head[:64])
    if recognised:
        return ModelKind(path, kind, True)
    return ModelKind(path, SUFFIX_KINDS.get(path.suffix.lower(), "unknown"), False)
