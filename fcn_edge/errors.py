"""Typed errors. Library code raises these; only the CLI turns them into exit codes."""

from __future__ import annotations


class FcnEdgeError(Exception):
    """Base class of every error fcn-edge raises on purpose."""


class UsageError(FcnEdgeError, ValueError):
    """A value the user typed is malformed: a size, a shape, a choice, a range."""


class MissingDependencyError(FcnEdgeError, ImportError):
    """An optional package is not installed; the message says how to install it."""


class MetaError(FcnEdgeError):
    """ModelMeta is missing, malformed, or does not fit the artifact it describes."""


class CheckpointError(FcnEdgeError):
    """A checkpoint cannot be read or does not match the model it is loaded into."""


class ExportError(FcnEdgeError):
    """ONNX export failed, or the exported graph does not match PyTorch."""


class DataError(FcnEdgeError):
    """A dataset, image, mask or calibration set is unreadable or inconsistent."""


class PrecisionError(FcnEdgeError):
    """An FP16 or INT8 variant cannot be produced as asked."""


class EngineBuildError(FcnEdgeError):
    """TensorRT could not parse or build, or the request cannot be honoured."""


class EngineMismatchError(FcnEdgeError):
    """An engine was built for another TensorRT version or GPU; it must be rebuilt."""


class RuntimeInputError(FcnEdgeError, ValueError):
    """A frame handed to the runtime has the wrong shape, dtype or channel count."""


class VideoError(FcnEdgeError):
    """A video source or sink cannot be opened, read or written."""
