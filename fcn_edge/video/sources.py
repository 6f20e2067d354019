"""Frame sources: OpenCV captures (files, cameras, streams, GStreamer) and image folders.

A source hands out BGR uint8 frames one at a time from ``read()``; ``None`` means the end
of a file (with a warning when the file ends before the frame count its container
declares: a recording cut short), or a lost live source (the reconnecting wrapper in
:mod:`.reconnect` turns that into a reconnect with backoff). Opening fails with
:class:`VideoError` naming the source and, where it is the cause, the missing OpenCV
backend and what to install; a file that is not a readable video, or an option that does
not apply, is :class:`VideoInputError` (bad input, exit code 2).
"""

from __future__ import annotations

import glob
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Protocol, Tuple, Union

import numpy as np

from fcn_edge.errors import VideoError, VideoInputError
from fcn_edge.optional import require
from fcn_edge.video import capabilities, gst_pipelines
from fcn_edge.video.uri import IMAGE_EXTENSIONS, SourceSpec, parse_source

log = logging.getLogger(__name__)

CAPTURE_BACKENDS = ("auto", "gstreamer", "ffmpeg", "v4l2")


@dataclass(frozen=True)
class SourceOptions:
    """How to open a source. Sizes are (height, width); None keeps the device's default."""

    backend: str = "auto"
    camera_size: Optional[Tuple[int, int]] = None
    camera_fps: Optional[int] = None
    csi_size: Tuple[int, int] = (720, 1280)
    csi_flip: int = 0
    rtsp_latency_ms: int = 200
    open_timeout_s: float = 10.0
    read_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if self.backend not in CAPTURE_BACKENDS:
            raise VideoInputError(f"capture backend {self.backend!r} is not one of {CAPTURE_BACKENDS}")


class FrameSource(Protocol):
    """What the pipeline reads from."""

    uri: str
    is_live: bool

    @property
    def fps(self) -> Optional[float]: ...

    def open(self) -> None: ...

    def read(self) -> Optional[np.ndarray]: ...

    def close(self) -> None: ...


def _ffmpeg_params(cv2, options: SourceOptions) -> List[int]:
    params = []
    for name, seconds in (
        ("CAP_PROP_OPEN_TIMEOUT_MSEC", options.open_timeout_s),
        ("CAP_PROP_READ_TIMEOUT_MSEC", options.read_timeout_s),
    ):
        prop = getattr(cv2, name, None)
        if prop is not None and seconds > 0:
            params += [prop, int(seconds * 1000)]
    return params


class _BackgroundOpen:
    """A ``cv2.VideoCapture`` being constructed on a daemon thread."""

    def __init__(self, construct):
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._capture = None
        self._error: Optional[BaseException] = None
        self._abandoned = False
        self.started = time.monotonic()
        threading.Thread(target=self._run, args=(construct,), name="fcn-edge-open", daemon=True).start()

    def _run(self, construct) -> None:
        try:
            capture = construct()
        except BaseException as exc:  # noqa: BLE001 - re-raised by result()
            capture, self._error = None, exc
        with self._lock:
            if self._abandoned and capture is not None:
                capture.release()
                capture = None
            self._capture = capture
            self._done.set()

    def abandon(self) -> None:
        """Nobody will collect this open; release the capture if it ever finishes."""
        with self._lock:
            self._abandoned = True
            if self._capture is not None:
                self._capture.release()
                self._capture = None

    def result(self, timeout: Optional[float]):
        """The capture, or None if it is still opening after ``timeout`` seconds."""
        if not self._done.wait(timeout):
            return None
        if self._error is not None:
            raise self._error
        return self._capture


