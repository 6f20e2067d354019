#!/usr/bin/env python3
"""Soak test: many frames through the pipelined video loop, watching the process's memory.

    python tools/soak.py                          # 100,000 frames, default model at 128x160
    python tools/soak.py --export-architecture fcn8s_tiny --input-size 64x80   # faster (needs torch)
    python tools/soak.py --frames 300000 --smooth 0.5 --json soak.json
    python tools/soak.py --model m.onnx --input-size 32x48

Frames come from memory (a few synthetic 120x160 street-like frames in turn, a file source
as far as the pipeline knows: none dropped), go through the real threads, queues, runtime,
renderer and statistics overlay, and end in a null sink that samples the resident set size
(RSS, from /proc/self/statm) every ``--sample-every`` frames. Printed: RSS after the
warm-up and at the end, and the growth per 10,000 frames, the least-squares slope of RSS
over the frames after the warm-up (target: under 0.1 MB per 10,000 frames, about 10 bytes
a frame; the per-stage statistics alone grew by 0.6 KB a frame before they were bounded).
The memory the statistics hold (fcn_edge.video.stats.StageRecorder.state_bytes) is
printed too. On a shared machine the RSS of one process is still its own; only the
duration is noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fcn_edge.atomic import write_json_atomic  # noqa: E402
from fcn_edge.video.sinks import NullSink  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE


def synthetic_frames(count: int, size: Tuple[int, int]) -> List[np.ndarray]:
    """Sky, road and a moving box: enough structure for a real mask, cheap to make."""
    h, w = size
    frames = []
    for i in range(count):
        frame = np.empty((h, w, 3), np.uint8)
        frame[: h // 2] = (200, 150, 90)
        frame[h // 2 :] = (90, 90, 90)
        x = (i * w // count) % max(1, w - 24)
        frame[h // 2 - 12 : h // 2 + 12, x : x + 24] = (30, 30, 200)
        frames.append(frame)
    return frames


class MemorySource:
    """``total`` frames cycled from a few in memory; not live, so the pipeline drops none."""

    is_live = False
    uri = "memory://soak"

    def __init__(self, frames: List[np.ndarray], total: int):
        self._frames, self._total, self._next = frames, total, 0

    @property
    def fps(self) -> Optional[float]:
        return 30.0

    def open(self) -> None:
        pass

    def read(self) -> Optional[np.ndarray]:
        if self._next >= self._total:
            return None
        frame = self._frames[self._next % len(self._frames)].copy()  # a camera hands out new buffers
        self._next += 1
        return frame

    def close(self) -> None:
        pass


class SamplingSink(NullSink):
    """Discards frames; every ``every`` frames records (frame, RSS bytes, seconds)."""

    def __init__(self, every: int):
        super().__init__("null://soak")
        self.every = every
        self.samples: List[Tuple[int, int, float]] = []
        self._t0 = time.perf_counter()

    def write(self, frame: np.ndarray) -> None:
        super().write(frame)
        if self.frames_written % self.every == 0:
            self.samples.append((self.frames_written, rss_bytes(), time.perf_counter() - self._t0))


def growth_per_10k(samples: List[Tuple[int, int, float]], after: int) -> Tuple[float, int]:
    """Least-squares slope of RSS over frames after the warm-up, in bytes per 10,000 frames."""
    points = [(f, r) for f, r, _ in samples if f >= after]
    if len(points) < 2:
        return float("nan"), len(points)
    frames = np.array([p[0] for p in points], np.float64)
    rss = np.array([p[1] for p in points], np.float64)
    slope = np.polyfit(frames, rss, 1)[0]
    return float(slope * 10_000), len(points)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="ONNX or engine (default: the shipped default model)")
    p.add_argument("--export-architecture", metavar="NAME",
                   help="export this registry architecture (random weights, fused, mask out) and soak it, "
                   "e.g. fcn8s_tiny; needs torch")
    p.add_argument("--input-size", default="128x160", help="network input size HxW (default 128x160)")
    p.add_argument("--frame-size", default="120x160", help="frame size HxW (default 120x160)")
    p.add_argument("--frames", type=int, default=100_000, help="frames to run (default 100,000)")
    p.add_argument("--warmup", type=int, default=20_000,
                   help="frames before the first RSS that counts (default 20,000: past the statistics' "
                   "switch from exact samples to the sketch at 10,000)")
    p.add_argument("--sample-every", type=int, default=1_000, help="frames between RSS samples (default 1,000)")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (default 1)")
    p.add_argument("--smooth", type=float, help="also run the temporal EMA with this weight")
    p.add_argument("--no-stats", action="store_true", help="no statistics overlay")
    p.add_argument("--json", type=Path, help="write every sample and the figures as JSON")
    args = p.parse_args(argv)

    from fcn_edge.artifacts.shapes import parse_hw
    from fcn_edge.runtime import RenderConfig, load_segmenter
    from fcn_edge.video import PipelineConfig, VideoPipeline

    if args.frames <= args.warmup:
        p.error("--frames must exceed --warmup")
    input_size, frame_size = parse_hw(args.input_size), parse_hw(args.frame_size)
    model = args.model
    if args.export_architecture:  # in a child process: torch stays out of the measured one
        import subprocess
        import tempfile

        model = Path(tempfile.mkdtemp(prefix="fcn-edge-soak-")) / f"{args.export_architecture}.onnx"
        code = ("import sys; from fcn_edge.export import ExportConfig, export_architecture; "
                f"export_architecture({args.export_architecture!r}, sys.argv[1], ExportConfig(input_size={input_size!r}, "
                "fuse_preprocess=True, output='mask', dynamic_batch=False, dynamic_shape=False, check_parity=False))")
        subprocess.run([sys.executable, "-c", code, str(model)], check=True, cwd=REPO,
                       env=dict(os.environ, PYTHONPATH=str(REPO)))
    segmenter = load_segmenter(model, input_size=input_size, threads=args.threads)
    sink = SamplingSink(args.sample_every)
    config = PipelineConfig(render=RenderConfig(legend=True), show_stats=not args.no_stats,
                            max_frames=args.frames, smoothing_alpha=args.smooth)
    start_rss = rss_bytes()
    pipeline = VideoPipeline(MemorySource(synthetic_frames(8, frame_size), args.frames), segmenter, sink, config)
    print(f"soak: {args.frames:,} frames {frame_size[0]}x{frame_size[1]} through {segmenter.description}, "
          f"input {input_size[0]}x{input_size[1]}, pid {os.getpid()}", file=sys.stderr)
    t0 = time.perf_counter()
    summary = pipeline.run()
    wall = time.perf_counter() - t0
    segmenter.close()

    samples = sink.samples
    warm = next(((f, r) for f, r, _ in samples if f >= args.warmup), None)
    end = samples[-1] if samples else None
    slope, points = growth_per_10k(samples, args.warmup)
    mb = 1024 * 1024
    figures = {
        "frames": summary.frames_out, "seconds": round(wall, 1), "fps": round(summary.frames_out / wall, 1),
        "rss_start_mb": round(start_rss / mb, 2),
        "rss_after_warmup_mb": round(warm[1] / mb, 2) if warm else None, "warmup_frames": warm[0] if warm else None,
        "rss_end_mb": round(end[1] / mb, 2) if end else None,
        "rss_min_after_warmup_mb": round(min(r for f, r, _ in samples if f >= args.warmup) / mb, 2) if warm else None,
        "rss_max_after_warmup_mb": round(max(r for f, r, _ in samples if f >= args.warmup) / mb, 2) if warm else None,
        "growth_per_10k_frames_mb": round(slope / mb, 4), "growth_fit_points": points,
        "stats_state_kb": round(pipeline.stages.state_bytes() / 1024, 1) if hasattr(pipeline.stages, "state_bytes") else None,
        "dropped": summary.dropped,
    }
    print(f"frames            {figures['frames']:,} in {figures['seconds']} s ({figures['fps']} FPS)")
    print(f"RSS start         {figures['rss_start_mb']} MB (model loaded)")
    print(f"RSS after warm-up {figures['rss_after_warmup_mb']} MB (frame {figures['warmup_frames']:,})")
    print(f"RSS end           {figures['rss_end_mb']} MB (min {figures['rss_min_after_warmup_mb']}, "
          f"max {figures['rss_max_after_warmup_mb']} after warm-up)")
    print(f"growth            {figures['growth_per_10k_frames_mb']} MB per 10,000 frames "
          f"(least squares over {points} samples; target < 0.1)")
    print(f"statistics held   {figures['stats_state_kb']} KB")
    if args.json:
        write_json_atomic(args.json, {"args": vars(args) | {"json": str(args.json)}, "figures": figures,
                                      "samples": [{"frame": f, "rss_bytes": r, "seconds": round(t, 3)}
                                                  for f, r, t in samples]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
