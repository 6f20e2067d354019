"""``fcn-edge serve MODEL``: a real Triton Inference Server for any fcn-edge model, through PyTriton.

PyTriton's wheel carries the Triton server, so a machine with no Triton install serves an
engine, an ONNX or a checkpoint with Triton's dynamic batching across clients, its health
and metrics endpoints and its statistics API. The model runs in this process, on the
runtime's own backend (one per instance); Triton hands each instance batches of the network
inputs, exactly what a ``tensorrt_plan`` or ``onnxruntime_onnx`` model of ``fcn-edge
triton-repo`` would get, with the same tensors, batching and ``fcn_edge.meta`` parameter
(:class:`~fcn_edge.serve.model_config.TritonModelConfig`), so clients cannot tell them apart.

PyTriton's Python backend runs a stub program that loads this interpreter's shared libpython;
:func:`prepare_interpreter` checks that there is one and makes the stub load this one and not
another Python's of the same version (MEASURED.md: a pyenv 3.11.7 beside Debian's 3.11.2
failed exactly so).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import sysconfig
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from fcn_edge.artifacts import model_kind
from fcn_edge.errors import FcnEdgeError
from fcn_edge.optional import require
from fcn_edge.paths import PathLike, cache_root
from fcn_edge.runtime import LoadOptions, Segmenter
from fcn_edge.runtime.triton_uri import is_loopback, is_triton_uri
from fcn_edge.serve.interface import model_interface
from fcn_edge.serve.model_config import ServingOptions, TritonModelConfig, make_config, model_name_for

log = logging.getLogger(__name__)

_SYSTEM_LIB_DIRS = ("/lib", "/usr/lib", "/lib64", "/usr/lib64")
VENV_HINT = ("make a venv from an interpreter built with --enable-shared, e.g. Debian's: "
             "/usr/bin/python3 -m venv ~/triton-venv && ~/triton-venv/bin/pip install 'fcn-edge[serve]' "
             "(apt-get install python3-venv python3-dev first); then run ~/triton-venv/bin/fcn-edge serve")


class ServeError(FcnEdgeError):
    """The Triton server cannot be started here, or stopped on its own."""


@dataclass(frozen=True)
class ServeConfig:
    """How ``fcn-edge serve`` runs: the model's name, where it listens, batching and instances
    (as ``triton-repo`` writes them), and the backend the model runs on in this process."""

    name: Optional[str] = None
    host: str = "0.0.0.0"
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    serving: ServingOptions = field(default_factory=ServingOptions)
    load: LoadOptions = field(default_factory=LoadOptions)
    exit_timeout_s: int = 5
    verbose: bool = False


def shared_libpython() -> Path:
    """This interpreter's shared libpython, or ServeError saying how to get an interpreter that has one."""
    where = f"{sys.executable} (Python {sys.version.split()[0]})"
    if not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        raise ServeError(f"{where} was built without a shared libpython (--enable-shared), which PyTriton's "
                         f"Python backend loads; {VENV_HINT}")
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    name = sysconfig.get_config_var("INSTSONAME") or sysconfig.get_config_var("LDLIBRARY") or ""
    library = Path(libdir) / name
    if not name or not library.is_file():
        raise ServeError(f"{where}: its shared libpython {library} is missing (Debian: apt-get install "
                         f"libpython{sys.version_info[0]}.{sys.version_info[1]}); {VENV_HINT}")
    return library


def prepare_interpreter() -> Path:
    """Check for a shared libpython and put its folder first on LD_LIBRARY_PATH when it is not
    a system folder, so the stub PyTriton starts loads this Python's library (the server and
    the stub inherit this process's environment). Returns the library."""
    library = shared_libpython()
    folder = str(library.parent)
    if not folder.startswith(_SYSTEM_LIB_DIRS):
        paths = [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]
        if folder not in paths:
            os.environ["LD_LIBRARY_PATH"] = os.pathsep.join([folder] + paths)
    return library


def _infer_function(backend: Any, config: TritonModelConfig):
    """The callable PyTriton runs for one instance: network inputs in, network output out."""
    input_name = config.interface.inputs[0].name
    output_name = config.interface.outputs[0].name

    def run(batch: np.ndarray) -> Dict[str, np.ndarray]:
        output, _ = backend.infer(np.ascontiguousarray(batch))
        return {output_name: np.array(output)}  # a copy: the backend reuses its output buffer

    if config.max_batch_size > 0:
        from pytriton.decorators import batch

        @batch
        def infer_batch(**inputs: np.ndarray) -> Dict[str, np.ndarray]:
            return run(inputs[input_name])

        return infer_batch

    def infer_requests(requests: List[Dict[str, np.ndarray]]) -> List[Dict[str, np.ndarray]]:
        return [run(request[input_name]) for request in requests]

    return infer_requests


