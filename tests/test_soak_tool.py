"""tools/soak.py runs (a few hundred frames here; the 100,000-frame soak is run by hand and its
numbers reported, never asserted: speed and memory are measured by tools, not tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fault_injection import env
from tiny_models import make_tiny_onnx

TOOL = Path(__file__).resolve().parents[1] / "tools" / "soak.py"


def test_soak_tool_reports_rss_and_growth(tmp_path):
    model = make_tiny_onnx(tmp_path / "m.onnx", fused=True, output_kind="mask")
    out = tmp_path / "soak.json"
    done = subprocess.run([sys.executable, str(TOOL), "--model", str(model), "--input-size", "32x48",
                           "--frames", "600", "--warmup", "200", "--sample-every", "100", "--smooth", "0.5",
                           "--json", str(out)], env=env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for label in ("RSS after warm-up", "RSS end", "MB per 10,000 frames"):
        assert label in done.stdout, done.stdout
    report = json.loads(out.read_text())
    figures = report["figures"]
    assert figures["frames"] == 600 and figures["dropped"] == 0 and figures["growth_fit_points"] == 5
    assert [s["frame"] for s in report["samples"]] == list(range(100, 601, 100))
    assert figures["rss_end_mb"] == round(report["samples"][-1]["rss_bytes"] / 2**20, 2)
