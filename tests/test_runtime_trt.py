"""TensorRT backend: the checks on load and the runtime's imports (anywhere); its control flow
(shapes, CUDA graphs, copies, timings) with FakeTensorRT on HostCuda (anywhere); CUDA buffers and
the same flow on a real GPU through each CUDA implementation (pycuda, cuda-python); and a real
engine (TensorRT + GPU).

The fakes stand in for TensorRT and CUDA only, so that our own control flow runs where they
are absent: tests/fake_trt_runtime.py (an engine whose "network" copies the first bytes of
the input to the output, with the execution-context rules TensorRT documents) and
tests/fake_cuda.py (the CUDA-buffer interface on host memory, with stream capture).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import fake_cuda
from fake_trt_runtime import ENGINE_BYTES, DriverKernels, fake_meta, make_fake_trt_runtime
from fcn_edge.errors import EngineMismatchError, MetaError, RuntimeInputError
from tiny_models import make_tiny_onnx, sample_frame

CUDA_IMPLEMENTATIONS = ("pycuda", "cuda-python")


def _usable(name: str) -> bool:
    from fcn_edge.runtime.cuda_api import probe

    return probe(name)[0]


def _gpu_params():
    """One parameter per CUDA implementation, skipped where it (or a GPU) is missing."""
    return [pytest.param(name, marks=pytest.mark.skipif(not _usable(name), reason=f"needs {name} and an NVIDIA GPU"))
            for name in CUDA_IMPLEMENTATIONS]


def _trt_available() -> bool:
    try:
        import tensorrt  # noqa: F401
    except Exception:
        return False
    return any(_usable(name) for name in CUDA_IMPLEMENTATIONS)


needs_trt = pytest.mark.skipif(not _trt_available(), reason="needs TensorRT, pycuda or cuda-python, and an NVIDIA GPU")


# -- the checks on load: run everywhere ------------------------------------------------------------
def _record(trt_version="10.3.0", gpu="Orin", cc="8.7", **fields):
    from fcn_edge.artifacts import EngineRecord

    return EngineRecord(tensorrt_version=trt_version, gpu_name=gpu, compute_capability=cc, precision="fp16",
                        typing="strong", flags=(), profiles=(), onnx_path="m.onnx", onnx_sha256="",
                        build_seconds=1.0, built_at="2026-11-24T00:00:00Z",
                        rebuild_command="fcn-edge build-engine m.onnx -o m.engine", **fields)


def _engine_with_sidecar(tmp_path: Path, record) -> Path:
    from fcn_edge.artifacts import write_engine_sidecar
    from fcn_edge.artifacts import meta_for_dataset

    engine = tmp_path / "m.engine"
    engine.write_bytes(b"\0" * 16)
    write_engine_sidecar(engine, meta_for_dataset("fcn8s_resnet18", "voc"), record)
    return engine


def test_the_runtime_never_imports_the_engine_builder():
    code = (
        "import sys, fcn_edge.runtime, fcn_edge.runtime.trt_backend\n"
        "print(sorted(m for m in sys.modules if m == 'fcn_edge.engine' or m.startswith('fcn_edge.engine.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_engine_without_sidecar_is_refused(tmp_path):
    from fcn_edge.runtime import load_segmenter

    engine = tmp_path / "lonely.engine"
    engine.write_bytes(b"\0" * 16)
    with pytest.raises(MetaError, match=r"lonely.engine.json is missing.*build-engine"):
        load_segmenter(engine)


class _FakeCudaContext:
    """Stands in for a CudaContext (GPU facts and close) to test from_file's control flow."""

    instances: list = []

    def __init__(self, device: int = 0):
        self.name, self.compute_capability, self.closed = "Orin (fake)", (8, 7), False
        _FakeCudaContext.instances.append(self)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_load(monkeypatch):
    """FakeTensorRT as tensorrt, a fake CUDA context, and a TrtBackend that records what
    from_file hands its constructor instead of deserialising on a GPU."""
    import types

    import fcn_edge.runtime.cuda_api as cuda_api
    from fake_tensorrt import make_fake_tensorrt
    from fcn_edge.runtime.trt_backend import TrtBackend

    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_tensorrt("10.3.0"))
    chosen = []
    monkeypatch.setattr(cuda_api, "select_cuda", lambda choice=None: chosen.append(choice) or types.SimpleNamespace(
        CudaContext=_FakeCudaContext))
    _FakeCudaContext.instances = []

    class RecordingBackend(TrtBackend):
        def __init__(self, engine_bytes, meta, context, trt=None, cuda_graph=False, source="<engine>",
                     host_code_allowed=False, lean_runtime=None):
            self.engine_bytes, self.given_meta, self.cuda, self.source = engine_bytes, meta, context, source
            self.host_code_allowed, self.lean_runtime, self.chosen = host_code_allowed, lean_runtime, chosen

    return RecordingBackend


