"""A real Triton server (``fcn-edge serve`` through PyTriton, ONNX Runtime on the CPU, on
127.0.0.1) and the ``triton://`` backend against it: the served config is the repository's,
concurrent clients get ONNX Runtime's masks and are batched, multi-stream runs send
concurrent requests, a server killed mid-run is retried then reported and the video is
finalised, and SIGTERM stops the server cleanly. Needs the serving venv (tests/triton_harness.py)."""

from __future__ import annotations

import json
import threading
import urllib.request

import cv2
import numpy as np
import pytest

from tiny_models import make_dataset, make_tiny_onnx, sample_frame
from triton_harness import start_server, triton_python, wait_until
from video_fixtures import write_clip

pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc,http] is the triton:// backend's client")

from fcn_edge.runtime import LoadOptions, load_segmenter  # noqa: E402
from fcn_edge.runtime.triton_backend import META_PARAMETER, ServerUnavailableError  # noqa: E402
from fcn_edge.video import VideoRunConfig  # noqa: E402
from fcn_edge.video.job import VideoJob  # noqa: E402


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_tiny_onnx(tmp_path_factory.mktemp("served") / "tiny.onnx", fused=True, output_kind="mask")


@pytest.fixture(scope="module")
def server(model, tmp_path_factory):
    triton_python()  # skip early, with the reason, when the serving venv is missing
    # A long queue delay so that concurrent requests surely meet in the dynamic batcher.
    served = start_server(model, "tiny", tmp_path_factory.mktemp("log") / "serve.log", "--queue-delay-us", "20000")
    yield served
    served.kill()


def test_served_config_is_the_repository_config(server, model):
    """fcn-edge serve's model (PyTriton, Python backend) has the tensors, batching and ModelMeta
    parameter that triton-repo writes for the same ONNX."""
    import tritonclient.http as http
    from google.protobuf import json_format, text_format
    from tritonclient.grpc import model_config_pb2

    from fcn_edge.serve import plan_model

    served = http.InferenceServerClient(f"127.0.0.1:{server.http_port}").get_model_config("tiny")
    message = text_format.Parse(plan_model(model, name="tiny").config_text, model_config_pb2.ModelConfig())
    written = json_format.MessageToDict(message, preserving_proto_field_name=True)

    def tensors(config, role):
        return [(t["name"], t["data_type"], [int(d) for d in t["dims"]]) for t in config[role]]

    assert served["max_batch_size"] == written["max_batch_size"] == 4
    for role in ("input", "output"):
        assert tensors(served, role) == tensors(written, role)
    assert served["dynamic_batching"]["preferred_batch_size"] == written["dynamic_batching"]["preferred_batch_size"]
    assert served["parameters"][META_PARAMETER]["string_value"] == written["parameters"][META_PARAMETER]["string_value"]
    assert served["backend"] == "python" and written["platform"] == "onnxruntime_onnx"


def test_four_concurrent_clients_get_onnxruntimes_masks_and_are_batched(server, model):
    frames = [sample_frame(60 + 8 * i, 80, seed=i) for i in range(4)]
    with load_segmenter(model) as local:
        expected = [local.segment(f).mask for f in frames]
    # every transport: gRPC and HTTP, with and without system shared memory
    urls = [server.url, server.url + "?shm=off", f"triton://127.0.0.1:{server.http_port}/tiny?protocol=http",
            f"triton://127.0.0.1:{server.http_port}/tiny?protocol=http&shm=off"]
    clients = [load_segmenter(url) for url in urls]
    assert [c.backend.shared_memory for c in clients] == [True, False, True, False]
    before = clients[0].backend.statistics()
    rounds, results, errors = 6, {}, []
    barrier = threading.Barrier(len(clients))

    def client_loop(index):
        try:
            for r in range(rounds):
                barrier.wait(30)
                results[(index, r)] = clients[index].segment(frames[(index + r) % 4]).mask
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    window = clients[0].backend.statistics().since(before)
    for c in clients:
        c.close()
    assert not errors, errors
    for (index, r), mask in results.items():
        np.testing.assert_array_equal(mask, expected[(index + r) % 4])
    assert window.inference_count == len(clients) * rounds
    assert window.execution_count < window.inference_count, window.describe()
    assert max(size for size, _ in window.batch_executions) > 1


