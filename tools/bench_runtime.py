#!/usr/bin/env python3
"""Per-stage timing of the runtime: preprocess, inference (h2d + compute + d2h), decode, render.

By default it takes the built-in default model (fcn_edge.weights.default_checkpoint(), or
``--checkpoint``/``--arch``), exports it three times, unfused (float NCHW in, logits out; host
resizes, normalises and takes the argmax), fused (uint8 BGR in, argmax mask out; host
resizes) and fused-resize (``--fuse-resize``: frames in at their own size, mask out at it;
the host copies in and out), and times them through ONNX Runtime on frames of each
``--frame`` size (default 640x480). It prints the median of each stage, the host ms per
frame (preprocess + decode) and the host overhead, (preprocess + decode) / inference, and
how often the fused-resize masks agree with the host-resized ones. ``--model`` times
existing artifacts instead (.onnx, .engine, .pt); ``--torch`` adds the checkpoint through
the PyTorch backend (on CUDA when torch sees a GPU).

    python tools/bench_runtime.py                          # default model, three variants, 640x480
    python tools/bench_runtime.py --frame 640x480 1280x720 --runs 50
    python tools/bench_runtime.py --model m.engine --cuda-graph
    python tools/bench_runtime.py --arch fcn8s_resnet18 --runs 50 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

STAGES = ("preprocess_ms", "h2d_ms", "compute_ms", "d2h_ms", "infer_ms", "decode_ms", "render_ms", "total_ms")


def frame_size(text: str) -> Tuple[int, int]:
    w, h = (int(v) for v in text.lower().split("x"))
    return h, w


def synthetic_frames(size: Tuple[int, int], count: int = 8) -> List[np.ndarray]:
    """Smooth synthetic BGR frames (a few different ones, so caches do not flatter)."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = []
    for k in range(count):
        frame = np.stack([
            127 + 120 * np.sin(xx / (23.0 + k) + k),
            127 + 120 * np.cos(yy / (17.0 + k)),
            127 + 120 * np.sin((xx + yy) / (31.0 + 2 * k)),
        ], axis=-1)
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return frames


def time_segmenter(segmenter, frames: List[np.ndarray], runs: int, warmup: int, render_mode: str,
                   legend: bool = False) -> Dict[str, List[float]]:
    from fcn_edge.runtime import RenderConfig, Renderer

    meta = segmenter.meta
    renderer = Renderer(meta.palette, RenderConfig(render_mode, legend=legend), meta.class_names, stream=True)
    for i in range(warmup):
        segmenter.segment(frames[i % len(frames)])
    samples: Dict[str, List[float]] = {k: [] for k in STAGES}
    for i in range(runs):
        frame = frames[i % len(frames)]
        result = segmenter.segment(frame)
        t0 = time.perf_counter()
        renderer(frame, result.mask)
        render_ms = (time.perf_counter() - t0) * 1e3
        t = result.timings
        for key, value in t.as_dict().items():
            samples[key].append(value)
        samples["render_ms"].append(render_ms)
        samples["total_ms"][-1] += render_ms
    return samples


def summarise(samples: Dict[str, List[float]]) -> Dict[str, Dict[str, float]]:
    out = {}
    for key, values in samples.items():
        if values:
            out[key] = {"median": statistics.median(values), "mean": statistics.fmean(values),
                        "p90": float(np.percentile(values, 90)), "min": min(values)}
    med = {k: v["median"] for k, v in out.items()}
    host = [p + d for p, d in zip(samples["preprocess_ms"], samples["decode_ms"])]
    out["host_ms"] = {"median": statistics.median(host), "mean": statistics.fmean(host), "p90": float(np.percentile(host, 90)),
                      "min": min(host)}
    out["host_overhead_pct"] = {"median": 100.0 * (med["preprocess_ms"] + med["decode_ms"]) / med["infer_ms"]}
    return out


def export_variants(checkpoint: Path, workdir: Path, input_size: Optional[Tuple[int, int]]) -> List[Tuple[str, Path]]:
    from fcn_edge.export.config import ExportConfig
    from fcn_edge.export.exporter import export_checkpoint
    from fcn_edge.models.checkpoint import load_checkpoint
    from fcn_edge.optional import is_available

    meta = load_checkpoint(checkpoint).meta
    size = input_size or meta.input_size
    variants = []
    for name, fused, resize in (("unfused", False, False), ("fused", True, False), ("fused-resize", True, True)):
        config = ExportConfig(input_size=size, fuse_preprocess=fused, output="mask" if fused else "logits",
                              fuse_resize=resize, check_parity=False, simplify=is_available("onnxslim"))
        path = workdir / f"model.{name}.onnx"
        export_checkpoint(checkpoint, path, config)
        variants.append((name, path))
    return variants


