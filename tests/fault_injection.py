"""Real faults for the fault-injection tests, injected into a child process, never mocked.

- ``fsize``: RLIMIT_FSIZE in the child (no privileges needed): a write past the limit fails
  with EFBIG, as on a full disk (Python ignores SIGXFSZ, so the process is not killed).
- ``unwritable``: a chmod-555 folder. Root ignores permission bits, so as root the child
  runs in a new user namespace without a uid mapping (``unshare --user``): it keeps its
  uid but loses its capabilities over the host's files, and the folder refuses it (EACCES).
- ``readonly`` / ``tmpfs``: as root, a private mount namespace (``unshare --mount``) in
  which a folder is a read-only bind mount (EROFS) or a tiny tmpfs that fills up (ENOSPC).
  Where that is not possible (no root, a container without CAP_SYS_ADMIN) the test skips
  and says why; the RLIMIT_FSIZE tests cover the full-disk path everywhere.
"""

from __future__ import annotations

import functools
import os
import resource
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


@dataclass
class Outcome:
    rc: int
    out: str
    err: str

    @property
    def error_lines(self) -> List[str]:
        """The lines fcn-edge printed as its error (``fcn-edge CMD: error: ...``)."""
        return [line for line in self.err.splitlines() if line.startswith("fcn-edge ") and ": error: " in line]

    def one_line_error(self) -> str:
        """The single error line, checked to be one line and without a traceback."""
        assert "Traceback" not in self.err, self.err[-3000:]
        lines = self.error_lines
        assert len(lines) == 1, self.err[-3000:]
        return lines[0]


def env() -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))


def _limit_fsize(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    return apply


def fcn_edge(args: Sequence[str], cwd: Path, fsize: Optional[int] = None, prefix: Sequence[str] = (),
             timeout: float = 120) -> Outcome:
    """``fcn-edge ARGS`` in a child process, with a file-size limit and/or a command prefix."""
    argv = list(prefix) + [PYTHON, "-m", "fcn_edge"] + [str(a) for a in args]
    done = subprocess.run(argv, cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout,
                          preexec_fn=_limit_fsize(fsize) if fsize else None)
    return Outcome(done.returncode, done.stdout, done.stderr)


def spawn(args: Sequence[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([PYTHON, "-m", "fcn_edge"] + [str(a) for a in args], cwd=cwd, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@functools.lru_cache(maxsize=None)
def _works(*argv: str) -> bool:
    try:
        return subprocess.run(list(argv), capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def unwritable_prefix() -> Optional[List[str]]:
    """The prefix under which a chmod-555 folder refuses writes; None when there is none."""
    if os.geteuid() != 0:
        return []
    return ["unshare", "--user"] if _works("unshare", "--user", "true") else None


def mount_prefix(script: str) -> Optional[List[str]]:
    """A prefix running the command after ``script`` (mount commands) in a private mount
    namespace; None without root or where mount namespaces are refused."""
    if os.geteuid() != 0 or not _works("unshare", "--mount", "true"):
        return None
    return ["unshare", "--mount", "sh", "-c", f'{script} && exec "$0" "$@"']


def readonly_prefix(folder: Path) -> Optional[List[str]]:
    f = shlex.quote(str(folder))
    return mount_prefix(f"mount --bind {f} {f} && mount -o remount,bind,ro {f}")


def tmpfs_prefix(folder: Path, size: str) -> Optional[List[str]]:
    return mount_prefix(f"mount -t tmpfs -o size={size} tmpfs {shlex.quote(str(folder))}")


def temporaries(folder: Path) -> List[Path]:
    """fcn-edge's temporary files left in ``folder``."""
    return sorted(p for p in folder.iterdir() if ".partial-" in p.name)


def frames_in(path: Path) -> int:
    """Frames a video file really holds (decoded one by one)."""
    import cv2

    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count