def test_health_and_metrics_endpoints(server):
    with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/v2/health/ready", timeout=10) as reply:
        assert reply.status == 200
    with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=10) as reply:
        assert 'nv_inference_count{model="tiny"' in reply.read().decode()


def test_multistream_run_sends_concurrent_requests(server, tmp_path):
    from fcn_edge.video.multistream import run_streams

    clips = [write_clip(tmp_path / f"cam{i}.avi", frames=8) for i in range(3)]
    before = load_segmenter(server.url)
    start = before.backend.statistics()
    summary = run_streams([str(c) for c in clips], [str(tmp_path / "out" / "{name}.avi")],
                          VideoRunConfig(model=server.url))
    window = before.backend.statistics().since(start)
    before.close()
    assert summary.batches is None and not summary.failed
    assert [s.frames_out for s in summary.streams] == [8, 8, 8]
    assert window.inference_count == 24
    for i in range(3):
        capture = cv2.VideoCapture(str(tmp_path / "out" / f"cam{i}.avi"))
        assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 8


def test_segment_evaluate_and_benchmark_take_a_triton_model(server, tmp_path, capsys):
    from fcn_edge.cli.main import main

    image = tmp_path / "street.png"
    cv2.imwrite(str(image), sample_frame(60, 80))
    assert main(["segment", str(image), "-o", str(tmp_path / "seg"), "--model", server.url, "--save-mask"]) == 0
    assert (tmp_path / "seg" / "street.mask.png").is_file()
    data = make_dataset(tmp_path / "data", 3)
    assert main(["evaluate", server.url, "--data", str(data), "--quiet"]) == 0
    assert "3 evaluated" in capsys.readouterr().out
    report = tmp_path / "bench.json"
    assert main(["benchmark", server.url, "--iterations", "5", "--warmup", "1", "--batch", "2",
                 "--json", str(report)]) == 0
    assert "server at batch 2 (Triton statistics" in capsys.readouterr().out
    (variant,) = json.loads(report.read_text())["variants"]
    assert variant["backend"] == "triton"
    # 1 warm-up + 5 timed calls per batch size, one request each: batch 2 is 12 frames in 6 executions
    assert (variant["server"]["1"]["inference_count"], variant["server"]["1"]["execution_count"]) == (6, 6)
    assert (variant["server"]["2"]["inference_count"], variant["server"]["2"]["execution_count"]) == (12, 6)
    assert variant["server"]["2"]["compute_ms"] > 0


def test_server_killed_mid_run_is_retried_then_fails_clearly_and_the_video_is_finalised(server, tmp_path, caplog):
    """Last in this module: it kills the module's server (SIGKILL to its process group)."""
    clip = write_clip(tmp_path / "long.avi", frames=400)
    config = VideoRunConfig(model=server.url + "?retries=2", load=LoadOptions())
    outcome = {}
    job = VideoJob([str(clip)], [str(tmp_path / "out.avi")], config).open()

    def run():
        try:
            outcome["summary"] = job.run()
        except BaseException as exc:  # noqa: BLE001 - the point of the test
            outcome["error"] = exc

    runner = threading.Thread(target=run)
    runner.start()
    try:
        wait_until(lambda: job.pipeline.frames_out >= 3, 60, "three frames through the server")
    finally:
        server.kill()
        runner.join(60)
        job.close()
    assert isinstance(outcome.get("error"), ServerUnavailableError), outcome
    assert "no answer from the Triton server" in str(outcome["error"]) and "after 3 tries" in str(outcome["error"])
    assert "retry 2 of 2" in caplog.text
    summary = job.summary
    assert summary.error and 3 <= summary.frames_out < 400
    capture = cv2.VideoCapture(str(tmp_path / "out.avi"))  # finalised: renamed into place, readable
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == summary.frames_out


@pytest.mark.slow
def test_sigterm_stops_the_server_cleanly(model, tmp_path):
    served = start_server(model, "stopped", tmp_path / "serve.log")
    try:
        with load_segmenter(served.url) as client:
            client.segment(sample_frame())
        assert served.terminate(timeout=60) == 0
    finally:
        served.kill()
    assert "SIGTERM: stopping the server" in served.output() and served.output().rstrip().endswith("stopped")
