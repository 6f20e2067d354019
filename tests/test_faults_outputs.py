"""Fault injection on outputs: full disk, file-size limit, read-only and unwritable folders, kills.

Each case runs the real ``fcn-edge`` in a child process with a real fault (tests/fault_injection.py)
and asserts the exit code, the one-line message naming the output and the cause, that no
file at the final name is broken, that a previous good file survived byte for byte, and
that no temporary file is left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import cv2
import pytest

from fault_injection import (
    fcn_edge, frames_in, readonly_prefix, spawn, temporaries, tmpfs_prefix, unwritable_prefix, PYTHON,
)
from fcn_edge.atomic import temporary_path
from tiny_models import make_images, make_tiny_onnx
from video_fixtures import write_clip

LIMIT = 32 * 1024  # RLIMIT_FSIZE of the child: every output below is larger


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    d = tmp_path_factory.mktemp("faults")
    clip = write_clip(d / "clip.avi", 60, size=(120, 160))
    model = make_tiny_onnx(d / "tiny.onnx", fused=True, output_kind="mask")
    images = d / "images"
    make_images(images, 3, size=(120, 160))
    long_clip = write_clip(d / "long.avi", 2000, size=(96, 128))  # seconds of work: time to signal mid-run
    return {"dir": d, "clip": clip, "model": model, "images": images, "long": long_clip}


def _previous(folder: Path, name: str, assets) -> Path:
    """A good output of an earlier run, at ``folder/name``."""
    folder.mkdir(parents=True, exist_ok=True)
    out = fcn_edge(["run", assets["clip"], "-o", folder / name, "--model", assets["model"], "--headless",
                    "--max-frames", "10"], cwd=folder)
    assert out.rc == 0, out.err
    return folder / name


def _run(assets, out: Path, **kw):
    return fcn_edge(["run", assets["clip"], "-o", out, "--model", assets["model"], "--headless", "--threads", "1"],
                    cwd=out.parent, **kw)


@pytest.mark.parametrize("name", ["out.mp4", "out.avi"])
def test_file_size_limit_during_a_video_write_keeps_the_previous_file(assets, tmp_path, name):
    previous = _previous(tmp_path, name, assets)
    before = previous.read_bytes()
    result = _run(assets, previous, fsize=LIMIT)
    line = result.one_line_error()
    assert result.rc == 1, result.err
    assert str(previous) in line and "file too large" in line and "[EFBIG]" in line, line
    assert f"the previous {name} was kept" in line, line
    assert previous.read_bytes() == before  # the good file survived, byte for byte
    assert frames_in(previous) == 10
    assert temporaries(tmp_path) == []


def test_full_disk_during_a_video_write(assets, tmp_path):
    """A real ENOSPC: a 96 KB tmpfs holding a previous good output; the new one cannot fit."""
    full = tmp_path / "full"
    full.mkdir()
    previous = _previous(tmp_path / "good", "out.mp4", assets)
    prefix = tmpfs_prefix(full, "96k")
    if prefix is None:
        pytest.skip("needs root and mount namespaces (unshare --mount) for a tmpfs; the RLIMIT_FSIZE test covers a full disk")
    # inside the namespace: put the previous file in, run, then report what is left
    script = (f"mount -t tmpfs -o size=96k tmpfs {full} && cp {previous} {full}/out.mp4 && "
              f'"$0" "$@"; rc=$?; cmp -s {previous} {full}/out.mp4 && echo PREVIOUS-KEPT; ls -a {full}; exit $rc')
    argv = ["unshare", "--mount", "sh", "-c", script, PYTHON, "-m", "fcn_edge", "run", str(assets["clip"]),
            "-o", str(full / "out.mp4"), "--model", str(assets["model"]), "--headless"]
    from fault_injection import env

    done = subprocess.run(argv, cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=120)
    line = [x for x in done.stderr.splitlines() if x.startswith("fcn-edge run: error: ")]
    assert done.returncode == 1, done.stderr[-3000:]
    assert len(line) == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert f"{full}/out.mp4" in line[0] and "no space left on the device" in line[0], line[0]
    assert "PREVIOUS-KEPT" in done.stdout
    assert ".partial-" not in done.stdout  # no temporary left in the full folder


def test_read_only_file_system_fails_before_the_first_frame(assets, tmp_path):
    folder = tmp_path / "ro"
    previous = _previous(folder, "out.mp4", assets)
    before = previous.read_bytes()
    prefix = readonly_prefix(folder)
    if prefix is None:
        pytest.skip("needs root and mount namespaces (unshare --mount) for a read-only bind mount")
    result = _run(assets, previous, prefix=prefix)
    line = result.one_line_error()
    assert result.rc == 1
    assert line == (f"fcn-edge run: error: {previous}: cannot write: read-only file system [EROFS]; "
                    "the previous out.mp4 was kept"), line
    assert "frames: in" not in result.err  # refused before a frame was read
    assert previous.read_bytes() == before and temporaries(folder) == []


def test_unwritable_folder_is_blamed_on_permissions_not_the_codec(assets, tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    prefix = unwritable_prefix()
    if prefix is None:
        pytest.skip("running as root without user namespaces: a chmod-555 folder does not stop root")
    try:
        result = _run(assets, folder / "out.mp4", prefix=prefix)
        images = fcn_edge(["segment", assets["images"], "-o", folder, "--model", assets["model"]], cwd=tmp_path,
                          prefix=prefix)
    finally:
        folder.chmod(0o755)
    line = result.one_line_error()
    assert result.rc == 1
    assert line == f"fcn-edge run: error: {folder / 'out.mp4'}: cannot write: permission denied [EACCES]", line
    assert "codec" not in result.err and "FFmpeg" not in line
    assert images.rc == 1 and "permission denied [EACCES]" in images.one_line_error()
    assert list(folder.iterdir()) == []


def test_file_size_limit_on_image_and_onnx_outputs(assets, tmp_path):
    """The issue's tracebacks from segment --out and quantize -o: now one line, exit 1, and
    no picture or ONNX at a final name that is not complete."""
    seg = fcn_edge(["segment", assets["images"], "-o", tmp_path / "seg", "--model", assets["model"]], cwd=tmp_path,
                   fsize=8 * 1024)
    line = seg.one_line_error()
    assert seg.rc == 1 and "cannot write: file too large" in line and ".overlay.png" in line, line
    for picture in (tmp_path / "seg").glob("*.png"):  # those written before the limit are whole
        assert cv2.imread(str(picture)) is not None, picture
    assert temporaries(tmp_path / "seg") == []

    frames = fcn_edge(["run", assets["clip"], "-o", tmp_path / "frames", "--model", assets["model"], "--headless"],
                      cwd=tmp_path, fsize=2048)  # an image-folder output of `run`: each JPEG is larger
    line = frames.one_line_error()
    assert frames.rc == 1 and f"{tmp_path / 'frames'}/00000000.jpg: cannot write: file too large" in line, line
    assert list((tmp_path / "frames").iterdir()) == []  # no part-written picture under any name

    unfused = make_tiny_onnx(tmp_path / "m.onnx")
    previous = tmp_path / "m.int8.onnx"
    previous.write_bytes(b"previous")
    quant = fcn_edge(["quantize", unfused, "--precision", "int8", "--calib", assets["images"], "--no-cache", "--quiet",
                      "-o", previous], cwd=tmp_path, fsize=LIMIT)
    line = quant.one_line_error()
    assert quant.rc == 1, quant.err
    assert line == (f"fcn-edge quantize: error: {previous}: cannot write: file too large (the file-size limit, "
                    "`ulimit -f`, or the file system's largest file) [EFBIG]; the previous m.int8.onnx was kept"), line
    assert previous.read_bytes() == b"previous" and temporaries(tmp_path) == []


def _wait_for_frames(folder: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while not any(p.stat().st_size > 4096 for p in temporaries(folder)):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run never started writing"
        time.sleep(0.02)


def test_sigkill_mid_run_then_the_next_run_cleans_up(assets, tmp_path):
    long_clip = assets["long"]
    out = tmp_path / "out.mp4"
    previous = _previous(tmp_path, "out.mp4", assets)
    before = previous.read_bytes()
    proc = spawn(["run", long_clip, "-o", out, "--model", assets["model"], "--headless", "--threads", "1"], tmp_path)
    _wait_for_frames(tmp_path, proc)
    proc.kill()
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    stale = temporaries(tmp_path)
    assert len(stale) == 1 and f".partial-{proc.pid}-" in stale[0].name  # the killed run's, named by its pid
    assert out.read_bytes() == before  # the kill never touched the final name

    older = temporary_path(tmp_path / "run-20261128.mp4", pid=proc.pid)  # a dead run of another name (a service's)
    alive = temporary_path(tmp_path / "other.mp4", pid=os.getpid())  # a live process's: never touched
    for path in (older, alive):
        path.write_bytes(b"x")
    again = _run(assets, out)
    assert again.rc == 0, again.err
    assert temporaries(tmp_path) == [alive]  # the dead runs' temporaries are gone
    assert frames_in(out) == 60


def test_sighup_finalises_and_exits_129_with_the_status_file(assets, tmp_path):
    import json

    long_clip = assets["long"]
    out, status = tmp_path / "out.mp4", tmp_path / "status.json"
    proc = spawn(["run", long_clip, "-o", out, "--model", assets["model"], "--headless", "--threads", "1",
                  "--status", status, "--status-interval", "0.2"], tmp_path)
    _wait_for_frames(tmp_path, proc)
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGHUP, err
    report = json.loads(status.read_text())
    assert report["state"] == "interrupted" and report["exit_code"] == 129
    assert report["stopped_by"] == "SIGHUP received" and report["output"] == str(out)
    assert 0 < report["frames_out"] == frames_in(out) < 2000
    assert temporaries(tmp_path) == []


GST_WRITE = """
import sys
import numpy as np
from pathlib import Path
from fcn_edge.errors import OutputError
from fcn_edge.video import sinks
from fcn_edge.video.sinks import SinkOptions, VideoFileSink

