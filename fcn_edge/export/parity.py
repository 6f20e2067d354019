"""Parity in ONNX Runtime, in two steps, so each difference has one cause.

1. :func:`network_parity`: the bare network's graph (float NCHW RGB in, NCHW logits out)
   against its source on the same float inputs: PyTorch for an exported model, the original
   graph for a foreign ONNX. Max abs diff of the logits and argmax agreement.
2. :func:`head_parity`: the deployment graph (heads grafted) against what the runtime would
   do on the host with the bare network: :class:`~fcn_edge.runtime.preprocess.Preprocessor`
   -> bare network -> :class:`~fcn_edge.runtime.decode.Decoder`, on uint8 frames. Masks must
   agree pixel for pixel (up to ``min_agreement``); with a fused resize the graph resizes
   floats where OpenCV resizes uint8 in fixed point, so agreement is measured, not exact.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from fcn_edge.artifacts import INPUT_NAME, ModelMeta
from fcn_edge.errors import ExportError
from fcn_edge.export.config import ExportConfig, ParityResult
from fcn_edge.optional import require

log = logging.getLogger(__name__)

PROTOBUF_LIMIT = 2 * 1024**3  # one ModelProto cannot exceed 2 GiB; beyond it weights go to external data
Reference = Callable[[np.ndarray], np.ndarray]  # float NCHW RGB batch -> NCHW logits


def _odd_within(lo: int, value: int, hi: int) -> int:
    """An odd size near ``value`` inside [lo, hi] (``value`` itself when none is odd)."""
    for candidate in (value, value - 1, value + 1):
        if lo <= candidate <= hi and candidate % 2 == 1:
            return candidate
    return min(max(value, lo), hi)


def parity_sizes(config: ExportConfig) -> List[Tuple[int, Tuple[int, int]]]:
    """(batch, (H, W)) pairs: batch 2 at the export size (1 when the batch is fixed), and,
    for a dynamic graph, batch 1 at an odd size inside the range, so a shape that only works
    at the example size fails. With a fused resize the sizes are frame sizes."""
    batch = config.example_batch
    if config.fuse_resize:
        lo, opt, hi = config.frame_range
        sizes = [(batch, opt)]
        if opt != lo or opt != hi:
            sizes.append((1, (_odd_within(lo[0], (lo[0] + opt[0]) // 2 + 1, hi[0]),
                              _odd_within(lo[1], (lo[1] + opt[1]) // 2 + 3, hi[1]))))
        return sizes
    sizes = [(batch, tuple(config.input_size))]
    if config.dynamic_shape:
        (lo_h, lo_w), (hi_h, hi_w) = config.size_range
        h, w = config.input_size
        odd = (_odd_within(lo_h, (lo_h + h) // 2, hi_h), _odd_within(lo_w, (lo_w + w) // 2 + 3, hi_w))
        if odd != tuple(config.input_size):
            sizes.append((1, odd))
    return sizes  # type: ignore[return-value]


def network_inputs(config: ExportConfig) -> List[np.ndarray]:
    """Float NCHW batches for the bare network: at the network sizes (one with a fused resize)."""
    rng = np.random.default_rng(config.seed + 1)
    if config.fuse_resize:
        sizes = [(config.example_batch, tuple(config.input_size))]
    else:
        sizes = parity_sizes(config)
    return [rng.standard_normal((n, 3, h, w)).astype(np.float32) for n, (h, w) in sizes]


def frame_batches(config: ExportConfig) -> List[List[np.ndarray]]:
    """uint8 BGR frames with smooth structure (upscaled noise), as a camera gives them: at the
    network sizes, or at frame sizes when the resize is fused."""
    import cv2

    rng = np.random.default_rng(config.seed + 2)
    batches = []
    for n, (h, w) in parity_sizes(config):
        frames = []
        for _ in range(n):
            small = rng.integers(0, 256, (max(2, h // 6), max(2, w // 6), 3), dtype=np.uint8)
            frames.append(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC))
        batches.append(frames)
    return batches


def ort_session(model, workdir: Optional[Path] = None):
    """An ONNX Runtime CPU session for a ModelProto (or a file path)."""
    ort = require("onnxruntime", "the parity check (or pass --skip-parity)")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    # A one-off check: do not let spinning worker threads fight other processes for cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if isinstance(model, (str, Path)):
        source = str(model)
    elif model.ByteSize() < PROTOBUF_LIMIT:
        source = model.SerializeToString()
    else:
        onnx = require("onnx", "the parity check")
        path = Path(workdir or tempfile.mkdtemp(prefix="fcn-edge-parity-")) / "model.onnx"
        onnx.save_model(model, str(path), save_as_external_data=True, location="model.onnx.data")
        source = str(path)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def _run(session, x: np.ndarray) -> np.ndarray:
    try:
        return session.run(None, {INPUT_NAME: x})[0]
    except Exception as exc:  # ORT's own error types; e.g. a network that runs only at some sizes
        raise ExportError(f"ONNX Runtime failed on an input of shape {x.shape}: {exc}; a model that runs only at "
                          "some sizes needs --min-size/--max-size it supports, or --fixed-shape") from exc


class _Tally:
    """Max abs diff, max |reference| and class agreement, accumulated over batches."""

    def __init__(self) -> None:
        self.max_diff, self.max_ref, self.agree, self.total = 0.0, 0.0, 0, 0

    def logits(self, actual: np.ndarray, expected: np.ndarray) -> None:
        self.max_diff = max(self.max_diff, float(np.abs(actual.astype(np.float64) - expected).max()))
        self.max_ref = max(self.max_ref, float(np.abs(expected).max()))
        self.classes(actual.argmax(axis=1), expected.argmax(axis=1))

    def classes(self, actual: np.ndarray, expected: np.ndarray) -> None:
        self.agree += int((actual == expected).sum())
        self.total += expected.size

    @property
    def agreement(self) -> float:
        return self.agree / max(self.total, 1)

    def result(self, against: str, shapes, atol: Optional[float], rtol: float, min_agreement: float) -> ParityResult:
        """Logits within ``atol + rtol * max |reference|`` (``atol`` None: not compared) and
        classes agreeing on ``min_agreement`` of the pixels."""
        if atol is None:
            return ParityResult(against, tuple(shapes), self.max_diff if self.max_ref else None,
                                self.max_ref or None, None, self.agreement, self.agreement >= min_agreement)
        tolerance = atol + rtol * self.max_ref
        return ParityResult(against, tuple(shapes), self.max_diff, self.max_ref, tolerance, self.agreement,
                            self.max_diff <= tolerance and self.agreement >= min_agreement)


def network_parity(network, reference: Reference, inputs: Sequence[np.ndarray], against: str,
                   atol: float, rtol: float, min_agreement: float) -> ParityResult:
    """The bare network's graph vs ``reference`` on the same float batches."""
    session = ort_session(network)
    tally = _Tally()
    shapes: List[Tuple[int, ...]] = []
    for x in inputs:
        expected = np.asarray(reference(x))
        actual = _run(session, x)
        shapes.append(tuple(x.shape))
        if actual.shape != expected.shape:
            log.debug("parity at %s: shape %s vs %s", x.shape, actual.shape, expected.shape)
            return ParityResult(against, tuple(shapes), None, None, None, 0.0, False)
        tally.logits(actual, expected)
    return tally.result(against, shapes, atol, rtol, min_agreement)


