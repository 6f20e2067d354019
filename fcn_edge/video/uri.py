"""Input and output URIs, as jetson-inference's videoSource/videoOutput users write them.

Parsing is pure (no device is opened), so a typo fails at once with the list of what is
accepted instead of after a model has loaded.

Inputs::

    clip.mp4  file:///data/clip.mkv            video files
    frames/   'frames/*.png'  frames/%05d.jpg    image folders, globs, numbered sequences
    /dev/video0  v4l2:///dev/video0  v4l2://0  0   V4L2 cameras
    csi://0                                      Jetson CSI camera (nvarguscamerasrc)
    rtsp://host:8554/stream  http(s)://...       network streams
    'videotestsrc ! videoconvert ! appsink'      a raw GStreamer pipeline ('!' marks one)

Outputs::

    out.mp4  out.avi  out.mkv  out.mov           video files (written to a temporary name,
                                                 renamed when finalised)
    out/  out/%05d.png                           image folders
    display://0                                  a window
    rtsp://server:8554/path  rtp://host:5000     network out via GStreamer
    http://0.0.0.0:8080/                         the live page for browsers (fcn_edge.video.web)
    null://  (or null)                           discard, for benchmarks
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from fcn_edge.errors import VideoInputError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mjpeg", ".mjpg", ".h264", ".ts", ".flv", ".wmv", ".mpg", ".mpeg")
WRITABLE_VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

SOURCE_SCHEMES = ("file", "v4l2", "csi", "rtsp", "rtsps", "rtmp", "http", "https")
SINK_SCHEMES = ("file", "display", "null", "rtsp", "rtp", "http")

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://(.*)$", re.DOTALL)
_DEVICE = re.compile(r"^/dev/video(\d+)$")
_PATTERN = re.compile(r"%0?\d*d")


@dataclass(frozen=True)
class SourceSpec:
    """A parsed input. ``kind`` is one of file, images, v4l2, csi, network, gstreamer."""

    uri: str
    kind: str
    location: str  # path, device path, sensor id, URL or pipeline
    device_index: Optional[int] = None

    @property
    def is_live(self) -> bool:
        """Live sources run in real time: stale frames are dropped instead of queued."""
        if self.kind == "gstreamer":
            return not re.search(r"\b(filesrc|multifilesrc|splitfilesrc)\b", self.location)
        return self.kind in ("v4l2", "csi", "network")


@dataclass(frozen=True)
class SinkSpec:
    """A parsed output. ``kind`` is one of video, images, display, network, page, null."""

    uri: str
    kind: str
    location: str  # path, folder or pattern, URL, or display number


def _split_scheme(uri: str):
    match = _SCHEME.match(uri)
    return (match.group(1).lower(), match.group(2)) if match else (None, uri)


def _unknown_scheme(uri: str, scheme: str, accepted) -> VideoInputError:
    return VideoInputError(
        f"unknown URI scheme '{scheme}://' in {uri!r}; accepted schemes: "
        + ", ".join(f"{s}://" for s in accepted)
        + " (or a plain path, a camera index, or a GStreamer pipeline containing '!')"
    )


def parse_source(uri: str) -> SourceSpec:
    """Classify an input URI; raises :class:`VideoInputError` for unknown schemes and missing files."""
    uri = str(uri).strip()
    if not uri:
        raise VideoInputError("empty input URI")
    if "!" in uri and not _SCHEME.match(uri):
        return SourceSpec(uri, "gstreamer", uri)
    scheme, rest = _split_scheme(uri)
    if scheme is None:
        if uri.isdigit():
            return SourceSpec(uri, "v4l2", f"/dev/video{uri}", int(uri))
        return _path_source(uri, uri)
    if scheme == "file":
        return _path_source(uri, rest)
    if scheme == "v4l2":
        rest = rest or "/dev/video0"
        if rest.isdigit():
            return SourceSpec(uri, "v4l2", f"/dev/video{rest}", int(rest))
        match = _DEVICE.match(rest)
        return SourceSpec(uri, "v4l2", rest, int(match.group(1)) if match else None)
    if scheme == "csi":
        sensor = rest or "0"
        if not sensor.isdigit():
            raise VideoInputError(f"{uri!r}: a CSI camera is csi://N with N the sensor id (csi://0)")
        return SourceSpec(uri, "csi", sensor, int(sensor))
    if scheme in ("rtsp", "rtsps", "rtmp", "http", "https"):
        if not rest:
            raise VideoInputError(f"{uri!r}: the URL has no host")
        return SourceSpec(uri, "network", uri)
    raise _unknown_scheme(uri, scheme, SOURCE_SCHEMES)


def _path_source(uri: str, path_text: str) -> SourceSpec:
    match = _DEVICE.match(path_text)
    if match:
        return SourceSpec(uri, "v4l2", path_text, int(match.group(1)))
    path = Path(os.path.expanduser(path_text))
    if path.is_dir():
        return SourceSpec(uri, "images", str(path))
    if any(ch in path_text for ch in "*?[") or _PATTERN.search(path.name):
        return SourceSpec(uri, "images", str(path))
    if not path.exists():
        raise VideoInputError(f"{path}: no such file or directory (input {uri!r})")
    if not path.is_file():
        raise VideoInputError(f"{path}: not a regular file, folder or /dev/videoN device")
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return SourceSpec(uri, "images", str(path))
    return SourceSpec(uri, "file", str(path))


def parse_sink(uri: Optional[str]) -> SinkSpec:
    """Classify an output URI. ``None`` or ``""`` means: the caller chooses (display or null)."""
    if uri is None or str(uri).strip() == "":
        raise VideoInputError("empty output URI")
    uri = str(uri).strip()
    if uri.lower() == "null":
        return SinkSpec(uri, "null", "")
    scheme, rest = _split_scheme(uri)
    if scheme is None or scheme == "file":
        return _path_sink(uri, rest)
    if scheme == "display":
        return SinkSpec(uri, "display", rest or "0")
    if scheme == "null":
        return SinkSpec(uri, "null", "")
    if scheme in ("rtsp", "rtp"):
        if not rest:
            raise VideoInputError(f"{uri!r}: the URL has no host")
        return SinkSpec(uri, "network", uri)
    if scheme in ("http", "https"):  # the page's address is checked by fcn_edge.video.web
        return SinkSpec(uri, "page", uri)
    raise _unknown_scheme(uri, scheme, SINK_SCHEMES)


def _path_sink(uri: str, path_text: str) -> SinkSpec:
    path = Path(os.path.expanduser(path_text))
    suffix = path.suffix.lower()
    if path_text.endswith(("/", os.sep)) or path.is_dir():
        return SinkSpec(uri, "images", str(path))
    if _PATTERN.search(path.name):
        if suffix not in IMAGE_EXTENSIONS:
            raise VideoInputError(f"{uri!r}: an image sequence needs an image extension, one of {IMAGE_EXTENSIONS}")
        return SinkSpec(uri, "images", str(path))
    if suffix in WRITABLE_VIDEO_EXTENSIONS:
        return SinkSpec(uri, "video", str(path))
    if suffix in IMAGE_EXTENSIONS:
        raise VideoInputError(
            f"{uri!r}: a single image cannot hold a video; write a numbered sequence such as "
            f"{path.with_name(path.stem + '_%05d' + path.suffix)} or a folder {path.with_suffix('')}/ "
            "(for one image, use `fcn-edge segment`)"
        )
    if suffix == "":
        return SinkSpec(uri, "images", str(path))
    raise VideoInputError(
        f"{uri!r}: cannot tell what to write from the extension {suffix!r}; video files: "
        f"{WRITABLE_VIDEO_EXTENSIONS}, image sequences: a folder or a %05d pattern"
    )
