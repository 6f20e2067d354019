"""SHA-256 of files: how a sidecar tells its engine from a replacement, and a cache its model."""

from __future__ import annotations

import hashlib

from fcn_edge.paths import PathLike


def file_sha256(path: PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
