"""One video run, input URI -> segmentation -> output URI: the library call behind ``fcn-edge run``.

:func:`run_video` is the whole job; :class:`VideoJob` is the same in steps, for a caller
that reports between them (the CLI prints the model and the route before the first
frame, and the summary even when the run ends on an error). Everything that can fail
before the first frame fails in :meth:`VideoJob.open`, in this order: the URIs are parsed
(a typo fails at once), the source is opened (an unreadable input fails before a model
loads), the model is loaded, the sink and the pipeline are made. Ctrl-C and SIGTERM stop
the run and finalise the output (:mod:`fcn_edge.video.signals`).

Whether the model gives scores (for confidence-weighted smoothing) is asked of its
ModelMeta once it is loaded, never guessed from the file name.

The browser page (:mod:`fcn_edge.video.web`) is the output ``http://HOST:PORT/`` or, with
``VideoRunConfig.view``, served beside any other output; it binds in :meth:`VideoJob.open`
once the pipeline exists, and closes with the job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from fcn_edge.errors import UsageError, VideoError
from fcn_edge.runtime import DecodeConfig, LoadOptions, Segmenter
from fcn_edge.video.capabilities import display_available
from fcn_edge.video.looping import LoopingSource
from fcn_edge.video.pipeline import PipelineConfig, VideoPipeline
from fcn_edge.video.reconnect import ReconnectPolicy
from fcn_edge.video.signals import stop_on_signals
from fcn_edge.video.sinks import FrameSink, SinkOptions, make_sink
from fcn_edge.video.sources import FrameSource, SourceOptions
from fcn_edge.video.stats import RunSummary
from fcn_edge.video.uri import SinkSpec, SourceSpec, parse_sink, parse_source
from fcn_edge.video.web.config import ViewConfig, page_config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoRunConfig:
    """What ``fcn-edge run`` does, as one value. ``model`` None: the default model;
    ``reconnect`` None: a lost live source ends the run; ``output_fps`` None: the source's.
    ``view``: the browser page (its address None: none unless the output is http://...);
    ``input_loop``: play a file this many more times (-1: until stopped)."""

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


def output_uri(outputs: Sequence[str], headless: bool, page: bool = False) -> str:
    """The one output of a run: the one given, else a window when there is a display, else null."""
    if len(outputs) > 1:
        raise VideoError(f"one output per input: {len(outputs)} given for one input")
    if outputs:
        if headless and outputs[0].lower().startswith("display://"):
            raise VideoError("headless and the output display:// contradict each other")
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

    @property
    def route(self) -> str:
        """'<input> (<kind>[, live]) -> <output> (<kind>)', for the log."""
        live = ", live" if self.pipeline is not None and self.pipeline.live else ""
        return (f"{self.source_spec.uri} ({self.source_spec.kind}{live}) -> "
                f"{self.sink_spec.uri} ({self.sink_spec.kind})")

    @property
    def summary(self) -> Optional[RunSummary]:
        """The run's summary once it finished, also when it ended on an error."""
        return self.pipeline.summary if self.pipeline is not None else None

    def open(self) -> "VideoJob":
        from fcn_edge.video import open_source

        config = self.config
        self.source = open_source(self.source_spec, config.source, config.reconnect)
        if config.input_loop:
            self.source = LoopingSource(self.source, config.input_loop)
        try:
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
        except BaseException:
            self.close()
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
        with stop_on_signals(self.pipeline):
            if self.config.sequential:
                return self.pipeline.run_sequential()
            return self.pipeline.run()

    def close(self) -> None:
        """Close what the run did not: the source and sink of a job that never ran, and the
        segmenter this job loaded."""
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

    def __enter__(self) -> "VideoJob":
        return self.open() if self.pipeline is None else self

    def __exit__(self, *exc) -> None:
        self.close()


def run_video(inputs: Sequence[str], outputs: Sequence[str] = (), config: VideoRunConfig = VideoRunConfig()) -> RunSummary:
    """Segment ``inputs[0]`` (a file, folder, camera, URL or GStreamer pipeline) into
    ``outputs[0]`` (a video file, image folder, display://0, rtsp://..., or null; none: a
    window where there is a display) and return the run's summary."""
    with VideoJob(inputs, outputs, config) as job:
        return job.run()
