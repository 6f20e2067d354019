"""The pipelined loop: every frame of a file, the drop policy of live sources, finalisation."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from fcn_edge.errors import VideoError
from fcn_edge.runtime import DecodeConfig, RenderConfig, Renderer, load_segmenter
from fcn_edge.video import (
    FrameQueue, PipelineConfig, QueueClosed, ReconnectingSource, ReconnectPolicy, TemporalEMA,
    VideoPipeline, make_sink, open_source,
)
from fcn_edge.video.sinks import ImageFolderSink, NullSink, VideoFileSink

from tiny_models import make_tiny_onnx
from video_fixtures import FakeSegmenter, ListSource, SlowSink, clip_frame, read_all, write_clip

FRAMES = 24


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    d = tmp_path_factory.mktemp("video")
    return {"clip": write_clip(d / "clip.avi", FRAMES), "onnx": make_tiny_onnx(d),
            "fused": make_tiny_onnx(d, fused=True, output_kind="mask")}


@pytest.fixture()
def segmenter(assets):
    with load_segmenter(assets["onnx"], decode=DecodeConfig("linear", confidence=True), threads=1) as seg:
        yield seg


def _marked(i: int, size=(48, 64)) -> np.ndarray:
    """A frame whose first pixel encodes its index."""
    frame = np.full(size + (3,), 128, np.uint8)
    frame[0, 0] = (i & 255, i >> 8, 7)
    return frame


def _index(frame: np.ndarray) -> int:
    return int(frame[0, 0, 0]) + (int(frame[0, 0, 1]) << 8)


# -- queue -------------------------------------------------------------------------------------
def test_queue_drops_oldest_and_counts():
    q = FrameQueue(2, drop_oldest=True)
    for i in range(5):
        q.put(i)
    assert q.dropped == 3 and [q.get(), q.get()] == [3, 4]
    q.close()
    with pytest.raises(QueueClosed):
        q.get()


def test_blocking_queue_releases_producer_on_close():
    q = FrameQueue(1)
    q.put("a")
    done = threading.Event()
    t = threading.Thread(target=lambda: (q.put("b"), done.set()))
    t.start()
    assert not done.wait(0.2)  # blocked: the queue is full
    q.close()
    assert done.wait(2)
    assert q.get() == "a"
    with pytest.raises(QueueClosed):
        q.get()


# -- files: every frame --------------------------------------------------------------------------
@pytest.mark.parametrize("suffix, visualize", [(".mp4", "overlay"), (".avi", "both")])
def test_file_to_video_every_frame_and_playable(assets, segmenter, tmp_path, suffix, visualize):
    out = tmp_path / f"out{suffix}"
    source = open_source(str(assets["clip"]))
    sink = make_sink(str(out), fps=source.fps)
    config = PipelineConfig(render=RenderConfig(visualize, 128))
    summary = VideoPipeline(source, segmenter, sink, config).run()
    assert (summary.frames_in, summary.frames_out, summary.dropped) == (FRAMES, FRAMES, 0)
    assert summary.stopped_by == "end of input" and summary.output == str(out)
    frames = read_all(out)
    assert len(frames) == FRAMES
    width = 80 * (2 if visualize == "both" else 1)
    assert frames[0].shape == (64, width, 3)
    assert not list(tmp_path.glob(".*partial*")), "temporary file left behind"
    assert summary.latency_ms["inference"].count == FRAMES


def test_pipelined_output_is_exactly_the_rendered_masks_in_order(assets, segmenter, tmp_path):
    """PNG frames out equal Renderer(segment(frame)) for each input frame, in input order."""
    source = open_source(str(assets["clip"]))
    sink = ImageFolderSink(tmp_path / "seq_%03d.png")
    render = RenderConfig("overlay", 153, ignore_class=0)
    summary = VideoPipeline(source, segmenter, sink, PipelineConfig(render=render, show_stats=False)).run()
    assert summary.frames_out == FRAMES
    renderer = Renderer(segmenter.meta.palette, render, segmenter.meta.class_names)
    originals = read_all(assets["clip"])
    for i, frame in enumerate(originals):
        written = cv2.imread(str(tmp_path / f"seq_{i:03d}.png"))
        np.testing.assert_array_equal(written, renderer(frame, segmenter.segment(frame).mask))


def test_sequential_and_pipelined_agree(assets, segmenter, tmp_path):
    outputs = {}
    for mode in ("run", "run_sequential"):
        folder = tmp_path / mode
        pipeline = VideoPipeline(open_source(str(assets["clip"])), segmenter, ImageFolderSink(folder, ), PipelineConfig(show_stats=False))
        summary = getattr(pipeline, mode)()
        assert summary.frames_out == FRAMES
        outputs[mode] = [cv2.imread(str(p)) for p in sorted(folder.iterdir())]
    for a, b in zip(outputs["run"], outputs["run_sequential"]):
        np.testing.assert_array_equal(a, b)


def test_fused_argmax_model_with_stats_and_smoothing(assets, tmp_path):
    with load_segmenter(assets["fused"]) as seg:
        out = tmp_path / "fused.avi"
        source = open_source(str(assets["clip"]))
        config = PipelineConfig(render=RenderConfig("mask"), smoothing_alpha=0.5, max_frames=10)
        summary = VideoPipeline(source, seg, make_sink(str(out), source.fps), config).run()
    assert (summary.frames_in, summary.frames_out, summary.stopped_by) == (10, 10, "max frames (10)")
    assert summary.latency_ms["smoothing"].count == 10
    assert len(read_all(out)) == 10


def test_every_frame_from_a_file_source_under_a_slow_consumer():
    frames = [_marked(i) for i in range(20)]
    seen = []
    seg = FakeSegmenter()
    original = seg.segment
    seg.segment = lambda f: (seen.append(_index(f)), original(f))[1]
    summary = VideoPipeline(ListSource(frames), seg, SlowSink(0.01), PipelineConfig(show_stats=False)).run()
    assert seen == list(range(20))
    assert (summary.frames_in, summary.frames_out, summary.dropped) == (20, 20, 0)


# -- live: drop stale frames -----------------------------------------------------------------------
def test_live_source_drops_stale_frames_under_a_slow_consumer():
    """A camera at ~200 FPS, a 30 ms model and a 30 ms sink: most frames are dropped, counted,
    and what is segmented is never more than the queue's depth behind the camera."""
    frames = [_marked(i) for i in range(150)]
    source = ListSource(frames, live=True, fps=200)
    staleness = []
    seg = FakeSegmenter(delay_s=0.03)
    original = seg.segment

    def segment(frame):
        staleness.append(source._next - 1 - _index(frame))  # frames read since this one
        return original(frame)

    seg.segment = segment
    sink = SlowSink(0.03)
    summary = VideoPipeline(source, seg, sink, PipelineConfig(show_stats=True)).run()
    assert summary.live and summary.frames_in == 150
    assert summary.dropped > 0
    assert summary.frames_in == summary.frames_out + summary.dropped
    assert max(staleness) <= 2, staleness  # the one queued slot, plus one being read
    assert summary.frames_out == sink.frames_written == seg.calls


