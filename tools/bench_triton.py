#!/usr/bin/env python3
"""Aggregate FPS of 1, 2 and 4 concurrent streams through ``fcn-edge serve`` against one
local stream, with the server's batch statistics.

    python tools/bench_triton.py                                 # the default model, 10 s each
    python tools/bench_triton.py --model m.onnx --streams 1,2,4,8 --duration 20 --queue-delay-us 2000

Starts ``fcn-edge serve MODEL`` (PyTriton; ONNX Runtime on this machine's CPU or GPU) on
loopback ports under the serving interpreter (``--python``, default ``.venv-triton/bin/python``
as ``make triton-venv`` makes it), then for each stream count runs that many threads, each
with its own ``triton://`` client (system shared memory, as any client on the same machine
gets), segmenting the same camera-sized frame as fast as it can for ``--duration`` seconds.
A stream is ``Segmenter.segment``: preprocess here, network on the server, decode here.
The local row is one stream on the same model through the local backend. Per row: frames of
all streams per second, each stream's client latency p50, and from Triton's statistics API
the executions per inference (the dynamic batcher at work), batch sizes and per-request queue
and compute times. With --json every number is written too.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _free_ports(count: int) -> List[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start_server(args, model: Path, log: Path):
    http, grpc, metrics = _free_ports(3)
    command = [args.python, "-m", "fcn_edge", "serve", str(model), "--name", "bench", "--host", "127.0.0.1",
               "--http-port", str(http), "--grpc-port", str(grpc), "--metrics-port", str(metrics),
               "--queue-delay-us", str(args.queue_delay_us), "--instances", str(args.instances)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with open(log, "w") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.monotonic() + 120
    while "SIGTERM stops the server" not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            sys.exit(f"fcn-edge serve did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)
    return process, f"triton://127.0.0.1:{grpc}/bench"


def _streams(segmenters, frame: np.ndarray, duration: float) -> Dict[str, object]:
    """Each segmenter on its own thread for ``duration`` s: frames and latencies per stream."""
    latencies: List[List[float]] = [[] for _ in segmenters]
    start_line = threading.Barrier(len(segmenters) + 1)
    stop = threading.Event()

    def loop(i):
        start_line.wait()
        while not stop.is_set():
            t0 = time.perf_counter()
            segmenters[i].segment(frame)
            latencies[i].append((time.perf_counter() - t0) * 1e3)

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(len(segmenters))]
    for t in threads:
        t.start()
    start_line.wait()
    t0 = time.perf_counter()
    time.sleep(duration)
    stop.set()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    frames = sum(len(values) for values in latencies)
    return {"streams": len(segmenters), "frames": frames, "wall_s": wall, "fps": frames / wall,
            "per_stream_fps": [len(v) / wall for v in latencies],
            "p50_ms": float(np.median([x for v in latencies for x in v])) if frames else 0.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model file (default: the built-in model's ONNX)")
    parser.add_argument("--streams", default="1,2,4", help="stream counts through the server (default 1,2,4)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per row (default 10)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed calls per client first (default 5)")
    parser.add_argument("--frame-size", default="480x640", help="camera frame HxW (default 480x640)")
    parser.add_argument("--queue-delay-us", type=int, default=2000, help="the server's batcher delay (default 2000)")
    parser.add_argument("--instances", type=int, default=1, help="server model instances (default 1)")
    parser.add_argument("--threads", type=int, help="ONNX Runtime threads, here and on the server (default: its own)")
    parser.add_argument("--python", default=str(REPO / ".venv-triton" / "bin" / "python"),
                        help="interpreter for fcn-edge serve (needs nvidia-pytriton and a shared libpython)")
    parser.add_argument("--json", help="write every number to this file")
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    from fcn_edge.runtime import load_segmenter
    from fcn_edge.weights import default_onnx

    model = Path(args.model) if args.model else default_onnx()
    h, w = (int(v) for v in args.frame_size.lower().split("x"))
    frame = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    counts = [int(c) for c in args.streams.split(",")]
    rows = []

    with load_segmenter(model, threads=args.threads) as local:
        for _ in range(args.warmup):
            local.segment(frame)
        row = _streams([local], frame, args.duration)
        row.update(where="local", description=local.description)
        rows.append(row)

    log = Path(tempfile.mkdtemp(prefix="bench-triton-")) / "serve.log"
    process, url = _start_server(args, model, log)
    try:
        for count in counts:
            clients = [load_segmenter(url) for _ in range(count)]
            for client in clients:
                for _ in range(args.warmup):
                    client.segment(frame)
            before = clients[0].backend.statistics()
            row = _streams(clients, frame, args.duration)
            stats = clients[0].backend.statistics().since(before)
            row.update(where="triton", description=clients[0].description, shared_memory=clients[0].backend.shared_memory,
                       server=stats.as_dict())
            rows.append(row)
            for client in clients:
                client.close()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(60)

    print(f"model {model.name}, frames {h}x{w}, {args.duration:g} s per row, server queue delay "
          f"{args.queue_delay_us} us, {args.instances} instance(s); {rows[0]['description']}")
    print(f"{'streams':>7} {'where':<7} {'FPS total':>9} {'FPS/stream':>10} {'p50 ms':>7} "
          f"{'inferences':>10} {'executions':>10} {'mean batch':>10} {'queue ms':>8} {'compute ms':>10}  batch sizes")
    for row in rows:
        server = row.get("server")
        extra = (f"{server['inference_count']:>10} {server['execution_count']:>10} {server['mean_batch']:>10.2f} "
                 f"{server['queue_ms']:>8.2f} {server['compute_ms']:>10.2f}  "
                 + ", ".join(f"{n}x{size}" for size, n in server["batch_executions"].items())
                 if server else f"{'-':>10} {'-':>10} {'-':>10} {'-':>8} {'-':>10}")
        print(f"{row['streams']:>7} {row['where']:<7} {row['fps']:>9.1f} {np.mean(row['per_stream_fps']):>10.1f} "
              f"{row['p50_ms']:>7.1f} {extra}")
    print(f"(server log: {log})")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": str(model), "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
