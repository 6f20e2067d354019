"""Frame sinks: video files, image folders, a window, network streams, and null.

Video files are written under a temporary name beside the target and renamed only when
:meth:`close` has finalised them (the container's index written), so an output path
either does not exist or plays: Ctrl-C, SIGTERM or a crash never leave a half-written
MP4 under the name the user asked for. Sinks open on the first frame, when its size is
known.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Protocol, Tuple, Union

import numpy as np

from fcn_edge.atomic import write_bytes_atomic
from fcn_edge.errors import VideoError
from fcn_edge.optional import require
from fcn_edge.video import capabilities, gst_pipelines
from fcn_edge.video.uri import SinkSpec, parse_sink

log = logging.getLogger(__name__)

ENCODERS = ("auto", "nvv4l2h264enc", "x264enc", "ffmpeg")
# FFmpeg fourccs to try per container, best first: H.264 where this FFmpeg has an
# encoder for it (pip's wheels usually do not), then codecs every build has.
FFMPEG_FOURCCS = {
    ".mp4": ("avc1", "mp4v"),
    ".mov": ("avc1", "mp4v"),
    ".mkv": ("avc1", "MJPG", "mp4v"),
    ".avi": ("MJPG", "XVID"),
}
DEFAULT_FPS = 30.0


@dataclass(frozen=True)
class SinkOptions:
    encoder: str = "auto"
    bitrate_kbps: int = 8000
    image_extension: str = ".jpg"
    jpeg_quality: int = 95
    window_title: str = "fcn-edge"

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise VideoError(f"encoder {self.encoder!r} is not one of {ENCODERS}")


class FrameSink(Protocol):
    """What the pipeline writes to. ``close`` finalises; ``path`` is the finished output."""

    uri: str
    frames_written: int

    @property
    def path(self) -> Optional[str]: ...

    def write(self, frame: np.ndarray) -> None: ...

    def close(self) -> None: ...


def temporary_path(final: Path) -> Path:
    """``out/clip.mp4`` -> ``out/.clip.partial-<pid>.mp4``: same folder (rename is atomic),
    same extension (FFmpeg and GStreamer choose the container from it)."""
    return final.with_name(f".{final.stem}.partial-{os.getpid()}{final.suffix}")


class NullSink:
    """Discards frames; for benchmarks and headless runs without an output."""

    def __init__(self, uri: str = "null://"):
        self.uri = uri
        self.frames_written = 0

    @property
    def path(self) -> Optional[str]:
        return None

    def write(self, frame: np.ndarray) -> None:
        self.frames_written += 1

    def close(self) -> None:
        pass


class VideoFileSink:
    """mp4/avi/mkv/mov through nvv4l2h264enc or x264enc (GStreamer) or OpenCV's FFmpeg."""

    def __init__(self, path: Union[str, Path], fps: Optional[float], options: SinkOptions = SinkOptions()):
        self.final_path = Path(path)
        self.uri = str(path)
        self.fps = fps or DEFAULT_FPS
        self.options = options
        self.frames_written = 0
        self.codec = ""
        self._tmp = temporary_path(self.final_path)
        self._writer = None
        self._size: Optional[Tuple[int, int]] = None
        self._finished: Optional[str] = None
        self._resize_warned = False
        suffix = self.final_path.suffix.lower()
        if suffix not in FFMPEG_FOURCCS:
            raise VideoError(f"{path}: cannot write {suffix!r} video; use one of {tuple(FFMPEG_FOURCCS)}")
        parent = self.final_path.parent
        if not parent.exists():
            parent.mkdir(parents=True, exist_ok=True)

    @property
    def path(self) -> Optional[str]:
        return self._finished

    def _gstreamer_encoder(self) -> Optional[str]:
        wanted = self.options.encoder
        if wanted == "ffmpeg":
            return None
        has_gst = capabilities.cv2_has_gstreamer()
        if wanted in ("nvv4l2h264enc", "x264enc"):
            if not has_gst:
                raise VideoError(capabilities.gstreamer_missing_message(f"--encoder {wanted}"))
            if not capabilities.gstreamer_element_available(wanted):
                raise VideoError(f"--encoder {wanted}: GStreamer has no element '{wanted}' (gst-inspect-1.0 {wanted})")
            return wanted
        if has_gst and capabilities.gstreamer_element_available("nvv4l2h264enc"):
            return "nvv4l2h264enc"
        return None

    def _open(self, frame: np.ndarray) -> None:
        cv2 = require("cv2", "writing video")
        height, width = frame.shape[:2]
        suffix = self.final_path.suffix.lower()
        self._tmp.unlink(missing_ok=True)
        encoder = self._gstreamer_encoder()
        if encoder is not None:
            pipeline = gst_pipelines.file_writer(str(self._tmp), suffix, encoder == "nvv4l2h264enc", self.options.bitrate_kbps)
            writer = cv2.VideoWriter(pipeline, cv2.CAP_GSTREAMER, 0, self.fps, (width, height), True)
            if not writer.isOpened():
                raise VideoError(f"{self.final_path}: GStreamer could not start the writer pipeline: {pipeline}")
            self._writer, self.codec = writer, f"H.264 ({encoder}, GStreamer)"
        else:
            for fourcc in FFMPEG_FOURCCS[suffix]:
                writer = cv2.VideoWriter(str(self._tmp), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*fourcc), self.fps, (width, height), True)
                if writer.isOpened():
                    self._writer, self.codec = writer, f"{fourcc} (FFmpeg)"
                    break
                writer.release()
            else:
                raise VideoError(
                    f"{self.final_path}: OpenCV's FFmpeg could not open a writer for any of "
                    f"{FFMPEG_FOURCCS[suffix]}; try another extension (.avi writes MJPG everywhere)"
                )
        self._size = (width, height)
        log.info("writing %s: %dx%d at %.2f fps, %s", self.final_path, width, height, self.fps, self.codec)

    def write(self, frame: np.ndarray) -> None:
        if self._finished is not None:
            raise VideoError(f"{self.final_path}: write() after close()")
        if self._writer is None:
            self._open(frame)
        if (frame.shape[1], frame.shape[0]) != self._size:
            if not self._resize_warned:
                log.warning("%s: frames change size; resizing to the first frame's %s", self.final_path, self._size)
                self._resize_warned = True
            frame = require("cv2").resize(frame, self._size, interpolation=require("cv2").INTER_LINEAR)
        self._writer.write(frame)
        self.frames_written += 1

    def close(self) -> None:
        """Finalise the container and rename it into place; idempotent."""
        if self._writer is None:
            if self._finished is None and self.frames_written == 0:
                log.warning("%s: no frames were written; no file created", self.final_path)
                self._finished = ""
            return
        writer, self._writer = self._writer, None
        writer.release()
        if not self._tmp.is_file() or self._tmp.stat().st_size == 0:
            raise VideoError(f"{self.final_path}: the writer produced no data (temporary file {self._tmp})")
        os.replace(self._tmp, self.final_path)
        self._finished = str(self.final_path)


