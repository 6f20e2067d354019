"""Typed errors. Library code raises these; only the CLI turns them into exit codes.

Exit codes of ``fcn-edge`` (README, "Exit codes"):

- 0: complete.
- 1: failed at run time: the work was under way and something outside the arguments and
  input files failed: the file system (disk full, read-only, permission denied, file too
  large: :class:`OutputError` or a bare ``OSError``), a camera, stream or encoder
  (:class:`VideoError`), memory. Running again may succeed, so a service manager restarts.
- 2: bad input or usage: fcn-edge refused what it was given: a malformed argument, a
  missing or malformed model, ModelMeta, sidecar, checkpoint, dataset, image or video
  file, an engine built for another TensorRT or GPU, a request a step cannot honour, a
  missing optional package. Every other fcn-edge error. The same command fails again until
  the command, its inputs or the installation change: a service should not be restarted.
- 130 (128 + SIGINT), 143 (128 + SIGTERM), 129 (128 + SIGHUP): ``run`` was stopped by that
  signal after finalising its output (the video file is complete and playable); 130 also
  for Ctrl-C in any other command.

Each class says which through ``exit_code``; an ``OSError`` that no fcn-edge error wraps
is 2 when an input is missing (FileNotFoundError, NotADirectoryError, IsADirectoryError)
and 1 otherwise.
"""

from __future__ import annotations

import errno
import os
import signal
from typing import Optional

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_SIGNAL_BASE = 128


class FcnEdgeError(Exception):
    """Base class of every error fcn-edge raises on purpose: a refusal (exit code 2)
    unless the class is one of the run-time failures (1)."""

    exit_code = EXIT_BAD_INPUT


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
    """A video source or sink cannot be opened, read or written (run time: a camera that
    is not there yet, a lost stream, an encoder that fails)."""

    exit_code = EXIT_FAILED


class VideoInputError(VideoError):
    """What the user gave for a video run cannot be used: an unknown URI, a missing or
    corrupt file, an output extension or encoder that does not exist, options that
    contradict each other."""

    exit_code = EXIT_BAD_INPUT


class OutputError(FcnEdgeError, OSError):
    """An output could not be written (disk full, read-only file system, permission
    denied, file too large) or did not verify; the previous file, if any, was kept.
    An OSError too, for callers that catch those."""

    exit_code = EXIT_FAILED


# errno -> the words a person reads; the errno name is added for a search.
_CAUSES = {
    errno.ENOSPC: "no space left on the device (the disk is full)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EFBIG: "file too large (the file-size limit, `ulimit -f`, or the file system's largest file)",
    errno.ENOENT: "no such file or directory",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.EISDIR: "is a folder",
    errno.EIO: "input/output error (a failing disk or SD card?)",
    errno.ENAMETOOLONG: "file name too long",
    errno.EMFILE: "too many open files",
    errno.ENOMEM: "out of memory",
    errno.EEXIST: "already exists",
    errno.EXDEV: "cannot rename across file systems",
}


def describe_os_error(exc: OSError, path: Optional[object] = None, name_file: bool = True) -> str:
    """'<cause> [ERRNO]' of an OSError, e.g. 'no space left on the device (the disk is
    full) [ENOSPC]'; with the file the error names when that is not ``path`` (unless
    ``name_file`` is False: a temporary file the user never asked about)."""
    code = exc.errno
    cause = _CAUSES.get(code) if code is not None else None
    if cause is None:
        cause = (exc.strerror or str(exc) or type(exc).__name__).rstrip(".")
        cause = cause[:1].lower() + cause[1:]
    name = errno.errorcode.get(code, "") if code is not None else ""
    text = f"{cause} [{name}]" if name else cause
    named = exc.filename
    if name_file and named is not None and (path is None or os.fspath(named) != os.fspath(path)):
        text += f" ({os.fsdecode(named)})"
    return text


def exit_code_of(exc: BaseException) -> int:
    """The documented exit code for an exception that ends a command."""
    if isinstance(exc, FcnEdgeError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_SIGNAL_BASE + int(signal.SIGINT)
    if isinstance(exc, (FileNotFoundError, NotADirectoryError, IsADirectoryError)):
        return EXIT_BAD_INPUT
    return EXIT_FAILED
