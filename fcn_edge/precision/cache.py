"""The calibration cache: activation histograms saved per (model hash, calibration set).

Histograms, not final ranges, are cached, so switching between entropy, minmax and
percentile, or between the TensorRT and ONNX Runtime targets, re-uses one calibration run.
The file name carries the model's SHA-256, so a changed model never reads stale ranges;
the calibration set's fingerprint (paths, sizes, mtimes and preprocessing) is checked too.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Dict, Iterable, Optional

import numpy as np

from fcn_edge.atomic import atomic_path
from fcn_edge.paths import cache_root
from fcn_edge.precision.histogram import TensorHistogram

log = logging.getLogger(__name__)

CACHE_VERSION = 1


def default_cache_dir() -> Path:
    return cache_root() / "calibration"


def cache_path(cache_dir: Path, model_hash: str) -> Path:
    return Path(cache_dir) / f"{model_hash[:32]}.calib.npz"


def load_histograms(path: Path, model_hash: str, data_fingerprint: str,
                    tensors: Iterable[str]) -> Optional[Dict[str, TensorHistogram]]:
    """The cached histograms of ``tensors``, or None when the cache does not cover them."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(str(data["header"]))
            if header.get("version") != CACHE_VERSION or header.get("model_sha256") != model_hash:
                log.info("calibration cache %s is for another model; recalibrating", path)
                return None
            if header.get("data_fingerprint") != data_fingerprint:
                log.info("calibration cache %s was made from another calibration set; recalibrating", path)
                return None
            names = header["tensors"]
            wanted = list(tensors)
            if not set(wanted) <= set(names):
                return None
            out = {}
            for i, name in enumerate(names):
                if name in wanted:
                    out[name] = TensorHistogram.from_arrays(data[f"t{i}/stats"], data[f"t{i}/counts"])
            return out
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        log.warning("ignoring unreadable calibration cache %s: %s", path, exc)
        return None


def save_histograms(path: Path, model_hash: str, data_fingerprint: str,
                    histograms: Dict[str, TensorHistogram], extra: Optional[dict] = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = list(histograms)
    header = {"version": CACHE_VERSION, "model_sha256": model_hash,
              "data_fingerprint": data_fingerprint, "tensors": names}
    header.update(extra or {})
    arrays = {"header": np.array(json.dumps(header))}
    for i, name in enumerate(names):
        arrays.update(histograms[name].to_arrays(f"t{i}"))
    with atomic_path(path) as tmp:  # keeps the .npz suffix, so numpy adds none
        np.savez_compressed(tmp, **arrays)
    return path