class ImageFolderSink:
    """One image per frame, each written to a temporary name and renamed."""

    def __init__(self, location: Union[str, Path], options: SinkOptions = SinkOptions()):
        self.uri = str(location)
        self.options = options
        self.frames_written = 0
        text = str(location)
        if "%" in Path(text).name:
            self.folder, self.pattern = Path(text).parent, Path(text).name
        else:
            ext = options.image_extension if options.image_extension.startswith(".") else "." + options.image_extension
            self.folder, self.pattern = Path(text), f"%08d{ext}"
        self.folder.mkdir(parents=True, exist_ok=True)
        self._params = []

    @property
    def path(self) -> Optional[str]:
        return str(self.folder)

    def write(self, frame: np.ndarray) -> None:
        cv2 = require("cv2", "writing images")
        name = self.pattern % self.frames_written
        target = self.folder / name
        suffix = target.suffix.lower()
        params = [cv2.IMWRITE_JPEG_QUALITY, self.options.jpeg_quality] if suffix in (".jpg", ".jpeg") else []
        ok, data = cv2.imencode(suffix, frame, params)
        if not ok:
            raise VideoError(f"{target}: OpenCV could not encode a {suffix} image")
        write_bytes_atomic(target, data.tobytes())
        self.frames_written += 1

    def close(self) -> None:
        pass


