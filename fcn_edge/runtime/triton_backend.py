"""Triton Inference Server as a runtime backend: ``triton://HOST:PORT/MODEL``.

The network runs on the server; frames are preprocessed and masks decoded here exactly as
with a local backend, so a camera-side Jetson and a GPU server split the work the same way
the fused model does. ModelMeta comes from the model's config parameter ``fcn_edge.meta``
(written by ``fcn-edge triton-repo`` and ``fcn-edge serve``), never from the user.

Requests go over gRPC (or HTTP) through tritonclient. When the server is on this machine the
tensors travel through system shared memory: the preprocessor writes the batch straight into
the registered input region and the server writes the mask into the output region, so no
tensor is serialised into a message. A server that stops answering is retried with growing
delays (:class:`RetryPolicy`), shared memory registered again when it comes back, and after
the last retry the call raises :class:`ServerUnavailableError`, which ends a video run like
any stage error: the output is finalised first.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, TypeVar, Union

import numpy as np

from fcn_edge.artifacts import ModelMeta
from fcn_edge.artifacts.dtypes import triton_dtype_name
from fcn_edge.artifacts.onnx_meta import ONNX_KEY
from fcn_edge.errors import FcnEdgeError, MetaError
from fcn_edge.optional import require
from fcn_edge.runtime.backend import Backend
from fcn_edge.runtime.result import InferTimings
from fcn_edge.runtime.triton_uri import TritonUri

log = logging.getLogger(__name__)

T = TypeVar("T")
# The model config parameter that carries ModelMeta: the ONNX metadata_props key, one name everywhere.
META_PARAMETER = ONNX_KEY
_REGIONS = itertools.count()
# gRPC status codes that mean "no answer" rather than "the server refused"
_UNREACHABLE = ("StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED", "StatusCode.CANCELLED")
_UNREACHABLE_TEXT = ("failed to connect", "connection refused", "socket closed", "connection reset",
                     "broken pipe", "unavailable", "deadline exceeded")
# a restarted server has forgotten the regions: register them again and retry
_SHM_LOST_TEXT = ("shared memory region", "unable to find")


class TritonServerError(FcnEdgeError):
    """The Triton server refused a request or does not serve the model as fcn-edge needs."""


class ServerUnavailableError(TritonServerError):
    """The server cannot be reached, or stopped answering and did not come back in time."""


@dataclass(frozen=True)
class RetryPolicy:
    """``retries`` more tries after a failed one, waiting ``first_delay_s`` and then
    ``factor`` times longer each time, never more than ``max_delay_s``."""

    retries: int = 5
    first_delay_s: float = 0.25
    factor: float = 2.0
    max_delay_s: float = 4.0

    def delays(self) -> List[float]:
        return [min(self.max_delay_s, self.first_delay_s * self.factor ** i) for i in range(self.retries)]


@dataclass(frozen=True)
class ServerStats:
    """One model's counters from Triton's statistics API, cumulative since it loaded.

    ``inference_count`` counts batch items (frames), ``execution_count`` model executions:
    fewer executions than inferences means the dynamic batcher combined requests.
    ``*_ns`` are summed over requests (each request of a batch is charged the batch's
    compute time). :meth:`since` gives the counters of a window between two snapshots.
    """

    inference_count: int = 0
    execution_count: int = 0
    requests: int = 0
    queue_ns: int = 0
    compute_input_ns: int = 0
    compute_infer_ns: int = 0
    compute_output_ns: int = 0
    batch_executions: Tuple[Tuple[int, int], ...] = field(default_factory=tuple)  # (batch size, executions)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], model: str) -> "ServerStats":
        """From ``get_inference_statistics`` as JSON (gRPC's JSON spells int64 as strings)."""
        entries = [m for m in data.get("model_stats", []) if m.get("name", model) == model]
        total = cls()
        for entry in entries:
            stats = entry.get("inference_stats", {})

            def pick(key: str, part: str = "ns", source: Mapping[str, Any] = stats) -> int:
                return int((source.get(key) or {}).get(part, 0) or 0)

            batches = tuple(sorted((int(b.get("batch_size", 0)), pick("compute_infer", "count", b))
                                   for b in entry.get("batch_stats", [])))
            total = total.plus(cls(
                int(entry.get("inference_count", 0) or 0), int(entry.get("execution_count", 0) or 0),
                pick("success", "count"), pick("queue"), pick("compute_input"), pick("compute_infer"),
                pick("compute_output"), batches,
            ))
        return total

    def _combine(self, other: "ServerStats", sign: int) -> "ServerStats":
        counts: Dict[int, int] = dict(self.batch_executions)
        for size, n in other.batch_executions:
            counts[size] = counts.get(size, 0) + sign * n
        fields = {k: getattr(self, k) + sign * getattr(other, k) for k in (
            "inference_count", "execution_count", "requests", "queue_ns", "compute_input_ns",
            "compute_infer_ns", "compute_output_ns")}
        return ServerStats(**fields, batch_executions=tuple(sorted((s, n) for s, n in counts.items() if n)))

    def plus(self, other: "ServerStats") -> "ServerStats":
        return self._combine(other, 1)

    def since(self, earlier: "ServerStats") -> "ServerStats":
        return self._combine(earlier, -1)

    @property
    def mean_batch(self) -> float:
        return self.inference_count / self.execution_count if self.execution_count else 0.0

    def per_request_ms(self, ns: int) -> float:
        return ns / self.requests / 1e6 if self.requests else 0.0

    @property
    def queue_ms(self) -> float:
        return self.per_request_ms(self.queue_ns)

    @property
    def compute_ms(self) -> float:
        return self.per_request_ms(self.compute_input_ns + self.compute_infer_ns + self.compute_output_ns)

    def as_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data["batch_executions"] = {str(size): n for size, n in self.batch_executions}
        data.update(mean_batch=self.mean_batch, queue_ms=self.queue_ms, compute_ms=self.compute_ms)
        return data

    def describe(self) -> str:
        sizes = ", ".join(f"{n}x{size}" for size, n in self.batch_executions) or "none"
        return (f"{self.inference_count} inferences in {self.execution_count} executions (mean batch "
                f"{self.mean_batch:.2f}; executions x batch size: {sizes}); per request: queue "
                f"{self.queue_ms:.2f} ms, compute {self.compute_ms:.2f} ms (input "
                f"{self.per_request_ms(self.compute_input_ns):.2f}, infer {self.per_request_ms(self.compute_infer_ns):.2f}, "
                f"output {self.per_request_ms(self.compute_output_ns):.2f})")


class _ModelNotReady(Exception):
    """The server answers but the model is not (yet) ready: retried like a missing server."""


def meta_of_config(config: Mapping[str, Any], source: str) -> ModelMeta:
    """ModelMeta from a served model's config (as JSON), where triton-repo and serve put it."""
    entry = (config.get("parameters") or {}).get(META_PARAMETER)
    text = entry.get("string_value") if isinstance(entry, Mapping) else None
    if not text:
        raise MetaError(
            f"{source}: the model's config has no '{META_PARAMETER}' parameter (ModelMeta), so fcn-edge "
            "cannot know its classes and preprocessing; write its repository with `fcn-edge triton-repo`, "
            "or serve it with `fcn-edge serve`"
        )
    return ModelMeta.from_json(text, f"{source} parameter {META_PARAMETER}")


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, (ConnectionError, TimeoutError, OSError, _ModelNotReady)):
        return True
    status = getattr(exc, "status", None)
    code = str(status() if callable(status) else status or "")
    text = str(exc).lower()
    if "restricted" in text:  # the server answers, but keeps this API behind a token
        return False
    if code in _UNREACHABLE or code in ("502", "503", "504"):
        return True
    return any(t in text for t in _UNREACHABLE_TEXT) or all(t in text for t in _SHM_LOST_TEXT)


