"""What this machine's OpenCV and GStreamer can do for video, asked rather than assumed.

pip's ``opencv-python`` wheels have FFmpeg (files, RTSP/HTTP clients) and V4L2 but no
GStreamer; JetPack's and Debian's ``python3-opencv`` have GStreamer. CSI cameras, raw
pipelines, hardware H.264 encoding and RTSP output need it, so every path that does says
plainly when it is missing and what to install (:func:`gstreamer_install_hint`).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from typing import Dict

from fcn_edge.optional import require


def _cv2():
    return require("cv2", "video capture and writing")


@functools.lru_cache(maxsize=None)
def video_io_backends() -> Dict[str, bool]:
    """``{"FFMPEG": True, "GStreamer": False, "v4l/v4l2": True, ...}`` from cv2's build info."""
    info = _cv2().getBuildInformation()
    lines = info.splitlines()
    heading = next((i for i, line in enumerate(lines) if line.strip() == "Video I/O:"), None)
    if heading is None:
        return {}
    indent = len(lines[heading]) - len(lines[heading].lstrip())
    backends: Dict[str, bool] = {}
    for line in lines[heading + 1 :]:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        if depth <= indent:
            break  # the next section
        match = re.match(r"^\s*(\S[^:]*):\s+(YES|NO)\b", line)
        if match and depth == indent + 2:
            backends[match.group(1).strip()] = match.group(2) == "YES"
    return backends


def cv2_has_gstreamer() -> bool:
    return video_io_backends().get("GStreamer", False)


def cv2_has_ffmpeg() -> bool:
    return video_io_backends().get("FFMPEG", False)


@functools.lru_cache(maxsize=None)
def cv2_has_gui() -> bool:
    """True when cv2 was built with a window toolkit (the ``-headless`` wheels are not)."""
    info = _cv2().getBuildInformation()
    start = info.find("GUI:")
    if start < 0:
        return False
    section = info[start:].splitlines()[0]
    return "NONE" not in section.upper()


def display_available() -> bool:
    """A window can be opened: a toolkit in cv2 and, off Windows/macOS, an X or Wayland display."""
    if not cv2_has_gui():
        return False
    if sys.platform.startswith(("win", "darwin")):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def is_jetson() -> bool:
    """JetPack installs /etc/nv_tegra_release; the device tree names the Tegra SoC."""
    if os.path.exists("/etc/nv_tegra_release"):
        return True
    try:
        with open("/proc/device-tree/compatible", "rb") as handle:
            return b"nvidia,tegra" in handle.read()
    except OSError:
        return False


@functools.lru_cache(maxsize=None)
def gstreamer_element_available(element: str) -> bool:
    """True when ``gst-inspect-1.0 ELEMENT`` finds the element (e.g. nvv4l2h264enc, x264enc)."""
    tool = shutil.which("gst-inspect-1.0")
    if tool is None:
        return False
    try:
        done = subprocess.run(
            [tool, "--exists", element], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=20
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def gstreamer_install_hint() -> str:
    """What to install to get an OpenCV that can open GStreamer pipelines."""
    if is_jetson():
        return (
            "use JetPack's OpenCV (sudo apt install python3-opencv, or nvidia-opencv), which is "
            "built with GStreamer; pip's opencv-python is not, so `pip uninstall opencv-python "
            "opencv-python-headless` if it shadows JetPack's"
        )
    return (
        "pip's opencv-python wheels are built without GStreamer; use a cv2 built with it "
        "(Debian/Ubuntu: sudo apt install python3-opencv gstreamer1.0-plugins-good "
        "gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-rtsp, and run with the "
        "system python3 or a venv made with --system-site-packages without pip's opencv), or "
        "build OpenCV with -DWITH_GSTREAMER=ON"
    )


def gstreamer_missing_message(what: str) -> str:
    return (
        f"{what} needs OpenCV's GStreamer backend, but this cv2 ({_cv2().__version__}) was "
        f"built without it (cv2.getBuildInformation() lists 'GStreamer: NO'): "
        + gstreamer_install_hint()
    )


def describe() -> Dict[str, object]:
    """A summary for `fcn-edge run --list-backends` and bug reports."""
    backends = video_io_backends()
    gst = backends.get("GStreamer", False)
    return {
        "opencv": _cv2().__version__,
        "video_io": backends,
        "gstreamer": gst,
        "gui": cv2_has_gui(),
        "display": display_available(),
        "jetson": is_jetson(),
        "nvv4l2h264enc": gst and gstreamer_element_available("nvv4l2h264enc"),
        "x264enc": gst and gstreamer_element_available("x264enc"),
    }
