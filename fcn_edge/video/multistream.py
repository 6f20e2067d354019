"""Many streams in one process: ``fcn-edge run SRC1 SRC2 ... -o OUT1 -o OUT2 ...``.

Every stream is a :class:`~fcn_edge.video.pipeline.VideoPipeline` of its own (capture,
inference and writing threads, drop policy, latencies, finalisation), so a stream that dies
ends alone and its output is finalised while the others go on. What the streams share
depends on where the model runs:

- a local backend (TensorRT, ONNX Runtime, PyTorch): one model, and a :class:`FrameBatcher`
  that gathers the newest frame of every stream into one ``segment_batch`` call, as
  DeepStream's nvstreammux batches cameras into one engine call;
- Triton (``triton://``): one client per stream sending its requests concurrently; the
  server's dynamic batcher combines them (with the requests of other machines).

Outputs are given once per input, or as one template with ``{index}`` (0, 1, ...) and/or
``{name}`` (the source's file stem or a tidy form of its URI): ``-o out/{name}.mp4``.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from fcn_edge.errors import UsageError, VideoError
from fcn_edge.runtime import DecodeConfig, Segmenter
from fcn_edge.runtime.triton_uri import is_triton_uri
from fcn_edge.video.job import VideoRunConfig
from fcn_edge.video.looping import LoopingSource
from fcn_edge.video.pipeline import GIL_SWITCH_INTERVAL_S, VideoPipeline
from fcn_edge.video.signals import stop_on_signals
from fcn_edge.video.sinks import FrameSink, make_sink
from fcn_edge.video.sources import FrameSource
from fcn_edge.video.stats import RunSummary
from fcn_edge.video.uri import SinkSpec, SourceSpec, parse_sink, parse_source

log = logging.getLogger(__name__)

TEMPLATE_FIELDS = ("index", "name")
DEFAULT_GATHER_MS = 2.0
_POLL_S = 0.2


# -- naming ---------------------------------------------------------------------------------
def stream_name(spec: SourceSpec, index: int) -> str:
    """A short name for ``{name}`` in output templates: the file or folder stem, else the URI tidied."""
    if spec.kind in ("file", "images"):
        path = Path(spec.location.split("%")[0].rstrip("/*"))
        stem = path.stem if spec.kind == "file" else path.name
        if stem:
            return stem
    if spec.kind == "v4l2" and spec.device_index is not None:
        return f"video{spec.device_index}"
    tidy = re.sub(r"[^A-Za-z0-9]+", "_", re.sub(r"^[a-z0-9+.-]+://", "", spec.location)).strip("_")
    return tidy[:40] or f"stream{index}"


def stream_outputs(inputs: Sequence[str], outputs: Sequence[str]) -> List[str]:
    """One output per input: as given, from one template, or null:// for all when none is given."""
    if not outputs:
        log.warning("no output given: the %d streams are processed but not saved", len(inputs))
        return ["null://"] * len(inputs)
    if len(outputs) == 1 and len(inputs) > 1:
        template = outputs[0]
        if not any("{" + f + "}" in template for f in TEMPLATE_FIELDS):
            raise UsageError(f"{len(inputs)} inputs and one output {template!r}: give one -o per input, or a "
                             "template with {index} or {name}, e.g. -o out/{name}.mp4")
        specs = [parse_source(uri) for uri in inputs]
        try:
            made = [template.format(index=i, name=stream_name(spec, i)) for i, spec in enumerate(specs)]
        except (KeyError, IndexError, ValueError) as exc:
            raise UsageError(f"output template {template!r}: only {{index}} and {{name}} are filled in ({exc})") from None
    elif len(outputs) == len(inputs):
        made = list(outputs)
    else:
        raise UsageError(f"{len(inputs)} inputs and {len(outputs)} outputs: give one -o per input, or one template "
                         "with {index} or {name}")
    files = [m for m in made if parse_sink(m).kind in ("video", "images")]
    twice = sorted({m for m in files if files.count(m) > 1})
    if twice:
        raise UsageError(f"two streams would write {', '.join(twice)}: use {{index}} in the template")
    return made


# -- batching of local backends -------------------------------------------------------------
@dataclass
class _Request:
    frame: np.ndarray
    done: threading.Event = field(default_factory=threading.Event)
    result: object = None
    error: Optional[BaseException] = None


