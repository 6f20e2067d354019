"""``fcn-edge triton-repo``: configs Triton accepts, read back with tritonclient's own protobuf,
whose tensors are the model's; the triton:// URI and the statistics reader (no server here:
tests/test_triton_server.py runs a real one)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from fake_tensorrt import FakeDevice, make_fake_tensorrt
from fcn_edge.artifacts import read_engine_sidecar, read_onnx_meta
from fcn_edge.cli.main import main
from fcn_edge.errors import EngineMismatchError, MetaError, UsageError
from tiny_models import make_tiny_checkpoint, make_tiny_onnx

pb = pytest.importorskip("tritonclient.grpc.model_config_pb2", reason="tritonclient[grpc] ships Triton's model-config protobuf")
text_format = pytest.importorskip("google.protobuf.text_format")

from fcn_edge.runtime.triton_backend import META_PARAMETER, RetryPolicy, ServerStats, meta_of_config  # noqa: E402
from fcn_edge.runtime.triton_uri import TritonUri  # noqa: E402
from fcn_edge.serve import ServingOptions, write_model_repository  # noqa: E402
from fcn_edge.serve.model_config import (  # noqa: E402
    ModelInterface, TensorSpec, make_config, render_config,
)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    fused = make_tiny_onnx(root / "fused.onnx", fused=True, output_kind="mask")
    static = make_tiny_onnx(root / "static.onnx", dynamic=False)
    from fcn_edge.engine.engine_file import build_engine_file

    engine = build_engine_file(fused, root / "fused.engine", trt=make_fake_tensorrt("10.3.0"),
                               device=FakeDevice()).engine_path
    return {"fused": fused, "static": static, "engine": engine}


def read_config(path: Path):
    """config.pbtxt as Triton reads it: text format into tritonclient's ModelConfig message."""
    return text_format.Parse(path.read_text(), pb.ModelConfig())


def ort_io(path: Path):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.get_inputs()[0], session.get_outputs()[0]


def dims_match(config_dims, graph_shape, batched: bool):
    graph = list(graph_shape[1:] if batched else graph_shape)
    assert len(config_dims) == len(graph)
    for have, want in zip(config_dims, graph):
        assert have == (want if isinstance(want, int) else -1)


def test_fused_onnx_config_parses_and_its_tensors_are_the_models(models, tmp_path):
    written = write_model_repository([models["fused"]], tmp_path / "repo", ServingOptions(queue_delay_us=250))
    folder = tmp_path / "repo" / "fused"
    assert [m.name for m in written] == ["fused"]
    config = read_config(folder / "config.pbtxt")
    assert config.platform == "onnxruntime_onnx" and config.default_model_filename == "model.onnx"
    assert (folder / "1" / "model.onnx").read_bytes() == models["fused"].read_bytes()
    meta = read_onnx_meta(models["fused"])
    graph_in, graph_out = ort_io(models["fused"])
    assert config.max_batch_size == meta.max_batch == 4
    (inp,), (out,) = config.input, config.output
    assert (inp.name, inp.data_type, out.name, out.data_type) == ("input", pb.TYPE_UINT8, "mask", pb.TYPE_UINT8)
    dims_match(inp.dims, graph_in.shape, batched=True)
    dims_match(out.dims, graph_out.shape, batched=True)
    assert list(inp.dims) == [-1, -1, 3] and list(out.dims) == [-1, -1]
    assert list(config.dynamic_batching.preferred_batch_size) == [4]
    assert config.dynamic_batching.max_queue_delay_microseconds == 250
    assert json.loads(config.parameters[META_PARAMETER].string_value) == meta.to_dict()


def test_engine_config_comes_from_its_sidecar(models, tmp_path):
    write_model_repository([models["engine"]], tmp_path / "repo", names=["seg"])
    folder = tmp_path / "repo" / "seg"
    config = read_config(folder / "config.pbtxt")
    meta, record = read_engine_sidecar(models["engine"])
    assert config.platform == "tensorrt_plan" and config.default_model_filename == "model.plan"
    assert (folder / "1" / "model.plan").read_bytes() == models["engine"].read_bytes()
    assert config.max_batch_size == record.profiles[0].max[0] == 4
    assert [g.kind for g in config.instance_group] == [pb.ModelInstanceGroup.KIND_GPU]
    tensors = {t["name"]: t for t in record.io_tensors}
    for tensor in list(config.input) + list(config.output):
        assert list(tensor.dims) == tensors[tensor.name]["shape"][1:]
        assert pb.DataType.Name(tensor.data_type) == "TYPE_" + tensors[tensor.name]["dtype"].upper()
    assert json.loads(config.parameters[META_PARAMETER].string_value) == meta.to_dict()


def test_fixed_batch_onnx_is_not_batched_and_keeps_its_whole_shape(models, tmp_path):
    write_model_repository([models["static"]], tmp_path / "repo")
    config = read_config(tmp_path / "repo" / "static" / "config.pbtxt")
    graph_in, graph_out = ort_io(models["static"])
    assert config.max_batch_size == 0 and not config.HasField("dynamic_batching")
    assert config.input[0].data_type == pb.TYPE_FP32 and config.output[0].data_type == pb.TYPE_FP32
    assert list(config.input[0].dims) == list(graph_in.shape) == [1, 3, 32, 48]
    dims_match(config.output[0].dims, graph_out.shape, batched=False)


