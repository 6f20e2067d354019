"""The one small interface every inference backend implements.

A backend is built from a file, runs one preprocessed batch per ``infer`` call and gives
back the single network output plus where the time went. It holds its session, engine or
buffers until ``close()``; it is a context manager too.
"""

from __future__ import annotations

import abc
from typing import Optional, Tuple

import numpy as np

from fcn_edge.artifacts import ModelMeta
from fcn_edge.runtime.result import InferTimings

BACKENDS = ("tensorrt", "onnxruntime", "torch")
# Accepted spellings on the command line and in load_segmenter.
BACKEND_ALIASES = {"trt": "tensorrt", "ort": "onnxruntime", "pytorch": "torch"}


class Backend(abc.ABC):
    """Runs a network on batches that :class:`~fcn_edge.runtime.preprocess.Preprocessor` made."""

    name: str = ""

    def __init__(self, meta: ModelMeta):
        self.meta = meta
        self._closed = False

    @property
    def max_batch(self) -> Optional[int]:
        """Largest batch one ``infer`` call accepts; None when the graph sets no limit."""
        return None

    @property
    def input_shape(self) -> Tuple[Optional[int], ...]:
        """The graph input's dims in its own layout; None marks a dynamic dim."""
        return tuple([None] * 4)

    @property
    def description(self) -> str:
        """One line for logs and benchmark reports: backend, version, device."""
        return self.name

    @abc.abstractmethod
    def infer(self, batch: np.ndarray) -> Tuple[np.ndarray, InferTimings]:
        """Run ``batch``; the returned array may be reused by the next call: read it first."""

    def close(self) -> None:
        self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:  # best effort; explicit close() is the contract
        try:
            if not self._closed:
                self.close()
        except Exception:
            pass
