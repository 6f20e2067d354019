"""TensorRT backend: sidecar checks (anywhere), CUDA buffers and a fake engine (GPU + pycuda),
and a real engine (TensorRT + GPU).

The fake TensorRT below is a stand-in for TensorRT only, so that our own control flow
(name-based binding, profile shapes, pinned buffers, one stream, CUDA graphs, threads,
close) runs on a real GPU with real CUDA memory where TensorRT itself is not installed. Its
"network" copies the first bytes of the input to the output on the device.
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path

import numpy as np
import pytest

from fcn_edge.errors import EngineMismatchError, MetaError, RuntimeInputError
from tiny_models import make_tiny_onnx, sample_frame


def _cuda_available() -> bool:
    try:
        from fcn_edge.runtime import cuda_buffers

        return cuda_buffers.device_count() > 0
    except Exception:
        return False


needs_gpu = pytest.mark.skipif(not _cuda_available(), reason="needs pycuda and an NVIDIA GPU")


def _trt_available() -> bool:
    try:
        import tensorrt  # noqa: F401
    except Exception:
        return False
    return _cuda_available()


needs_trt = pytest.mark.skipif(not _trt_available(), reason="needs TensorRT, pycuda and an NVIDIA GPU")


# -- sidecar checks: run everywhere -----------------------------------------------------------
def _record(trt_version="10.3.0", gpu="Orin", cc="8.7"):
    from fcn_edge.artifacts import EngineRecord

    return EngineRecord(tensorrt_version=trt_version, gpu_name=gpu, compute_capability=cc, precision="fp16",
                        typing="strong", flags=(), profiles=(), onnx_path="m.onnx", onnx_sha256="",
                        build_seconds=1.0, built_at="2026-11-24T00:00:00Z",
                        rebuild_command="fcn-edge build-engine m.onnx -o m.engine")


def _engine_with_sidecar(tmp_path: Path, record) -> Path:
    from fcn_edge.artifacts import write_engine_sidecar
    from fcn_edge.artifacts import meta_for_dataset

    engine = tmp_path / "m.engine"
    engine.write_bytes(b"\0" * 16)
    write_engine_sidecar(engine, meta_for_dataset("fcn8s_resnet18", "voc"), record)
    return engine


def test_engine_without_sidecar_is_refused(tmp_path):
    from fcn_edge.runtime import load_segmenter

    engine = tmp_path / "lonely.engine"
    engine.write_bytes(b"\0" * 16)
    with pytest.raises(MetaError, match=r"lonely.engine.json is missing.*build-engine"):
        load_segmenter(engine)


def test_sidecar_from_another_tensorrt_or_gpu_is_refused(tmp_path):
    from fcn_edge.runtime.trt_backend import check_engine_for_machine

    engine = _engine_with_sidecar(tmp_path, _record())
    meta, record = check_engine_for_machine(engine, "10.3.0.30", "Orin", (8, 7))
    assert meta.dataset == "voc" and record.precision == "fp16"
    with pytest.raises(EngineMismatchError, match=r"TensorRT 10\.3\.0.*TensorRT 10\.13.*rebuild.*build-engine m\.onnx"):
        check_engine_for_machine(engine, "10.13.3", "Orin", (8, 7))
    with pytest.raises(EngineMismatchError, match=r"compute capability 8\.7.*8\.9"):
        check_engine_for_machine(engine, "10.3.0", "NVIDIA GeForce RTX 4090", (8, 9))


@pytest.mark.skipif(_trt_available(), reason="checks the message given where TensorRT is absent")
def test_engine_where_tensorrt_is_missing_says_how_to_install(tmp_path):
    from fcn_edge.errors import MissingDependencyError
    from fcn_edge.runtime import load_segmenter

    engine = _engine_with_sidecar(tmp_path, _record())
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        with pytest.raises(MissingDependencyError, match="tensorrt.*python3-libnvinfer"):
            load_segmenter(engine)
    else:  # TensorRT without a GPU or pycuda: the CUDA side must explain itself instead
        with pytest.raises(Exception, match="pycuda|CUDA|cuda"):
            load_segmenter(engine)


def test_dtype_table_covers_segmentation_outputs():
    from fcn_edge.runtime.trt_backend import numpy_dtype

    class DT:  # TensorRT's DataType members are named like this in every version
        def __init__(self, name):
            self.name = name

    assert numpy_dtype(DT("HALF")) == np.float16 and numpy_dtype(DT("UINT8")) == np.uint8
    with pytest.raises(MetaError, match="float8"):
        numpy_dtype(DT("FP8"))


# -- CUDA buffers on a real GPU ----------------------------------------------------------------
@needs_gpu
@pytest.mark.gpu
def test_cuda_buffers_roundtrip_in_a_worker_thread():
    from fcn_edge.runtime import cuda_buffers as cb

    ctx = cb.CudaContext(0)
    assert ctx.total_memory > 0 and len(ctx.name) > 0
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
                a.free()
                b.free()
                with pytest.raises(cb.CudaError, match="freed"):
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


# -- the TensorRT backend's control flow, with a fake TensorRT on a real GPU ---------------------
class FakeTensorRT:
    """A fake of the TensorRT Python API (name-based I/O only) for control-flow tests."""

    __version__ = "10.99.0-fake"

    class Logger:
        WARNING = 2

        def __init__(self, severity):
            self.severity = severity

    class TensorIOMode:
        INPUT = "INPUT"
        OUTPUT = "OUTPUT"

    class _DType:
        def __init__(self, name):
            self.name = name

    def __init__(self, in_shape, out_shape, lo, hi):
        self.spec = (in_shape, out_shape, lo, hi)
        self.executions = 0
        fake = self

        class Runtime:
            def __init__(self, logger):
                pass

            def deserialize_cuda_engine(self, data):
                return FakeEngine(fake) if data == b"fake-engine" else None

        self.Runtime = Runtime


class FakeEngine:
    def __init__(self, trt):
        self.trt = trt
        self.num_io_tensors = 2

    def get_tensor_name(self, i):
        return ("input", "mask")[i]

    def get_tensor_mode(self, name):
        return self.trt.TensorIOMode.INPUT if name == "input" else self.trt.TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name):
        return FakeTensorRT._DType("UINT8")

    def get_tensor_shape(self, name):
        return self.trt.spec[0] if name == "input" else self.trt.spec[1]

    def get_tensor_profile_shape(self, name, profile):
        lo, hi = self.trt.spec[2], self.trt.spec[3]
        return lo, lo, hi

    def create_execution_context(self):
        return FakeContext(self.trt)


class FakeContext:
    """Output shape = input shape without channels; 'inference' = device copy of the first bytes."""

    def __init__(self, trt):
        self.trt = trt
        self.shape = None
        self.addresses = {}
        self.lib = ctypes.CDLL("libcuda.so.1")

    def set_input_shape(self, name, shape):
        self.shape = tuple(shape)
        return True

    def get_tensor_shape(self, name):
        return self.shape if name == "input" else self.shape[:3]

    def set_tensor_address(self, name, ptr):
        self.addresses[name] = ptr
        return True

    def execute_async_v3(self, stream):
        self.trt.executions += 1
        nbytes = int(np.prod(self.shape[:3]))
        result = self.lib.cuMemcpyDtoDAsync_v2(ctypes.c_uint64(self.addresses["mask"]),
                                               ctypes.c_uint64(self.addresses["input"]),
                                               ctypes.c_size_t(nbytes), ctypes.c_void_p(stream))
        return result == 0


def _fake_backend(cuda_graph=False):
    from fcn_edge.artifacts import meta_for_classes
    from fcn_edge.runtime.cuda_buffers import CudaContext
    from fcn_edge.runtime.trt_backend import TrtBackend

    meta = meta_for_classes("fake", [f"c{i}" for i in range(256)], input_size=(48, 64), input_layout="NHWC",
                            input_dtype="uint8", channel_order="BGR", output_kind="mask", output_dtype="uint8",
                            output_name="mask", max_batch=2)
    trt = FakeTensorRT((-1, 48, 64, 3), (-1, 48, 64), (1, 48, 64, 3), (2, 48, 64, 3))
    return TrtBackend(b"fake-engine", meta, CudaContext(0), trt=trt, cuda_graph=cuda_graph), trt


@needs_gpu
@pytest.mark.gpu
@pytest.mark.parametrize("cuda_graph", [False, True])
def test_trt_backend_flow_on_gpu_with_fake_tensorrt(cuda_graph):
    from fcn_edge.runtime import Segmenter

    backend, trt = _fake_backend(cuda_graph)
    rng = np.random.default_rng(0)
    assert backend.max_batch == 2 and backend.input_shape == (None, 48, 64, 3)
    for batch in (1, 2, 1, 1, 2, 2):  # shape changes, repeats, graph capture and replay
        x = rng.integers(0, 255, (batch, 48, 64, 3), dtype=np.uint8)
        out, timings = backend.infer(x)
        assert out.shape == (batch, 48, 64)
        np.testing.assert_array_equal(out.ravel(), x.ravel()[: out.size])
        assert timings.total_ms > 0
    if cuda_graph:
        assert trt.executions < 6  # later runs replayed the captured graph
    # the Segmenter preprocesses straight into the pinned buffer and runs from another thread
    seg = Segmenter(backend)
    frame = np.ascontiguousarray(sample_frame(48, 64))
    results = {}
    thread = threading.Thread(target=lambda: results.update(r=seg.segment_batch([frame, frame, frame])))
    thread.start()
    thread.join(60)
    assert len(results["r"]) == 3
    np.testing.assert_array_equal(results["r"][0].mask, frame.ravel()[: 48 * 64].reshape(48, 64))
    with pytest.raises(RuntimeInputError, match="outside the engine's profile"):
        backend.infer(np.zeros((3, 48, 64, 3), np.uint8))
    seg.close()
    assert backend.closed and backend.cuda.closed
    with pytest.raises(RuntimeInputError, match="closed"):
        backend.infer(np.zeros((1, 48, 64, 3), np.uint8))


@needs_gpu
@pytest.mark.gpu
def test_trt_backend_refuses_undeserialisable_engine():
    from fcn_edge.artifacts import meta_for_classes
    from fcn_edge.runtime.cuda_buffers import CudaContext
    from fcn_edge.runtime.trt_backend import TrtBackend

    trt = FakeTensorRT((1, 8, 8, 3), (1, 8, 8), (1, 8, 8, 3), (1, 8, 8, 3))
    ctx = CudaContext(0)
    with pytest.raises(EngineMismatchError, match="rebuild"):
        TrtBackend(b"garbage", meta_for_classes("x", ["a"]), ctx, trt=trt)
    ctx.close()


# -- a real engine: TensorRT + GPU ---------------------------------------------------------------
@needs_trt
@pytest.mark.trt
@pytest.mark.gpu
@pytest.mark.parametrize("variant", ["unfused", "fused"])
@pytest.mark.parametrize("cuda_graph", [False, True])
def test_real_engine_matches_onnxruntime(tmp_path, variant, cuda_graph):
    pytest.importorskip("torch")
    from fcn_edge.engine.artifact import write_engine
    from fcn_edge.engine.build import run_build
    from fcn_edge.engine.config import BuildConfig
    from fcn_edge.runtime import load_segmenter

    onnx_path = make_tiny_onnx(tmp_path, fused=variant == "fused", output_kind="mask" if variant == "fused" else "logits")
    engine = tmp_path / f"{variant}.engine"
    write_engine(engine, run_build(onnx_path, BuildConfig()))
    frame = sample_frame(120, 160)
    with load_segmenter(onnx_path) as ort, load_segmenter(engine, cuda_graph=cuda_graph) as trt:
        expected = ort.segment(frame).mask
        for _ in range(3):
            got = trt.segment(frame)
        assert got.timings.compute_ms > 0
    assert (expected == got.mask).mean() > 0.999