def test_tensorrt_accelerator_for_onnx_on_gpu_servers(models):
    from fcn_edge.serve import plan_model

    planned = plan_model(models["fused"], ServingOptions(accelerator="tensorrt", instances=2, instance_kind="gpu", gpus=(0, 1)))
    config = text_format.Parse(planned.config_text, pb.ModelConfig())
    (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt"
    assert accelerator.parameters["precision_mode"] == "FP32"
    assert accelerator.parameters["trt_profile_max_shapes"] == "input:4x128x160x3"
    assert accelerator.parameters["trt_profile_min_shapes"] == "input:1x16x16x3"
    (group,) = config.instance_group
    assert (group.count, group.kind, list(group.gpus)) == (2, pb.ModelInstanceGroup.KIND_GPU, [0, 1])


@pytest.mark.parametrize("options, error, message", [
    (ServingOptions(max_batch=8), MetaError, "more than the model takes"),
    (ServingOptions(preferred_batch=(2, 8)), UsageError, "exceed max batch 4"),
    (ServingOptions(max_batch=0), UsageError, "turn batching off"),
    (ServingOptions(accelerator="tensorrt", instance_kind="cpu"), UsageError, "GPU instances"),
])
def test_what_triton_would_refuse_is_never_written(models, tmp_path, options, error, message):
    with pytest.raises(error, match=message):
        write_model_repository([models["fused"]], tmp_path / "repo", options)
    assert not (tmp_path / "repo").exists()


def test_invalid_config_values_are_caught_before_writing(models):
    meta = read_onnx_meta(models["fused"])
    broken = ModelInterface((TensorSpec("input", "uint8", (0, -1, 3)),), (TensorSpec("input", "uint8", (-1, -1)),), 4)
    with pytest.raises(MetaError, match=r"dims \[0, -1, 3\].*used twice"):
        render_config(make_config("bad name!", "onnxruntime_onnx", broken, meta))


def test_refusals_name_the_file_and_what_to_do(models, tmp_path):
    engine = tmp_path / "copy.engine"
    shutil.copyfile(models["engine"], engine)
    shutil.copyfile(str(models["engine"]) + ".json", str(engine) + ".json")
    engine.write_bytes(engine.read_bytes() + b"x")
    with pytest.raises(EngineMismatchError, match="SHA-256"):
        write_model_repository([engine], tmp_path / "repo")
    pytest.importorskip("torch")
    checkpoint = make_tiny_checkpoint(tmp_path / "tiny.pt")
    with pytest.raises(MetaError, match="fcn-edge export"):
        write_model_repository([checkpoint], tmp_path / "repo")
    assert not (tmp_path / "repo").exists()


def test_existing_models_are_kept_unless_forced(models, tmp_path):
    repo = tmp_path / "repo"
    write_model_repository([models["fused"]], repo)
    (repo / "other").mkdir()
    with pytest.raises(UsageError, match="--force"):
        write_model_repository([models["fused"]], repo, ServingOptions(queue_delay_us=7))
    write_model_repository([models["fused"]], repo, ServingOptions(queue_delay_us=7), overwrite=True)
    assert read_config(repo / "fused" / "config.pbtxt").dynamic_batching.max_queue_delay_microseconds == 7
    assert sorted(p.name for p in repo.iterdir()) == ["fused", "other"]  # no temporary folders left


def test_cli_writes_the_repository_and_says_how_to_serve_it(models, tmp_path, capsys):
    assert main(["triton-repo", str(models["fused"]), str(models["engine"]), "-o", str(tmp_path / "repo"),
                 "--name", "a,b", "--preferred-batch", "2,4", "--show-config"]) == 0
    out, err = capsys.readouterr()
    assert 'platform: "onnxruntime_onnx"' in out and 'platform: "tensorrt_plan"' in out
    assert "tritonserver --model-repository=" in err and "triton://SERVER:8001/a" in err
    for name in ("a", "b"):
        assert list(read_config(tmp_path / "repo" / name / "config.pbtxt").dynamic_batching.preferred_batch_size) == [2, 4]
    assert main(["triton-repo", str(models["fused"]), "-o", str(tmp_path / "repo"), "--name", "a,b"]) == 2
    assert "1 model(s)" in capsys.readouterr().err


# -- the client's side, without a server -------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("triton://gpu-box/fcn", ("gpu-box", 8001, "fcn", "grpc", False)),
    ("triton://127.0.0.1:9001/fcn?protocol=http&retries=2&timeout=1.5", ("127.0.0.1", 9001, "fcn", "http", True)),
    ("triton://localhost/fcn?protocol=http", ("localhost", 8000, "fcn", "http", True)),
    ("triton://[::1]:8001/a.b-c_d?version=3", ("::1", 8001, "a.b-c_d", "grpc", True)),
])
def test_triton_uri(text, expected):
    uri = TritonUri.parse(text)
    assert (uri.host, uri.port, uri.model, uri.protocol, uri.use_shm) == expected
    again = TritonUri.parse(str(uri))  # str() keeps what names the model: address, protocol, version
    assert (again.address, again.model, again.protocol, again.version) == (uri.address, uri.model, uri.protocol, uri.version)


