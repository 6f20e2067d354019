"""URI parsing for inputs and outputs, and what the video layer says about this OpenCV."""

from __future__ import annotations

import sys
import subprocess

import cv2
import pytest

from fcn_edge.errors import VideoError
from fcn_edge.video import capabilities, parse_sink, parse_source
from fcn_edge.video.sources import ImageFolderSource, SourceOptions, list_images, make_source


def test_video_files_and_file_uris(tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"x")
    for uri in (str(clip), f"file://{clip}"):
        spec = parse_source(uri)
        assert (spec.kind, spec.location, spec.is_live) == ("file", str(clip), False)


def test_image_folders_globs_and_sequences(tmp_path):
    assert parse_source(str(tmp_path)).kind == "images"
    assert parse_source(str(tmp_path / "*.png")).kind == "images"
    assert parse_source(str(tmp_path / "frame_%05d.jpg")).kind == "images"
    assert not parse_source(str(tmp_path)).is_live


@pytest.mark.parametrize("uri, location, index", [
    ("/dev/video0", "/dev/video0", 0),
    ("v4l2:///dev/video2", "/dev/video2", 2),
    ("v4l2://1", "/dev/video1", 1),
    ("3", "/dev/video3", 3),
])
def test_v4l2_cameras(uri, location, index):
    spec = parse_source(uri)
    assert (spec.kind, spec.location, spec.device_index, spec.is_live) == ("v4l2", location, index, True)


def test_csi_network_and_gstreamer_inputs():
    assert (parse_source("csi://1").kind, parse_source("csi://1").device_index) == ("csi", 1)
    for url in ("rtsp://127.0.0.1:8554/cam", "http://host/stream.mjpg", "https://host/x.m3u8"):
        spec = parse_source(url)
        assert (spec.kind, spec.location, spec.is_live) == ("network", url, True)
    live = parse_source("videotestsrc ! videoconvert ! appsink")
    assert (live.kind, live.is_live) == ("gstreamer", True)
    assert not parse_source("filesrc location=a.mp4 ! decodebin ! videoconvert ! appsink").is_live


def test_unknown_scheme_and_missing_file_are_clear(tmp_path):
    with pytest.raises(VideoError, match=r"unknown URI scheme 'ftp://'.*v4l2://.*csi://.*rtsp://"):
        parse_source("ftp://host/clip.mp4")
    missing = tmp_path / "nope.mp4"
    with pytest.raises(VideoError, match=rf"{missing}: no such file"):
        parse_source(str(missing))
    with pytest.raises(VideoError, match="csi://N"):
        parse_source("csi://left")


def test_sinks(tmp_path):
    assert parse_sink(str(tmp_path / "o.mp4")).kind == "video"
    assert parse_sink(str(tmp_path / "o.AVI")).kind == "video"
    assert parse_sink(str(tmp_path) + "/").kind == "images"
    assert parse_sink(str(tmp_path / "f_%04d.png")).kind == "images"
    assert parse_sink("display://0").kind == "display"
    assert parse_sink("null").kind == parse_sink("null://").kind == "null"
    assert parse_sink("rtsp://127.0.0.1:8554/out").kind == "network"
    with pytest.raises(VideoError, match="unknown URI scheme 'webrtc://'"):
        parse_sink("webrtc://x")
    with pytest.raises(VideoError, match="numbered sequence"):
        parse_sink(str(tmp_path / "single.jpg"))
    with pytest.raises(VideoError, match="extension '.xyz'"):
        parse_sink(str(tmp_path / "o.xyz"))


def test_backend_table_matches_build_information():
    info = cv2.getBuildInformation()
    backends = capabilities.video_io_backends()
    assert "FFMPEG" in backends and "GStreamer" in backends
    for name, present in backends.items():
        line = next(l for l in info.splitlines() if l.strip().startswith(name + ":"))
        assert ("YES" in line) == present, line


