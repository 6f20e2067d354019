"""ONNX Runtime backend: CPU, CUDA or TensorRT execution providers, with IO binding.

IO binding keeps ONNX Runtime from allocating outputs on every run: on the CPU the output
is written straight into a numpy buffer kept per input shape; with the CUDA/TensorRT
providers the input and output live in device OrtValues allocated once per shape, so the
copies in and out are explicit and timed separately from the compute.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from fcn_edge.artifacts import ModelMeta
from fcn_edge.artifacts.dtypes import ort_dtype_name
from fcn_edge.errors import MetaError, RuntimeInputError
from fcn_edge.optional import require
from fcn_edge.paths import cache_root
from fcn_edge.runtime.backend import Backend
from fcn_edge.runtime.result import InferTimings

log = logging.getLogger(__name__)

CPU_EP = "CPUExecutionProvider"
CUDA_EP = "CUDAExecutionProvider"
TRT_EP = "TensorrtExecutionProvider"
DEVICE_EPS = (TRT_EP, CUDA_EP)
PROVIDER_ALIASES = {"cpu": CPU_EP, "cuda": CUDA_EP, "tensorrt": TRT_EP, "trt": TRT_EP}


def resolve_providers(requested: Optional[Sequence[str]], available: Sequence[str]) -> List[str]:
    """Full provider names in priority order; CPU is always last as the fallback.

    ``None`` means: CUDA when this onnxruntime has it, then CPU. The TensorRT provider is
    used only when named (``["tensorrt"]``): it builds an engine on the first run, which
    takes minutes, and onnxruntime-gpu lists it even where the TensorRT libraries are
    missing. For TensorRT proper, build an engine and use the tensorrt backend.
    A requested provider that is not available is an error, not a silent CPU run.
    """
    if requested is None:
        chosen = [CUDA_EP] if CUDA_EP in available else []
    else:
        chosen = []
        for name in requested:
            full = PROVIDER_ALIASES.get(name.lower(), name)
            if full not in available:
                raise MetaError(
                    f"ONNX Runtime provider {full!r} is not available in this onnxruntime "
                    f"(available: {list(available)}); install onnxruntime-gpu for CUDA/TensorRT"
                )
            if full not in chosen:
                chosen.append(full)
    if CPU_EP not in chosen:
        chosen.append(CPU_EP)
    return chosen


def _provider_options(provider: str, device_id: int, cache_dir: Path) -> Dict[str, str]:
    if provider == CUDA_EP:
        return {"device_id": str(device_id)}
    if provider == TRT_EP:
        return {
            "device_id": str(device_id),
            "trt_engine_cache_enable": "True",
            "trt_engine_cache_path": str(cache_dir),
        }
    return {}


# ORT's WeightBiasQuantization turns the float bias of a DQ -> Conv into int32, computing
# bias / (input scale * weight scale) in the scales' type: with the FP16 scales of a mixed
# INT8/FP16 graph (fcn-edge quantize for TensorRT >= 10) that overflows or divides by an
# underflowed zero, and the convolution's output is garbage (FCN-8s ResNet-18 agreed 92 %
# with FP32 instead of 99 %). TensorRT keeps such biases float; so does this. Unknown names
# are ignored by older ORT.
DISABLED_OPTIMIZERS = ("WeightBiasQuantization",)


class OrtBackend(Backend):
    name = "onnxruntime"

    def __init__(
        self,
        path,
        meta: ModelMeta,
        providers: Optional[Sequence[str]] = None,
        device_id: int = 0,
        threads: Optional[int] = None,
    ):
        super().__init__(meta)
        ort = require("onnxruntime", "running ONNX models")
        self._ort = ort
        self.path = Path(path)
        chosen = resolve_providers(providers, ort.get_available_providers())
        cache_dir = cache_root() / "ort-trt"
        if TRT_EP in chosen:
            cache_dir.mkdir(parents=True, exist_ok=True)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = int(threads)
        try:
            self.session = ort.InferenceSession(
                str(self.path),
                sess_options=options,
                providers=[(p, _provider_options(p, device_id, cache_dir)) for p in chosen],
                disabled_optimizers=list(DISABLED_OPTIMIZERS),
            )
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph types
            raise MetaError(f"{self.path}: ONNX Runtime cannot load the model: {exc}") from exc
        self.providers = self.session.get_providers()
        self.device = "cuda" if self.providers and self.providers[0] in DEVICE_EPS else "cpu"
        self.device_id = device_id
        inputs = self.session.get_inputs()
        outputs = self.session.get_outputs()
        self.input_name = _pick(meta.input_name, [i.name for i in inputs], self.path, "input")
        self.output_name = _pick(meta.output_name, [o.name for o in outputs], self.path, "output")
        node = next(i for i in inputs if i.name == self.input_name)
        self._input_dims = tuple(d if isinstance(d, int) else None for d in node.shape)
        graph_dtype = ort_dtype_name(node.type)
        if graph_dtype != meta.input_dtype:
            raise MetaError(
                f"{self.path}: the graph's input {self.input_name} is {graph_dtype} but its ModelMeta says "
                f"{meta.input_dtype}; re-export, or fix the meta with fcn_edge.artifacts.write_onnx_meta"
            )
        self._binding = self.session.io_binding()
        self._host_out: Dict[Tuple[int, ...], np.ndarray] = {}
        self._dev_in: Dict[Tuple[int, ...], object] = {}
        self._dev_out: Dict[Tuple[int, ...], object] = {}
        if requested_cpu_fallback(providers, self.providers):
            log.warning("%s: ONNX Runtime fell back to %s", self.path, self.providers)

    # -- facts -------------------------------------------------------------------------
    @property
    def max_batch(self) -> Optional[int]:
        return self._input_dims[0] if self._input_dims else None

    @property
    def input_shape(self) -> Tuple[Optional[int], ...]:
        return self._input_dims

    @property
    def description(self) -> str:
        return f"onnxruntime {self._ort.__version__} [{', '.join(self.providers)}]"

    # -- run ---------------------------------------------------------------------------
    def infer(self, batch: np.ndarray) -> Tuple[np.ndarray, InferTimings]:
        if self._closed:
            raise RuntimeInputError(f"{self.path}: the ONNX Runtime backend is closed")
        if self.device == "cuda":
            return self._infer_device(batch)
        return self._infer_host(batch)

    def _infer_host(self, batch: np.ndarray) -> Tuple[np.ndarray, InferTimings]:
        ort = self._ort
        binding = self._binding
        binding.bind_cpu_input(self.input_name, batch)
        out = self._host_out.get(batch.shape)
        if out is not None:
            binding.bind_ortvalue_output(self.output_name, ort.OrtValue.ortvalue_from_numpy(out))
        else:
            binding.bind_output(self.output_name, "cpu")
        start = time.perf_counter()
        self.session.run_with_iobinding(binding)
        compute = time.perf_counter() - start
        if out is None:
            # First run at this shape: ORT allocated the output; keep a buffer of that
            # shape and bind it from now on, so later runs write in place.
            first = binding.get_outputs()[0].numpy()
            out = np.empty_like(first)
            self._host_out[batch.shape] = out
            out[...] = first
        return out, InferTimings(0.0, compute * 1e3, 0.0)

    def _infer_device(self, batch: np.ndarray) -> Tuple[np.ndarray, InferTimings]:
        ort = self._ort
        binding = self._binding
        dev_in = self._dev_in.get(batch.shape)
        start = time.perf_counter()
        if dev_in is None:
            dev_in = ort.OrtValue.ortvalue_from_numpy(batch, "cuda", self.device_id)
            self._dev_in[batch.shape] = dev_in
        else:
            dev_in.update_inplace(batch)
        h2d = time.perf_counter() - start
        binding.bind_ortvalue_input(self.input_name, dev_in)
        dev_out = self._dev_out.get(batch.shape)
        if dev_out is not None:
            binding.bind_ortvalue_output(self.output_name, dev_out)
        else:
            binding.bind_output(self.output_name, "cuda", self.device_id)
        start = time.perf_counter()
        self.session.run_with_iobinding(binding)
        binding.synchronize_outputs()
        compute = time.perf_counter() - start
        if dev_out is None:
            dev_out = binding.get_outputs()[0]
            self._dev_out[batch.shape] = dev_out
        start = time.perf_counter()
        out = dev_out.numpy()
        d2h = time.perf_counter() - start
        return out, InferTimings(h2d * 1e3, compute * 1e3, d2h * 1e3)

    def close(self) -> None:
        if not self._closed:
            self._binding = None
            self._dev_in.clear()
            self._dev_out.clear()
            self._host_out.clear()
            self.session = None
        super().close()


def requested_cpu_fallback(requested: Optional[Sequence[str]], active: Sequence[str]) -> bool:
    """True when a device provider was asked for by name but the session runs on CPU."""
    if not requested:
        return False
    wanted = {PROVIDER_ALIASES.get(p.lower(), p) for p in requested}
    return bool(wanted & set(DEVICE_EPS)) and not (set(active) & set(DEVICE_EPS))


def _pick(wanted: str, names: List[str], path: Path, kind: str) -> str:
    if wanted in names:
        return wanted
    if len(names) == 1:
        return names[0]
    raise MetaError(
        f"{path}: ModelMeta names {kind} {wanted!r} but the graph's {kind}s are {names}; "
        f"fix the meta's {kind}_name or re-export"
    )