@pytest.mark.parametrize("text, message", [
    ("triton://host", "needs a host and a model"),
    ("triton://host:x/m", "port is not a number"),
    ("triton://host/m?protocol=udp", "protocol=udp"),
    ("triton://host/m?cache=1", "unknown option"),
    ("triton://host/m?retries=-1", "retries must be"),
])
def test_triton_uri_errors(text, message):
    with pytest.raises(UsageError, match=message):
        TritonUri.parse(text)


def test_retry_delays_grow_and_are_capped():
    assert RetryPolicy(retries=6, first_delay_s=0.5, factor=2, max_delay_s=4).delays() == [0.5, 1, 2, 4, 4, 4]


def test_meta_of_a_config_without_the_parameter_says_what_to_do():
    with pytest.raises(MetaError, match="fcn-edge triton-repo"):
        meta_of_config({"name": "x", "parameters": {}}, "triton://h/x")


def test_server_statistics_from_grpc_json_and_their_difference():
    def snapshot(inferences, executions, queue_ns, batches):
        return {"model_stats": [{"name": "m", "inference_count": str(inferences), "execution_count": str(executions),
                                 "inference_stats": {"success": {"count": str(inferences), "ns": "1"},
                                                     "queue": {"count": str(inferences), "ns": str(queue_ns)},
                                                     "compute_infer": {"count": str(inferences), "ns": "0"}},
                                 "batch_stats": [{"batch_size": str(s), "compute_infer": {"count": str(n)}}
                                                 for s, n in batches]}]}

    before = ServerStats.from_json(snapshot(4, 4, 4_000_000, [(1, 4)]), "m")
    after = ServerStats.from_json(snapshot(16, 7, 10_000_000, [(1, 4), (4, 3)]), "m")
    window = after.since(before)
    assert (window.inference_count, window.execution_count, window.batch_executions) == (12, 3, ((4, 3),))
    assert window.mean_batch == 4.0 and window.queue_ms == pytest.approx(0.5)


def test_triton_models_refuse_local_backend_options_before_connecting():
    from fcn_edge.runtime import load_segmenter

    with pytest.raises(UsageError, match="runs on the server"):
        load_segmenter("triton://127.0.0.1:1/m", providers=["cpu"])


def test_no_server_is_retried_then_a_clear_error(caplog):
    from fcn_edge.runtime import load_segmenter
    from fcn_edge.runtime.triton_backend import ServerUnavailableError

    with pytest.raises(ServerUnavailableError, match=r"127\.0\.0\.1:9 \(grpc\) after 2 tries.*fcn-edge serve"):
        load_segmenter("triton://127.0.0.1:9/m?retries=1")
    assert "retry 1 of 1" in caplog.text


# -- fcn-edge serve's checks of the interpreter (the server itself: tests/test_triton_server.py) --
def test_serve_explains_an_interpreter_without_a_shared_libpython(monkeypatch):
    import sysconfig

    from fcn_edge.serve.server import ServeError, shared_libpython

    real = sysconfig.get_config_var
    monkeypatch.setattr(sysconfig, "get_config_var", lambda name: 0 if name == "Py_ENABLE_SHARED" else real(name))
    with pytest.raises(ServeError, match=r"without a shared libpython.*/usr/bin/python3 -m venv"):
        shared_libpython()


def test_serve_puts_a_non_system_libpython_first_on_the_library_path(monkeypatch, tmp_path):
    import sysconfig

    from fcn_edge.serve.server import prepare_interpreter

    (tmp_path / "libpython3.x.so.1.0").write_bytes(b"")
    values = {"Py_ENABLE_SHARED": 1, "LIBDIR": str(tmp_path), "INSTSONAME": "libpython3.x.so.1.0"}
    monkeypatch.setattr(sysconfig, "get_config_var", values.get)
    monkeypatch.setenv("LD_LIBRARY_PATH", "/opt/other")
    assert prepare_interpreter() == tmp_path / "libpython3.x.so.1.0"
    assert os.environ["LD_LIBRARY_PATH"] == f"{tmp_path}{os.pathsep}/opt/other"
    values["LIBDIR"] = "/usr/lib/x86_64-linux-gnu"  # a system folder is searched anyway: left alone
    monkeypatch.setenv("LD_LIBRARY_PATH", "/opt/other")
    monkeypatch.setattr(Path, "is_file", lambda self: True)
    prepare_interpreter()
    assert os.environ["LD_LIBRARY_PATH"] == "/opt/other"


def test_serve_without_pytriton_says_what_to_install(capsys):
    import importlib.util

    if importlib.util.find_spec("pytriton") is not None:
        pytest.skip("nvidia-pytriton is installed in this interpreter")
    assert main(["serve", "--grpc-port", "1"]) == 2
    assert "pip install nvidia-pytriton" in capsys.readouterr().err
