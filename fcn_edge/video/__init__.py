"""Video for fcn-edge: sources and sinks by URI, and a pipelined segmentation loop.

Typical use::

    from fcn_edge.video import VideoRunConfig, run_video, segment_images

    summary = run_video(["rtsp://camera/stream"], ["out.mp4"], VideoRunConfig(model=Path("model.onnx")))
    many = run_streams(["rtsp://cam1/s", "rtsp://cam2/s"], ["out/{name}.mp4"])  # one batched model
    report = segment_images(["photos/"], "out/")          # the default model, overlays + legend

or the parts, for a loop of your own::

    from fcn_edge.runtime import load_segmenter
    from fcn_edge.video import PipelineConfig, open_source, make_sink, VideoPipeline

    with load_segmenter("model.onnx") as seg:
        source = open_source("rtsp://camera/stream")
        sink = make_sink("out.mp4", fps=source.fps)
        summary = VideoPipeline(source, seg, sink, PipelineConfig()).run()

Imports numpy, OpenCV and fcn_edge.runtime only; never torch.
"""

from __future__ import annotations

from typing import Optional, Union

from fcn_edge.video.capabilities import cv2_has_gstreamer, describe as describe_backends, display_available
from fcn_edge.video.frame_queue import FrameQueue, QueueClosed
from fcn_edge.video.images import ImageRecord, SegmentImagesConfig, SegmentImagesReport, segment_images
from fcn_edge.video.job import VideoJob, VideoRunConfig, run_video
from fcn_edge.video.multistream import MultiStreamJob, MultiStreamSummary, run_streams
from fcn_edge.video.pipeline import PipelineConfig, VideoPipeline
from fcn_edge.video.protocol import SegmenterLike, SegmentationLike
from fcn_edge.video.reconnect import ReconnectingSource, ReconnectPolicy
from fcn_edge.video.signals import stop_on_signals
from fcn_edge.video.sinks import FrameSink, ImageFolderSink, NullSink, SinkOptions, VideoFileSink, make_sink
from fcn_edge.video.smoothing import TemporalEMA
from fcn_edge.video.sources import CaptureSource, FrameSource, ImageFolderSource, SourceOptions, make_source
from fcn_edge.video.stats import LatencyStats, RunSummary
from fcn_edge.video.uri import SinkSpec, SourceSpec, parse_sink, parse_source


def open_source(
    uri: Union[str, SourceSpec],
    options: SourceOptions = SourceOptions(),
    reconnect: Optional[ReconnectPolicy] = ReconnectPolicy(),
) -> FrameSource:
    """An opened source; live ones are wrapped to reconnect with ``reconnect`` (None: never)."""
    source = make_source(uri, options)
    if reconnect is not None and source.is_live:
        source = ReconnectingSource(source, reconnect)
    source.open()
    return source


__all__ = [
    "CaptureSource", "FrameQueue", "FrameSink", "FrameSource", "ImageFolderSink", "ImageFolderSource",
    "ImageRecord", "MultiStreamJob", "MultiStreamSummary", "SegmentImagesConfig", "SegmentImagesReport", "VideoJob",
    "VideoRunConfig", "run_streams", "run_video", "segment_images", "LatencyStats", "NullSink", "PipelineConfig", "QueueClosed", "ReconnectPolicy", "ReconnectingSource",
    "RunSummary", "SegmentationLike", "SegmenterLike", "SinkOptions", "SinkSpec", "SourceOptions",
    "SourceSpec", "TemporalEMA", "VideoFileSink", "VideoPipeline", "cv2_has_gstreamer",
    "describe_backends", "display_available", "make_sink", "make_source", "open_source",
    "parse_sink", "parse_source", "stop_on_signals",
]
