"""Run the FP32 model in ONNX Runtime over a calibration set and stream activation statistics.

The tensors to calibrate are exposed as extra graph outputs. Every batch's values are
folded into a :class:`TensorHistogram` per tensor and dropped, so memory holds one batch of
the exposed activations plus the model, never the whole set. The batch size is chosen from
a probe run of one image so that a batch's exposed activations fit ``memory_budget``; if even
one image's do not (big inputs on VGG16), the tensors are split into groups and the set is
read once per group.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, Iterable, List, Sequence

import numpy as np

from fcn_edge.errors import DataError, PrecisionError
from fcn_edge.optional import require
from fcn_edge.precision.histogram import TensorHistogram

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CollectConfig:
    memory_budget: int = 1 << 30  # bytes of exposed activations per run
    threads: int = 0  # ORT intra-op threads; 0 lets ORT decide


def session_with_outputs(model, tensors: Sequence[str], threads: int = 0):
    """An ORT CPU session of ``model`` that also returns ``tensors``.

    The outputs are appended to ``model`` only while it is serialised, then removed again,
    so a 500 MB VGG16 is not copied once more just to expose its activations.
    """
    from onnx import TensorProto, helper

    ort = require("onnxruntime", "INT8 calibration")
    outputs = model.graph.output
    present = {o.name for o in outputs}
    original = len(outputs)
    for name in tensors:
        if name not in present:
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    try:
        data = model.SerializeToString()
    finally:
        while len(outputs) > original:
            outputs.pop()
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    # memory patterns preallocate per shape; with many exposed outputs they only add peak.
    # Basic optimisations only: layout transforms (NCHWc) would copy every conv weight again.
    options.enable_mem_pattern = False
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    try:
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types
        raise PrecisionError(f"ONNX Runtime cannot load the model for calibration: {exc}") from exc
    finally:
        del data


def tensor_bytes(session, feed: Dict[str, np.ndarray], tensors: Sequence[str]) -> Dict[str, int]:
    """Bytes per image of each tensor, measured on one probe batch."""
    arrays = session.run(list(tensors), feed)
    batch = next(iter(feed.values())).shape[0]
    return {name: int(a.nbytes // max(batch, 1)) for name, a in zip(tensors, arrays)}


def group_tensors(sizes: Dict[str, int], budget: int) -> List[List[str]]:
    """Greedy packing of tensors into groups whose per-image bytes fit ``budget``."""
    groups: List[List[str]] = []
    current: List[str] = []
    used = 0
    for name, size in sizes.items():
        if current and used + size > budget:
            groups.append(current)
            current, used = [], 0
        current.append(name)
        used += size
    if current:
        groups.append(current)
    return groups


def collect_histograms(model, tensors: Sequence[str], batches: Iterable[Dict[str, np.ndarray]],
                       config: CollectConfig = CollectConfig()) -> Dict[str, TensorHistogram]:
    """Histograms of ``tensors`` over every batch of ``batches`` (re-iterable when grouped)."""
    tensors = list(dict.fromkeys(tensors))
    if not tensors:
        return {}
    histograms = {name: TensorHistogram() for name in tensors}
    # probe: one batch, every tensor, to learn sizes (the largest allocation of the run)
    iterator = iter(batches)
    try:
        first = next(iterator)
    except StopIteration:
        raise DataError("the calibration data loader provided no data; a generator cannot be rewound")
    batch = next(iter(first.values())).shape[0]
    session = session_with_outputs(model, tensors, config.threads)
    fixed_batch = any(isinstance(i.shape[0], int) and i.shape[0] != 1 for i in session.get_inputs() if i.shape)
    probe_feed = first if fixed_batch else {k: v[:1] for k, v in first.items()}
    sizes = tensor_bytes(session, probe_feed, tensors)
    per_image = sum(sizes.values())
    groups = group_tensors(sizes, config.memory_budget // max(batch, 1))
    log.info("calibrating %d tensors (%.1f MB per image) in %d pass(es), batch %d",
             len(tensors), per_image / 2 ** 20, len(groups), batch)
    if len(groups) == 1:
        _run(session, tensors, first, histograms)
        for feed in iterator:
            _run(session, tensors, feed, histograms)
        return histograms
    del session
    for number, group in enumerate(groups):
        session = session_with_outputs(model, group, config.threads)
        source = batches if number else _chain(first, iterator)
        seen = 0
        for feed in source:
            _run(session, group, feed, histograms)
            seen += 1
        if seen == 0:
            raise DataError("the calibration data loader provided no data on a later pass; "
                            "a generator cannot be rewound: pass a CalibrationData or a list")
        del session
    return histograms


def _chain(first, rest):
    yield first
    yield from rest


def _run(session, tensors: List[str], feed: Dict[str, np.ndarray], histograms: Dict[str, TensorHistogram]) -> None:
    for name, value in zip(tensors, session.run(tensors, feed)):
        histograms[name].update(value)
