"""A real RTSP stream on loopback, cut mid-run: the source reconnects with backoff.

Needs Debian's GStreamer RTSP server for Python (python3-gi, gir1.2-gst-rtsp-server-1.0,
gstreamer1.0-plugins-{base,good,ugly}) run by /usr/bin/python3, and a cv2 with FFmpeg
(pip's wheels have it). Skips with the reason when they are absent.
"""

from __future__ import annotations

import threading

import pytest

from fcn_edge.video import NullSink, PipelineConfig, ReconnectPolicy, SourceOptions, VideoPipeline, capabilities, open_source

from rtsp_harness import Server, free_port, server_missing
from video_fixtures import FakeSegmenter

SKIP = server_missing() or ("" if capabilities.cv2_has_ffmpeg() or capabilities.cv2_has_gstreamer() else "this cv2 cannot read RTSP")


class CuttingSink(NullSink):
    """After ``cut_at`` frames, kills the server and restarts it ``down_s`` later."""

    def __init__(self, server: Server, cut_at: int, down_s: float):
        super().__init__("cutting://")
        self.server, self.cut_at, self.down_s = server, cut_at, down_s
        self.restarted = threading.Event()

    def write(self, frame):
        super().write(frame)
        if self.frames_written == self.cut_at:
            self.server.stop()
            timer = threading.Timer(self.down_s, lambda: (self.server.start(), self.restarted.set()))
            timer.daemon = True
            timer.start()


@pytest.mark.skipif(bool(SKIP), reason=SKIP)
def test_rtsp_source_reconnects_after_the_server_is_cut():
    server = Server(free_port())
    server.start()
    try:
        options = SourceOptions(open_timeout_s=3, read_timeout_s=2)
        policy = ReconnectPolicy(initial_delay_s=0.25, max_delay_s=1.0, give_up_after_s=30)
        source = open_source(f"rtsp://127.0.0.1:{server.port}/test", options, policy)
        assert source.is_live
        sink = CuttingSink(server, cut_at=15, down_s=1.5)
        summary = VideoPipeline(source, FakeSegmenter(), sink, PipelineConfig(max_frames=60)).run()
        assert sink.restarted.is_set()
        assert summary.reconnects >= 1, summary.format()
        assert summary.frames_in == 60 and summary.frames_out + summary.dropped == 60
        assert summary.error is None
    finally:
        server.stop()
