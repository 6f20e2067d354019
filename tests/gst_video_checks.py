"""GStreamer-backed video paths, run by a Python whose cv2 has GStreamer (Debian's python3-opencv).

Called by test_video_gstreamer.py as ``/usr/bin/python3 gst_video_checks.py OUTDIR PORT``
with PYTHONPATH set to the repository; prints one JSON object of what it observed. The
venv's pip OpenCV has no GStreamer, so these paths cannot be exercised in-process there.
"""

import json
import sys
import threading
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from fcn_edge.video import NullSink, PipelineConfig, ReconnectPolicy, SinkOptions, SourceOptions, VideoPipeline, capabilities, open_source  # noqa: E402
from fcn_edge.video.sinks import VideoFileSink  # noqa: E402
from rtsp_harness import Server  # noqa: E402
from video_fixtures import FakeSegmenter  # noqa: E402


def count_frames(path):
    capture = cv2.VideoCapture(str(path))
    n = 0
    while capture.read()[0]:
        n += 1
    return n


def main():
    out, port = Path(sys.argv[1]), int(sys.argv[2])
    report = {"gstreamer": capabilities.cv2_has_gstreamer()}
    source = open_source("videotestsrc num-buffers=20 ! video/x-raw,width=96,height=64 ! videoconvert ! video/x-raw,format=BGR ! appsink", reconnect=None)
    frames = 0
    while source.read() is not None:
        frames += 1
    source.close()
    report["pipeline_source_frames"] = frames

    sink = VideoFileSink(out / "x264.mp4", 25, SinkOptions(encoder="x264enc"))
    for i in range(20):
        sink.write(np.full((64, 96, 3), i * 10, np.uint8))
    sink.close()
    report["x264_codec"] = sink.codec
    report["x264_frames"] = count_frames(out / "x264.mp4")

    server = Server(port)
    server.start()
    try:
        source = open_source(f"rtsp://127.0.0.1:{port}/test", SourceOptions(), ReconnectPolicy(initial_delay_s=0.25, max_delay_s=1.0, give_up_after_s=30))
        report["rtsp_backend"] = source.inner.backend_name

        class Cutting(NullSink):
            def write(self, frame):
                super().write(frame)
                if self.frames_written == 15:
                    server.stop()
                    threading.Timer(1.5, server.start).start()

        summary = VideoPipeline(source, FakeSegmenter(), Cutting(), PipelineConfig(max_frames=60)).run()
        report["rtsp"] = {"frames_in": summary.frames_in, "reconnects": summary.reconnects, "error": summary.error}
    finally:
        server.stop()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