class WindowSink:
    """An OpenCV window. Keys: q or Esc stop; o toggles the statistics overlay."""

    def __init__(self, title: str, on_quit: Callable[[], None], on_toggle_stats: Callable[[], None]):
        if not capabilities.display_available():
            reason = "this cv2 has no GUI toolkit (a -headless wheel?)" if not capabilities.cv2_has_gui() else "no X or Wayland display ($DISPLAY is unset)"
            raise VideoError(f"cannot open a window: {reason}; pass an OUTPUT file or --headless")
        self.uri = f"display://{title}"
        self.title = title
        self.frames_written = 0
        self._on_quit = on_quit
        self._on_toggle = on_toggle_stats
        self._opened = False

    @property
    def path(self) -> Optional[str]:
        return None

    def write(self, frame: np.ndarray) -> None:
        cv2 = require("cv2", "showing a window")
        if not self._opened:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
            self._opened = True
        elif cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            self._on_quit()  # the user closed the window
            return
        cv2.imshow(self.title, frame)
        self.frames_written += 1
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27):
            self._on_quit()
        elif key == ord("o"):
            self._on_toggle()

    def close(self) -> None:
        if self._opened:
            require("cv2").destroyWindow(self.title)
            self._opened = False


class NetworkSink:
    """H.264 over RTSP (RECORD to a server such as mediamtx) or RTP/UDP, via GStreamer."""

    def __init__(self, url: str, fps: Optional[float], options: SinkOptions = SinkOptions()):
        if not capabilities.cv2_has_gstreamer():
            raise VideoError(capabilities.gstreamer_missing_message(f"streaming out to {url}"))
        self.uri = url
        self.fps = fps or DEFAULT_FPS
        self.options = options
        self.frames_written = 0
        self._writer = None
        hardware = options.encoder == "nvv4l2h264enc" or (
            options.encoder == "auto" and capabilities.gstreamer_element_available("nvv4l2h264enc")
        )
        self.pipeline = gst_pipelines.network_writer(url, hardware, min(options.bitrate_kbps, 4000))

    @property
    def path(self) -> Optional[str]:
        return None

    def write(self, frame: np.ndarray) -> None:
        cv2 = require("cv2", "streaming video")
        if self._writer is None:
            size = (frame.shape[1], frame.shape[0])
            self._writer = cv2.VideoWriter(self.pipeline, cv2.CAP_GSTREAMER, 0, self.fps, size, True)
            if not self._writer.isOpened():
                self._writer = None
                raise VideoError(f"{self.uri}: GStreamer could not start: {self.pipeline}")
        self._writer.write(frame)
        self.frames_written += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None


def make_sink(
    uri: Union[str, SinkSpec],
    fps: Optional[float] = None,
    options: SinkOptions = SinkOptions(),
    on_quit: Callable[[], None] = lambda: None,
    on_toggle_stats: Callable[[], None] = lambda: None,
) -> FrameSink:
    spec = uri if isinstance(uri, SinkSpec) else parse_sink(uri)
    if spec.kind == "video":
        return VideoFileSink(spec.location, fps, options)
    if spec.kind == "images":
        return ImageFolderSink(spec.location, options)
    if spec.kind == "display":
        return WindowSink(options.window_title, on_quit, on_toggle_stats)
    if spec.kind == "network":
        return NetworkSink(spec.location, fps, options)
    return NullSink(spec.uri)  # null, and the page: its frames go through the pipeline's observer