@dataclass(frozen=True)
class BatchStats:
    """Engine calls the batcher made, and how many frames each carried."""

    calls: int
    frames: int
    sizes: Tuple[Tuple[int, int], ...]  # (frames in the call, calls)

    @property
    def mean_batch(self) -> float:
        return self.frames / self.calls if self.calls else 0.0

    def as_dict(self) -> Dict[str, object]:
        return {"calls": self.calls, "frames": self.frames, "mean_batch": self.mean_batch,
                "sizes": {str(size): n for size, n in self.sizes}}


class FrameBatcher:
    """Runs one segmenter for several streams: each stream's :meth:`segment` call waits while
    the batcher's thread gathers the frames in flight from all streams (until every attached
    stream has one waiting, the batch is full, or ``gather_s`` has passed) and segments them
    in one ``segment_batch`` call. A failing batch is retried frame by frame, so one bad
    frame fails only its own stream."""

    def __init__(self, segmenter: Segmenter, gather_s: float = DEFAULT_GATHER_MS / 1e3):
        self.segmenter = segmenter
        self.gather_s = gather_s
        self.limit = segmenter.batch_limit
        self._cond = threading.Condition()
        self._pending: List[_Request] = []
        self._attached = 0
        self._stopping = False
        self._sizes: Dict[int, int] = {}
        self._thread = threading.Thread(target=self._loop, name="fcn-edge-batcher", daemon=True)

    def attach(self) -> "BatchedSegmenter":
        with self._cond:
            self._attached += 1
        return BatchedSegmenter(self)

    def detach(self) -> None:
        with self._cond:
            self._attached -= 1
            self._cond.notify_all()  # a gather waiting for this stream's frame stops waiting

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(10.0)

    @property
    def stats(self) -> BatchStats:
        sizes = tuple(sorted(self._sizes.items()))
        return BatchStats(sum(n for _, n in sizes), sum(s * n for s, n in sizes), sizes)

    def submit(self, frame: np.ndarray):
        request = _Request(frame)
        with self._cond:
            if self._stopping:
                raise VideoError("the frame batcher has stopped")
            self._pending.append(request)
            self._cond.notify_all()
        while not request.done.wait(_POLL_S):
            if not self._thread.is_alive():
                raise VideoError("the frame batcher's thread ended")
        if request.error is not None:
            raise request.error
        return request.result

    def _gather(self) -> List[_Request]:
        with self._cond:
            while not self._pending and not self._stopping:
                self._cond.wait()
            deadline = time.monotonic() + self.gather_s
            while len(self._pending) < min(max(self._attached, 1), self.limit) and not self._stopping:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            taken, self._pending = self._pending[: self.limit], self._pending[self.limit :]
            return taken

    def _loop(self) -> None:
        while True:
            taken = self._gather()
            if not taken:
                return  # stopping, and nothing left to answer
            self._sizes[len(taken)] = self._sizes.get(len(taken), 0) + 1
            try:
                results = self.segmenter.segment_batch([r.frame for r in taken])
                for request, result in zip(taken, results):
                    request.result = result
            except BaseException as exc:  # noqa: BLE001 - handed to the streams that sent the frames
                if len(taken) == 1:
                    taken[0].error = exc
                else:
                    for request in taken:
                        try:
                            request.result = self.segmenter.segment(request.frame)
                        except BaseException as single:  # noqa: BLE001
                            request.error = single
            for request in taken:
                request.done.set()


class BatchedSegmenter:
    """One stream's view of a :class:`FrameBatcher`: what its VideoPipeline calls ``segment`` on."""

    def __init__(self, batcher: FrameBatcher):
        self._batcher = batcher
        self.meta = batcher.segmenter.meta
        self.input_size = batcher.segmenter.input_size
        self._attached = True

    def segment(self, frame: np.ndarray):
        return self._batcher.submit(frame)

    def close(self) -> None:
        """Detach from the batcher (the shared segmenter stays open for the other streams)."""
        if self._attached:
            self._attached = False
            self._batcher.detach()