class ModelServer:
    """One model served by a PyTriton Triton server: ``start()``, ``wait()``, ``stop()``; or a
    context manager. The model is loaded once per instance before the server starts."""

    def __init__(self, model: Optional[PathLike] = None, config: ServeConfig = ServeConfig()):
        self.config = config
        self.model_path = Path(model) if model is not None and not is_triton_uri(model) else model
        self.segmenters: List[Segmenter] = []
        self.model_config: Optional[TritonModelConfig] = None
        self._triton: Any = None

    # -- start ----------------------------------------------------------------------------
    def start(self) -> "ModelServer":
        if is_triton_uri(self.model_path):
            raise ServeError(f"{self.model_path} is served already; fcn-edge serve serves model files")
        pytriton = require("pytriton.triton", "fcn-edge serve")
        prepare_interpreter()
        from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor

        if not self.config.verbose:
            logging.getLogger("pytriton").setLevel(logging.WARNING)
        try:
            self._load_instances()
            config = self.model_config
            self._triton = pytriton.Triton(
                config=pytriton.TritonConfig(
                    http_address=self.config.host, http_port=self.config.http_port,
                    grpc_address=self.config.host, grpc_port=self.config.grpc_port,
                    metrics_port=self.config.metrics_port, allow_metrics=True,
                    exit_timeout_secs=self.config.exit_timeout_s, log_verbose=1 if self.config.verbose else 0,
                    log_file=None if self.config.verbose else self.log_file,
                ),
                security_config=pytriton.TritonSecurityConfig(restricted_endpoints=list(self.restricted_endpoints)),
            )
            batching = config.max_batch_size > 0
            self._triton.bind(
                model_name=config.name,
                infer_func=[_infer_function(s.backend, config) for s in self.segmenters],
                inputs=[Tensor(name=t.name, dtype=np.dtype(t.dtype), shape=t.dims) for t in config.interface.inputs],
                outputs=[Tensor(name=t.name, dtype=np.dtype(t.dtype), shape=t.dims) for t in config.interface.outputs],
                config=ModelConfig(
                    batching=batching, max_batch_size=max(config.max_batch_size, 1),
                    batcher=DynamicBatcher(max_queue_delay_microseconds=config.queue_delay_us,
                                           preferred_batch_size=list(config.preferred_batch) or None),
                ),
                strict=True,
            )
            self._add_parameters(config)
            self._triton.run()
        except BaseException:
            self.stop()
            raise
        return self

    def _load_instances(self) -> None:
        load = self.config.load
        for _ in range(self.config.serving.instances):
            self.segmenters.append(load.load(self.model_path))
        first = self.segmenters[0]
        path = first.path  # the file load_segmenter opened (the default model's when none was named)
        interface = model_interface(path, model_kind(path).kind, first.meta)
        stem = path.name[: -len(path.suffix)] if path.suffix else path.name
        # PyTriton's instances are Python processes (KIND_CPU) whatever device the backend uses
        options = ServingOptions(
            max_batch=self.config.serving.max_batch, preferred_batch=self.config.serving.preferred_batch,
            queue_delay_us=self.config.serving.queue_delay_us, instances=self.config.serving.instances,
            instance_kind="cpu",
        )
        self.model_config = make_config(self.config.name or model_name_for(stem), "", interface, first.meta,
                                        options, backend="python")

    def _add_parameters(self, config: TritonModelConfig) -> None:
        """ModelMeta as the config parameter, as in a triton-repo config. PyTriton has no public
        way to add config parameters: its model's generated config carries them."""
        try:
            models = [m for m in self._triton._model_manager.models if m.model_name == config.name]
            generated = models[0]._get_triton_model_config()
            generated.backend_parameters.update(config.parameters)
        except (AttributeError, IndexError) as exc:
            from importlib.metadata import version

            raise ServeError(f"this nvidia-pytriton ({version('nvidia-pytriton')}) does not expose its model config "
                             f"({exc}); fcn-edge serve works with nvidia-pytriton 0.7") from exc

    @property
    def log_file(self) -> Path:
        """Where the Triton server logs when not --verbose (PyTriton would print every line)."""
        name = self.model_config.name if self.model_config else "model"
        folder = cache_root() / "serve"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{name}-{os.getpid()}.log"

    @property
    def restricted_endpoints(self) -> Tuple[str, ...]:
        """Triton APIs kept behind PyTriton's access token. Statistics stay open (benchmarks read
        them); system shared memory too when the server listens on loopback only, so clients on
        this machine pass tensors through it without opening it to the network."""
        kept = ["model-repository", "trace", "logging"]
        if not is_loopback(self.config.host):
            kept.insert(0, "shared-memory")
        return tuple(kept)

    # -- run ------------------------------------------------------------------------------
    @property
    def endpoints(self) -> Dict[str, str]:
        host = "127.0.0.1" if self.config.host in ("0.0.0.0", "::") else self.config.host
        name = self.model_config.name if self.model_config else "MODEL"
        http = f"http://{host}:{self.config.http_port}"
        return {
            "grpc": f"triton://{host}:{self.config.grpc_port}/{name}",
            "http": f"triton://{host}:{self.config.http_port}/{name}?protocol=http",
            "ready": f"{http}/v2/health/ready",
            "live": f"{http}/v2/health/live",
            "config": f"{http}/v2/models/{name}/config",
            "statistics": f"{http}/v2/models/{name}/stats",
            "metrics": f"http://{host}:{self.config.metrics_port}/metrics",
        }

    @property
    def alive(self) -> bool:
        return self._triton is not None and self._triton.is_alive()

    def wait(self, stop: threading.Event, poll_s: float = 1.0) -> str:
        """Block until ``stop`` is set (returns its reason) or the server stops on its own (ServeError)."""
        while not stop.wait(poll_s):
            if not self.alive:
                raise ServeError(f"the Triton server stopped on its own; its log: {self.log_file}")
        return "stop requested"

    def stop(self) -> None:
        """Stop Triton (in-flight requests finish within the exit timeout), then free the models."""
        if self._triton is not None:
            try:
                self._triton.stop()
            finally:
                self._triton = None
        for segmenter in self.segmenters:
            segmenter.close()
        self.segmenters.clear()

    def __enter__(self) -> "ModelServer":
        return self.start() if self._triton is None else self

    def __exit__(self, *exc) -> None:
        self.stop()


def serve_until_signalled(server: ModelServer) -> str:
    """Serve until SIGINT or SIGTERM (from the main thread), then return the signal's name."""
    stop = threading.Event()
    reason = {"name": "stop requested"}

    def handler(signum, _frame):
        reason["name"] = signal.Signals(signum).name
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.wait(stop)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    return reason["name"]
