"""The browser page's server over real HTTP: the token on every request, only the page's own
files, controls checked server-side and applied to a running pipeline, no encoding without
a viewer, and a viewer that reads nothing never holding the pipeline up."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from importlib import resources

import cv2
import numpy as np
import pytest

from fcn_edge.artifacts import meta_for_classes
from fcn_edge.errors import UsageError
from fcn_edge.runtime import RenderConfig, load_segmenter
from fcn_edge.video import NullSink, PipelineConfig, VideoPipeline
from fcn_edge.video.looping import LoopingSource
from fcn_edge.video.web import ViewAddress, ViewConfig, open_page
from video_fixtures import ListSource, clip_frame
from web_clients import MjpegReader, StalledClient, fed_page, post_control, request, stats, wait_for

TOKEN = "s3cret-token_0123"
LOOPBACK = ViewAddress("127.0.0.1", 0)


def make_frames(count: int, size=(120, 160)):
    return [clip_frame(i, size) for i in range(count)]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    pytest.importorskip("torch")  # the tiny models are made by the exporter
    from tiny_models import make_tiny_onnx

    folder = tmp_path_factory.mktemp("web")
    return {"logits": make_tiny_onnx(folder), "fused": make_tiny_onnx(folder, fused=True, output_kind="mask")}


@contextlib.contextmanager
def running(model, frames, token=None, render=RenderConfig(), loops=-1):
    """A real pipeline (tiny model, frames looped) with the page attached, running on a thread."""
    segmenter = load_segmenter(model)
    source = LoopingSource(ListSource(frames), loops)
    pipeline = VideoPipeline(source, segmenter, NullSink(), PipelineConfig(render=render, show_stats=False))
    page = open_page(ViewConfig(LOOPBACK, token), {"0": pipeline})
    thread = threading.Thread(target=pipeline.run, daemon=True)
    thread.start()
    try:
        yield page, pipeline
    finally:
        pipeline.request_stop()
        thread.join(10)
        page.close()
        segmenter.close()


# -- the gate -------------------------------------------------------------------------------
GATED = [("GET", p) for p in ("/", "/app.js", "/style.css", "/api/streams", "/api/stats", "/events",
                              "/stream/0.mjpg", "/frame/0.jpg", "/nothing", "/../../etc/passwd")] + [
    ("POST", "/api/control/0"), ("HEAD", "/"), ("OPTIONS", "/api/control/0"), ("DELETE", "/"), ("BREW", "/")]


def test_with_a_token_requests_without_it_get_401_and_nothing_else():
    with fed_page(TOKEN) as page:
        for method, path in GATED:
            for headers in ({}, {"Authorization": "Bearer wrong-token-000"}, {"Cookie": "fcn_edge_view_1=" + TOKEN}):
                body = b'{"alpha": 1}' if method == "POST" else None
                status, reply_headers, content = request(page.url, path, method, body,
                                                         {"Content-Type": "application/json", **headers})
                assert status == 401, (method, path, headers, status)
                assert content == (b"" if method == "HEAD" else b"401 Unauthorized\n")
                assert "Set-Cookie" not in reply_headers
        assert page.stream("0").slot.stats()["frames_encoded"] == 0  # no stream was served

        bearer = {"Authorization": f"Bearer {TOKEN}"}
        status, _, content = request(page.url, "/", headers=bearer)
        assert status == 200 and b"<title>fcn-edge</title>" in content
        # a browser's first load: ?token= sets the cookie and drops the token from the address
        status, headers, _ = request(page.url, f"/?token={TOKEN}")
        assert status == 303 and headers["Location"] == "/"
        cookie = headers["Set-Cookie"].split(";")[0]
        assert cookie == f"fcn_edge_view_{page.port}={TOKEN}"
        status, _, content = request(page.url, "/api/streams", headers={"Cookie": cookie})
        assert status == 200 and json.loads(content)["streams"][0]["label"] == "camera 0"
        assert post_control(page.url, "0", {"alpha": 1}, {"Cookie": cookie})[0] == 400  # past the gate: no controls
        status, _, content = request(page.url, "/frame/0.jpg", headers=bearer)
        assert status == 200 and cv2.imdecode(np.frombuffer(content, np.uint8), cv2.IMREAD_COLOR).shape == (48, 64, 3)


def test_only_the_page_files_are_served():
    assets = resources.files("fcn_edge.video.web").joinpath("assets")
    with fed_page() as page:
        for path, name in (("/", "index.html"), ("/app.js", "app.js"), ("/style.css", "style.css")):
            status, headers, content = request(page.url, path)
            assert status == 200 and content == assets.joinpath(name).read_bytes()
            assert "default-src 'none'" in headers["Content-Security-Policy"] and headers["X-Content-Type-Options"] == "nosniff"
        for path in ("/index.html", "/assets/app.js", "/../../etc/passwd", "/%2e%2e/server.py", "/app.js/..",
                     "/fcn_edge/video/web/server.py", "/etc/passwd", "//etc/passwd", "/stream/../app.js", "/frame/x.jpg"):
            status, _, content = request(page.url, path)
            assert status == 404, path
            assert b"root:" not in content and b"import" not in content
        for method in ("HEAD", "PUT", "BREW"):  # no handler: the stdlib's error, without its HTML page
            status, headers, content = request(page.url, "/", method)
            assert status == 501 and content in (b"", b"501 Not Implemented\n")
        # unprotected, it answers to this machine's names only (a rebinding attack uses another)
        assert request(page.url, "/", headers={"Host": "attacker.example"})[0] == 403


def test_the_server_lists_many_streams_and_serves_each():
    names = ("front", "rear", "left", "right", "top", "dock")
    with fed_page(streams=names) as page:
        status, _, content = request(page.url, "/api/streams")
        listed = json.loads(content)["streams"]
        assert [s["name"] for s in listed] == list(names)
        assert listed[0]["classes"][1] == {"index": 1, "name": "road", "colour": "#%02x%02x%02x" % tuple(meta_for_classes("m", ["background", "road", "car"]).palette[1])}
        for name in names:
            status, headers, content = request(page.url, f"/frame/{name}.jpg")
            assert status == 200 and int(headers["X-Frame-Number"]) >= 1
        with pytest.raises(UsageError, match="already has a stream"):
            page.add_stream("front", meta_for_classes("m", ["a", "b"]))


# -- a real pipeline ----------------------------------------------------------------------------
def test_no_viewer_means_no_encoding(models):
    with running(models["logits"], make_frames(10), loops=2) as (page, pipeline):
        wait_for(lambda: pipeline.summary is not None, what="the run to end")
        view = page.stream("0").slot.stats()
        assert pipeline.summary.frames_out == 30 and view["frames_published"] == 30
        assert view["frames_encoded"] == 0 and view["encode_ms"] is None


def test_controls_are_checked_on_the_server(models):
    with running(models["fused"], make_frames(8)) as (page, pipeline):
        url = page.url
        for payload, message in (({"alpha": 300}, "alpha"), ({"mode": "xray"}, "mode"), ({"ignore_class": "cat"}, "not a class"),
                                 ({"paused": 1}, "paused"), ({"rm": "-rf"}, "unknown control")):
            status, reply = post_control(url, "0", payload)
            assert status == 400 and message in reply["error"], (payload, reply)
        status, reply = post_control(url, "0", {"filter_mode": "linear"})
        assert status == 409 and "no scores" in reply["error"]
        assert post_control(url, "nope", {"alpha": 1})[0] == 404
        assert request(url, "/api/control/0", "POST", b"alpha=1", {"Content-Type": "application/x-www-form-urlencoded"})[0] == 415
        assert request(url, "/api/control/0", "POST", b"{" + b" " * 5000 + b"}", {"Content-Type": "application/json"})[0] == 413
        assert request(url, "/api/control/0", "POST", b"{nope", {"Content-Type": "application/json"})[0] == 400
        assert stats(url)["streams"]["0"]["settings"] == {"mode": "overlay", "alpha": 150.0, "ignore_class": None,
                                                         "filter_mode": "point", "paused": False}


def test_controls_change_the_running_pipeline(models):
    with running(models["logits"], make_frames(12, (120, 160))) as (page, pipeline):
        url = page.url

        def frame_width():
            status, headers, content = request(url, "/frame/0.jpg")
            return cv2.imdecode(np.frombuffer(content, np.uint8), cv2.IMREAD_COLOR).shape[1]

        assert frame_width() == 160
        status, reply = post_control(url, "0", {"mode": "both", "ignore_class": "road", "filter_mode": "linear", "alpha": 255})
        assert status == 200 and reply["settings"] == {"mode": "both", "alpha": 255.0, "ignore_class": 1,
                                                       "filter_mode": "linear", "paused": False}
        wait_for(lambda: frame_width() == 320, what="side-by-side frames")
        wait_for(lambda: pipeline.segmenter.decode.config.filter_mode == "linear", what="the decoder to change")
        assert pipeline.renderer.ignore_class == 1 and pipeline.renderer.config.alpha == 255.0
        assert stats(url)["streams"]["0"]["settings"]["mode"] == "both"

        assert post_control(url, "0", {"paused": True})[0] == 200
        wait_for(lambda: stats(url)["streams"]["0"]["state"] == "paused", what="paused")
        time.sleep(0.3)  # a frame in flight may still come out
        held = pipeline.frames_out
        time.sleep(0.6)
        assert pipeline.frames_out == held
        assert post_control(url, "0", {"paused": False})[0] == 200
        wait_for(lambda: pipeline.frames_out > held + 5, what="frames after resuming")


def test_a_stalled_viewer_never_stalls_the_pipeline(models):
    """Two viewers read everything, one never reads: every frame of the clip is still
    processed, the readers get frames, and the stalled one is skipped past."""
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (480, 640, 3), np.uint8) for _ in range(10)]  # noise: large JPEGs fill socket buffers
    count = 30 * len(frames)
    with running(models["logits"], frames, loops=29) as (page, pipeline):
        readers = [MjpegReader(page.url), MjpegReader(page.url)]
        for reader in readers:
            reader.start()
        stalled = StalledClient(page.url)
        wait_for(lambda: page.stream("0").slot.stats()["viewers"] == 3, what="three viewers")
        try:
            wait_for(lambda: pipeline.summary is not None, timeout=120, what="the run to end")
            view = page.stream("0").slot.stats()
        finally:
            for reader in readers:
                reader.stop()
            stalled.close()
        assert pipeline.summary.frames_out == count and pipeline.summary.error is None
        assert view["frames_encoded"] > 0
        slowest = max(view["viewer_list"], key=lambda v: v["missed"])
        fastest = min(view["viewer_list"], key=lambda v: v["missed"])
        assert slowest["frames_sent"] < view["frames_encoded"] / 4, view  # it stopped getting frames ...
        assert slowest["missed"] > view["frames_encoded"] / 2, view      # ... and was skipped past, not waited for
        assert fastest["frames_sent"] > slowest["frames_sent"] * 2, view
        assert all(reader.frames > 0 and reader.error is None for reader in readers)
        last = cv2.imdecode(np.frombuffer(readers[0].last_jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert last.shape == (480, 640, 3)  # the parts are whole JPEGs


def test_close_ends_stalled_connections_at_once(models):
    with running(models["logits"], make_frames(4)) as (page, pipeline):
        stalled = StalledClient(page.url)
        reader = MjpegReader(page.url)
        reader.start()
        wait_for(lambda: reader.frames > 2, what="frames")
        t0 = time.monotonic()
        page.close()
        assert time.monotonic() - t0 < 5
        reader.join(5)
        assert not reader.is_alive()
        stalled.close()


def test_connections_are_capped(monkeypatch):
    import socket

    from fcn_edge.video.web import server

    monkeypatch.setattr(server, "MAX_CONNECTIONS", 3)
    with fed_page() as page:
        idle = [socket.create_connection(("127.0.0.1", page.port)) for _ in range(3)]  # hold three, send nothing
        try:
            wait_for(lambda: len(page._connections) == 3, what="three connections")
            refused = socket.create_connection(("127.0.0.1", page.port), timeout=5)
            assert refused.recv(100) == b""  # closed at once, unanswered
            refused.close()
        finally:
            for connection in idle:
                connection.close()
        wait_for(lambda: request(page.url, "/api/streams")[0] == 200, what="room again")
