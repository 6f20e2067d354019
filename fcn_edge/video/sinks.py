"""Frame sinks: video files, image folders, a window, network streams, and null.

Video files are written under a temporary name beside the target
(:func:`fcn_edge.atomic.temporary_path`, which carries the process id) and renamed only
when :meth:`VideoFileSink.close` has finalised them (the container's index written) and
read them back (:mod:`fcn_edge.video.file_check`): the file opens, holds every frame
written, and its last frame decodes. So an output path either keeps its previous content
or plays: Ctrl-C, SIGTERM, a kill, a crash or a full disk never leave a half-written MP4
under the name the user asked for. A failed write is caught as it happens, from what the
writer reports (OpenCV 5's ``write`` returns False) and from the file's growth (a file
that stopped growing on a full disk or at the file-size limit), and ends the run with one
line naming the output and the cause. Sinks open on the first frame, when its size is
known; the temporary file is created at once, so an unwritable folder fails before the
first frame with its real cause (permission denied, read-only file system), not as a
codec that cannot be opened.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Protocol, Tuple, Union

import numpy as np

from fcn_edge.atomic import (
    create_temporary, fsync_file, output_error, prepare_folder, space_fault, sweep_folder, write_bytes_atomic,
)
from fcn_edge.errors import OutputError, VideoError, VideoInputError, describe_os_error
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
GROWTH_CHECK_S = 1.0  # how often a video sink looks at its file's size


@dataclass(frozen=True)
class SinkOptions:
    encoder: str = "auto"
    bitrate_kbps: int = 8000
    image_extension: str = ".jpg"
    jpeg_quality: int = 95
    window_title: str = "fcn-edge"

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise VideoInputError(f"encoder {self.encoder!r} is not one of {ENCODERS}")


class FrameSink(Protocol):
    """What the pipeline writes to. ``close`` finalises; ``path`` is the finished output."""

    uri: str
    frames_written: int

    @property
    def path(self) -> Optional[str]: ...

    def write(self, frame: np.ndarray) -> None: ...

    def close(self) -> None: ...


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
        self._writer = None
        self._size: Optional[Tuple[int, int]] = None
        self._finished: Optional[str] = None
        self._failed = False
        self._resize_warned = False
        self._growth = (0.0, -1)  # (monotonic time, size) at the last look
        suffix = self.final_path.suffix.lower()
        if suffix not in FFMPEG_FOURCCS:
            raise VideoInputError(f"{path}: cannot write {suffix!r} video; use one of {tuple(FFMPEG_FOURCCS)}")
        prepare_folder(self.final_path)
        # every dead run's leftovers in the folder, not only this name's: a service names its
        # videos by their start time, so no later run writes a killed run's name again
        sweep_folder(self.final_path.parent)
        self._tmp: Optional[Path] = create_temporary(self.final_path)  # an unwritable folder fails here

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
                raise VideoInputError(capabilities.gstreamer_missing_message(f"--encoder {wanted}"))
            if not capabilities.gstreamer_element_available(wanted):
                raise VideoInputError(f"--encoder {wanted}: GStreamer has no element '{wanted}' (gst-inspect-1.0 {wanted})")
            return wanted
        if has_gst and capabilities.gstreamer_element_available("nvv4l2h264enc"):
            return "nvv4l2h264enc"
        return None

    def _open(self, frame: np.ndarray) -> None:
        cv2 = require("cv2", "writing video")
        height, width = frame.shape[:2]
        suffix = self.final_path.suffix.lower()
        encoder = self._gstreamer_encoder()
        if encoder is not None:
            pipeline = gst_pipelines.file_writer(str(self._tmp), suffix, encoder == "nvv4l2h264enc", self.options.bitrate_kbps)
            writer = cv2.VideoWriter(pipeline, cv2.CAP_GSTREAMER, 0, self.fps, (width, height), True)
            if not writer.isOpened():
                self._still_writable()
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
                self._still_writable()
                raise VideoError(
                    f"{self.final_path}: OpenCV's FFmpeg could not open a writer for any of "
                    f"{FFMPEG_FOURCCS[suffix]} at {width}x{height} and {self.fps:g} fps; try another extension "
                    "(.avi writes MJPG everywhere)"
                )
        self._size = (width, height)
        self._growth = (time.monotonic(), -1)
        log.info("writing %s: %dx%d at %.2f fps, %s", self.final_path, width, height, self.fps, self.codec)

    def _still_writable(self) -> None:
        """Blame the file system, not the codec, when the temporary file cannot be written."""
        try:
            with open(self._tmp, "ab"):
                pass
        except OSError as exc:
            raise output_error(self.final_path, exc) from exc

    def _write_failed(self, what: str) -> OutputError:
        self._failed = True
        fault = space_fault(self._tmp)
        cause = describe_os_error(fault, self._tmp) if fault is not None else \
            "no cause visible on the file system (check `df -h` and `dmesg`)"
        kept = f"; the previous {self.final_path.name} was kept" if self.final_path.exists() else ""
        return OutputError(f"{self.final_path}: {what}: {cause}{kept}")

    def _check_growth(self) -> None:
        """Once a second: a file that stopped growing where the disk is full or the file-size
        limit is reached has lost the frames since (writers buffer, so no growth alone is
        not a failure: a still scene may fill the buffer slowly)."""
        now = time.monotonic()
        last_time, last_size = self._growth
        if now - last_time < GROWTH_CHECK_S:
            return
        try:
            size = self._tmp.stat().st_size
        except OSError as exc:
            self._failed = True
            raise output_error(self.final_path, exc) from exc
        if size == last_size and space_fault(self._tmp) is not None:
            raise self._write_failed(f"writing stopped after frame {self.frames_written} (the file stopped growing)")
        self._growth = (now, size)

    def write(self, frame: np.ndarray) -> None:
        if self._finished is not None or self._failed:
            raise VideoError(f"{self.final_path}: write() after close() or a failed write")
        if self._writer is None:
            try:
                self._open(frame)
            except BaseException:
                self._failed = True  # close() removes the temporary without a "no frames" warning
                raise
        if (frame.shape[1], frame.shape[0]) != self._size:
            if not self._resize_warned:
                log.warning("%s: frames change size; resizing to the first frame's %s", self.final_path, self._size)
                self._resize_warned = True
            frame = require("cv2").resize(frame, self._size, interpolation=require("cv2").INTER_LINEAR)
        if self._writer.write(frame) is False:  # OpenCV >= 5 reports; 4.x returns None
            raise self._write_failed(f"the encoder failed to write frame {self.frames_written + 1}")
        self.frames_written += 1
        self._check_growth()

    def _discard(self) -> None:
        tmp, self._tmp = self._tmp, None
        if tmp is not None:
            try:
                tmp.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("%s: could not remove the temporary file %s: %s", self.final_path, tmp, describe_os_error(exc))

    def close(self) -> None:
        """Finalise the container, read it back, and rename it into place; idempotent.

        Raises OutputError, and keeps the previous file, when the finished file does not
        hold the frames written (the temporary file is removed)."""
        writer, self._writer = self._writer, None
        if writer is None:
            if self._finished is None and not self._failed:
                if self.frames_written == 0:
                    log.warning("%s: no frames were written; no file created", self.final_path)
                self._finished = ""
            self._discard()
            return
        writer.release()
        if self._failed:
            self._discard()
            return
        from fcn_edge.video.file_check import video_file_problem

        problem = video_file_problem(self._tmp, self.frames_written)
        if problem is not None:
            error = self._write_failed(f"the finished video {problem}")
            self._discard()
            raise error
        try:
            fsync_file(self._tmp)
            os.replace(self._tmp, self.final_path)
        except OSError as exc:
            self._failed = True
            self._discard()
            raise output_error(self.final_path, exc) from exc
        self._tmp = None
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
        prepare_folder(self.folder / self.pattern)
        sweep_folder(self.folder)
        create_temporary(self.folder / self.pattern).unlink()  # an unwritable folder fails before the first frame

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
            raise VideoInputError(f"cannot open a window: {reason}; pass an OUTPUT file or --headless")
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
            raise VideoInputError(capabilities.gstreamer_missing_message(f"streaming out to {url}"))
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