class CaptureSource:
    """A ``cv2.VideoCapture`` over a file, camera, network stream or GStreamer pipeline."""

    def __init__(self, spec: SourceSpec, options: SourceOptions = SourceOptions()):
        self.spec = spec
        self.uri = spec.uri
        self.is_live = spec.is_live
        self.options = options
        self.backend_name = ""
        self._capture = None
        self._pending: Optional[np.ndarray] = None
        self._opening: Optional[_BackgroundOpen] = None
        self.frames_read = 0
        self.declared_frames: Optional[int] = None  # what a file's container says it holds
        self.warning: Optional[str] = None

    @property
    def fps(self) -> Optional[float]:
        if self._capture is None:
            return None
        fps = float(self._capture.get(require("cv2").CAP_PROP_FPS) or 0.0)
        return fps if 0.5 < fps < 1000 else None

    @property
    def frame_count(self) -> Optional[int]:
        if self._capture is None or self.is_live:
            return None
        count = int(self._capture.get(require("cv2").CAP_PROP_FRAME_COUNT) or 0)
        return count if count > 0 else None

    def _use_gstreamer(self) -> bool:
        wanted = self.options.backend
        if wanted == "gstreamer" or self.spec.kind in ("csi", "gstreamer"):
            if not capabilities.cv2_has_gstreamer():
                what = {"csi": f"the CSI camera {self.uri!r}", "gstreamer": "a GStreamer pipeline input"}
                raise VideoInputError(capabilities.gstreamer_missing_message(what.get(self.spec.kind, f"input {self.uri!r} with --capture-backend gstreamer")))
            return True
        if wanted == "auto" and self.spec.kind in ("network", "v4l2"):
            return capabilities.cv2_has_gstreamer()
        return False

    def _target(self, cv2) -> Tuple[Union[str, int], int, List[int]]:
        spec, options = self.spec, self.options
        if self._use_gstreamer():
            self.backend_name = "GStreamer"
            if spec.kind == "csi":
                pipeline = gst_pipelines.csi_camera(int(spec.location), options.csi_size, options.camera_fps or 30, options.csi_flip)
            elif spec.kind == "v4l2":
                pipeline = gst_pipelines.v4l2_camera(spec.location, options.camera_size, options.camera_fps)
            elif spec.kind == "network":
                pipeline = gst_pipelines.network_stream(spec.location, options.rtsp_latency_ms)
            elif spec.kind == "gstreamer":
                pipeline = spec.location
            else:
                pipeline = f"filesrc location={spec.location} ! decodebin ! videoconvert ! video/x-raw,format=BGR ! appsink"
            return pipeline, cv2.CAP_GSTREAMER, []
        if spec.kind == "v4l2":
            self.backend_name = "V4L2"
            if not os.path.exists(spec.location):
                raise VideoError(f"{spec.location}: no such camera device (input {self.uri!r}); `v4l2-ctl --list-devices` lists them")
            target = spec.device_index if spec.device_index is not None else spec.location
            return target, cv2.CAP_V4L2, []
        if not capabilities.cv2_has_ffmpeg():
            raise VideoInputError(f"{self.uri!r}: this cv2 has neither FFmpeg nor GStreamer to read it; pip install opencv-python")
        self.backend_name = "FFmpeg"
        return spec.location, cv2.CAP_FFMPEG, _ffmpeg_params(cv2, options)

    def open(self) -> None:
        cv2 = require("cv2", "video capture")
        self.close()
        target, api, params = self._target(cv2)

        def construct():
            return cv2.VideoCapture(target, api, params) if params else cv2.VideoCapture(target, api)

        capture = construct() if self.spec.kind == "file" else self._open_in_background(construct)
        if not capture.isOpened():
            capture.release()
            raise (VideoInputError if self.spec.kind == "file" else VideoError)(self._open_failure())
        if self.spec.kind == "v4l2" and self.backend_name == "V4L2":
            if self.options.camera_size:
                capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.options.camera_size[0])
                capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.options.camera_size[1])
            if self.options.camera_fps:
                capture.set(cv2.CAP_PROP_FPS, self.options.camera_fps)
            capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a backlog
        ok, frame = capture.read()
        if not ok or frame is None:
            capture.release()
            if self.spec.kind == "file":
                raise VideoInputError(
                    f"{self.spec.location}: opened but no frame could be decoded: corrupt, or not a video "
                    f"OpenCV's {self.backend_name} can read (cv2.getBuildInformation() lists its codecs)"
                )
            raise VideoError(f"{self.uri!r}: opened but delivered no frame (backend {self.backend_name})")
        self._capture = capture
        self._pending = frame
        self.frames_read = 0
        self.declared_frames = self.frame_count
        log.debug("opened %s with %s", self.uri, self.backend_name)

    def _open_in_background(self, construct):
        """Open on a helper thread and wait at most ``open_timeout_s``.

        OpenCV's GStreamer backend can block forever opening a stream whose server is down;
        an open that overruns is left to finish in the background and is picked up by the
        next call (the next reconnect attempt), so at most one is ever pending.
        """
        timeout = self.options.open_timeout_s if self.options.open_timeout_s > 0 else None
        if self._opening is not None and timeout is not None and time.monotonic() - self._opening.started > 3 * timeout:
            log.warning("%s: an open has hung for %.0f s; abandoning it and starting afresh", self.uri, time.monotonic() - self._opening.started)
            self._opening.abandon()
            self._opening = None
        if self._opening is None:
            self._opening = _BackgroundOpen(construct)
        capture = self._opening.result(timeout)
        if capture is None:
            raise VideoError(f"{self.uri!r}: opening did not finish within {self.options.open_timeout_s:g} s (backend {self.backend_name})")
        self._opening = None
        return capture

    def _open_failure(self) -> str:
        where = f"{self.uri!r} (backend {self.backend_name})"
        if self.spec.kind == "file":
            return f"{self.spec.location}: cannot open as a video {where}; the file may be corrupt or not a video"
        if self.spec.kind == "network":
            return f"cannot connect to {where} within {self.options.open_timeout_s:g} s; check the URL, the server and the network"
        if self.spec.kind == "v4l2":
            return f"cannot open camera {where}: busy, no permission (is the user in the 'video' group?), or not a capture device"
        return f"cannot open {where}; run with GST_DEBUG=3 to see GStreamer's reason"

    def read(self) -> Optional[np.ndarray]:
        if self._capture is None:
            raise VideoError(f"{self.uri!r}: read() before open()")
        if self._pending is not None:
            frame, self._pending = self._pending, None
        else:
            ok, frame = self._capture.read()
            if not ok or frame is None:
                self._ended()
                return None
        self.frames_read += 1
        return frame

    def _ended(self) -> None:
        """Warn, once, when a file ends more than a frame short of what its container
        declares (the count can be an estimate from duration x rate, hence the frame)."""
        declared = self.declared_frames
        if self.spec.kind == "file" and declared and self.frames_read < declared - 1 and self.warning is None:
            self.warning = (f"{self.spec.location}: the video ended after {self.frames_read} of the {declared} frames "
                            "its container declares: the file is truncated or damaged")
            log.warning(self.warning)

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
        self._pending = None


