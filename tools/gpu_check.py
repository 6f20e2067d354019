#!/usr/bin/env python3
"""The one script a session with an NVIDIA GPU runs: doctor, the GPU-marked tests, the runtime bench.

No machine of ours has a GPU; this is what to run, in one call, where one is lent:

1. ``fcn-edge doctor --json`` with each CUDA implementation (FCN_EDGE_CUDA=pycuda, then
   cuda-python): the machine's verdicts, and where TensorRT is installed engines built,
   checked, run and timed per precision;
2. the tests marked ``gpu`` or ``trt`` (CUDA buffers and CUDA graphs across shape changes
   through both implementations, real engines against ONNX Runtime where TensorRT is here);
3. ``tools/bench_runtime.py --torch`` (the runtime's stages at 640x480; PyTorch on CUDA).

Every step runs under its own time limit and writes its output under ``--out`` (default
``$OUT`` if set, else ./gpu-check); a failing step does not stop the next. The summary
printed at the end, and written to summary.json, is what to paste into the closing note::

    python tools/gpu_check.py --out /tmp/gpu-check            # everything
    python tools/gpu_check.py --skip bench --timeout 240      # doctor and tests only
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
STEPS = ("doctor", "tests", "bench")


def run_step(name: str, argv: Sequence[str], out: Path, timeout: float, env: Dict[str, str]) -> Dict[str, object]:
    """Run ``argv``, its stdout and stderr into ``out/<name>.log``; what happened, as a dict."""
    log = out / f"{name}.log"
    start = time.perf_counter()
    print(f"== {name}: {' '.join(argv)}", flush=True)
    try:
        with open(log, "w") as handle:
            done = subprocess.run(list(argv), cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                  timeout=timeout, check=False)
        code = done.returncode
    except subprocess.TimeoutExpired:
        code = "timeout"
    seconds = round(time.perf_counter() - start, 1)
    tail = log.read_text(errors="replace").strip().splitlines()[-15:]
    print("\n".join(f"   {line}" for line in tail), flush=True)
    print(f"== {name}: exit {code} in {seconds} s", flush=True)
    return {"command": list(argv), "exit": code, "seconds": seconds, "log": str(log), "tail": tail}


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "gpu-check"),
                   help="where logs, JSON and summary.json go (default: $OUT, else ./gpu-check)")
    p.add_argument("--skip", action="append", choices=STEPS, default=[], help="a step to leave out (repeatable)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per step (default 300)")
    p.add_argument("--runs", type=int, default=30, help="timed runs of tools/bench_runtime.py (default 30)")
    args = p.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH")))))
    python = sys.executable
    results: Dict[str, object] = {"python": python, "nvidia_smi": shutil.which("nvidia-smi")}
    if shutil.which("nvidia-smi"):
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,compute_cap,memory.total",
                              "--format=csv,noheader"], capture_output=True, text=True, check=False)
        results["gpu"] = smi.stdout.strip()
        print(f"GPU: {results['gpu']}", flush=True)
    if "doctor" not in args.skip:
        for cuda in ("pycuda", "cuda-python"):
            report = out / f"doctor-{cuda}.json"
            step = run_step(f"doctor-{cuda}", [python, "-m", "fcn_edge", "doctor", "--cuda", cuda, "--json",
                                               str(report)], out, args.timeout, dict(env, FCN_EDGE_CUDA=cuda))
            if report.is_file():
                data = json.loads(report.read_text())
                step["verdicts"] = {c["name"]: f"{c['verdict']}: {c['found']}" for c in data["checks"]}
            results[f"doctor-{cuda}"] = step
    if "tests" not in args.skip:
        results["tests"] = run_step("tests", [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "gpu or trt",
                                              "-rs", "--junitxml", str(out / "tests.xml"), "tests/"],
                                    out, args.timeout, env)
    if "bench" not in args.skip:
        results["bench"] = run_step("bench", [python, "tools/bench_runtime.py", "--torch", "--runs", str(args.runs),
                                              "--json", str(out / "bench_runtime.json")], out, args.timeout, env)
    (out / "summary.json").write_text(json.dumps(results, indent=2, default=str))
    print(f"summary: {out / 'summary.json'}")
    failed = [name for name, step in results.items() if isinstance(step, dict) and step.get("exit") not in (0, None)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