def head_parity(deployed, network, deployed_meta: ModelMeta, network_meta: ModelMeta,
                batches: Sequence[Sequence[np.ndarray]], atol: float, rtol: float,
                min_agreement: float) -> ParityResult:
    """The deployment graph vs the host path on the bare network's graph, from uint8 frames.

    ``deployed_meta`` describes the deployment graph, ``network_meta`` the bare network
    (float NCHW RGB, logits). Masks are compared as the runtime decodes them, at the frame's
    size; logits as the graphs give them (by argmax agreement only when the deployment
    graph resizes the frames itself: its input then differs by OpenCV's rounding).
    """
    output_kind = deployed_meta.output_kind
    fused, resized = deployed_meta.fused_preprocess, deployed_meta.fused_resize
    from fcn_edge.runtime.decode import Decoder
    from fcn_edge.runtime.preprocess import Preprocessor

    against = "host preprocessing and decoding" + (" (OpenCV resize)" if resized else "")
    net_session, deployed_session = ort_session(network), ort_session(deployed)
    tally = _Tally()
    shapes: List[Tuple[int, ...]] = []
    for frames in batches:
        size = tuple(network_meta.input_size) if resized else frames[0].shape[:2]
        host_in, places = Preprocessor(network_meta, size)(list(frames))
        logits = _run(net_session, np.ascontiguousarray(host_in))
        fed = np.stack(frames) if fused else np.ascontiguousarray(host_in)
        actual = _run(deployed_session, fed)
        shapes.append(tuple(fed.shape))
        if output_kind == "mask":
            decode, decode_deployed = Decoder(network_meta, size), Decoder(deployed_meta, size)
            for i, place in enumerate(places):
                tally.classes(decode_deployed(actual[i], place)[0], decode(logits[i], place)[0])
        elif actual.shape != logits.shape:
            return ParityResult(against, tuple(shapes), None, None, None, 0.0, False)
        else:
            tally.logits(actual, logits)
    # a mask has no logits; resized frames differ by OpenCV's rounding: only the classes compare
    return tally.result(against, shapes, None if output_kind == "mask" or resized else atol, rtol, min_agreement)
