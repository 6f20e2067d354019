"""Many streams in one process (fcn_edge.video.multistream): one output per input with the
input's frames, newest frames batched into one engine call, and a stream that dies ends alone.
The Triton side (concurrent requests) is in tests/test_triton_server.py."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from fcn_edge.artifacts import meta_for_classes
from fcn_edge.cli.main import main
from fcn_edge.errors import UsageError
from fcn_edge.runtime import LoadOptions
from fcn_edge.video import PipelineConfig, VideoRunConfig
from fcn_edge.video.multistream import FrameBatcher, MultiStreamJob, run_streams, stream_outputs
from tiny_models import make_tiny_onnx
from video_fixtures import read_all, write_clip


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    d = tmp_path_factory.mktemp("streams")
    cut = write_clip(d / "cut.avi", 20)
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) * 7 // 10])  # a file cut short: its tail is gone
    return {
        "front": write_clip(d / "front.avi", 20), "side": write_clip(d / "side.avi", 20, size=(48, 64)), "cut": cut,
        "onnx": make_tiny_onnx(d, fused=True, output_kind="mask"),
    }


def test_three_files_one_cut_short_give_three_outputs_with_their_own_frames(assets, tmp_path, capsys):
    sources = [assets["front"], assets["side"], assets["cut"]]
    readable = [len(read_all(s)) for s in sources]
    assert readable[:2] == [20, 20] and 0 < readable[2] < 20
    report = tmp_path / "summary.json"
    rc = main(["run", *map(str, sources), "-o", str(tmp_path / "out" / "{name}.avi"), "--model", str(assets["onnx"]),
               "--no-stats", "--json", str(report)])
    assert rc == 0
    outputs = [tmp_path / "out" / f"{s.stem}.avi" for s in sources]
    assert [len(read_all(o)) for o in outputs] == readable
    summary = json.loads(report.read_text())
    assert [s["frames_out"] for s in summary["streams"]] == readable and summary["failed"] == []
    assert summary["batches"]["frames"] == sum(readable)
    assert "3 streams on" in capsys.readouterr().err
    # batching changes nothing in what each stream shows: the single-stream run's frames, exactly
    single = tmp_path / "single.avi"
    assert main(["run", str(sources[1]), "-o", str(single), "--model", str(assets["onnx"]), "--no-stats"]) == 0
    for mine, alone in zip(read_all(outputs[1]), read_all(single)):
        np.testing.assert_array_equal(mine, alone)


def test_newest_frames_of_all_streams_go_into_one_engine_call(assets, tmp_path):
    sources = [str(assets["front"])] * 3
    summary = run_streams(sources, [str(tmp_path / "{index}.avi")], VideoRunConfig(model=assets["onnx"]), gather_ms=50)
    assert [s.frames_out for s in summary.streams] == [20, 20, 20]
    assert summary.batches.frames == 60
    assert summary.batches.calls < summary.batches.frames, summary.batches
    assert max(size for size, _ in summary.batches.sizes) <= 4  # the model's max batch


class FailingSink:
    """Wraps a real sink and fails on the fourth frame: a stream whose output dies."""

    def __init__(self, sink):
        self.sink, self.written = sink, 0
        self.uri, self.path = sink.uri, sink.path

    def write(self, frame):
        if self.written == 3:
            raise OSError("disk full (test)")
        self.sink.write(frame)
        self.written += 1

    def close(self):
        self.sink.close()


def test_a_stream_that_dies_does_not_stop_the_others(assets, tmp_path):
    sources = [str(assets["front"])] * 3
    outputs = [str(tmp_path / f"{i}.avi") for i in range(3)]
    config = VideoRunConfig(model=assets["onnx"], load=LoadOptions(), pipeline=PipelineConfig(show_stats=False))
    with MultiStreamJob(sources, outputs, config) as job:
        job.pipelines[1].sink = FailingSink(job.pipelines[1].sink)
        summary = job.run()
    assert summary.failed == (1,) and "disk full" in summary.streams[1].error
    assert [s.frames_out for s in summary.streams] == [20, 3, 20]
    assert [len(read_all(Path(o))) for o in outputs] == [20, 3, 20]  # the dead stream's file is finalised too
    assert "error: disk full (test)" in summary.format()


@dataclass
class FakeBatchModel:
    """Stands in for a Segmenter to test the batcher's own control flow: a frame whose first
    pixel is 255 is 'bad' and fails any call that contains it."""

    calls: list
    meta = meta_for_classes("fake", ["a", "b"])
    input_size = (8, 8)
    batch_limit = 4

    def segment_batch(self, frames):
        self.calls.append(len(frames))
        if any(f[0, 0, 0] == 255 for f in frames):
            raise ValueError("bad frame in the batch")
        return [int(f[0, 0, 1]) for f in frames]

    def segment(self, frame):
        return self.segment_batch([frame])[0]


def test_one_bad_frame_fails_only_its_stream():
    model = FakeBatchModel([])
    batcher = FrameBatcher(model, gather_s=5.0)  # waits for all three streams each time
    streams = [batcher.attach() for _ in range(3)]
    batcher.start()
    results, barrier = {}, threading.Barrier(3)

    def stream(i):
        frame = np.zeros((2, 2, 3), np.uint8)
        frame[0, 0] = (255 if i == 1 else 0, i, 0)
        barrier.wait()
        try:
            results[i] = streams[i].segment(frame)
        except ValueError as exc:
            results[i] = exc

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    batcher.stop()
    assert results[0] == 0 and results[2] == 2 and isinstance(results[1], ValueError)
    assert model.calls == [3, 1, 1, 1]  # one batched call, then frame by frame to find the bad one
    assert batcher.stats.sizes == ((3, 1),)


@pytest.mark.parametrize("inputs, outputs, message", [
    (["a.avi", "b.avi"], ["x.avi"], "template with {index} or {name}"),
    (["a.avi", "b.avi", "c.avi"], ["x.avi", "y.avi"], "3 inputs and 2 outputs"),
    (["cams/a.avi", "other/a.avi"], ["out/{name}.avi"], "two streams would write out/a.avi"),
    (["a.avi", "b.avi"], ["out/{name}-{camera}.avi"], "only {index} and {name}"),
])
def test_output_naming_errors(inputs, outputs, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in inputs:
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        Path(name).touch()
    with pytest.raises(UsageError, match=message):
        stream_outputs(inputs, outputs)


def test_outputs_from_a_template_and_refusals(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("cams/front.mp4", "a.avi", "b.avi"):
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        Path(name).touch()
    assert stream_outputs(["cams/front.mp4", "/dev/video1", "rtsp://cam:8554/yard"], ["o/{index}-{name}.mp4"]) == [
        "o/0-front.mp4", "o/1-video1.mp4", "o/2-cam_8554_yard.mp4"]
    assert stream_outputs(["a.avi", "b.avi"], []) == ["null://", "null://"]
    with pytest.raises(UsageError, match="not windows"):
        MultiStreamJob(["a.avi", "b.avi"], ["display://0", "x.avi"])
