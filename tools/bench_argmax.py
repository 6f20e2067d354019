#!/usr/bin/env python3
"""Time the two mask heads in ONNX Runtime: ``topk`` (ONNX ArgMax) vs ``reduce`` (ReduceMax,
Equal, Where, ReduceMax), alone on segmentation-sized scores and inside the default model.

    python tools/bench_argmax.py                       # heads alone + the default model, fused mask
    python tools/bench_argmax.py --sizes 21x256x320 --runs 200 --no-model
    python tools/bench_argmax.py --threads 2 --json argmax.json

The heads alone are the graphs ``fcn_edge.export.heads.argmax_model`` builds (float32 scores
in, int32 mask out; ``--float16`` adds float16 scores); each is checked to give exactly
``np.argmax``'s classes on the timed input before it is timed. The model part exports the
shipped checkpoint (or ``--checkpoint``) twice, fused preprocessing and uint8 mask, once per
argmax, and times ONNX Runtime on 256x320 frames. Medians (and p90) in ms. On a GPU the
question is TensorRT's TopK layer; these are ONNX Runtime CPU numbers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

METHODS = ("topk", "reduce")


def shape_arg(text: str) -> Tuple[int, int, int]:
    c, h, w = (int(v) for v in text.lower().split("x"))
    return c, h, w


def session(model, threads):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    source = model if isinstance(model, str) else model.SerializeToString()
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def time_runs(run, runs: int, warmup: int) -> Dict[str, float]:
    for _ in range(warmup):
        run()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        run()
        samples.append((time.perf_counter() - t0) * 1e3)
    return {"median_ms": statistics.median(samples), "p90_ms": float(np.percentile(samples, 90)),
            "min_ms": min(samples)}


def bench_heads(sizes, dtypes, runs, warmup, threads) -> List[Dict]:
    from fcn_edge.export.heads import argmax_model

    rows = []
    rng = np.random.default_rng(0)
    for classes, h, w in sizes:
        x = rng.standard_normal((1, classes, h, w)).astype(np.float32)
        for dtype in dtypes:
            fed = x.astype(dtype).astype(np.float32)
            expected = fed.argmax(axis=1)
            row = {"shape": f"1x{classes}x{h}x{w}", "dtype": dtype}
            for method in METHODS:
                sess = session(argmax_model(classes, method, dtype), threads)
                (got,) = sess.run(None, {"input": fed})
                if not np.array_equal(got, expected):
                    raise SystemExit(f"{method} head disagrees with np.argmax at {row['shape']} {dtype}")
                row[method] = time_runs(lambda: sess.run(None, {"input": fed}), runs, warmup)
            rows.append(row)
    return rows


def bench_model(checkpoint, runs, warmup, threads) -> List[Dict]:
    from fcn_edge.export import ExportConfig, export_checkpoint
    from fcn_edge.models.checkpoint import load_checkpoint

    size = tuple(load_checkpoint(checkpoint).meta.input_size)
    frames = np.random.default_rng(1).integers(0, 256, (1, *size, 3), dtype=np.uint8)
    rows, masks = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in METHODS:
            out = Path(tmp) / f"{method}.onnx"
            export_checkpoint(checkpoint, out, ExportConfig(input_size=size, fuse_preprocess=True, output="mask",
                                                            argmax=method, check_parity=False))
            sess = session(str(out), threads)
            (masks[method],) = sess.run(None, {"input": frames})
            rows.append({"method": method, "frames": f"1x{size[0]}x{size[1]}x3",
                         **time_runs(lambda: sess.run(None, {"input": frames}), runs, warmup)})
    agreement = float((masks["topk"] == masks["reduce"]).mean())
    for row in rows:
        row["mask_equal_to_topk"] = agreement
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=shape_arg, nargs="+", default=[(21, 256, 320), (21, 480, 640), (19, 512, 1024)],
                   metavar="CxHxW", help="score shapes of the heads alone (default: VOC at 256x320 and 480x640, "
                   "Cityscapes at 512x1024)")
    p.add_argument("--float16", action="store_true", help="also time float16 scores")
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads (default: ORT's)")
    p.add_argument("--checkpoint", type=Path, help="model to export with each head (default: the shipped default model)")
    p.add_argument("--no-model", action="store_true", help="time the heads alone only")
    p.add_argument("--json", type=Path, help="write the numbers here")
    args = p.parse_args(argv)

    dtypes = ["float32", "float16"] if args.float16 else ["float32"]
    heads = bench_heads(args.sizes, dtypes, args.runs, args.warmup, args.threads)
    print(f"mask heads alone in ONNX Runtime (CPU), median ms over {args.runs} runs (p90); classes equal np.argmax")
    print(f"{'scores':<18} {'dtype':<8} {'topk (ArgMax)':>16} {'reduce':>16} {'reduce/topk':>12}")
    for row in heads:
        t, r = row["topk"], row["reduce"]
        print(f"{row['shape']:<18} {row['dtype']:<8} {t['median_ms']:8.2f} ({t['p90_ms']:5.2f}) "
              f"{r['median_ms']:8.2f} ({r['p90_ms']:5.2f}) {r['median_ms'] / t['median_ms']:11.2f}x")
    model = []
    if not args.no_model:
        checkpoint = args.checkpoint
        if checkpoint is None:
            from fcn_edge.weights import default_checkpoint

            checkpoint = default_checkpoint()
        model = bench_model(checkpoint, args.runs, args.warmup, args.threads)
        print(f"\n{Path(checkpoint).name}, fused preprocessing + uint8 mask, whole graph, median ms (p90)")
        for row in model:
            print(f"  {row['method']:<7} {row['frames']}: {row['median_ms']:7.2f} ({row['p90_ms']:.2f}); "
                  f"mask equal to topk's on {row['mask_equal_to_topk']:.4%} of pixels")
    if args.json:
        args.json.write_text(json.dumps({"runs": args.runs, "threads": args.threads, "heads": heads, "model": model},
                                        indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
