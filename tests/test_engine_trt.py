"""Real TensorRT builds (marker ``trt``): each tiny ONNX variant is built into an engine,
run on the GPU and compared with ONNX Runtime on the CPU. Skipped without TensorRT or a
GPU; ready to run as they are on a machine that has both::

    pytest -m trt tests/test_engine_trt.py -v
"""

from __future__ import annotations

import numpy as np
import pytest

from fcn_edge.artifacts import read_onnx_meta
from fcn_edge.optional import is_available
from tiny_models import make_images, make_tiny_onnx, sample_input

pytestmark = [pytest.mark.trt, pytest.mark.skipif(not is_available("tensorrt"), reason="TensorRT is not installed")]


@pytest.fixture(scope="module")
def trt():
    import tensorrt

    return tensorrt


@pytest.fixture(scope="module")
def device():
    from fcn_edge.engine.cuda_driver import cuda_driver
    from fcn_edge.errors import EngineBuildError

    try:
        return cuda_driver()
    except EngineBuildError as exc:
        pytest.skip(f"no usable GPU: {exc}")


@pytest.fixture(scope="module")
def models(tmp_path_factory, trt):
    """The product's graphs: exported fcn8s_tiny, its FP16 and Q/DQ INT8 variants (the flavour
    this TensorRT parses: opset 19 needs 10.x), and the fused one."""
    root = tmp_path_factory.mktemp("trt")
    min_tensorrt = 10 if int(trt.__version__.split(".")[0]) >= 10 else 8
    return {
        "fp32": make_tiny_onnx(root / "tiny_fp32.onnx"),
        "fp16": make_tiny_onnx(root / "tiny_fp16.onnx", precision="fp16"),
        "int8": make_tiny_onnx(root / "tiny_int8.onnx", precision="int8", min_tensorrt=min_tensorrt),
        "fused": make_tiny_onnx(root / "tiny_fused.onnx", fused=True),
    }


def run_engine(trt, device, engine_bytes: bytes, feed: np.ndarray) -> np.ndarray:
    """Run one inference with the name-based API and the driver-API buffers."""
    from fcn_edge.engine.summary import deserialize

    runtime, engine = deserialize(trt, engine_bytes)
    context = engine.create_execution_context()
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    input_name = next(n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
    output_name = next(n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
    context.set_input_shape(input_name, feed.shape)
    out_shape = tuple(context.get_tensor_shape(output_name))
    out = np.empty(out_shape, dtype=trt.nptype(engine.get_tensor_dtype(output_name)))
    src, dst = device.alloc(feed.nbytes), device.alloc(out.nbytes)
    try:
        device.upload(src, feed)
        context.set_tensor_address(input_name, src)
        context.set_tensor_address(output_name, dst)
        assert context.execute_async_v3(0)
        device.synchronize()
        device.download(out, dst)
    finally:
        device.free(src)
        device.free(dst)
    return out


def ort_reference(path, feed: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: feed})[0]


@pytest.mark.parametrize(
    "variant, precision, atol, min_agreement",
    [
        ("fp32", "auto", 2e-2, 0.99),  # TF32 convolutions on Ampere and later
        ("fp32", "fp16", 6e-2, 0.97),  # FP16 flag (weak typing) where the TensorRT has it
        ("fp16", "auto", 6e-2, 0.97),
        ("int8", "auto", 0.25, 0.90),
        ("fused", "auto", 2e-2, 0.99),
    ],
)
def test_engine_matches_onnx_runtime(trt, device, models, variant, precision, atol, min_agreement):
    from fcn_edge.engine.build import run_build
    from fcn_edge.engine.capabilities import probe
    from fcn_edge.engine.config import BuildConfig

    if precision == "fp16" and variant == "fp32" and not probe(trt).fp16_flag:
        pytest.skip(f"TensorRT {trt.__version__} has no FP16 builder flag (strongly typed only)")
    result = run_build(models[variant], BuildConfig(precision=precision), trt=trt, device=device)
    meta = read_onnx_meta(models[variant])
    for batch, size in ((1, (32, 48)), (2, (16, 24)), (4, (64, 64))):  # opt, min-ish and max shapes
        feed = sample_input(meta, batch, size)
        got = run_engine(trt, device, result.engine, feed).astype(np.float32)
        want = ort_reference(models[variant], feed)
        assert got.shape == want.shape
        assert np.abs(got - want).max() <= atol * max(1.0, np.abs(want).max()), (variant, batch, size)
        agreement = float((got.argmax(1) == want.argmax(1)).mean())
        assert agreement >= min_agreement, (variant, batch, size, agreement)


def test_sidecar_and_compatibility_on_this_machine(trt, device, models, tmp_path):
    from fcn_edge.artifacts import check_engine_compatible, check_engine_file, read_engine_sidecar
    from fcn_edge.engine.config import BuildConfig
    from fcn_edge.engine.engine_file import build_engine_file
    from fcn_edge.errors import EngineMismatchError

    timing_cache = tmp_path / "timing.cache"
    built = build_engine_file(models["int8"], tmp_path / "tiny.engine",
                              BuildConfig(timing_cache=timing_cache, workspace_bytes=1 << 28), trt=trt, device=device)
    summary = built.summary
    assert summary is not None and summary.layer_count > 0, built.summary_error
    assert "int8" in summary.layer_precisions, summary.layer_precisions
    engine = built.engine_path
    assert timing_cache.stat().st_size > 0
    meta, record = read_engine_sidecar(engine)
    facts = device.facts()
    assert record.tensorrt_version == trt.__version__ and record.gpu_name == facts.name
    check_engine_compatible(record, trt.__version__, facts.name, facts.compute_capability)
    check_engine_file(engine, record)
    with pytest.raises(EngineMismatchError):
        check_engine_compatible(record, "7.0.0", facts.name, facts.compute_capability)


def test_implicit_int8_calibration(trt, device, models, tmp_path):
    from fcn_edge.engine.build import run_build
    from fcn_edge.engine.capabilities import probe
    from fcn_edge.engine.config import BuildConfig
    from fcn_edge.precision.calibration import calibration_batches

    if not probe(trt).legacy_calibrator:
        pytest.skip(f"TensorRT {trt.__version__} has no legacy calibrator")
    images = tmp_path / "calib"
    make_images(images, 6)
    meta = read_onnx_meta(models["fp32"])
    batches = calibration_batches(images, meta, batch_size=2, pad_last=True, progress=False, input_size=(32, 48))
    cache = tmp_path / "calib.cache"
    config = BuildConfig(int8_mode="implicit", calibration_cache=cache)
    result = run_build(models["fp32"], config, batches, trt=trt, device=device)
    assert result.plan.precision == "int8" and cache.stat().st_size > 0
    feed = sample_input(meta, 1, (32, 48))
    got = run_engine(trt, device, result.engine, feed)
    want = ort_reference(models["fp32"], feed)
    assert float((got.argmax(1) == want.argmax(1)).mean()) >= 0.8
    again = run_build(models["fp32"], BuildConfig(int8_mode="implicit", calibration_cache=cache), trt=trt, device=device)
    assert again.plan.calibration == "" and len(again.engine) > 0


def test_dry_run_table_agrees_with_the_installed_tensorrt(trt):
    from dataclasses import replace

    from fcn_edge.engine.capabilities import declared, probe

    live = probe(trt)
    assert replace(declared(trt.__version__), version=live.version) == live