# The default model's architecture and classes, for timing before its weights are trained.
DEFAULT_ARCH, DEFAULT_DATASET, DEFAULT_INPUT = "fcn8s_mobilenetv3", "synthetic", (256, 320)


def random_checkpoint(arch: str, workdir: Path, input_size: Tuple[int, int], dataset: str = "voc") -> Path:
    from fcn_edge.artifacts import meta_for_dataset
    from fcn_edge.models.checkpoint import save_checkpoint
    from fcn_edge.models.registry import build_model

    meta = meta_for_dataset(arch, dataset, input_size=input_size).with_history("bench_runtime: random weights")
    return save_checkpoint(workdir / f"{arch}.random.pt", build_model(arch, meta.num_classes), meta)


def default_checkpoint() -> Optional[Path]:
    from fcn_edge.errors import FcnEdgeError

    try:
        from fcn_edge.weights import default_checkpoint as getter

        return Path(getter())
    except (ImportError, FcnEdgeError):
        return None


def time_cuda_copies(input_size: Tuple[int, int], num_classes: int, runs: int) -> Dict[str, Dict[str, float]]:
    """Pinned host<->device copies through fcn_edge.runtime.cuda_buffers, per variant's I/O.

    What a TensorRT engine moves per frame: unfused, float32 NCHW in and float32 logits out;
    fused, uint8 NHWC in and a uint8 mask out. Timed with CUDA events on one stream.
    """
    from fcn_edge.runtime import cuda_buffers as cb

    h, w = input_size
    sizes = {"unfused": (h * w * 3 * 4, num_classes * h * w * 4), "fused": (h * w * 3, h * w)}
    ctx = cb.CudaContext(0)
    gpu = ctx.name
    out: Dict[str, Dict[str, float]] = {}
    with ctx:
        stream = cb.Stream()
        events = [cb.Event() for _ in range(3)]
        for name, (n_in, n_out) in sizes.items():
            host_in, host_out = cb.pinned_empty((n_in,), np.uint8), cb.pinned_empty((n_out,), np.uint8)
            dev_in, dev_out = cb.DeviceBuffer(n_in), cb.DeviceBuffer(n_out)
            h2d, d2h = [], []
            for _ in range(runs):
                events[0].record(stream)
                cb.copy_htod_async(dev_in, host_in, stream)
                events[1].record(stream)
                cb.copy_dtoh_async(host_out, dev_out, stream)
                events[2].record(stream)
                events[2].synchronize()
                h2d.append(events[0].ms_until(events[1]))
                d2h.append(events[1].ms_until(events[2]))
            out[name] = {"input_bytes": n_in, "output_bytes": n_out, "h2d_ms": statistics.median(h2d),
                         "d2h_ms": statistics.median(d2h)}
            dev_in.free()
            dev_out.free()
            del host_in, host_out
        del stream, events
    ctx.close()
    print(f"\npinned copies on {gpu} (median of {runs}, CUDA events)")
    for name, row in out.items():
        print(f"  {name:<8} in {row['input_bytes'] / 1e3:8.1f} kB: {row['h2d_ms']:.3f} ms   "
              f"out {row['output_bytes'] / 1e3:8.1f} kB: {row['d2h_ms']:.3f} ms")
    return out


def mask_agreement(segmenters: Dict[str, object], frames: List[np.ndarray]) -> Optional[float]:
    """Fraction of pixels where the fused-resize mask equals the host-resized fused one."""
    if "fused-resize" not in segmenters or "fused" not in segmenters:
        return None
    same = total = 0
    for frame in frames:
        a = segmenters["fused-resize"].segment(frame).mask
        b = segmenters["fused"].segment(frame).mask
        same += int((a == b).sum())
        total += a.size
    return same / total


