"""`fcn-edge run` and its library call `run_video`: outputs that play, clear errors, Ctrl-C / SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from fcn_edge.cli.main import main
from fcn_edge.errors import UsageError, VideoError
from fcn_edge.runtime import RenderConfig
from fcn_edge.video import PipelineConfig, VideoJob, VideoRunConfig, run_video
from tiny_models import make_tiny_onnx
from video_fixtures import read_all, write_clip

FCN_EDGE = [sys.executable, "-m", "fcn_edge"]


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    return {"clip": write_clip(d / "clip.avi", 20), "onnx": make_tiny_onnx(d),
            "fused": make_tiny_onnx(d, fused=True, output_kind="mask")}


def test_run_writes_every_frame(assets, tmp_path, capsys):
    out = tmp_path / "seg.mp4"
    summary_json = tmp_path / "summary.json"
    rc = main(["run", str(assets["clip"]), "-o", str(out), "--model", str(assets["onnx"]), "--headless",
               "--visualize", "both", "--alpha", "200", "--filter-mode", "point", "--ignore-class", "background",
               "--json", str(summary_json)])
    assert rc == 0
    summary = json.loads(summary_json.read_text())
    assert summary["frames_in"] == summary["frames_out"] == 20 and summary["dropped"] == 0
    frames = read_all(out)
    assert len(frames) == 20 and frames[0].shape == (64, 160, 3)
    assert "frames: in 20, inferred 20, out 20, dropped 0" in capsys.readouterr().err


def test_run_options_image_folder_sequential_smoothing(assets, tmp_path):
    out = tmp_path / "frames"
    rc = main(["run", str(assets["clip"]), "-o", str(out) + "/", "--model", str(assets["fused"]), "--headless",
               "--max-frames", "7", "--sequential", "--smooth", "0.5", "--no-stats", "--visualize", "mask"])
    assert rc == 0
    assert len(list(out.glob("*.jpg"))) == 7


def test_headless_without_output_discards(assets, capsys):
    assert main(["run", str(assets["clip"]), "--model", str(assets["onnx"]), "--headless", "--max-frames", "5"]) == 0
    assert "-> null://" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["ftp://host/x.mp4"], "unknown URI scheme 'ftp://'"),
    (["{missing}"], "no such file or directory"),
    (["{broken}"], "broken.mp4: "),
    (["{clip}", "-o", "out.wav"], "cannot tell what to write from the extension '.wav'"),
    (["{clip}", "-o", "null", "--ignore-class", "tree"], "'tree' is not a class of this model"),
    (["{clip}", "-o", "a.mp4", "-o", "b.mp4"], "one output per input: 2 given"),
    (["{clip}", "{clip}", "-o", "one.avi"], "2 inputs and one output 'one.avi'"),
    ([], "no input: give a file"),
    (["{clip}", "-o", "null", "--filter-mode", "linear", "--model", "{fused}"], "filter_mode='linear' has no scores"),
])
def test_clear_errors(assets, tmp_path, capsys, argv, message):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(os.urandom(4096))
    names = {"missing": tmp_path / "missing.mp4", "broken": broken, "clip": assets["clip"], "fused": assets["fused"]}
    argv = [a.format(**names) for a in argv]
    if "--model" not in argv:
        argv += ["--model", str(assets["onnx"])]
    rc = main(["run", *argv, "--headless"])
    err = capsys.readouterr().err
    assert rc == 2 and message in err, err
    if "broken" in message:
        assert "not a video" in err


def test_run_legend_on_the_video(assets, tmp_path):
    """--legend draws the class panel on every frame, never in the statistics' top-left corner."""
    pictures = {}
    for flag in ("--legend", "--no-legend"):
        out = tmp_path / flag.strip("-")
        assert main(["run", str(assets["clip"]), "-o", f"{out}/%03d.png", "--model", str(assets["fused"]),
                     "--headless", "--max-frames", "3", "--no-stats", flag]) == 0
        pictures[flag] = [cv2.imread(str(p)) for p in sorted(out.iterdir())]
    for with_legend, without in zip(pictures["--legend"], pictures["--no-legend"]):
        changed = np.any(with_legend != without, axis=-1)
        assert changed.any() and not changed[:8, :8].any()


def test_run_video_library_call(assets, tmp_path):
    out = tmp_path / "lib.avi"
    config = VideoRunConfig(model=assets["fused"], headless=True,
                            pipeline=PipelineConfig(render=RenderConfig("mask"), max_frames=6))
    summary = run_video([str(assets["clip"])], [str(out)], config)
    assert (summary.frames_in, summary.frames_out, summary.stopped_by) == (6, 6, "max frames (6)")
    assert summary.output == str(out) and len(read_all(out)) == 6 and summary.error is None


@pytest.mark.parametrize("model, confidence", [("onnx", True), ("fused", False)])
def test_smoothing_asks_the_meta_whether_the_model_gives_scores(assets, model, confidence):
    config = VideoRunConfig(model=assets[model], headless=True, pipeline=PipelineConfig(smoothing_alpha=0.5))
    with VideoJob([str(assets["clip"])], ["null"], config) as job:
        assert job.segmenter.decode.config.confidence is confidence
        assert job.route.endswith("clip.avi (file) -> null (null)")
        summary = job.run()
    assert summary.frames_out == 20 and summary.latency_ms["smoothing"].count == 20
    assert job.segmenter is None  # the job closed the model it loaded


def test_video_job_refuses_contradictions_before_opening_anything(assets):
    with pytest.raises(VideoError, match="headless and the output display:// contradict"):
        VideoJob([str(assets["clip"])], ["display://0"], VideoRunConfig(headless=True))
    with pytest.raises(UsageError, match="a VideoJob runs one input.*MultiStreamJob"):
        VideoJob(["a.mp4", "b.mp4"])


def test_list_backends(capsys):
    assert main(["run", "--list-backends"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert "GStreamer" in report["video_io"] and "FFMPEG" in report["video_io"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_finalises_a_playable_video(assets, tmp_path, signum):
    """Interrupt a real `fcn-edge run` mid-file: the MP4 is finalised, renamed and plays, and
    the exit code is 128 + the signal."""
    clip = write_clip(tmp_path / "long.avi", 1500)
    out = tmp_path / "interrupted.mp4"
    summary_json = tmp_path / "summary.json"
    proc = subprocess.Popen(
        FCN_EDGE + ["run", str(clip), "-o", str(out), "--model", str(assets["onnx"]), "--headless",
                    "--threads", "1", "--json", str(summary_json)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while not any(p.stat().st_size for p in tmp_path.glob(".interrupted.partial-*.mp4")):  # writing has begun
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.2)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err
    summary = json.loads(summary_json.read_text())
    assert summary["stopped_by"] == f"{signal.Signals(signum).name} received", err
    assert summary["stop_signal"] == signum
    assert 0 < summary["frames_out"] < 1500
    assert summary["frames_out"] == summary["frames_in"]  # drained: nothing read was lost
    assert len(read_all(out)) == summary["frames_out"]
    assert not list(tmp_path.glob(".interrupted.partial-*")), "temporary file left behind"
