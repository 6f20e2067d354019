"""Write files under a temporary name and rename them into place when complete.

A crash, Ctrl-C or full disk then leaves either the old file or none, never a truncated
engine, checkpoint, ONNX or image that a later step would half-read.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator, Mapping

from fcn_edge.paths import PathLike


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds.

    The temporary name keeps ``path``'s suffix, for writers that choose a format by it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=str(path.parent))
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: PathLike, data: bytes, fsync: bool = False) -> Path:
    """``data`` into ``path`` atomically; ``fsync`` first for files that must survive power loss."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
    return Path(path)


def write_json_atomic(path: PathLike, data: Mapping[str, Any]) -> Path:
    """``data`` as indented JSON into ``path`` atomically."""
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    return write_bytes_atomic(path, text.encode())