@pytest.fixture(scope="module")
def built_engine(tmp_path_factory):
    """An engine and its sidecar written by the real build path, with FakeTensorRT 10.3.0."""
    from fake_tensorrt import FakeDevice, make_fake_tensorrt
    from fcn_edge.engine.engine_file import build_engine_file

    root = tmp_path_factory.mktemp("engine")
    onnx_path = make_tiny_onnx(root / "m.onnx", precision="fp16")
    engine = root / "m.engine"
    build_engine_file(onnx_path, engine, trt=make_fake_tensorrt("10.3.0"), device=FakeDevice(),
                      rebuild_args=["fcn-edge", "build-engine", str(onnx_path), "-o", str(engine)])
    return engine


def test_a_matching_engine_loads_from_bytes_read_once(fake_load, built_engine, monkeypatch):
    import fcn_edge.artifacts.compatibility as compatibility

    def no_second_read(path):
        raise AssertionError(f"{path} was read again to hash it")

    monkeypatch.setattr(compatibility, "file_sha256", no_second_read)
    backend = fake_load.from_file(built_engine)
    assert backend.engine_bytes == built_engine.read_bytes()
    assert backend.given_meta.precision == "fp16" and backend.source == str(built_engine)
    assert not _FakeCudaContext.instances[0].closed  # handed to the backend, which owns it now


def test_a_replaced_engine_is_refused_with_the_rebuild_command(fake_load, built_engine, tmp_path):
    import shutil

    engine = tmp_path / "m.engine"
    shutil.copyfile(built_engine.with_name("m.engine.json"), tmp_path / "m.engine.json")
    engine.write_bytes(built_engine.read_bytes().replace(b"10.3.0", b"10.3.9"))  # another build copied over it
    with pytest.raises(EngineMismatchError) as info:
        fake_load.from_file(engine)
    assert "not the one its sidecar describes (SHA-256 differs" in str(info.value)
    assert f"fcn-edge build-engine {built_engine.with_name('m.onnx')} -o {built_engine}" in str(info.value)
    assert _FakeCudaContext.instances == []  # refused before any CUDA work


@pytest.mark.parametrize(
    "record, pattern",
    [
        (_record(trt_version="10.13.3"), r"TensorRT 10\.13\.3.*TensorRT 10\.3\.0.*rebuild.*build-engine m\.onnx"),
        (_record(gpu="NVIDIA GeForce RTX 4090", cc="8.9"), r"compute capability 8\.9.*8\.7"),
    ],
)
def test_an_engine_for_another_tensorrt_or_gpu_is_refused(fake_load, tmp_path, record, pattern):
    engine = _engine_with_sidecar(tmp_path, record)
    with pytest.raises(EngineMismatchError, match=pattern):
        fake_load.from_file(engine)
    assert [c.closed for c in _FakeCudaContext.instances] == [True]  # the context it opened is closed


@pytest.mark.skipif(_trt_available(), reason="checks the message given where TensorRT is absent")
def test_engine_where_tensorrt_is_missing_says_how_to_install(tmp_path):
    from fcn_edge.errors import MissingDependencyError
    from fcn_edge.runtime import load_segmenter
    from fcn_edge.runtime.cuda_api import CudaError

    engine = _engine_with_sidecar(tmp_path, _record())
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        with pytest.raises(MissingDependencyError, match="tensorrt.*python3-libnvinfer"):
            load_segmenter(engine)
    else:  # TensorRT without a GPU or pycuda: the CUDA side must explain itself instead
        with pytest.raises((MissingDependencyError, CudaError), match="pycuda|CUDA|cuda"):
            load_segmenter(engine)


