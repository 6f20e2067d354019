"""Start and cut the loopback RTSP server (rtsp_loopback_server.py) from a test."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER = Path(__file__).with_name("rtsp_loopback_server.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_missing() -> str:
    """Why the server cannot run here, or "" when it can."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} is missing"
    probe = (
        "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
        "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
        "assert Gst.ElementFactory.find('x264enc'), 'x264enc'; assert Gst.ElementFactory.find('videotestsrc')"
    )
    done = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True)
    if done.returncode != 0:
        return ("no GStreamer RTSP server for Python: apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 "
                "gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly ("
                + done.stderr.strip()[-200:] + ")")
    return ""


class Server:
    """The server as a child process; ``stop`` kills it (a cut), ``start`` brings it back."""

    def __init__(self, port: int):
        self.port = port
        self.proc = None

    def start(self) -> None:
        self.proc = subprocess.Popen([SYSTEM_PYTHON, str(SERVER), "--port", str(self.port)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"RTSP server did not start: {self.proc.stderr.read()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
