"""PyTorch backend: the reference that ONNX Runtime and TensorRT masks are checked against.

It runs ``.pt`` checkpoints (via :func:`fcn_edge.models.checkpoint.load_checkpoint`) and any
``nn.Module`` taking normalised float NCHW RGB. torch is imported here only, when this
backend is built: ``import fcn_edge.runtime`` never pulls it in.
"""

from __future__ import annotations

import time
from typing import Optional, Tuple

import numpy as np

from fcn_edge.artifacts import ModelMeta
from fcn_edge.errors import MetaError, RuntimeInputError
from fcn_edge.optional import require
from fcn_edge.runtime.backend import Backend
from fcn_edge.runtime.result import InferTimings


class TorchBackend(Backend):
    name = "torch"

    @classmethod
    def from_checkpoint(cls, path, device: int = 0, threads: Optional[int] = None) -> "TorchBackend":
        require("torch", "running .pt checkpoints")
        from fcn_edge.models.checkpoint import load_checkpoint

        loaded = load_checkpoint(path)
        return cls(loaded.model, loaded.meta, device=device, threads=threads)

    def __init__(self, model, meta: ModelMeta, device: int = 0, threads: Optional[int] = None,
                 use_cuda: Optional[bool] = None):
        """``use_cuda``: None picks CUDA when torch sees a GPU; ``device`` is its index."""
        if meta.fused_preprocess or meta.fused_argmax:
            meta = meta.replace(input_layout="NCHW", input_dtype="float32", channel_order="RGB",
                                output_kind="logits", output_dtype="float32")
        super().__init__(meta)
        torch = require("torch", "the PyTorch backend")
        self._torch = torch
        if threads:
            torch.set_num_threads(int(threads))
        if use_cuda is None:
            use_cuda = torch.cuda.is_available()
        if use_cuda and not torch.cuda.is_available():
            raise MetaError("the torch backend was asked for CUDA but torch sees no GPU")
        self.device = torch.device(f"cuda:{device}" if use_cuda else "cpu")
        self.model = model.eval().to(self.device)
        self._in = None

    @property
    def description(self) -> str:
        where = self._torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "CPU"
        return f"PyTorch {self._torch.__version__} on {where}"

    def infer(self, batch: np.ndarray) -> Tuple[np.ndarray, InferTimings]:
        if self._closed:
            raise RuntimeInputError("the torch backend is closed")
        torch = self._torch
        cuda = self.device.type == "cuda"
        host = torch.from_numpy(batch)
        t0 = time.perf_counter()
        if cuda:
            if self._in is None or self._in.shape != host.shape:
                self._in = torch.empty(host.shape, dtype=host.dtype, device=self.device)
            self._in.copy_(host)
            torch.cuda.synchronize(self.device)
            x = self._in
        else:
            x = host
        t1 = time.perf_counter()
        with torch.inference_mode():
            y = self.model(x)
            if isinstance(y, dict):  # torchvision-style {"out": ...}
                y = y["out"]
            if cuda:
                torch.cuda.synchronize(self.device)
        t2 = time.perf_counter()
        out = y.float().cpu().numpy()
        t3 = time.perf_counter()
        return out, InferTimings((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3)

    def close(self) -> None:
        self.model = None
        self._in = None
        super().close()