# -- the job --------------------------------------------------------------------------------
@dataclass(frozen=True)
class MultiStreamSummary:
    """What a multi-stream run did: each stream's own summary, and the batching."""

    streams: Tuple[RunSummary, ...]
    wall_s: float
    model: str
    batching: str  # how frames reached the model
    batches: Optional[BatchStats] = None

    @property
    def frames_out(self) -> int:
        return sum(s.frames_out for s in self.streams)

    @property
    def fps(self) -> float:
        """Frames written by all streams together per second of the whole run."""
        return self.frames_out / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def failed(self) -> Tuple[int, ...]:
        return tuple(i for i, s in enumerate(self.streams) if s.error)

    def to_dict(self) -> Dict[str, object]:
        return {"streams": [s.to_dict() for s in self.streams], "wall_s": self.wall_s, "model": self.model,
                "batching": self.batching, "batches": self.batches.as_dict() if self.batches else None,
                "frames_out": self.frames_out, "fps": self.fps, "failed": list(self.failed)}

    def format(self) -> str:
        ok = len(self.streams) - len(self.failed)
        lines = [f"{len(self.streams)} streams on {self.model} ({self.batching}): {ok} ended without error; "
                 f"{self.frames_out} frames out in {self.wall_s:.2f} s, {self.fps:.2f} FPS together"]
        if self.batches is not None and self.batches.calls:
            sizes = ", ".join(f"{n}x{size}" for size, n in self.batches.sizes)
            lines.append(f"  engine calls {self.batches.calls}, mean batch {self.batches.mean_batch:.2f} "
                         f"(calls x frames: {sizes})")
        lines.append("  stream                              frames in/out  dropped    FPS   e2e p50/p90 ms  stopped by")
        for i, s in enumerate(self.streams):
            e2e = s.latency_ms.get("end_to_end")
            latency = f"{e2e.p50:7.1f} {e2e.p90:7.1f}" if e2e and e2e.count else "      -       -"
            route = f"{i} {Path(s.source).name} -> {Path(s.output).name if s.output else s.sink}"
            lines.append(f"  {route[:34]:<34} {s.frames_in:6d}/{s.frames_out:<6d} {s.dropped:8d} {s.fps:6.1f}  "
                         f"{latency}  {s.stopped_by}")
            if s.error:
                lines.append(f"      error: {s.error}")
        return "\n".join(lines)


class _AllStreams:
    """Stop requests (signals) go to every stream."""

    def __init__(self, pipelines: Sequence[VideoPipeline]):
        self._pipelines = pipelines

    def request_stop(self, reason: str = "stop requested", abort: bool = False) -> None:
        for pipeline in self._pipelines:
            pipeline.request_stop(reason, abort)


