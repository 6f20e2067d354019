"""``run --status FILE``: the health file a watchdog reads, and the systemd unit that runs ``run``."""

from __future__ import annotations

import json
import os
import shlex
import time
from pathlib import Path

from fcn_edge.cli.main import build_parser, main, parse_args
from fcn_edge.video.status import SCHEMA, StatusFile
from tiny_models import make_tiny_onnx
from video_fixtures import write_clip

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "tools" / "systemd" / "fcn-edge-run.service"
KEYS = {"schema", "state", "pid", "started_at", "updated_at", "uptime_s", "interval_s", "source", "sink", "frames_in",
        "frames_out", "dropped", "reconnects", "fps", "fps_mean", "last_error", "last_error_at", "stopped_by",
        "exit_code"}


def test_the_status_file_is_rewritten_every_interval(tmp_path):
    counters = {"frames_in": 0, "frames_out": 0, "fps": 30.0}
    status = StatusFile(tmp_path / "status.json", 0.05, lambda: dict(counters))
    status.set(source="csi://0", sink="/data/out.mp4")
    assert json.loads(status.path.read_text())["state"] == "starting"
    status.start()
    seen = set()
    deadline = time.monotonic() + 10
    while len(seen) < 3 and time.monotonic() < deadline:
        counters["frames_out"] += 1
        counters["frames_in"] += 1
        seen.add(json.loads(status.path.read_text())["frames_out"])  # always whole JSON: renamed into place
        time.sleep(0.01)
    assert len(seen) >= 3 and status.writes >= 3
    status.finish("finished", 0, None, stopped_by="end of input")
    final = json.loads(status.path.read_text())
    assert KEYS <= set(final) and final["schema"] == SCHEMA and final["pid"] == os.getpid()
    assert final["state"] == "finished" and final["exit_code"] == 0 and final["fps"] is None
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]  # no temporaries left


def test_a_status_file_that_cannot_be_written_never_stops_the_run(tmp_path, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    status = StatusFile(blocker / "status.json", 0.02)
    status.start()
    time.sleep(0.15)
    status.finish("finished", 0)
    assert status.writes == 0
    warnings = [r.getMessage() for r in caplog.records if "status file" in r.getMessage()]
    assert len(warnings) == 1 and "retrying every 0.02 s" in warnings[0]  # logged once, not per try


def test_run_status_of_a_finished_and_a_failed_run(tmp_path):
    clip = write_clip(tmp_path / "clip.avi", 12)
    model = make_tiny_onnx(tmp_path / "m.onnx", fused=True, output_kind="mask")
    status = tmp_path / "status.json"
    assert main(["run", str(clip), "-o", "null", "--model", str(model), "--headless", "--status", str(status)]) == 0
    report = json.loads(status.read_text())
    assert report["state"] == "finished" and report["exit_code"] == 0 and report["source"] == str(clip)
    assert report["frames_in"] == report["frames_out"] == 12 and report["dropped"] == 0
    assert report["stopped_by"] == "end of input" and report["last_error"] is None

    # a camera that is not there (at boot, say): failed, exit 1, and why
    assert main(["run", "/dev/video99", "--model", str(model), "--headless", "--status", str(status)]) == 1
    report = json.loads(status.read_text())
    assert report["state"] == "failed" and report["exit_code"] == 1
    assert report["last_error"].startswith("/dev/video99: no such camera device")


def _unit() -> dict:
    fields: dict = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            fields.setdefault(key.strip(), []).append(value.strip())
    return fields


def test_the_systemd_unit_runs_a_command_fcn_edge_accepts():
    """The unit in tools/systemd is what the README documents: its ExecStart must parse, restart
    on failure but not on bad input (exit 2), and count a signal stop as clean."""
    unit = _unit()
    (exec_start,) = unit["ExecStart"]
    shell, flag, script = shlex.split(exec_start)  # /bin/sh -c '...': the output is named by the start time
    assert (shell, flag) == ("/bin/sh", "-c") and script.startswith("exec ")
    assert "$(date +%%Y%%m%%dT%%H%%M%%S)" in script  # %% is a literal % in a unit file
    argv = shlex.split(script[len("exec "):].replace("$(date +%%Y%%m%%dT%%H%%M%%S)", "20261129T080000"))
    assert Path(argv[0]).name == "fcn-edge"
    args = parse_args(build_parser(), argv[1:])
    assert args.command == "run" and args.status is not None and args.headless
    assert args.reconnect_timeout > 0
    assert unit["Restart"] == ["on-failure"] and unit["RestartPreventExitStatus"] == ["2"]
    assert set(unit["SuccessExitStatus"][0].split()) == {"130", "143"}
    assert unit["KillSignal"] == ["SIGTERM"] and int(unit["TimeoutStopSec"][0]) >= 10
