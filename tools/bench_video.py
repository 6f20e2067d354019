#!/usr/bin/env python3
"""Throughput of the pipelined video loop vs a sequential loop, and what EMA smoothing does.

    python tools/bench_video.py                      # default model, synthetic clip
    python tools/bench_video.py --model m.onnx --input clip.mp4 --threads 2
    python tools/bench_video.py --export-architecture fcn8s_resnet18   # random weights

1. Inference latency: ``Segmenter.segment`` (preprocess + network + decode, all the
   inference thread does) timed frame by frame on the clip, after a warm-up.
2. The same clip through ``VideoPipeline.run_sequential`` and ``VideoPipeline.run`` into the
   same sink (an MP4 by default, with the statistics overlay): read, infer, render and encode.
   Target: pipelined FPS >= 0.95 x 1 / (inference latency).
3. Temporal EMA smoothing (if the clip has ground-truth masks beside it, as the synthetic
   clip does): its cost per frame, label flicker between consecutive frames, and mIoU.
Prints a table and, with --json, writes every number.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np


def _model_path(args, workdir: Path) -> Path:
    if args.model:
        return Path(args.model)
    if args.export_architecture:
        from fcn_edge.classes import resolve_classes
        from fcn_edge.export import export_architecture  # torch: tools may use it

        out = workdir / f"{args.export_architecture}.onnx"
        classes = resolve_classes("synthetic" if _has_dataset("synthetic") else "voc")
        export_architecture(args.export_architecture, out, classes=classes)
        return out
    try:
        from fcn_edge import weights
    except ImportError:
        sys.exit("no --model given and fcn_edge.weights (the default model) is not available; "
                 "pass --model or --export-architecture fcn8s_resnet18")
    getter = getattr(weights, "default_onnx", None) or getattr(weights, "default_checkpoint")
    return Path(getter())


def _has_dataset(name: str) -> bool:
    from fcn_edge.classes import DATASETS

    return name in DATASETS


def _clip(args) -> Path:
    if args.input:
        return Path(args.input)
    from fcn_edge.data.synthetic import ensure_clip

    return ensure_clip()


def _read_frames(clip: Path, limit: Optional[int]) -> List[np.ndarray]:
    from fcn_edge.video import open_source

    source = open_source(str(clip), reconnect=None)
    frames = []
    try:
        while limit is None or len(frames) < limit:
            frame = source.read()
            if frame is None:
                break
            frames.append(frame)
    finally:
        source.close()
    return frames


def measure_latency(segmenter, frames: List[np.ndarray], warmup: int) -> Dict[str, float]:
    for frame in frames[:warmup]:
        segmenter.segment(frame)
    wall, network = [], []
    for frame in frames:
        t0 = time.perf_counter()
        result = segmenter.segment(frame)
        wall.append((time.perf_counter() - t0) * 1e3)
        t = result.timings
        network.append(t.h2d_ms + t.compute_ms + t.d2h_ms)
    return {
        "frames": len(frames),
        "segment_ms_p50": float(np.median(wall)),
        "segment_ms_mean": float(np.mean(wall)),
        "network_ms_p50": float(np.median(network)),
    }


def run_loop(mode: str, segmenter, clip: Path, frames: Optional[int], sink_kind: str, workdir: Path, smoothing: Optional[float] = None):
    from fcn_edge.video import PipelineConfig, VideoPipeline, make_sink, open_source

    source = open_source(str(clip), reconnect=None)
    target = str(workdir / f"{mode}.mp4") if sink_kind == "mp4" else "null://"
    sink = make_sink(target, source.fps)
    pipeline = VideoPipeline(source, segmenter, sink, PipelineConfig(max_frames=frames, smoothing_alpha=smoothing))
    return pipeline.run() if mode == "pipelined" else pipeline.run_sequential()


def smoothing_study(segmenter, clip: Path, frames: List[np.ndarray], alphas: List[float]) -> Optional[Dict]:
    """Flicker (share of pixels changing label frame to frame), mIoU and cost, per EMA alpha."""
    masks_dir = clip.parent / "masks"
    if not masks_dir.is_dir():
        return None
    from fcn_edge.data.images import read_label_png
    from fcn_edge.video import TemporalEMA

    truth = [read_label_png(masks_dir / f"{i:06d}.png") for i in range(len(frames))]
    info_path = clip.parent / "clip.json"
    clip_classes = json.loads(info_path.read_text()).get("classes") if info_path.is_file() else None
    comparable = clip_classes is not None and tuple(clip_classes) == tuple(segmenter.meta.class_names)
    raw = []
    for frame in frames:
        result = segmenter.segment(frame)
        raw.append((result.mask, result.confidence))
    k = segmenter.meta.num_classes
    work = tuple(getattr(segmenter, "input_size", segmenter.meta.input_size))
    rows = {"ground truth": _flicker(truth)}
    report = {"ground_truth_flicker": rows["ground truth"], "alphas": {}}
    for alpha in [None] + alphas:
        if alpha is None:
            masks, cost = [m for m, _ in raw], []
        else:
            ema = TemporalEMA(k, alpha, work)
            masks, cost = [], []
            for mask, conf in raw:
                t0 = time.perf_counter()
                masks.append(ema(mask, conf))
                cost.append((time.perf_counter() - t0) * 1e3)
        report["alphas"]["off" if alpha is None else str(alpha)] = {
            "flicker": _flicker(masks),
            "miou": _miou(masks, truth, k, segmenter.meta.ignore_index) if comparable else None,
            "ema_ms_p50": float(np.median(cost)) if cost else 0.0,
            "weights": "confidence" if raw[0][1] is not None else "one-hot",
        }
    return report


def _flicker(masks: List[np.ndarray]) -> float:
    if len(masks) < 2:
        return 0.0
    return float(np.mean([np.mean(a != b) for a, b in zip(masks[:-1], masks[1:])]))


def _miou(pred: List[np.ndarray], truth: List[np.ndarray], k: int, ignore: int) -> float:
    conf = np.zeros((k, k), np.int64)
    for p, t in zip(pred, truth):
        valid = t != ignore
        conf += np.bincount(t[valid].astype(np.int64) * k + p[valid], minlength=k * k).reshape(k, k)
    inter = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - inter
    present = union > 0
    return float(np.mean(inter[present] / union[present])) if present.any() else 0.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help=".onnx/.engine/.pt (default: the built-in default model)")
    parser.add_argument("--export-architecture", help="export this registry model with random weights and use it")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--input", help="video file (default: the synthetic clip)")
    parser.add_argument("--frames", type=int, help="frames per loop run (default: the whole clip)")
    parser.add_argument("--threads", type=int, help="CPU threads for ONNX Runtime")
    parser.add_argument("--sink", choices=("mp4", "null"), default="mp4")
    parser.add_argument("--filter-mode", choices=("point", "linear"), default="point")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1, help="interleaved rounds of latency/sequential/pipelined; the median round is reported")
    parser.add_argument("--latency-frames", type=int, default=60, help="frames timed for the inference latency")
    parser.add_argument("--smoothing", type=float, nargs="*", default=[0.7, 0.5, 0.3], help="EMA alphas to study (none: skip)")
    parser.add_argument("--json", type=Path, help="write all numbers here")
    args = parser.parse_args(argv)

    from fcn_edge.runtime import DecodeConfig, load_segmenter

    with tempfile.TemporaryDirectory(prefix="bench-video-") as tmp:
        workdir = Path(tmp)
        model = _model_path(args, workdir)
        clip = _clip(args)
        with load_segmenter(model, args.backend, decode=DecodeConfig(args.filter_mode), threads=args.threads) as seg:
            if not seg.meta.fused_argmax:  # the smoothing study weighs votes by confidence where there are scores
                seg.set_decode(DecodeConfig(args.filter_mode, confidence=True))
            frames = _read_frames(clip, args.frames)
            print(f"model: {seg.description}\nclip: {clip} ({len(frames)} frames {frames[0].shape[1]}x{frames[0].shape[0]})\n"
                  f"sink: {args.sink}, filter {args.filter_mode}, threads {args.threads or 'ORT default'}", flush=True)
            rounds = []
            for _ in range(args.repeats):  # interleaved, so load drift hits every mode alike
                latency = measure_latency(seg, frames[: args.latency_frames], args.warmup)
                sequential = run_loop("sequential", seg, clip, args.frames, args.sink, workdir)
                pipelined = run_loop("pipelined", seg, clip, args.frames, args.sink, workdir)
                rounds.append((latency, sequential, pipelined))
                print(f"round {len(rounds)}: latency p50 {latency['segment_ms_p50']:.2f} ms -> {1e3 / latency['segment_ms_p50']:.2f} FPS; "
                      f"sequential {sequential.fps:.2f} FPS; pipelined {pipelined.fps:.2f} FPS", flush=True)
            study = smoothing_study(seg, clip, frames, args.smoothing) if args.smoothing else None
            smoothed_run = run_loop("pipelined", seg, clip, args.frames, args.sink, workdir, smoothing=args.smoothing[1] if len(args.smoothing) > 1 else args.smoothing[0]) if args.smoothing else None

    # the round with the median pipelined/target ratio stands for the run
    ratios = [p.fps * l["segment_ms_p50"] / 1e3 for l, _, p in rounds]
    latency, sequential, pipelined = rounds[int(np.argsort(ratios)[len(ratios) // 2])]
    target = 1e3 / latency["segment_ms_p50"]
    ratio = pipelined.fps / target
    print(f"\ninference latency (segment: preprocess+network+decode): p50 {latency['segment_ms_p50']:.2f} ms, "
          f"mean {latency['segment_ms_mean']:.2f} ms (network p50 {latency['network_ms_p50']:.2f} ms)")
    print(f"1 / latency:      {target:7.2f} FPS")
    print(f"sequential loop:  {sequential.fps:7.2f} FPS  ({sequential.frames_out} frames, {sequential.wall_s:.2f} s)")
    print(f"pipelined loop:   {pipelined.fps:7.2f} FPS  ({pipelined.frames_out} frames, {pipelined.wall_s:.2f} s)")
    print(f"pipelined / (1/latency) = {ratio:.3f}  (target >= 0.95: {'met' if ratio >= 0.95 else 'NOT met'})")
    print(f"pipelined / sequential  = {pipelined.fps / sequential.fps:.3f}")
    busy = pipelined.latency_ms["inference"].mean * pipelined.frames_inferred / (pipelined.wall_s * 1e3)
    print(f"inference thread busy in the pipelined loop: {100 * busy:.1f}% of its wall time "
          f"(its mean segment time there: {pipelined.latency_ms['inference'].mean:.2f} ms vs {latency['segment_ms_mean']:.2f} ms alone)")
    if len(rounds) > 1:
        print("ratios to 1/latency per round: " + ", ".join(f"{r:.3f}" for r in ratios))
    for name, s in (("sequential", sequential), ("pipelined", pipelined)):
        lat = s.latency_ms
        print(f"  {name:<10} inference p50 {lat['inference'].p50:6.2f} ms  render p50 {lat['render'].p50:6.2f} ms  "
              f"write p50 {lat['write'].p50:6.2f} ms  capture p50 {lat['capture'].p50:6.2f} ms  e2e p50 {lat['end_to_end'].p50:7.2f} ms")
    if study:
        print(f"\ntemporal EMA ({study['alphas']['off']['weights'] if 'off' in study['alphas'] else ''} votes; "
              f"ground-truth flicker {study['ground_truth_flicker']:.4f}):")
        print("  alpha   flicker    mIoU   EMA ms p50")
        for alpha, row in study["alphas"].items():
            miou = "n/a" if row["miou"] is None else f"{row['miou']:.4f}"
            print(f"  {alpha:<6} {row['flicker']:8.4f} {miou:>7} {row['ema_ms_p50']:10.2f}")
    if smoothed_run is not None:
        print(f"pipelined loop with EMA: {smoothed_run.fps:7.2f} FPS, smoothing p50 {smoothed_run.latency_ms['smoothing'].p50:.2f} ms "
              f"(on the inference thread)")
    if args.json:
        data = {
            "model": str(model), "clip": str(clip), "threads": args.threads, "sink": args.sink,
            "latency": latency, "one_over_latency_fps": target,
            "sequential": sequential.to_dict(), "pipelined": pipelined.to_dict(),
            "ratio_to_target": ratio, "inference_thread_busy": busy, "smoothing": study,
            "rounds": [{"latency": l, "sequential_fps": sq.fps, "pipelined_fps": pp.fps} for l, sq, pp in rounds],
            "pipelined_with_ema": smoothed_run.to_dict() if smoothed_run is not None else None,
        }
        args.json.write_text(json.dumps(data, indent=2, default=lambda o: o.__dict__))
    return 0


if __name__ == "__main__":
    sys.exit(main())