def print_table(rows: List[Tuple[str, str, Dict]], frame: Tuple[int, int], agreement: Optional[float] = None) -> None:
    print(f"\nframes {frame[1]}x{frame[0]}; median ms per frame (mean in brackets)")
    header = (f"{'variant':<13} {'preprocess':>12} {'h2d':>7} {'compute':>14} {'d2h':>7} {'decode':>12} {'host':>7} "
              f"{'render':>12} {'total':>14} {'host/infer':>10}")
    print(header)
    print("-" * len(header))
    for name, _desc, s in rows:
        def cell(key, width):
            return f"{s[key]['median']:.2f} ({s[key]['mean']:.2f})".rjust(width)
        print(f"{name:<13} {cell('preprocess_ms', 12)} {s['h2d_ms']['median']:7.2f} {cell('compute_ms', 14)} "
              f"{s['d2h_ms']['median']:7.2f} {cell('decode_ms', 12)} {s['host_ms']['median']:7.2f} {cell('render_ms', 12)} "
              f"{cell('total_ms', 14)} {s['host_overhead_pct']['median']:9.2f}%")
    for name, desc, _s in rows:
        print(f"  {name}: {desc}")
    if agreement is not None:
        print(f"  fused-resize masks equal the host-resized (fused) ones on {agreement:.4%} of pixels")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", type=Path, help=".pt to export and time (default: the built-in default model)")
    src.add_argument("--arch", help=f"registry architecture with random weights (VOC classes); without a default model installed, {DEFAULT_ARCH} with its synthetic classes is used")
    src.add_argument("--model", type=Path, nargs="+", help="existing artifacts to time as they are")
    p.add_argument("--input-size", type=frame_size, help="network input WxH (default: the model's)")
    p.add_argument("--frame", type=frame_size, nargs="+", default=[(480, 640)], help="frame WxH, one or more (default 640x480)")
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, help="CPU threads for ONNX Runtime / torch")
    p.add_argument("--providers", help="ONNX Runtime providers, e.g. cuda,cpu")
    p.add_argument("--torch", action="store_true", help="also time the checkpoint through the PyTorch backend")
    p.add_argument("--cuda-graph", action="store_true", help="TensorRT engines: capture a CUDA graph")
    p.add_argument("--render", choices=("overlay", "mask", "both"), default="overlay")
    p.add_argument("--legend", action="store_true", help="draw the class legend while rendering (as run --legend)")
    p.add_argument("--cuda-copies", action="store_true", help="also time pinned H2D/D2H copies of each variant's I/O (needs pycuda and a GPU)")
    p.add_argument("--json", type=Path, help="write all numbers here")
    args = p.parse_args(argv)

    from fcn_edge.runtime import load_segmenter

    providers = args.providers.split(",") if args.providers else None
    tables = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        checkpoint = None
        if args.model:
            targets = [(m.name, m) for m in args.model]
        else:
            checkpoint = args.checkpoint or (None if args.arch else default_checkpoint())
            arch = args.arch or DEFAULT_ARCH
            source = str(checkpoint) if checkpoint else f"{arch} (random weights; the default model's weights are not installed)"
            if checkpoint is None:
                checkpoint = random_checkpoint(arch, workdir, args.input_size or DEFAULT_INPUT,
                                               "voc" if args.arch else DEFAULT_DATASET)
            print(f"model: {source}", file=sys.stderr)
            targets = export_variants(checkpoint, workdir, args.input_size)
            if args.torch:
                targets.append(("torch", checkpoint))
        segmenters = {}
        try:
            for name, path in targets:
                kwargs = {"threads": args.threads}
                if path.suffix == ".onnx":
                    kwargs["providers"] = providers
                if path.suffix in (".engine", ".plan", ".trt"):
                    kwargs["cuda_graph"] = args.cuda_graph
                    kwargs.pop("threads")
                segmenters[name] = load_segmenter(path, **kwargs)
            for size in args.frame:
                frames = synthetic_frames(size)
                rows = []
                for name, seg in segmenters.items():
                    input_size, num_classes = seg.input_size, seg.meta.num_classes
                    samples = time_segmenter(seg, frames, args.runs, args.warmup, args.render, args.legend)
                    rows.append((name, seg.description, summarise(samples)))
                agreement = mask_agreement(segmenters, frames)
                print_table(rows, size, agreement)
                tables.append((size, rows, agreement))
        finally:
            for seg in segmenters.values():
                seg.close()
    copies = None
    if args.cuda_copies:
        copies = time_cuda_copies(input_size, num_classes, max(args.runs, 20))
    if args.json:
        args.json.write_text(json.dumps({"runs": args.runs, "cuda_copies": copies, "frames": [
            {"frame": list(size), "fused_resize_agreement": agreement,
             "variants": {n: {"description": d, **s} for n, d, s in rows}} for size, rows, agreement in tables]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
