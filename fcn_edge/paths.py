"""Path types and where fcn-edge caches what it can regenerate (synthetic data, calibration ranges)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

PathLike = Union[str, os.PathLike]

CACHE_ENV = "FCN_EDGE_CACHE"


def cache_root() -> Path:
    """``$FCN_EDGE_CACHE``, else ``$XDG_CACHE_HOME/fcn-edge``, else ``~/.cache/fcn-edge``."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fcn-edge"