def test_dtype_table_covers_segmentation_outputs():
    from fcn_edge.runtime.trt_backend import numpy_dtype

    class DT:  # TensorRT's DataType members are named like this in every version
        def __init__(self, name):
            self.name = name

    assert numpy_dtype(DT("HALF")) == np.float16 and numpy_dtype(DT("UINT8")) == np.uint8
    with pytest.raises(MetaError, match="float8"):
        numpy_dtype(DT("FP8"))


def test_from_file_chooses_the_cuda_implementation_and_trusts_a_checked_lean_runtime(fake_load, tmp_path, monkeypatch):
    record = _record(gpu="Orin (fake)", version_compatible=True, lean_runtime="embedded")
    backend = fake_load.from_file(_engine_with_sidecar(tmp_path, record), cuda="cuda-python")
    assert backend.chosen == ["cuda-python"] and backend.host_code_allowed and backend.lean_runtime is None
    (tmp_path / "excluded").mkdir()
    engine = _engine_with_sidecar(tmp_path / "excluded", _record(trt_version="10.0.1", gpu="Orin (fake)",
                                                                 version_compatible=True, lean_runtime="excluded"))
    with pytest.raises(EngineMismatchError, match="FCN_EDGE_LEAN_RUNTIME"):
        fake_load.from_file(engine)  # built by 10.0.1, this machine has 10.3.0
    monkeypatch.setenv("FCN_EDGE_LEAN_RUNTIME", "/opt/trt-10.0.1/libnvinfer_lean.so.10")
    backend = fake_load.from_file(engine)
    assert backend.lean_runtime == "/opt/trt-10.0.1/libnvinfer_lean.so.10" and not backend.host_code_allowed


# -- the backend's control flow: FakeTensorRT on HostCuda, everywhere ------------------------------
def _host_backend(cuda_graph=True, capturable=True, profile=((1, 48, 64, 3), (2, 48, 64, 3))):
    from fcn_edge.runtime.trt_backend import TrtBackend

    fake_cuda.reset()
    kernels = fake_cuda.HostKernels()
    if not capturable:  # an engine with work CUDA cannot capture
        real_copy = kernels.copy

        def copy(dst, src, nbytes, stream, valid):
            if fake_cuda.STREAMS[stream].capturing:
                fake_cuda.STREAMS[stream].invalidate()
            real_copy(dst, src, nbytes, stream, valid)

        kernels.copy = copy
    trt = make_fake_trt_runtime(kernels, profile=profile)
    backend = TrtBackend(ENGINE_BYTES, fake_meta(profile[1][0]), fake_cuda.CudaContext(0), trt=trt,
                         cuda_graph=cuda_graph, source="fake.engine")
    return backend, trt


def _frames(batch: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (batch, 48, 64, 3), dtype=np.uint8)


def _expected(x: np.ndarray) -> np.ndarray:
    return x.ravel()[: x.shape[0] * 48 * 64].reshape(x.shape[0], 48, 64)


def test_cuda_graphs_are_dropped_on_shape_changes_and_captured_after_a_plain_run():
    """After 1 -> 2 -> 1 the batch-1 graph must not be replayed on a context whose state is
    batch 2's; and no capture may follow set_input_shape without a plain enqueue in between."""
    backend, trt = _host_backend()
    batches = (1, 1, 1, 2, 1, 1, 1, 2, 2, 2, 1)
    for step, batch in enumerate(batches):
        x = _frames(batch, step)
        out, timings = backend.infer(x)
        np.testing.assert_array_equal(out, _expected(x), err_msg=f"call {step} (batch {batch})")
        assert timings.total_ms > 0
    context = trt.contexts[0]
    stream = fake_cuda.STREAMS[backend.stream.handle]
    launched = sum(kind == "graph:kernel" for kind in stream.executed)
    # a graph is captured at the second call of a shape and replayed at the third: calls 1-2, 5-6, 8-9
    assert launched == 6
    assert context.captures == 3 and fake_cuda.last_error == [""]  # every capture was a valid one
    backend.close()
    assert fake_cuda.contexts_open == [0] and fake_cuda.MEMORY == {}


