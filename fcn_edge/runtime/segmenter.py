"""Segmenter: preprocess -> backend -> decode, for one frame or a batch, with stage timings.

``load_segmenter`` picks the backend from the artifact: a TensorRT ``.engine`` (with its
``.engine.json`` sidecar), an ``.onnx`` through ONNX Runtime, a ``.pt`` checkpoint through
PyTorch (the reference), or a ``triton://`` URI through a Triton server; without a path it
loads the shipped default model's fused ONNX, which needs no torch. ModelMeta comes from the sidecar, the ONNX metadata or the
checkpoint, so nobody passes class lists or normalisation constants.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from fcn_edge.artifacts import ModelMeta, model_kind
from fcn_edge.errors import MetaError, RuntimeInputError, UsageError
from fcn_edge.paths import PathLike
from fcn_edge.runtime.backend import BACKEND_ALIASES, BACKENDS, Backend
from fcn_edge.runtime.decode import DecodeConfig, Decoder
from fcn_edge.runtime.preprocess import Preprocessor
from fcn_edge.runtime.result import SegmentationResult, StageTimings
from fcn_edge.runtime.triton_uri import is_triton_uri

log = logging.getLogger(__name__)

# Frames per call when the graph sets no batch limit: bounds host memory for huge lists.
UNBOUNDED_BATCH_STEP = 16


class Segmenter:
    """Segments BGR frames with one backend. Not thread-safe: use one per thread.

    The network input size is ``input_size`` (default: the meta's), which for a
    dynamic-shape model may be any size within the meta's min/max range.
    """

    def __init__(
        self,
        backend: Backend,
        decode: DecodeConfig = DecodeConfig(),
        input_size: Optional[Tuple[int, int]] = None,
    ):
        self.backend = backend
        self.meta: ModelMeta = backend.meta
        self.path: Optional[Path] = None  # the model file, when load_segmenter opened one
        self.input_size = tuple(input_size or self.meta.input_size)
        _check_input_size(self.meta, self.input_size, backend)
        self.preprocess = Preprocessor(self.meta, self.input_size, getattr(backend, "host_input", None))
        self.decode = Decoder(self.meta, self.input_size, decode)

    def set_decode(self, config: DecodeConfig) -> None:
        """Decode later frames with ``config``, e.g. with confidence once the meta says the
        model gives scores. Raises MetaError when the model cannot (a fused argmax)."""
        self.decode = Decoder(self.meta, self.input_size, config)

    # -- facts -------------------------------------------------------------------------
    @property
    def class_names(self) -> Tuple[str, ...]:
        return self.meta.class_names

    @property
    def palette(self):
        return self.meta.palette

    @property
    def description(self) -> str:
        return f"{self.meta.architecture} {self.input_size[0]}x{self.input_size[1]} on {self.backend.description}"

    @property
    def batch_limit(self) -> int:
        """Frames per backend call in ``segment_batch``."""
        limit = self.backend.max_batch
        return max(1, int(limit)) if limit is not None else UNBOUNDED_BATCH_STEP

    # -- run ---------------------------------------------------------------------------
    def segment(self, frame: np.ndarray) -> SegmentationResult:
        """Class mask of one HxWx3 uint8 BGR frame, at the frame's size."""
        return self._run([frame])[0][0]

    def segment_batch(self, frames: Sequence[np.ndarray]) -> List[SegmentationResult]:
        """Masks of several frames, run in batches as large as the backend allows.

        Stages shared by a batch (preprocess, copies, compute) are divided evenly among its
        frames in each result's timings, so summing the results' timings gives the total.
        """
        frames = list(frames)
        if not frames:
            raise RuntimeInputError("segment_batch: no frames given")
        results: List[SegmentationResult] = []
        step = self.batch_limit
        for start in range(0, len(frames), step):
            results.extend(self._run(frames[start : start + step])[0])
        return results

    def infer(self, frames: Sequence[np.ndarray]) -> Tuple[List[SegmentationResult], np.ndarray]:
        """The results ``segment_batch`` gives for up to ``batch_limit`` frames (one backend
        call), and a copy of the network's raw output for them: (N, C, h, w) scores or an
        (N, h, w) mask at network resolution, letterbox padding included.

        For comparing what two variants of a model compute (``fcn-edge compare`` measures
        logit differences with it); ``segment``/``segment_batch`` skip the copy.
        """
        frames = list(frames)
        if not frames:
            raise RuntimeInputError("infer: no frames given")
        if len(frames) > self.batch_limit:
            raise RuntimeInputError(f"infer: {len(frames)} frames exceed one call's {self.batch_limit}; "
                                    "use segment_batch, or fewer frames")
        results, output = self._run(frames)
        return results, np.array(output[: len(frames)])

    def warmup(self, runs: int = 2, frame_size: Optional[Tuple[int, int]] = None) -> None:
        """Run grey frames so lazy allocations and autotuning happen before timing starts
        (default size: the network's, or the frame size a fused-resize model is tuned for)."""
        h, w = frame_size or (self.meta.frame_size if self.meta.fused_resize else self.input_size)
        grey = np.full((h, w, 3), 127, np.uint8)
        for _ in range(runs):
            self.segment(grey)

    def _run(self, frames: List[np.ndarray]) -> Tuple[List[SegmentationResult], np.ndarray]:
        """Results of one backend call, and the backend's output (valid until its next call)."""
        n = len(frames)
        fixed = self.backend.input_shape[0] if self.backend.input_shape else None
        padded = frames
        if fixed is not None and fixed != n:
            if n > fixed:
                raise RuntimeInputError(f"{n} frames exceed the model's fixed batch of {fixed}")
            padded = frames + [frames[-1]] * (fixed - n)  # a fixed-batch graph needs a full batch
        t0 = time.perf_counter()
        batch, places = self.preprocess(padded)
        t1 = time.perf_counter()
        output, infer = self.backend.infer(batch)
        pre = (t1 - t0) * 1e3 / n
        results = []
        for i in range(n):
            t2 = time.perf_counter()
            mask, confidence = self.decode(output[i], places[i])
            timings = StageTimings(
                preprocess_ms=pre,
                h2d_ms=infer.h2d_ms / n,
                compute_ms=infer.compute_ms / n,
                d2h_ms=infer.d2h_ms / n,
                decode_ms=(time.perf_counter() - t2) * 1e3,
            )
            results.append(SegmentationResult(mask, confidence, timings, self.meta))
        return results, output

    # -- lifetime ----------------------------------------------------------------------
    def close(self) -> None:
        self.preprocess.release()  # before the backend frees the pinned memory they view
        self.backend.close()

    def __enter__(self) -> "Segmenter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _check_input_size(meta: ModelMeta, size: Tuple[int, int], backend: Backend) -> None:
    lo, _, hi = meta.size_range
    if not (lo[0] <= size[0] <= hi[0] and lo[1] <= size[1] <= hi[1]):
        raise MetaError(
            f"input size {size[0]}x{size[1]} is outside the model's range "
            f"{lo[0]}x{lo[1]} .. {hi[0]}x{hi[1]} (height x width)"
        )
    dims = backend.input_shape
    if dims and len(dims) == 4 and not meta.fused_resize:  # a fused resize's input is the frame
        hw = (dims[1], dims[2]) if meta.input_layout == "NHWC" else (dims[2], dims[3])
        for have, want, axis in zip(hw, size, ("height", "width")):
            if have is not None and have != want:
                raise MetaError(
                    f"the graph's input {axis} is fixed at {have} but the runtime would feed "
                    f"{want}; ModelMeta input_size {meta.input_size} does not match the graph"
                )


def normalise_backend(name: str) -> str:
    name = BACKEND_ALIASES.get(name.lower(), name.lower())
    if name != "auto" and name not in BACKENDS:
        raise UsageError(f"unknown backend {name!r}; choose auto or one of {', '.join(BACKENDS)}")
    return name


def load_segmenter(
    path: Optional[PathLike] = None,
    backend: str = "auto",
    *,
    decode: Optional[DecodeConfig] = None,
    input_size: Optional[Tuple[int, int]] = None,
    providers: Optional[Sequence[str]] = None,
    device: int = 0,
    threads: Optional[int] = None,
    cuda_graph: bool = False,
    cuda: Optional[str] = None,
) -> Segmenter:
    """A ready Segmenter for ``path`` (.engine, .onnx or .pt; a ``triton://HOST:PORT/MODEL``
    URI, see :mod:`fcn_edge.runtime.triton_uri`; None: the shipped default model).

    ``backend``: auto (by file type) | tensorrt | onnxruntime | torch. ``providers``
    (ONNX Runtime only) e.g. ``["cuda"]``; default: the device providers this onnxruntime
    has, then CPU. ``cuda_graph`` (TensorRT only) captures the copies and the engine in a
    CUDA graph, for fixed-shape engines. ``threads`` sets CPU threads (ORT, torch).
    ``cuda`` (TensorRT only): the CUDA library, pycuda | cuda-python | auto (default
    ``$FCN_EDGE_CUDA``, else auto: pycuda, then cuda-python). A ``triton://`` model runs
    where it is served: ``threads``, ``device`` and ``cuda`` do not apply.
    """
    if is_triton_uri(path):
        if backend not in ("auto", "triton") or providers is not None or cuda_graph or cuda not in (None, "auto"):
            raise UsageError(f"{path}: a triton:// model runs on the server; backend, providers, cuda_graph and "
                             "cuda are for model files")
        from fcn_edge.runtime.triton_backend import TritonBackend

        return _segmenter(TritonBackend(str(path)), decode, input_size, None)
    if path is None:
        from fcn_edge.weights import default_onnx

        path = default_onnx()
    path = Path(path)
    if not path.is_file():
        raise MetaError(f"{path}: no such model file")
    kind = model_kind(path).require(
        "engine", "onnx", "checkpoint", purpose="the runtime runs TensorRT engines, ONNX models and "
        "fcn-edge checkpoints", hint="export it first with `fcn-edge export`",
    ).kind
    chosen = normalise_backend(backend)
    if chosen == "auto":
        chosen = {"engine": "tensorrt", "onnx": "onnxruntime", "checkpoint": "torch"}[kind]
    compatible = {"engine": ("tensorrt",), "onnx": ("onnxruntime",), "checkpoint": ("torch",)}[kind]
    if chosen not in compatible:
        hint = {
            "engine": "a TensorRT engine runs only with backend='tensorrt'",
            "onnx": "run an ONNX file with backend='onnxruntime' (providers=['tensorrt'] uses "
            "ONNX Runtime's TensorRT provider), or build an engine with `fcn-edge build-engine`",
            "checkpoint": "a checkpoint runs with backend='torch'; export it to ONNX first for the others",
        }[kind]
        raise MetaError(f"{path}: backend {chosen!r} cannot run a {kind} file: {hint}")
    if providers is not None and chosen != "onnxruntime":
        raise UsageError(f"providers= applies to the onnxruntime backend only, not {chosen!r}")
    if cuda_graph and chosen != "tensorrt":
        raise UsageError(f"cuda_graph=True applies to the tensorrt backend only, not {chosen!r}")
    if cuda not in (None, "auto") and chosen != "tensorrt":
        raise UsageError(f"cuda={cuda!r} chooses the TensorRT backend's CUDA library; {chosen!r} does not use it")

    if chosen == "onnxruntime":
        from fcn_edge.artifacts import read_onnx_meta
        from fcn_edge.runtime.ort_backend import OrtBackend

        runner: Backend = OrtBackend(path, read_onnx_meta(path), providers, device, threads)
    elif chosen == "tensorrt":
        from fcn_edge.runtime.trt_backend import TrtBackend

        runner = TrtBackend.from_file(path, device=device, cuda_graph=cuda_graph, cuda=cuda)
    else:
        from fcn_edge.runtime.torch_backend import TorchBackend

        runner = TorchBackend.from_checkpoint(path, device=device, threads=threads)
    return _segmenter(runner, decode, input_size, path)


def _segmenter(runner: Backend, decode: Optional[DecodeConfig], input_size: Optional[Tuple[int, int]],
               path: Optional[Path]) -> Segmenter:
    try:
        segmenter = Segmenter(runner, decode or DecodeConfig(), input_size)
        segmenter.path = path
        return segmenter
    except BaseException:
        runner.close()
        raise


@dataclass(frozen=True)
class LoadOptions:
    """Which backend runs a model, and on what: ``load_segmenter``'s options as one value,
    for the jobs (``segment_images``, ``run_video``) that load a model for the user."""

    backend: str = "auto"
    providers: Optional[Tuple[str, ...]] = None
    device: int = 0
    threads: Optional[int] = None
    cuda_graph: bool = False
    input_size: Optional[Tuple[int, int]] = None
    cuda: Optional[str] = None  # TensorRT's CUDA library: pycuda | cuda-python | auto

    def __post_init__(self) -> None:
        normalise_backend(self.backend)

    def load(self, path: Optional[PathLike] = None, decode: DecodeConfig = DecodeConfig()) -> Segmenter:
        """``load_segmenter(path, ...)`` with these options (None: the default model)."""
        return load_segmenter(path, self.backend, decode=decode, input_size=self.input_size,
                              providers=list(self.providers) if self.providers is not None else None,
                              device=self.device, threads=self.threads, cuda_graph=self.cuda_graph,
                              cuda=self.cuda)
