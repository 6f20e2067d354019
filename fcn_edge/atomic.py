"""Write files under a temporary name and rename them into place when complete.

A crash, Ctrl-C, a kill or a full disk then leaves either the old file or none, never a
truncated engine, checkpoint, ONNX, video or image that a later step would half-read.

Every fcn-edge output goes through here (or, for video, through the same temporary names
in :mod:`fcn_edge.video.sinks`):

- The temporary file sits beside the output (a rename within one folder is atomic) and is
  named ``.<stem>.partial-<pid>-<token><suffix>``: hidden, with the output's suffix (ONNX,
  torch, numpy and FFmpeg choose a format by it), and with the writing process's id, so a
  later run can tell the leftovers of a killed run (the process is gone) from a file
  another running process is writing. The token starts with four hex digits of the host
  name, so a folder shared between machines never has one machine judge another's
  process ids. The first time a process writes into a folder, the leftovers of dead
  processes of this host in it are removed (:func:`sweep_folder`): a killed run's
  temporaries go when that output, or any other, is next written there; once per folder,
  so writing thousands of images into one folder lists it once.
- The file is created with mode 0o666 and the process's umask applies, as for any file a
  program creates (``tempfile.mkstemp`` would make every output 0600).
- An ``OSError`` while writing (disk full, read-only file system, permission denied, file
  too large) becomes :class:`~fcn_edge.errors.OutputError`: one line naming the output
  and the cause, saying that the previous file was kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import socket
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, List, Mapping, Optional

from fcn_edge.errors import FcnEdgeError, OutputError, describe_os_error
from fcn_edge.paths import PathLike

TEMP_MARK = ".partial-"
# the token is optional: earlier fcn-edge named video temporaries .<stem>.partial-<pid><suffix>
_TEMP_NAME = re.compile(r"^\.(?P<stem>.*)\.partial-(?P<pid>\d+)(?:-(?P<token>[0-9a-f]{8}))?(?P<suffix>\.[^.]*)?$")


_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:4]


def temporary_path(final: PathLike, pid: Optional[int] = None) -> Path:
    """``out/clip.mp4`` -> ``out/.clip.partial-<pid>-<token>.mp4`` (not created)."""
    final = Path(final)
    token = _HOST + secrets.token_hex(2)
    return final.with_name(f".{final.stem}{TEMP_MARK}{os.getpid() if pid is None else pid}-{token}{final.suffix}")


def temporary_owner(path: PathLike) -> Optional[int]:
    """The process id in a temporary name made by :func:`temporary_path`; None for other names."""
    match = _TEMP_NAME.match(Path(path).name)
    return int(match.group("pid")) if match else None


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists (one of another user counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_stale(entry: Path, final: Optional[Path]) -> bool:
    match = _TEMP_NAME.match(entry.name)
    if match is None:
        return False
    if final is not None and (match.group("stem") != final.stem or (match.group("suffix") or "") != final.suffix):
        return False
    token = match.group("token")
    if token is not None and token[:4] != _HOST:
        return False  # another machine's (a shared folder): its process ids are not ours to judge
    pid = int(match.group("pid"))
    return pid != os.getpid() and not process_alive(pid)


def remove_stale_temporaries(target: PathLike) -> List[Path]:
    """Remove the temporaries that killed fcn-edge processes left behind; returns them.

    ``target`` an output file: only that output's temporaries; a folder: every one in it.
    Temporaries of live processes, of this process, of other hosts, and files not named by
    :func:`temporary_path` are never touched. A temporary that cannot be removed (a
    read-only folder) is left; writing there will report the fault.
    """
    target = Path(target)
    folder, final = (target, None) if target.is_dir() else (target.parent, target)
    removed = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if _is_stale(entry, final):
            try:
                entry.unlink()
            except OSError:
                continue
            removed.append(entry)
    return removed


_SWEPT: set = set()
_SWEPT_LOCK = threading.Lock()


def sweep_folder(folder: PathLike) -> List[Path]:
    """:func:`remove_stale_temporaries` of ``folder``, the first time this process asks."""
    key = os.path.abspath(folder)
    with _SWEPT_LOCK:
        if key in _SWEPT:
            return []
        _SWEPT.add(key)
    return remove_stale_temporaries(Path(folder)) if Path(folder).is_dir() else []


def create_temporary(final: PathLike) -> Path:
    """Create (empty, exclusively) and return a temporary file for ``final``; mode 0o666
    less the umask. Raises OutputError when the folder cannot take it."""
    final = Path(final)
    for _ in range(16):
        tmp = temporary_path(final)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise output_error(final, exc) from exc
        os.close(fd)
        return tmp
    raise OutputError(f"{final}: could not create a unique temporary file beside it")


def output_error(final: PathLike, exc: OSError, kept: bool = True) -> OutputError:
    """``exc`` as one line naming the output ``final`` and the cause."""
    final = Path(final)
    tail = f"; the previous {final.name} was kept" if kept and final.exists() else ""
    temporary = exc.filename is not None and temporary_owner(os.fsdecode(exc.filename)) is not None
    return OutputError(f"{final}: cannot write: {describe_os_error(exc, final, name_file=not temporary)}{tail}")


def prepare_folder(final: PathLike) -> None:
    """Create the output's folder; an OSError becomes OutputError naming the folder."""
    folder = Path(final).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{Path(final)}: cannot create its folder {folder}: {describe_os_error(exc, folder)}") from exc


