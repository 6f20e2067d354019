"""ONNX Runtime vs PyTorch on the same inputs: max abs diff and argmax agreement."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from fcn_edge.export.config import ExportConfig, ParityResult
from fcn_edge.export.torch_to_onnx import INPUT, example_input
from fcn_edge.optional import require

log = logging.getLogger(__name__)


def parity_inputs(config: ExportConfig) -> List[torch.Tensor]:
    """Batch 2 at the export size (1 when the batch is fixed), and, for a dynamic graph,
    one odd size inside the range, so a shape that only works at the example size fails."""
    batch = 2 if config.dynamic_batch else 1
    inputs = [example_input(config.input_size, batch, config.fuse_preprocess, config.seed + 1)]
    if config.dynamic_shape:
        (lo_h, lo_w), (hi_h, hi_w) = config.size_range
        h, w = config.input_size
        odd = (_odd_within(lo_h, (lo_h + h) // 2, hi_h), _odd_within(lo_w, (lo_w + w) // 2 + 3, hi_w))
        if odd != tuple(config.input_size):
            inputs.append(example_input(odd, 1, config.fuse_preprocess, config.seed + 2))
    return inputs


def _odd_within(lo: int, value: int, hi: int) -> int:
    """An odd size near ``value`` inside [lo, hi] (``value`` itself when none is odd)."""
    for candidate in (value, value - 1, value + 1):
        if lo <= candidate <= hi and candidate % 2 == 1:
            return candidate
    return min(max(value, lo), hi)


def ort_session(path: Path):
    ort = require("onnxruntime", "the parity check (or pass --skip-parity)")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    # A one-off check: do not let spinning worker threads fight other processes for cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def check_parity(module: nn.Module, onnx_path: Path, inputs: Sequence[torch.Tensor], output_kind: str,
                 atol: float, rtol: float, min_agreement: float) -> ParityResult:
    session = ort_session(onnx_path)
    output_name = session.get_outputs()[0].name
    max_diff, max_ref = 0.0, 0.0
    agree, total = 0, 0
    shapes: List[Tuple[int, ...]] = []
    for x in inputs:
        with torch.no_grad():
            expected = module(x).numpy()
        (actual,) = session.run([output_name], {INPUT: x.numpy()})
        shapes.append(tuple(x.shape))
        if actual.shape != expected.shape:
            return ParityResult(tuple(shapes), None, None, None, 0.0, False)
        if output_kind == "mask":
            agree += int((actual == expected).sum())
            total += expected.size
        else:
            max_diff = max(max_diff, float(np.abs(actual.astype(np.float64) - expected).max()))
            max_ref = max(max_ref, float(np.abs(expected).max()))
            same = actual.argmax(axis=1) == expected.argmax(axis=1)
            agree += int(same.sum())
            total += same.size
        log.debug("parity at %s: running max diff %.3g, agreement %d/%d", x.shape, max_diff, agree, total)
    agreement = agree / max(total, 1)
    if output_kind == "mask":
        return ParityResult(tuple(shapes), None, None, None, agreement, agreement >= min_agreement)
    tolerance = atol + rtol * max_ref
    passed = max_diff <= tolerance and agreement >= min_agreement
    return ParityResult(tuple(shapes), max_diff, max_ref, tolerance, agreement, passed)