class MultiStreamJob:
    """Several inputs, one model, one output each: ``open()``, ``run()``, ``close()``, or a
    context manager. Every URI is parsed first and every source opened before the model
    loads, so a typo or an unreadable input fails before anything runs."""

    def __init__(self, inputs: Sequence[str], outputs: Sequence[str] = (), config: VideoRunConfig = VideoRunConfig(),
                 gather_ms: float = DEFAULT_GATHER_MS):
        if len(inputs) < 2:
            raise UsageError("a multi-stream run needs two or more inputs (one input: fcn_edge.video.run_video)")
        if gather_ms < 0:
            raise UsageError(f"gather time {gather_ms} ms must be >= 0")
        self.config = config
        self.gather_s = gather_ms / 1e3
        self.source_specs: List[SourceSpec] = [parse_source(uri) for uri in inputs]
        self.sink_specs: List[SinkSpec] = [parse_sink(uri) for uri in stream_outputs(inputs, outputs)]
        if any(spec.kind in ("display", "page") for spec in self.sink_specs):
            raise UsageError("multi-stream runs write files or streams, not windows or pages: give -o per input "
                             "(video files, image folders, rtsp://...) or none, and --view [HOST]:PORT for one "
                             "page showing every stream")
        if config.input_loop and any(spec.is_live for spec in self.source_specs):
            raise UsageError("--input-loop applies to files and image folders, not live sources")
        self.remote = is_triton_uri(config.model)
        self.sources: List[FrameSource] = []
        self.sinks: List[FrameSink] = []
        self.segmenters: List[Segmenter] = []
        self.batcher: Optional[FrameBatcher] = None
        self.pipelines: List[VideoPipeline] = []
        self.view = None  # the page showing every stream (--view), once open
        self._summary: Optional[MultiStreamSummary] = None
        self._ran = False

    @property
    def routes(self) -> List[str]:
        return [f"{i}: {src.uri} ({src.kind}) -> {sink.uri} ({sink.kind})"
                for i, (src, sink) in enumerate(zip(self.source_specs, self.sink_specs))]

    @property
    def description(self) -> str:
        return self.segmenters[0].description if self.segmenters else str(self.config.model or "the default model")

    @property
    def summary(self) -> Optional[MultiStreamSummary]:
        return self._summary

    def open(self) -> "MultiStreamJob":
        from fcn_edge.video import open_source

        config = self.config
        try:
            for spec in self.source_specs:
                source = open_source(spec, config.source, config.reconnect)
                self.sources.append(LoopingSource(source, config.input_loop) if config.input_loop else source)
            decode = DecodeConfig(config.filter_mode)
            for _ in range(len(self.source_specs) if self.remote else 1):
                self.segmenters.append(config.load.load(config.model, decode))
            for segmenter in self.segmenters:
                if config.pipeline.smoothing_alpha is not None and not segmenter.meta.fused_argmax:
                    segmenter.set_decode(DecodeConfig(config.filter_mode, confidence=True))
            if not self.remote:
                self.batcher = FrameBatcher(self.segmenters[0], self.gather_s)
            for i, (source, spec) in enumerate(zip(self.sources, self.sink_specs)):
                sink = make_sink(spec, config.output_fps or source.fps, config.sink)
                self.sinks.append(sink)
                model = self.segmenters[i] if self.remote else self.batcher.attach()
                self.pipelines.append(VideoPipeline(source, model, sink, config.pipeline))
            if config.view.address is not None:  # one page, the streams as a grid
                from fcn_edge.video.web import open_page

                self.view = open_page(config.view, {str(i): p for i, p in enumerate(self.pipelines)})
        except BaseException:
            self.close()
            raise
        return self

    def run(self) -> MultiStreamSummary:
        """Run every stream to its end (or a stop); one stream's error ends that stream only."""
        if not self.pipelines:
            self.open()
        self._ran = True
        switch = sys.getswitchinterval()  # each pipeline sets and restores it; restore the first value last
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        started = time.perf_counter()
        threads = [threading.Thread(target=self._run_stream, args=(p,), name=f"fcn-edge-stream-{i}", daemon=True)
                   for i, p in enumerate(self.pipelines)]
        try:
            if self.batcher is not None:
                self.batcher.start()
            with stop_on_signals(_AllStreams(self.pipelines)):
                for thread in threads:
                    thread.start()
                for thread in threads:
                    while thread.is_alive():
                        thread.join(_POLL_S)
        finally:
            if self.batcher is not None:
                self.batcher.stop()
            sys.setswitchinterval(switch)
        summaries = tuple(p.summary for p in self.pipelines)
        self._summary = MultiStreamSummary(
            summaries, time.perf_counter() - started, self.description,
            "concurrent requests, batched by the Triton server" if self.remote
            else "newest frames of all streams batched into one engine call",
            self.batcher.stats if self.batcher is not None else None,
        )
        return self._summary

    def _run_stream(self, pipeline: VideoPipeline) -> None:
        try:
            if self.config.sequential:
                pipeline.run_sequential()
            else:
                pipeline.run()
        except BaseException as exc:  # noqa: BLE001 - in the stream's summary; the others go on
            log.warning("stream %s ended on an error: %s", getattr(pipeline.source, "uri", "?"), exc)
        finally:
            if isinstance(pipeline.segmenter, BatchedSegmenter):
                pipeline.segmenter.close()

    def close(self) -> None:
        """Close what a run did not (sources and sinks of a job that never ran), the page and the model(s)."""
        if self.view is not None:
            self.view.close()
            self.view = None
        if not self._ran:
            for part in self.sinks + self.sources:
                try:
                    part.close()
                except Exception as exc:  # noqa: BLE001 - close the rest
                    log.warning("closing %s: %s", getattr(part, "uri", part), exc)
        if self.batcher is not None:
            self.batcher.stop()
        for segmenter in self.segmenters:
            segmenter.close()
        self.segmenters.clear()

    def __enter__(self) -> "MultiStreamJob":
        return self.open() if not self.pipelines else self

    def __exit__(self, *exc) -> None:
        self.close()


def run_streams(inputs: Sequence[str], outputs: Sequence[str] = (), config: VideoRunConfig = VideoRunConfig(),
                gather_ms: float = DEFAULT_GATHER_MS) -> MultiStreamSummary:
    """Segment every input into its output (one per input, or a template) with one model and
    return the run's summary; streams that fail are in it with their error."""
    with MultiStreamJob(inputs, outputs, config, gather_ms) as job:
        return job.run()
