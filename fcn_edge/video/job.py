"""One video run, input URI -> segmentation -> output URI: the library call behind ``fcn-edge run``.

:func:`run_video` is the whole job; :class:`VideoJob` is the same in steps, for a caller
that reports between them (the CLI prints the model and the route before the first
frame, and the summary even when the run ends on an error). Everything that can fail
before the first frame fails in :meth:`VideoJob.open`, in this order: the URIs are parsed
(a typo fails at once), the source is opened (an unreadable input fails before a model
loads), the model is loaded, the sink and the pipeline are made. Ctrl-C and SIGTERM stop
the run and finalise the output (:mod:`fcn_edge.video.signals`); the summary then names
the signal, for the exit code 128 + signal. With ``status_path`` the job keeps a JSON
health file up to date from start to end (:mod:`fcn_edge.video.status`).

Whether the model gives scores (for confidence-weighted smoothing) is asked of its
ModelMeta once it is loaded, never guessed from the file name.

The browser page (:mod:`fcn_edge.video.web`) is the output ``http://HOST:PORT/`` or, with
``VideoRunConfig.view``, served beside any other output; it binds in :meth:`VideoJob.open`
once the pipeline exists, and closes with the job.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from fcn_edge.errors import UsageError, VideoInputError, exit_code_of
from fcn_edge.runtime import DecodeConfig, LoadOptions, Segmenter
from fcn_edge.video.capabilities import display_available
from fcn_edge.video.looping import LoopingSource
from fcn_edge.video.pipeline import PipelineConfig, VideoPipeline
from fcn_edge.video.reconnect import ReconnectPolicy
from fcn_edge.video.signals import stop_on_signals
from fcn_edge.video.sinks import FrameSink, SinkOptions, make_sink
from fcn_edge.video.sources import FrameSource, SourceOptions
from fcn_edge.video.stats import RunSummary
from fcn_edge.video.status import DEFAULT_INTERVAL_S, StatusFile, pipeline_health
from fcn_edge.video.uri import SinkSpec, SourceSpec, parse_sink, parse_source
from fcn_edge.video.web.config import ViewConfig, page_config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoRunConfig:
    """What ``fcn-edge run`` does, as one value. ``model`` None: the default model;
    ``reconnect`` None: a lost live source ends the run; ``output_fps`` None: the source's;
    ``view``: the browser page (its address None: none unless the output is http://...);
    ``input_loop``: play a file this many more times (-1: until stopped);
    ``status_path``: a JSON health file rewritten every ``status_interval_s`` seconds."""

    model: Optional[Path] = None
    load: LoadOptions = field(default_factory=LoadOptions)
    filter_mode: str = "point"
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    source: SourceOptions = field(default_factory=SourceOptions)
    sink: SinkOptions = field(default_factory=SinkOptions)
    reconnect: Optional[ReconnectPolicy] = field(default_factory=ReconnectPolicy)
    sequential: bool = False
    headless: bool = False
    output_fps: Optional[float] = None
    view: ViewConfig = field(default_factory=ViewConfig)
    input_loop: int = 0
    status_path: Optional[Path] = None
    status_interval_s: float = DEFAULT_INTERVAL_S


def output_uri(outputs: Sequence[str], headless: bool, page: bool = False) -> str:
    """The one output of a run: the one given, else a window when there is a display, else null."""
    if len(outputs) > 1:
        raise VideoInputError(f"one output per input: {len(outputs)} given for one input")
    if outputs:
        if headless and outputs[0].lower().startswith("display://"):
            raise VideoInputError("headless and the output display:// contradict each other")
        return outputs[0]
    if not headless and display_available():
        return "display://0"
    if not headless and not page:
        log.warning("no display available and no output given: frames are processed but not shown or saved")
    return "null://"


class VideoJob:
    """One input through one model into one output. ``open()``, ``run()``, ``close()``; or
    ``with VideoJob(...) as job: job.run()``. The job closes the segmenter it loaded, not one
    it was given."""

    def __init__(self, inputs: Sequence[str], outputs: Sequence[str] = (), config: VideoRunConfig = VideoRunConfig(),
                 segmenter: Optional[Segmenter] = None):
        if not inputs:
            raise UsageError("no input: give a file, folder, camera, URL or pipeline")
        if len(inputs) > 1:
            raise UsageError(f"a VideoJob runs one input, {len(inputs)} given: several streams run in "
                             "fcn_edge.video.multistream (MultiStreamJob, run_streams)")
        self.config = config
        self.source_spec: SourceSpec = parse_source(inputs[0])  # typos fail before anything opens
        self.sink_spec: SinkSpec = parse_sink(output_uri(list(outputs), config.headless, config.view.address is not None))
        self.view_config: Optional[ViewConfig] = page_config(self.sink_spec, config.view)
        if config.input_loop and self.source_spec.is_live:
            raise UsageError(f"--input-loop applies to files and image folders, not the live source {self.source_spec.uri!r}")
        self.segmenter = segmenter
        self._owns_segmenter = segmenter is None
        self.source: Optional[FrameSource] = None
        self.sink: Optional[FrameSink] = None
        self.pipeline: Optional[VideoPipeline] = None
        self.view = None  # the page's ViewServer, once open
        self._ran = False
        self._stop_signal: Optional[int] = None
        self.status: Optional[StatusFile] = None
        if config.status_path is not None:
            self.status = StatusFile(config.status_path, config.status_interval_s,
                                     lambda: pipeline_health(self.pipeline, self.source))
            self.status.set(state="starting", source=self.source_spec.uri, sink=self.sink_spec.uri)

    @property
    def route(self) -> str:
        """'<input> (<kind>[, live]) -> <output> (<kind>)', for the log."""
        live = ", live" if self.pipeline is not None and self.pipeline.live else ""
        return (f"{self.source_spec.uri} ({self.source_spec.kind}{live}) -> "
                f"{self.sink_spec.uri} ({self.sink_spec.kind})")

    @property
    def summary(self) -> Optional[RunSummary]:
        """The run's summary once it finished, also when it ended on an error."""
        summary = self.pipeline.summary if self.pipeline is not None else None
        if summary is not None and self._stop_signal is not None and summary.stop_signal is None:
            summary = dataclasses.replace(summary, stop_signal=self._stop_signal)
        return summary

    def open(self) -> "VideoJob":
        from fcn_edge.video import open_source

        config = self.config
        try:
            self.source = open_source(self.source_spec, config.source, config.reconnect)
            if config.input_loop:
                self.source = LoopingSource(self.source, config.input_loop)
            if self.segmenter is None:
                self.segmenter = config.load.load(config.model, DecodeConfig(config.filter_mode))
            if config.pipeline.smoothing_alpha is not None and not self.segmenter.meta.fused_argmax:
                # the smoothing weighs each frame's vote by its confidence, where the model has scores
                self.segmenter.set_decode(DecodeConfig(config.filter_mode, confidence=True))
            self.sink = make_sink(
                self.sink_spec, config.output_fps or self.source.fps, config.sink,
                on_quit=lambda: self.pipeline.request_stop("window closed"),
                on_toggle_stats=lambda: self.pipeline.toggle_stats(),
            )
            self.pipeline = VideoPipeline(self.source, self.segmenter, self.sink, config.pipeline)
            if self.view_config is not None:
                from fcn_edge.video.web import open_page

                self.view = open_page(self.view_config, {"0": self.pipeline})
        except BaseException as exc:
            self.close(exc)
            raise
        return self

    def run(self) -> RunSummary:
        """Run to the end of the input, a stop or an error; the output is finalised either way.

        A stage's error is raised after finalising (``summary`` still has the run's facts);
        a lost live source that did not come back ends the run with ``summary.error`` set.
        """
        if self.pipeline is None:
            self.open()
        self._ran = True
        if self.status is not None:
            self.status.start()
        with stop_on_signals(self.pipeline) as received:
            try:
                if self.config.sequential:
                    self.pipeline.run_sequential()
                else:
                    self.pipeline.run()
            finally:
                self._stop_signal = received[0] if received else None
        return self.summary

    def close(self, error: Optional[BaseException] = None) -> None:
        """Close what the run did not: the source and sink of a job that never ran, and the
        segmenter this job loaded, and the page; write the status file's final state (``error``:
        what ended the job, when it raised)."""
        try:
            if self.view is not None:
                self.view.close()
                self.view = None
            if not self._ran:
                for part in (self.sink, self.source):
                    if part is not None:
                        part.close()
            if self._owns_segmenter and self.segmenter is not None:
                self.segmenter.close()
                self.segmenter = None
        finally:
            self._finish_status(error)

    def _finish_status(self, error: Optional[BaseException]) -> None:
        status, self.status = self.status, None
        if status is None:
            return
        summary = self.summary
        facts: Dict[str, Any] = {}
        if summary is not None:
            facts = {"frames_in": summary.frames_in, "frames_out": summary.frames_out, "dropped": summary.dropped,
                     "reconnects": summary.reconnects, "stopped_by": summary.stopped_by, "output": summary.output}
        if error is not None:
            state = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
            status.finish(state, exit_code_of(error), str(error) or type(error).__name__, **facts)
        elif summary is not None:
            state = "failed" if summary.error else "interrupted" if summary.stop_signal else "finished"
            status.finish(state, summary.exit_code, summary.error, **facts)
        else:
            status.finish("finished", 0, None, stopped_by="closed before running")

    def __enter__(self) -> "VideoJob":
        return self.open() if self.pipeline is None else self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(exc)


def run_video(inputs: Sequence[str], outputs: Sequence[str] = (), config: VideoRunConfig = VideoRunConfig()) -> RunSummary:
    """Segment ``inputs[0]`` (a file, folder, camera, URL or GStreamer pipeline) into
    ``outputs[0]`` (a video file, image folder, display://0, rtsp://..., or null; none: a
    window where there is a display) and return the run's summary."""
    with VideoJob(inputs, outputs, config) as job:
        return job.run()