def test_copies_are_timed_on_the_graph_path_too():
    backend, _ = _host_backend()
    timings = [backend.infer(_frames(1, i))[1] for i in range(3)]
    # HostCuda's clock: one millisecond per operation; the third call replays the graph
    assert [(t.h2d_ms, t.compute_ms, t.d2h_ms) for t in timings] == [(1.0, 1.0, 1.0)] * 3
    assert fake_cuda.STREAMS[backend.stream.handle].executed[-3:] == ["h2d", "graph:kernel", "d2h"]


def test_a_failed_capture_clears_the_error_and_turns_graphs_off(caplog):
    backend, trt = _host_backend(capturable=False)
    with caplog.at_level(logging.WARNING):
        for step, batch in enumerate((1, 1, 1, 2, 2, 2, 1, 1)):
            x = _frames(batch, step)
            np.testing.assert_array_equal(backend.infer(x)[0], _expected(x))
    assert trt.contexts[0].captures == 1  # one attempt, then never again on this context
    assert fake_cuda.cleared == ["cudaErrorStreamCaptureInvalidated"]
    assert caplog.text.count("CUDA graph capture failed") == 1 and "running without graphs" in caplog.text
    assert "CUDA graph" not in backend.description


def test_without_cuda_graphs_every_call_is_a_plain_enqueue():
    backend, trt = _host_backend(cuda_graph=False)
    for step, batch in enumerate((1, 2, 1, 1)):
        x = _frames(batch, step)
        np.testing.assert_array_equal(backend.infer(x)[0], _expected(x))
    assert trt.contexts[0].captures == 0 and trt.executions == 4
    assert backend.description == "TensorRT 10.3.0 on HostCuda (fake) (host-fake)"


def test_the_segmenter_runs_the_backend_from_another_thread():
    from fcn_edge.runtime import Segmenter

    backend, _ = _host_backend()
    seg = Segmenter(backend)
    frame = np.ascontiguousarray(sample_frame(48, 64))
    results = {}
    thread = threading.Thread(target=lambda: results.update(r=seg.segment_batch([frame, frame])))
    thread.start()
    thread.join(60)
    np.testing.assert_array_equal(results["r"][0].mask, frame.ravel()[: 48 * 64].reshape(48, 64))
    with pytest.raises(RuntimeInputError, match="outside the engine's profile"):
        backend.infer(np.zeros((3, 48, 64, 3), np.uint8))
    seg.close()
    assert backend.closed and backend.cuda.closed
    with pytest.raises(RuntimeInputError, match="closed"):
        backend.infer(np.zeros((1, 48, 64, 3), np.uint8))


def test_an_undeserialisable_engine_is_refused_and_frees_what_it_made():
    from fcn_edge.runtime.trt_backend import TrtBackend

    fake_cuda.reset()
    trt = make_fake_trt_runtime(fake_cuda.HostKernels())
    with pytest.raises(EngineMismatchError, match="rebuild"):
        TrtBackend(b"garbage", fake_meta(), fake_cuda.CudaContext(0), trt=trt)
    assert fake_cuda.MEMORY == {}


# -- choosing the CUDA implementation ---------------------------------------------------------------
def test_both_cuda_implementations_and_the_fake_have_the_whole_interface():
    from fcn_edge.runtime.cuda_api import INTERFACE, implementation

    for module in (implementation("pycuda"), implementation("cuda-python"), fake_cuda):
        missing = [name for name in INTERFACE if not hasattr(module, name)]
        assert not missing, f"{module.__name__} lacks {missing}"
    assert implementation("pycuda").NAME == "pycuda" and implementation("cuda-python").NAME == "cuda-python"