def _ours(exc: OSError, tmp: Path) -> bool:
    """Whether an OSError is about writing the temporary (write errors carry no file name)."""
    names = [n for n in (exc.filename, getattr(exc, "filename2", None)) if n is not None]
    return not names or any(str(n).startswith(str(tmp)) for n in names)


def space_fault(path: PathLike, margin: int = 1 << 20) -> Optional[OSError]:
    """Why writing more to ``path`` fails, when the file system shows it: the file-size
    limit reached (EFBIG) or the disk full (ENOSPC, less than ``margin`` bytes left for
    this user); None when neither is visible. For writers that report a failure without a
    reason (OpenCV's VideoWriter)."""
    import errno
    import resource

    path = Path(path)
    try:
        size = path.stat().st_size
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if limit != resource.RLIM_INFINITY and size + 65536 >= limit:
            return OSError(errno.EFBIG, f"the file-size limit is {limit} bytes", str(path))
        fs = os.statvfs(path.parent)
        free = (fs.f_bfree if os.geteuid() == 0 else fs.f_bavail) * fs.f_frsize
        if free < margin:
            return OSError(errno.ENOSPC, f"{free} bytes left", str(path))
    except OSError:
        return None
    return None


def fsync_file(path: PathLike) -> None:
    """Flush a finished file to the disk (for files that must survive a power cut)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: PathLike, verify: Optional[Callable[[Path], None]] = None, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds.

    The temporary exists (empty) when the block starts and keeps ``path``'s suffix.
    ``verify(tmp)`` runs before the rename and raises if the file is not what it should
    be; ``fsync`` flushes it to the disk first. On any error the temporary is removed and
    ``path`` is untouched; an OSError about the temporary is raised as OutputError.
    """
    path = Path(path)
    prepare_folder(path)
    sweep_folder(path.parent)
    tmp = create_temporary(path)
    try:
        yield tmp
        if verify is not None:
            verify(tmp)
        if fsync:
            fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and not isinstance(exc, FcnEdgeError) and _ours(exc, tmp):
            raise output_error(path, exc) from exc
        raise


def _check_size(final: Path, expected: int) -> Callable[[Path], None]:
    def verify(tmp: Path) -> None:
        size = tmp.stat().st_size
        if size != expected:
            raise OutputError(f"{final}: only {size} of {expected} bytes reached the disk; the file was not replaced")

    return verify


def write_bytes_atomic(path: PathLike, data: bytes, fsync: bool = False) -> Path:
    """``data`` into ``path`` atomically, its size checked before the rename; ``fsync``
    first for files that must survive power loss."""
    with atomic_path(path, verify=_check_size(Path(path), len(data)), fsync=fsync) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
    return Path(path)


def write_text_atomic(path: PathLike, text: str, fsync: bool = False) -> Path:
    """``text`` (UTF-8) into ``path`` atomically."""
    return write_bytes_atomic(path, text.encode("utf-8"), fsync=fsync)


def write_json_atomic(path: PathLike, data: Mapping[str, Any], fsync: bool = False) -> Path:
    """``data`` as indented JSON into ``path`` atomically."""
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n", fsync=fsync)