@pytest.mark.skipif(capabilities.cv2_has_gstreamer(), reason="this cv2 has GStreamer; the missing-backend message cannot be shown")
@pytest.mark.parametrize("uri", ["csi://0", "videotestsrc ! videoconvert ! appsink"])
def test_gstreamer_inputs_say_what_to_install(uri):
    source = make_source(uri)
    with pytest.raises(VideoError, match=r"GStreamer.*built without it.*python3-opencv"):
        source.open()


def test_missing_camera_device_is_named():
    source = make_source("/dev/video97", SourceOptions(backend="v4l2"))
    with pytest.raises(VideoError, match="/dev/video97: no such camera device"):
        source.open()


def test_unreadable_video_file(tmp_path):
    fake = tmp_path / "broken.mp4"
    fake.write_text("this is not a video\n" * 50)
    with pytest.raises(VideoError, match=str(fake)):
        make_source(str(fake)).open()


def test_image_folder_natural_order_and_bad_image(tmp_path):
    for i in (10, 2, 1):
        cv2.imwrite(str(tmp_path / f"frame{i}.png"), cv2.UMat(8, 8, cv2.CV_8UC3, (i, i, i)).get())
    assert [p.rsplit("/", 1)[1] for p in list_images(str(tmp_path))] == ["frame1.png", "frame2.png", "frame10.png"]
    source = make_source(str(tmp_path))
    assert isinstance(source, ImageFolderSource)
    source.open()
    assert [int(source.read()[0, 0, 0]) for _ in range(3)] == [1, 2, 10]
    assert source.read() is None
    (tmp_path / "frame11.png").write_bytes(b"not a png")
    source.open()
    for _ in range(3):
        source.read()
    with pytest.raises(VideoError, match="frame11.png: not a readable image"):
        source.read()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VideoError, match="no images"):
        make_source(str(empty)).open()


def test_importing_video_never_pulls_torch():
    code = (
        "import sys, fcn_edge.video, fcn_edge.video.pipeline, fcn_edge.video.sinks, fcn_edge.video.sources, "
        "fcn_edge.video.reconnect, fcn_edge.video.smoothing, fcn_edge.video.signals, fcn_edge.video.hud, "
        "fcn_edge.cli.run; assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_gstreamer_pipeline_strings():
    from fcn_edge.video import gst_pipelines

    csi = gst_pipelines.csi_camera(1, (720, 1280), 30)
    assert csi.startswith("nvarguscamerasrc sensor-id=1 ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1")
    assert csi.endswith("format=BGR ! appsink drop=true max-buffers=1 sync=false")
    assert "protocols=tcp" in gst_pipelines.network_stream("rtsp://h/s")
    jetson = gst_pipelines.file_writer("/o/.x.mp4", ".mp4", hardware=True)
    assert "nvv4l2h264enc" in jetson and jetson.endswith("mp4mux ! filesink location=/o/.x.mp4")
    assert "x264enc" in gst_pipelines.file_writer("/o/x.avi", ".avi", hardware=False)
    assert gst_pipelines.network_writer("rtsp://s:8554/out", False).endswith("rtspclientsink location=rtsp://s:8554/out")
    assert "udpsink host=10.0.0.2 port=5000" in gst_pipelines.network_writer("rtp://10.0.0.2:5000", False)


@pytest.mark.skipif(capabilities.cv2_has_gstreamer(), reason="this cv2 has GStreamer")
def test_gstreamer_only_outputs_say_what_to_install(tmp_path):
    import numpy as np

    from fcn_edge.video.sinks import NetworkSink, SinkOptions, VideoFileSink

    with pytest.raises(VideoError, match="streaming out to rtsp://.*GStreamer"):
        NetworkSink("rtsp://127.0.0.1:8554/out", 30)
    sink = VideoFileSink(tmp_path / "o.mp4", 30, SinkOptions(encoder="nvv4l2h264enc"))
    with pytest.raises(VideoError, match="--encoder nvv4l2h264enc needs OpenCV's GStreamer backend"):
        sink.write(np.zeros((8, 8, 3), np.uint8))