sinks.GROWTH_CHECK_S = float(sys.argv[2])
sink = VideoFileSink(Path(sys.argv[1]), 25, SinkOptions(encoder="x264enc"))
rng = np.random.default_rng(0)
try:
    for _ in range(120):
        sink.write(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    sink.close()
except OutputError as exc:
    sink.close()
    print(exc)
    sys.exit(1)
print("written", sink.codec)
"""


@pytest.mark.parametrize("check_s, caught", [
    (1.0, "the finished video does not open as a video"),  # 120 frames take < 1 s: caught at the read-back
    (0.0, "writing stopped after frame"),  # the file's growth looked at every frame: caught mid-run
])
def test_file_size_limit_on_the_gstreamer_writer(tmp_path, check_s, caught):
    """The GStreamer path (x264enc; OpenCV 4.x, whose write() reports nothing): a write that
    fails at the file-size limit is caught, from the file's growth or when the file is read
    back; the previous file is kept."""
    from rtsp_harness import SYSTEM_PYTHON

    probe = "import cv2, sys; sys.exit(0 if 'GStreamer:                   YES' in cv2.getBuildInformation() else 3)"
    if not Path(SYSTEM_PYTHON).exists() or subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True).returncode:
        pytest.skip(f"{SYSTEM_PYTHON} has no cv2 with GStreamer: apt-get install python3-opencv python3-numpy gstreamer1.0-plugins-ugly")
    from fault_injection import env
    from fault_injection import _limit_fsize

    out = tmp_path / "out.mp4"
    out.write_bytes(b"previous")
    done = subprocess.run([SYSTEM_PYTHON, "-c", GST_WRITE, str(out), str(check_s)], cwd=tmp_path, env=env(), capture_output=True,
                          text=True, timeout=120, preexec_fn=_limit_fsize(LIMIT))
    assert done.returncode == 1, done.stdout + done.stderr[-3000:]
    message = done.stdout.strip()
    assert message.startswith(f"{out}: {caught}") and "file too large" in message and "[EFBIG]" in message, message
    assert message.endswith("the previous out.mp4 was kept"), message
    assert out.read_bytes() == b"previous" and temporaries(tmp_path) == []