def test_drop_policy_can_be_forced_off_for_live_sources():
    frames = [_marked(i) for i in range(30)]
    source = ListSource(frames, live=True, fps=500)
    summary = VideoPipeline(source, FakeSegmenter(delay_s=0.005), SlowSink(), PipelineConfig(drop_frames=False)).run()
    assert (summary.frames_out, summary.dropped) == (30, 0)


# -- stopping and failures ------------------------------------------------------------------------
def test_stop_request_drains_and_finalises_video(tmp_path):
    frames = [clip_frame(i) for i in range(400)]
    out = tmp_path / "stopped.mp4"
    pipeline = VideoPipeline(ListSource(frames), FakeSegmenter(delay_s=0.005), VideoFileSink(out, 25), PipelineConfig())
    threading.Timer(0.3, pipeline.request_stop).start()
    summary = pipeline.run()
    assert summary.stopped_by == "stop requested"
    assert 0 < summary.frames_out < 400
    assert summary.frames_out == summary.frames_in  # drained: nothing read was lost
    assert len(read_all(out)) == summary.frames_out


def test_stage_error_still_finalises_output(tmp_path):
    out = tmp_path / "partial.avi"
    frames = [clip_frame(i) for i in range(20)]
    sink = VideoFileSink(out, 25)
    pipeline = VideoPipeline(ListSource(frames), FakeSegmenter(fail_at=8), sink, PipelineConfig(result_queue_size=1))
    with pytest.raises(RuntimeError, match="fake failure at frame 8"):
        pipeline.run()
    summary = pipeline.summary
    assert summary.stopped_by == "error" and "fake failure" in summary.error
    assert summary.frames_out <= 8 and len(read_all(out)) == summary.frames_out


def test_segmenter_runs_on_one_thread_only():
    seg = FakeSegmenter()
    VideoPipeline(ListSource([_marked(i) for i in range(10)]), seg, NullSink(), PipelineConfig()).run()
    assert len(seg.threads) == 1 and threading.get_ident() not in seg.threads


def test_no_frames_means_no_output_file(tmp_path):
    out = tmp_path / "empty.mp4"
    summary = VideoPipeline(ListSource([]), FakeSegmenter(), VideoFileSink(out, 25), PipelineConfig()).run()
    assert summary.frames_out == 0 and not out.exists() and not list(tmp_path.iterdir())