def test_select_cuda_by_name_environment_or_auto(monkeypatch):
    import fcn_edge.runtime.cuda_api as cuda_api
    from fcn_edge.errors import MissingDependencyError, UsageError

    monkeypatch.setenv("FCN_EDGE_CUDA", "cuda-python")
    assert cuda_api.select_cuda().NAME == "cuda-python"
    assert cuda_api.select_cuda("pycuda").NAME == "pycuda"  # the argument wins
    monkeypatch.setenv("FCN_EDGE_CUDA", "cupy")
    with pytest.raises(UsageError, match=r"\$FCN_EDGE_CUDA is 'cupy'; use one of auto, pycuda, cuda-python"):
        cuda_api.select_cuda()
    monkeypatch.delenv("FCN_EDGE_CUDA")
    reasons = {"pycuda": (False, "pycuda is not installed"), "cuda-python": (True, "")}
    monkeypatch.setattr(cuda_api, "probe", lambda name: reasons[name])
    assert cuda_api.select_cuda().NAME == "cuda-python"  # auto: the first that works
    reasons["cuda-python"] = (False, "cudaGetDeviceCount failed: cudaErrorInsufficientDriver")
    with pytest.raises(MissingDependencyError) as info:
        cuda_api.select_cuda("auto")
    assert "pycuda: pycuda is not installed; cuda-python: cudaGetDeviceCount failed" in str(info.value)
    assert "pip install cuda-python" in str(info.value) and "python3-pycuda" in str(info.value)


def test_cuda_python_explains_itself_without_a_driver():
    pytest.importorskip("cuda.bindings.runtime")
    from fcn_edge.runtime.cuda_api import probe

    if _usable("cuda-python"):
        pytest.skip("a GPU is present")
    usable, why = probe("cuda-python")
    assert not usable and "cudaGetDeviceCount failed: cudaError" in why


# -- pycuda: a context closed on another thread still releases its primary context -------------------
class _FakePycuda:
    """pycuda.driver as its source (src/cpp/cuda.hpp) behaves: ``detach()`` releases a primary
    context when it is current on this thread or this is the thread that retained it; on any
    other thread it only marks it invalid ("leaking the context")."""

    def __init__(self):
        self.retained = 0
        self.current = threading.local()
        fake = self

        class Context:
            def __init__(self):
                self.thread, self.valid = threading.get_ident(), True

            def push(self):
                fake.current.__dict__.setdefault("stack", []).append(self)

            @staticmethod
            def pop():
                fake.current.stack.pop()

            def detach(self):
                stack = fake.current.__dict__.setdefault("stack", [])
                if stack and stack[-1] is self or self.thread == threading.get_ident():
                    fake.retained -= 1
                self.valid = False

        class Device:
            @staticmethod
            def count():
                return 1

            def __init__(self, index):
                self.index = index

            def retain_primary_context(self):
                fake.retained += 1
                return Context()

        self.Device, self.Context = Device, Context

    def init(self):
        pass


def test_a_pycuda_context_closed_on_another_thread_releases_the_primary_context(monkeypatch):
    import types

    import fcn_edge.runtime.cuda_buffers as cuda_buffers

    driver = _FakePycuda()
    package = types.ModuleType("pycuda")
    package.driver = driver
    monkeypatch.setitem(sys.modules, "pycuda", package)
    monkeypatch.setitem(sys.modules, "pycuda.driver", driver)
    monkeypatch.setattr(cuda_buffers, "_initialised", False)
    released = []

    class FakeLibcuda:  # the driver the explicit release goes through
        @staticmethod
        def cuDeviceGet(pointer, index):
            return 0

        @staticmethod
        def cuDevicePrimaryCtxRelease_v2(device):
            driver.retained -= 1
            released.append(threading.get_ident())
            return 0

    monkeypatch.setattr(cuda_buffers, "_libcuda", lambda: FakeLibcuda)
    owner = cuda_buffers.CudaContext(0)
    owner.close()  # on its own thread pycuda releases it
    assert driver.retained == 0 and released == []
    ctx = cuda_buffers.CudaContext(0)
    closer = threading.Thread(target=ctx.close)
    closer.start()
    closer.join(10)
    assert ctx.closed and driver.retained == 0 and released == [closer.ident]


