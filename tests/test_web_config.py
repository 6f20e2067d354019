"""The browser page's parts that need no server: addresses and tokens, the request gate,
control validation, the pipeline's live controls, and looping a clip."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from fcn_edge.artifacts import meta_for_classes
from fcn_edge.errors import MetaError, UsageError
from fcn_edge.runtime import DecodeConfig, RenderConfig
from fcn_edge.video.live import LiveControls
from fcn_edge.video.looping import LoopingSource
from fcn_edge.video.sources import ImageFolderSource
from fcn_edge.video.uri import parse_sink, parse_source
from fcn_edge.video.web.auth import RequestGate
from fcn_edge.video.web.config import ViewAddress, ViewConfig, page_config, parse_view_address
from fcn_edge.video.web.control import apply_control, parse_control

TOKEN = "s3cret-token_0123"
CLASSES = ("background", "road", "car")


@pytest.mark.parametrize("text, host, port, loopback", [
    (":8080", "127.0.0.1", 8080, True),
    ("0.0.0.0:9000", "0.0.0.0", 9000, False),
    ("[::1]:8080", "::1", 8080, True),
    ("[::]:8080", "::", 8080, False),
    ("localhost:0", "localhost", 0, True),
    ("jetson.local:8080", "jetson.local", 8080, False),
    ("http://0.0.0.0:8080/", "0.0.0.0", 8080, False),
    ("http://:8081", "127.0.0.1", 8081, True),
    ("http://[::1]:8082/", "::1", 8082, True),
])
def test_view_addresses(text, host, port, loopback):
    address = parse_view_address(text)
    assert (address.host, address.port, address.is_loopback) == (host, port, loopback)


@pytest.mark.parametrize("text, message", [
    ("8080", r"not \[HOST\]:PORT"),
    ("host", r"not \[HOST\]:PORT"),
    (":99999", "outside 0..65535"),
    ("[zz]:80", r"not \[HOST\]:PORT"),
    ("https://0.0.0.0:8080/", "plain http://"),
    ("http://0.0.0.0:8080/stream", "at the root"),
    ("http://0.0.0.0/", "give the port"),
    ("http://user:pw@0.0.0.0:8080/", "--view-token"),
])
def test_bad_view_addresses(text, message):
    with pytest.raises(UsageError, match=message):
        parse_view_address(text)


def test_only_loopback_goes_without_a_token():
    assert ViewConfig(parse_view_address(":8080")).token is None
    with pytest.raises(UsageError, match="--view-token"):
        ViewConfig(parse_view_address("0.0.0.0:8080"))
    with pytest.raises(UsageError, match="--view-token"):
        ViewConfig(parse_view_address("jetson.local:8080"))
    assert ViewConfig(parse_view_address("0.0.0.0:8080"), TOKEN).token == TOKEN
    for bad in ("short", "has space in it", "semi;colon-token"):
        with pytest.raises(UsageError, match="8 to 256 characters"):
            ViewConfig(parse_view_address(":8080"), bad)


def test_the_page_output_and_view_agree_on_one_address():
    page = parse_sink("http://127.0.0.1:8080/")
    assert page.kind == "page"
    assert page_config(page, ViewConfig()).address == ViewAddress("127.0.0.1", 8080)
    assert page_config(page, ViewConfig(parse_view_address(":8080"))).address.port == 8080
    with pytest.raises(UsageError, match="one page per run"):
        page_config(page, ViewConfig(parse_view_address(":9090")))
    assert page_config(parse_sink("out.mp4"), ViewConfig()) is None
    assert page_config(parse_sink("out.mp4"), ViewConfig(parse_view_address(":9090"))).address.port == 9090
    with pytest.raises(UsageError, match="--view-token"):  # the output's address is checked like --view's
        page_config(parse_sink("http://0.0.0.0:8080/"), ViewConfig())


def test_request_gate():
    gate = RequestGate(TOKEN, 8080)
    assert gate.check({}, {}).status == 401
    assert gate.check({"Authorization": f"Bearer {TOKEN}"}, {}).status == 200
    assert gate.check({"Authorization": "Bearer wrong-token-123"}, {}).status == 401
    assert gate.check({"Authorization": f"Basic {TOKEN}"}, {}).status == 401
    verdict = gate.check({}, {"token": [TOKEN]})
    assert verdict.status == 200 and verdict.via_query
    assert gate.check({"Cookie": f"other=1; fcn_edge_view_8080={TOKEN}"}, {}).status == 200
    assert gate.check({"Cookie": f"fcn_edge_view_9090={TOKEN}"}, {}).status == 401  # another page's cookie
    assert "HttpOnly" in gate.set_cookie() and "SameSite=Strict" in gate.set_cookie()
    # without a token (loopback only), a Host that is not this machine is refused: DNS rebinding
    open_gate = RequestGate(None, 8080)
    for host in ("localhost:8080", "127.0.0.1:8080", "[::1]:8080", "127.0.0.1"):
        assert open_gate.check({"Host": host}, {}).status == 200, host
    for host in ("evil.example:8080", "192.168.1.20:8080", "evil.example"):
        assert open_gate.check({"Host": host}, {}).status == 403, host


@pytest.fixture
def fused_controls():
    meta = meta_for_classes("m", list(CLASSES), input_size=(32, 48), output_kind="mask", output_dtype="uint8")
    return LiveControls(meta, (32, 48), RenderConfig(), DecodeConfig())


@pytest.fixture
def controls():
    return LiveControls(meta_for_classes("m", list(CLASSES), input_size=(32, 48)), (32, 48), RenderConfig(), DecodeConfig())


@pytest.mark.parametrize("payload, message", [
    ([], "non-empty JSON object"),
    ({}, "non-empty JSON object"),
    ({"colour": 1}, "unknown control 'colour'"),
    ({"mode": "xray"}, "mode must be one of"),
    ({"alpha": 256}, "alpha must be a number"),
    ({"alpha": -1}, "alpha must be a number"),
    ({"alpha": True}, "alpha must be a number"),
    ({"alpha": "100"}, "alpha must be a number"),
    ({"ignore_class": 1.5}, "ignore_class must be"),
    ({"ignore_class": [1]}, "ignore_class must be"),
    ({"filter_mode": "cubic"}, "filter_mode must be one of"),
    ({"paused": "yes"}, "paused must be true or false"),
])
def test_controls_are_checked(payload, message):
    with pytest.raises(UsageError, match=message):
        parse_control(payload)


def test_a_refused_control_changes_nothing(fused_controls, controls):
    with pytest.raises(UsageError, match="not a class of this model"):
        apply_control(parse_control({"alpha": 10, "ignore_class": "cat"}), controls)
    assert controls.render.alpha == RenderConfig().alpha and controls.take_renderer() is None
    # linear filtering needs scores: refused with the runtime's message, and the alpha in the same request is not applied
    with pytest.raises(MetaError, match="no scores"):
        apply_control(parse_control({"alpha": 10, "filter_mode": "linear"}), fused_controls)
    assert fused_controls.render.alpha == RenderConfig().alpha and fused_controls.take_decode() is None
    apply_control(parse_control({"alpha": 10, "filter_mode": "linear", "ignore_class": "road", "mode": "both"}), controls)
    assert controls.render == RenderConfig(mode="both", alpha=10.0, ignore_class="road")
    renderer = controls.take_renderer()
    assert renderer.ignore_class == 1 and renderer.config.mode == "both"
    assert controls.take_renderer() is None  # handed over once
    assert controls.take_decode() == DecodeConfig("linear")


def test_a_decode_change_keeps_the_confidence_smoothing_asked_for():
    meta = meta_for_classes("m", list(CLASSES), input_size=(32, 48))
    controls = LiveControls(meta, (32, 48), RenderConfig(), DecodeConfig("point", confidence=True))
    controls.set_filter_mode("linear")
    assert controls.take_decode() == DecodeConfig("linear", confidence=True)
    without = LiveControls(meta, (32, 48), RenderConfig(), None)
    with pytest.raises(UsageError, match="no decode settings"):
        without.set_filter_mode("linear")


def test_pause_holds_a_stage_until_resumed_or_stopped(controls):
    stop = threading.Event()
    passed = []
    controls.set_paused(True)
    worker = threading.Thread(target=lambda: (controls.wait_while_paused(stop), passed.append(time.monotonic())))
    worker.start()
    time.sleep(0.3)
    assert not passed and controls.paused
    controls.set_paused(False)
    worker.join(2)
    assert passed and not controls.paused
    controls.set_paused(True)
    worker = threading.Thread(target=controls.wait_while_paused, args=(stop,))
    worker.start()
    stop.set()  # a stop request ends a pause
    worker.join(2)
    assert not worker.is_alive()


def test_looping_plays_a_folder_again(tmp_path):
    import cv2

    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((8, 8, 3), i * 40, np.uint8))
    source = LoopingSource(ImageFolderSource(parse_source(str(tmp_path))), 2)
    source.open()
    frames = []
    while (frame := source.read()) is not None:
        frames.append(int(frame[0, 0, 0]))
    assert frames == [0, 40, 80] * 3 and source.plays == 3
    with pytest.raises(UsageError, match="forever"):
        LoopingSource(ImageFolderSource(parse_source(str(tmp_path))), -2)


def test_looping_refuses_a_live_source():
    class Live:
        uri = "rtsp://cam/1"
        is_live = True

    with pytest.raises(UsageError, match="not the live source"):
        LoopingSource(Live(), -1)
