"""GStreamer capture, x264enc writing and RTSP-through-GStreamer reconnects, checked with a cv2
that has GStreamer: Debian's python3-opencv under /usr/bin/python3 (JetPack's cv2 is built
the same way). Skips with the reason when that Python, its cv2 or the RTSP server is absent.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from rtsp_harness import SYSTEM_PYTHON, free_port, server_missing

REPO = Path(__file__).resolve().parents[1]
CHECKS = Path(__file__).with_name("gst_video_checks.py")


def _why_not() -> str:
    missing = server_missing()
    if missing:
        return missing
    probe = "import cv2, numpy; import sys; sys.exit(0 if 'GStreamer:                   YES' in cv2.getBuildInformation() else 3)"
    done = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True)
    if done.returncode != 0:
        return f"{SYSTEM_PYTHON} has no cv2 with GStreamer: apt-get install python3-opencv python3-numpy"
    return ""


SKIP = _why_not()


@pytest.mark.skipif(bool(SKIP), reason=SKIP)
def test_gstreamer_paths(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    # its own process group, so a hang takes the RTSP server child down with it
    proc = subprocess.Popen([SYSTEM_PYTHON, str(CHECKS), str(tmp_path), str(free_port())], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail("GStreamer checks hung for 90 s:\n" + err[-3000:])
    assert proc.returncode == 0, err[-3000:]
    report = json.loads(out.strip().splitlines()[-1])
    assert report["gstreamer"] is True
    assert report["pipeline_source_frames"] == 20
    assert report["x264_codec"] == "H.264 (x264enc, GStreamer)" and report["x264_frames"] == 20
    assert report["rtsp_backend"] == "GStreamer"
    rtsp = report["rtsp"]
    assert rtsp["frames_in"] == 60 and rtsp["reconnects"] >= 1 and rtsp["error"] is None, (rtsp, err[-3000:])