# -- a real GPU, through each CUDA implementation -----------------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("implementation", _gpu_params())
def test_cuda_buffers_roundtrip_in_a_worker_thread(implementation):
    from fcn_edge.runtime.cuda_api import CudaError
    from fcn_edge.runtime.cuda_api import implementation as named

    cb = named(implementation)
    ctx = cb.CudaContext(0)
    assert ctx.total_memory > 0 and len(ctx.name) > 0 and ctx.api is cb
    outcome = {}

    def worker():
        try:
            with ctx:  # a context made on the main thread, used from this one
                stream = cb.Stream()
                host_in = cb.pinned_empty((1 << 20,), np.uint8)
                host_in[:] = np.arange(host_in.size, dtype=np.uint64).astype(np.uint8)
                host_out = cb.pinned_empty((1 << 20,), np.uint8)
                a, b = cb.DeviceBuffer(host_in.nbytes), cb.DeviceBuffer(host_in.nbytes)
                start, end = cb.Event(), cb.Event()
                start.record(stream)
                cb.copy_htod_async(a, host_in, stream)
                cb.copy_dtod_async(b, a, host_in.nbytes, stream)
                cb.copy_dtoh_async(host_out, b, stream)
                end.record(stream)
                end.synchronize()
                outcome["equal"] = bool((host_out == host_in).all())
                outcome["ms"] = start.ms_until(end)
                # the same work captured once as a CUDA graph and replayed on new data
                graph = cb.CudaGraph()
                with graph.capture(stream):
                    cb.copy_htod_async(a, host_in, stream)
                    cb.copy_dtod_async(b, a, host_in.nbytes, stream)
                    cb.copy_dtoh_async(host_out, b, stream)
                host_in[:] = 7
                host_out[:] = 0
                graph.launch(stream)
                stream.synchronize()
                outcome["graph"] = bool((host_out == 7).all())
                graph.destroy()
                assert cb.clear_error() == ""
                a.free()
                b.free()
                with pytest.raises(CudaError, match="freed"):
                    _ = a.ptr
                del stream, host_in, host_out, start, end  # free them while the context is current
        except BaseException as exc:  # surface it in the main thread
            outcome["error"] = exc

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(60)
    ctx.close()
    assert ctx.closed
    assert "error" not in outcome, outcome.get("error")
    assert outcome == {"equal": True, "ms": outcome["ms"], "graph": True} and outcome["ms"] > 0
    assert cb.cuda_version() is not None


@pytest.mark.gpu
@pytest.mark.parametrize("implementation", _gpu_params())
def test_cuda_graphs_across_shape_changes_on_a_gpu(implementation):
    """The shape-change sequence of the host test, with real CUDA memory, streams and graphs
    (FakeTensorRT's network copies on the device through libcuda)."""
    from fcn_edge.runtime.cuda_api import implementation as named
    from fcn_edge.runtime.trt_backend import TrtBackend

    trt = make_fake_trt_runtime(DriverKernels())
    backend = TrtBackend(ENGINE_BYTES, fake_meta(), named(implementation).CudaContext(0), trt=trt, cuda_graph=True)
    try:
        for step, batch in enumerate((1, 1, 1, 2, 1, 1, 1, 2, 2, 2, 1)):
            x = _frames(batch, step)
            out, timings = backend.infer(x)
            np.testing.assert_array_equal(out, _expected(x), err_msg=f"call {step} (batch {batch})")
            assert timings.h2d_ms > 0 and timings.d2h_ms > 0
        assert trt.contexts[0].captures == 3 and "CUDA graph" in backend.description
    finally:
        backend.close()
    assert backend.cuda.closed


# -- a real engine: TensorRT + GPU ---------------------------------------------------------------
@needs_trt
@pytest.mark.trt
@pytest.mark.gpu
@pytest.mark.parametrize("variant", ["unfused", "fused"])
@pytest.mark.parametrize("cuda_graph", [False, True])
def test_real_engine_matches_onnxruntime(tmp_path, variant, cuda_graph):
    pytest.importorskip("torch")
    from fcn_edge.engine.engine_file import build_engine_file
    from fcn_edge.runtime import load_segmenter

    onnx_path = make_tiny_onnx(tmp_path, fused=variant == "fused", output_kind="mask" if variant == "fused" else "logits")
    engine = tmp_path / f"{variant}.engine"
    build_engine_file(onnx_path, engine)
    frame = sample_frame(120, 160)
    with load_segmenter(onnx_path) as ort, load_segmenter(engine, cuda_graph=cuda_graph) as trt:
        expected = ort.segment(frame).mask
        for _ in range(3):
            got = trt.segment(frame)
        assert got.timings.compute_ms > 0
    assert (expected == got.mask).mean() > 0.999