def _dims(values) -> Tuple[int, ...]:
    return tuple(int(v) for v in values or ())


class _SharedMemory:
    """An input and an output region of system shared memory, registered with the server."""

    def __init__(self, shm: Any, client: Callable[[], Any], in_bytes: int, out_bytes: int):
        self._shm = shm
        self._client = client  # the calling thread's client
        tag = f"fcn_edge_{os.getpid()}_{next(_REGIONS)}"
        self.regions: Dict[str, Tuple[str, int, Any]] = {}
        for role, size in (("in", in_bytes), ("out", out_bytes)):
            name = f"{tag}_{role}"
            handle = shm.create_shared_memory_region(name, f"/{name}", size, create_only=True)
            self.regions[role] = (name, size, handle)
        try:
            self.register()
        except BaseException:
            self.destroy()
            raise

    def register(self) -> None:
        """(Again, after a server restart:) make the server map both regions."""
        for name, size, _ in self.regions.values():
            try:
                self._client().unregister_system_shared_memory(name)
            except Exception:  # noqa: BLE001 - not registered yet, or the server forgot it
                pass
            self._client().register_system_shared_memory(name, f"/{name}", size)

    def view(self, role: str, shape: Tuple[int, ...], dtype) -> Optional[np.ndarray]:
        name, size, handle = self.regions[role]
        dtype = np.dtype(dtype)
        if int(np.prod(shape)) * dtype.itemsize > size:
            return None
        return self._shm.get_contents_as_numpy(handle, dtype, shape)

    def destroy(self) -> None:
        for name, _, handle in self.regions.values():
            try:
                self._client().unregister_system_shared_memory(name)
            except Exception:  # noqa: BLE001 - the server may be gone; the region is ours to free
                pass
            try:
                self._shm.destroy_shared_memory_region(handle)
            except Exception as exc:  # noqa: BLE001 - a view still alive; freed at exit
                log.debug("shared memory %s not freed: %s", name, exc)
        self.regions.clear()