def _natural_key(path: str):
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path)]


def list_images(location: str) -> List[str]:
    """Image files of a folder, glob or %d pattern, in natural order (frame2 before frame10);
    hidden files (a writer's temporaries) left out."""
    path = Path(location)
    if path.is_dir():
        files = [str(p) for p in path.iterdir()
                 if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()]
    else:  # glob leaves out hidden names: the temporaries of a sink writing there
        pattern = re.sub(r"%0?\d*d", "*", location)
        files = [f for f in glob.glob(os.path.expanduser(pattern)) if Path(f).suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(files, key=_natural_key)


class ImageFolderSource:
    """Images of a folder, glob or numbered sequence, read in natural order; not live."""

    is_live = False

    def __init__(self, spec: SourceSpec, fps: Optional[float] = None):
        self.spec = spec
        self.uri = spec.uri
        self._fps = fps
        self._files: List[str] = []
        self._next = 0

    @property
    def fps(self) -> Optional[float]:
        return self._fps

    @property
    def frame_count(self) -> Optional[int]:
        return len(self._files) or None

    def open(self) -> None:
        self._files = list_images(self.spec.location)
        self._next = 0
        if not self._files:
            raise VideoInputError(f"{self.spec.location}: no images ({', '.join(IMAGE_EXTENSIONS)}) found")

    def read(self) -> Optional[np.ndarray]:
        cv2 = require("cv2", "reading images")
        if self._next >= len(self._files):
            return None
        path = self._files[self._next]
        self._next += 1
        frame = cv2.imread(path, cv2.IMREAD_COLOR)
        if frame is None:
            raise VideoInputError(f"{path}: not a readable image (corrupt, or a format this cv2 cannot decode)")
        return frame

    def close(self) -> None:
        self._next = len(self._files)


def make_source(uri: Union[str, SourceSpec], options: SourceOptions = SourceOptions()) -> FrameSource:
    """The unopened source for ``uri``; :func:`fcn_edge.video.open_source` adds reconnects."""
    spec = uri if isinstance(uri, SourceSpec) else parse_source(uri)
    if spec.kind == "images":
        return ImageFolderSource(spec)
    return CaptureSource(spec, options)