# -- reconnect -----------------------------------------------------------------------------------
class FlakyCamera:
    """Delivers ``burst`` frames per connection, then fails; the first ``refusals`` re-opens fail."""

    def __init__(self, burst: int, refusals: int):
        self.uri, self.is_live, self.fps = "flaky://cam", True, None
        self.burst, self.refusals = burst, refusals
        self.opens = self.left = 0

    def open(self):
        self.opens += 1
        if 1 < self.opens <= 1 + self.refusals:
            raise VideoError("camera not there yet")
        self.left = self.burst

    def read(self):
        if self.left == 0:
            return None
        self.left -= 1
        return _marked(0)

    def close(self):
        pass


def test_lost_source_reconnects_with_backoff():
    policy = ReconnectPolicy(initial_delay_s=0.01, max_delay_s=0.02, give_up_after_s=5)
    source = ReconnectingSource(FlakyCamera(burst=5, refusals=2), policy)
    source.open()
    config = PipelineConfig(max_frames=12)
    summary = VideoPipeline(source, FakeSegmenter(), NullSink(), config).run()
    assert summary.frames_in == 12 and summary.reconnects == 2
    assert source.inner.opens == 1 + (2 + 1) + 1  # first open; 2 refusals + success; success


def test_reconnect_gives_up_and_says_so():
    policy = ReconnectPolicy(initial_delay_s=0.01, max_delay_s=0.02, give_up_after_s=0.1)
    source = ReconnectingSource(FlakyCamera(burst=3, refusals=10**6), policy)
    source.open()
    summary = VideoPipeline(source, FakeSegmenter(), NullSink(), PipelineConfig(drop_frames=False)).run()
    assert summary.frames_out == 3 and summary.stopped_by == "source lost"
    assert "could not reconnect within 0.1 s" in summary.error


def test_stop_cuts_a_reconnect_backoff_short():
    policy = ReconnectPolicy(initial_delay_s=30, give_up_after_s=None)
    source = ReconnectingSource(FlakyCamera(burst=2, refusals=10**6), policy)
    source.open()
    pipeline = VideoPipeline(source, FakeSegmenter(), NullSink(), PipelineConfig(drop_frames=False))
    threading.Timer(0.3, pipeline.request_stop).start()
    t0 = time.monotonic()
    summary = pipeline.run()
    assert time.monotonic() - t0 < 10 and summary.frames_out == 2


# -- smoothing ------------------------------------------------------------------------------------
def test_ema_alpha_one_is_identity_and_flicker_is_suppressed():
    mask = np.zeros((8, 10), np.uint8)
    mask[2:5, 3:6] = 1
    assert np.array_equal(TemporalEMA(3, 1.0, (8, 10))(mask), mask)
    ema = TemporalEMA(3, 0.3, (8, 10))
    for _ in range(5):
        ema(mask)
    flicker = mask.copy()
    flicker[0, 0] = 2  # one frame of noise
    assert ema(flicker)[0, 0] == 0
    changed = mask.copy()
    changed[6:, :] = 2  # a lasting change is adopted after a few frames
    results = [ema(changed)[7, 0] for _ in range(4)]
    assert results[0] == 0 and results[-1] == 2


def test_ema_works_at_network_size_and_returns_frame_size():
    ema = TemporalEMA(4, 0.5, (16, 20))
    mask = np.random.default_rng(0).integers(0, 4, (64, 80), dtype=np.uint8)
    out = ema(mask, confidence=np.full((64, 80), 0.9, np.float32))
    assert out.shape == (64, 80) and out.dtype == np.uint8


class HangingCapture:
    """A fake cv2.VideoCapture whose construction blocks until ``release`` is set, as
    OpenCV's GStreamer backend can when a stream's server is down."""

    release = threading.Event()
    constructed = 0

    def __init__(self, *args):
        type(self).constructed += 1
        type(self).release.wait(10)

    def isOpened(self):
        return True

    def read(self):
        return True, _marked(1)

    def get(self, prop):
        return 0.0

    def set(self, prop, value):
        return True


def test_an_open_that_hangs_times_out_and_is_picked_up_later(monkeypatch):
    from fcn_edge.video.sources import CaptureSource, SourceOptions
    from fcn_edge.video.uri import parse_source

    monkeypatch.setattr(cv2, "VideoCapture", HangingCapture)
    source = CaptureSource(parse_source("rtsp://127.0.0.1:9/none"), SourceOptions(backend="ffmpeg", open_timeout_s=0.2))
    with pytest.raises(VideoError, match="opening did not finish within 0.2 s"):
        source.open()
    HangingCapture.release.set()  # the server came back
    source.open()  # collects the pending open instead of starting another
    assert HangingCapture.constructed == 1 and _index(source.read()) == 1
