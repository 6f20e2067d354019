"""Did TensorRT build the precision that was asked for? Read from the engine inspector.

A build can succeed and still not contain the asked precision: TensorRT keeps FP32 kernels
where the GPU has no fast FP16, and a tool that still asks TensorRT 11 for FP16 through the
removed builder flags gets an FP32 engine without a word. So after every build the engine
inspector's per-layer precisions (:class:`fcn_edge.engine.summary.EngineSummary`) must
contain the asked precision; :func:`check_engine_precision` says whether they do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

from fcn_edge.engine.summary import EngineSummary

VERDICTS = ("ok", "mismatch", "unchecked")
# The inspector's name of each engine precision (summary.precision_of).
_LAYER_PRECISION = {"fp32": "fp32", "fp16": "fp16", "int8": "int8"}


@dataclass(frozen=True)
class PrecisionCheck:
    """``verdict``: ok (the precision is there), mismatch (it is not), unchecked (no per-layer
    precisions to read: the inspector failed or the engine was built without DETAILED
    profiling verbosity). ``detail`` says which, in words."""

    wanted: str
    verdict: str
    detail: str
    layers: Dict[str, int]

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"


def _listing(layers: Dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(layers.items(), key=lambda kv: -kv[1]))


def check_engine_precision(wanted: str, summary: Optional[EngineSummary], summary_error: str = "") -> PrecisionCheck:
    """Whether the engine's layers include ``wanted`` (fp32 / fp16 / int8)."""
    if summary is None:
        return PrecisionCheck(wanted, "unchecked", f"the engine inspector failed ({summary_error or 'no summary'})", {})
    layers = dict(summary.layer_precisions)
    if not layers:
        return PrecisionCheck(wanted, "unchecked", "the engine has no per-layer precisions (built without "
                              "ProfilingVerbosity.DETAILED)", {})
    found = layers.get(_LAYER_PRECISION[wanted], 0)
    if wanted == "fp32" or found:
        return PrecisionCheck(wanted, "ok", f"{wanted} in {found} of {sum(layers.values())} layers ({_listing(layers)})",
                              layers)
    return PrecisionCheck(wanted, "mismatch", f"no layer runs {wanted} (layers: {_listing(layers)})", layers)