class TritonBackend(Backend):
    """Runs the network of a Triton-served model, for one thread at a time (as every backend);
    a thread that takes over gets its own HTTP client (gevent's work on their own thread only)."""

    name = "triton"
    timing_clock = "perf_counter"  # the request's round trip, measured here

    def __init__(self, uri: Union[str, TritonUri], retry: Optional[RetryPolicy] = None):
        self.uri = TritonUri.parse(uri) if isinstance(uri, str) else uri
        self.retry = retry or RetryPolicy(retries=self.uri.retries)
        self._closed = True  # until connected: close() and __del__ have nothing to free
        self._tc = require(f"tritonclient.{self.uri.protocol}", f"the Triton backend ({self.uri})")
        self._local = threading.local()  # the HTTP client (gevent) works only on the thread that made it
        self._clients: List[Any] = []
        self._shm: Optional[_SharedMemory] = None
        try:
            config = self._call(self._connect, "connect")
            super().__init__(meta_of_config(config, str(self.uri)))
            self.config = config
            self.max_batch_size = int(config.get("max_batch_size", 0) or 0)
            self._input = self._tensor(config.get("input", []), self.meta.input_name, self.meta.input_dtype, "input")
            self._output = self._tensor(config.get("output", []), self.meta.output_name, self.meta.output_dtype, "output")
            self._wire_in = str(self._input["data_type"])[len("TYPE_"):]
            self._out_dtype = np.dtype(self.meta.output_dtype)
            if self.uri.use_shm:
                self._open_shm()
        except BaseException:
            self.close()
            raise

    # -- connection -----------------------------------------------------------------------
    @property
    def _client(self) -> Any:
        """This thread's client: gRPC's would do for all threads, HTTP's (gevent) only for its own."""
        client = getattr(self._local, "client", None)
        if client is None:
            if self.uri.protocol == "grpc":
                client = self._clients[0] if self._clients else self._tc.InferenceServerClient(url=self.uri.address)
            else:
                client = self._tc.InferenceServerClient(
                    url=self.uri.address, connection_timeout=self.uri.timeout_s, network_timeout=self.uri.timeout_s)
            if client not in self._clients:
                self._clients.append(client)
            self._local.client = client
        return client

    def _connect(self) -> Dict[str, Any]:
        self._server_version = str(self._json(self._client.get_server_metadata()).get("version", "?"))
        if not self._client.is_model_ready(self.uri.model, self.uri.version):
            raise _ModelNotReady(self._not_ready())  # still loading, perhaps: retried
        config = self._json(self._client.get_model_config(self.uri.model, self.uri.version))
        return config.get("config", config)  # gRPC wraps it in {"config": ...}

    def _json(self, reply: Any) -> Any:
        """gRPC replies are protobuf messages, HTTP's are JSON: plain dicts and lists either way."""
        if isinstance(reply, (dict, list)):
            return reply
        from google.protobuf.json_format import MessageToDict

        return MessageToDict(reply, preserving_proto_field_name=True)

    def _not_ready(self) -> str:
        try:
            index = self._json(self._client.get_model_repository_index())
            models = index.get("models", []) if isinstance(index, dict) else index
            names = sorted({m.get("name", "?") for m in models}) if isinstance(models, list) else []
        except Exception:  # noqa: BLE001 - the list only helps the message
            names = []
        listed = f"; the server has: {', '.join(names)}" if names else ""
        return f"{self.uri}: the server at {self.uri.address} has no ready model {self.uri.model!r}{listed}"

    def _tensor(self, tensors: List[Dict[str, Any]], name: str, dtype: str, role: str) -> Dict[str, Any]:
        found = next((t for t in tensors if t.get("name") == name), None)
        if found is None:
            raise MetaError(f"{self.uri}: ModelMeta names {role} {name!r} but the served model's {role}s are "
                            f"{[t.get('name') for t in tensors]}")
        served = triton_dtype_name(str(found.get("data_type", "")))
        if served != dtype:
            raise MetaError(f"{self.uri}: the served {role} {name!r} is {served} but its ModelMeta says {dtype}")
        return found

    def _call(self, fn: Callable[[], T], what: str) -> T:
        """``fn()``, retried with backoff while the server does not answer."""
        delays = self.retry.delays()
        started = time.perf_counter()
        for attempt in itertools.count():
            try:
                return fn()
            except FcnEdgeError:
                raise
            except Exception as exc:  # noqa: BLE001 - tritonclient's and the transport's errors
                if not _retryable(exc):
                    raise TritonServerError(f"{self.uri}: {what} refused by the server: {exc}") from exc
                if attempt >= len(delays):
                    waited = time.perf_counter() - started
                    raise ServerUnavailableError(
                        f"{self.uri}: no answer from the Triton server at {self.uri.address} ({self.uri.protocol}) "
                        f"after {attempt + 1} tries over {waited:.1f} s ({what}; last error: {_first_line(exc)}); "
                        "is it running? Start one with `fcn-edge serve MODEL` or tritonserver --model-repository=DIR"
                    ) from exc
                log.warning("%s: %s failed (%s); retry %d of %d in %.2f s", self.uri, what, _first_line(exc),
                            attempt + 1, len(delays), delays[attempt])
                time.sleep(delays[attempt])
                self._after_failure()
        raise AssertionError("unreachable")

    def _after_failure(self) -> None:
        """A restarted server forgot our shared memory: register it again (best effort)."""
        if self._shm is not None:
            try:
                self._shm.register()
            except Exception as exc:  # noqa: BLE001 - the next try reports what is wrong
                log.debug("%s: shared memory not registered again yet: %s", self.uri, exc)

    # -- shared memory ----------------------------------------------------------------------
    def _open_shm(self) -> None:
        try:
            shm = require("tritonclient.utils.shared_memory", "system shared memory with Triton")
            self._shm = _SharedMemory(shm, lambda: self._client, *self._region_bytes())
        except Exception as exc:  # noqa: BLE001 - e.g. a server in a container without our /dev/shm
            if self.uri.shm == "on":
                raise TritonServerError(f"{self.uri}: system shared memory (shm=on) failed: {exc}") from exc
            log.info("%s: system shared memory not used (%s); tensors go in the requests", self.uri, _first_line(exc))
            self._shm = None

    def _region_bytes(self) -> Tuple[int, int]:
        """Bytes of the largest batch at the meta's largest size, in and out."""
        meta = self.meta
        batch = self.max_batch or 1
        high = meta.size_range[2]
        in_bytes = int(np.prod(meta.input_shape(batch, high))) * np.dtype(meta.input_dtype).itemsize
        per_pixel = 1 if meta.fused_argmax else meta.num_classes
        out_bytes = batch * high[0] * high[1] * per_pixel * self._out_dtype.itemsize
        return in_bytes, out_bytes

    def host_input(self, shape: Tuple[int, ...], dtype) -> np.ndarray:
        """A view of the shared input region, so frames are preprocessed straight into it."""
        view = self._shm.view("in", tuple(shape), dtype) if self._shm is not None else None
        return view if view is not None else np.empty(shape, dtype)

    # -- facts ----------------------------------------------------------------------------
    @property
    def max_batch(self) -> Optional[int]:
        if self.max_batch_size > 0:
            return self.max_batch_size
        dims = _dims(self._input.get("dims"))
        return dims[0] if dims and dims[0] > 0 else 1

    @property
    def input_shape(self) -> Tuple[Optional[int], ...]:
        dims = tuple(d if d > 0 else None for d in _dims(self._input.get("dims")))
        return ((None,) + dims) if self.max_batch_size > 0 else dims

    @property
    def description(self) -> str:
        version = f" v{self.uri.version}" if self.uri.version else ""
        shm = ", system shared memory" if self._shm is not None else ""
        return f"triton {self.uri.protocol} {self.uri.address} model {self.uri.model}{version} " \
               f"(server {self._server_version}{shm})"

    @property
    def shared_memory(self) -> bool:
        return self._shm is not None

    # -- run ------------------------------------------------------------------------------
    def infer(self, batch: np.ndarray) -> Tuple[np.ndarray, InferTimings]:
        if self._closed:
            raise TritonServerError(f"{self.uri}: the Triton backend is closed")
        t0 = time.perf_counter()
        inp = self._tc.InferInput(self.meta.input_name, list(batch.shape), self._wire_in)
        out = self._tc.InferRequestedOutput(self.meta.output_name)
        in_region = self._shm.view("in", batch.shape, batch.dtype) if self._shm is not None else None
        if in_region is not None:
            if not np.shares_memory(in_region, batch):
                in_region[...] = batch  # not preprocessed in place (host_input was not used)
            name, size, _ = self._shm.regions["in"]
            inp.set_shared_memory(name, batch.nbytes)
            out_name, out_size, _ = self._shm.regions["out"]
            out.set_shared_memory(out_name, out_size)
        else:
            inp.set_data_from_numpy(np.ascontiguousarray(batch))
        t1 = time.perf_counter()
        result = self._call(lambda: self._infer_once(inp, out), "inference")
        t2 = time.perf_counter()
        output = self._read_output(result, in_region is not None)
        t3 = time.perf_counter()
        return output, InferTimings((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3)

    def _infer_once(self, inp: Any, out: Any) -> Any:
        kwargs: Dict[str, Any] = {"model_version": self.uri.version, "outputs": [out]}
        if self.uri.protocol == "grpc":
            kwargs["client_timeout"] = self.uri.timeout_s
        return self._client.infer(self.uri.model, [inp], **kwargs)

    def _read_output(self, result: Any, shared: bool) -> np.ndarray:
        name = self.meta.output_name
        if not shared:
            return result.as_numpy(name)
        info = result.get_output(name)
        shape = tuple(int(d) for d in (info["shape"] if isinstance(info, dict) else info.shape))
        view = self._shm.view("out", shape, self._out_dtype)
        if view is None:
            raise TritonServerError(f"{self.uri}: output {name} {list(shape)} does not fit the shared memory region")
        return np.array(view)  # a copy: the region is rewritten by the next request

    def statistics(self) -> ServerStats:
        """The model's counters on the server now (Triton's statistics API)."""
        reply = self._call(lambda: self._client.get_inference_statistics(self.uri.model, self.uri.version), "statistics")
        return ServerStats.from_json(self._json(reply), self.uri.model)

    # -- lifetime -------------------------------------------------------------------------
    def close(self) -> None:
        if self._shm is not None:
            self._shm.destroy()
            self._shm = None
        for client in self._clients:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - a client of a server that is gone, or of another thread
                pass
        self._clients.clear()
        self._local = threading.local()
        super().close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
