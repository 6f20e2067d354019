"""``fcn-edge benchmark``: latency, throughput and (optionally) accuracy of model variants."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fcn_edge.artifacts.variants import VARIANT_TAGS
from fcn_edge.cli.args import (
    ExtendList, add_backend_options, add_batch, add_data_options, add_input_size, add_json, add_model_argument,
    comma_choices, default_model, model_or_default, non_negative_int, positive_float, positive_int, size_hw,
)

EPILOG = """\
examples:
  fcn-edge benchmark                                          # the built-in model, 3 s at batch 1
  fcn-edge benchmark model.engine --batch 8 --iterations 500 --trtexec
  fcn-edge benchmark model.onnx --precision fp32,fp16,int8 --input-size 256x320,384x480 \\
      --data synthetic --plot sweep.png --json sweep.json     # precision x resolution sweep

Latencies are per call (one frame at batch 1, one batch at --batch B), in ms. Stages:
preprocess (resize, normalise), h2d, compute, d2h (copies; 0 on CPU backends), decode
(argmax, resize to the frame). Device stages use CUDA events where the backend has them.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "benchmark",
        help="latency/throughput per stage, sweeps over precision x resolution x backend",
        description="Time models end to end and per stage (mean, min, max, p50/p90/p95/p99, "
        "coefficient of variation), as trtexec reports, plus throughput and system facts.",
        epilog=EPILOG,
    )
    add_model_argument(p, ".engine, .onnx (any precision variant), .pt or triton://HOST:PORT/NAME (then the "
                       "server's queue and compute times are reported too); several are timed one after another "
                       "(default: the built-in default model)", optional=True, several=True)
    p.add_argument("--precision", type=comma_choices(VARIANT_TAGS), action=ExtendList, metavar="LIST",
                   help="time MODEL's precision variants found beside it, e.g. fp32,fp16,int8,int8-ort "
                   "(model.fp16.onnx, model.int8.onnx, ... as `fcn-edge quantize` names them)")
    add_input_size(p, "network input size(s), comma-separated for a sweep (a dynamic-shape model; "
                   "default: the model's own)", several=True)
    add_backend_options(p, several=True)
    add_batch(p, "also measure throughput at this batch (latency is always at batch 1)")
    bound = p.add_mutually_exclusive_group()
    bound.add_argument("--iterations", type=positive_int, metavar="N", help="timed calls per variant and batch")
    bound.add_argument("--duration", type=positive_float, metavar="S",
                       help="seconds of timed calls per variant and batch (default 3, at least 10 calls)")
    p.add_argument("--rounds", type=positive_int, default=1, metavar="R",
                   help="load every variant at once and time them round-robin in R rounds, sharing "
                   "the iterations/duration out, so background load hits all alike (default 1: one after another)")
    p.add_argument("--warmup", type=non_negative_int, default=5, metavar="W", help="untimed calls first (default 5)")
    p.add_argument("--frame-size", type=size_hw, default=(480, 640), metavar="HxW",
                   help="size of the synthetic BGR frames fed, as from a camera (default 480x640)")
    p.add_argument("--image", type=Path, metavar="FILE",
                   help="feed this image (at its own size) instead of synthetic frames")
    p.add_argument("--cv-threshold", type=positive_float, metavar="PCT",
                   help="warn when the coefficient of variation exceeds PCT%% (default: 1 for CUDA "
                   "events, as trtexec; 5 for host timings)")
    add_data_options(p)
    p.add_argument("--trtexec", action="store_true",
                   help="also run trtexec on each .engine and print the runtime's overhead ratio")
    add_json(p, "write the full report as JSON to FILE ('-': stdout)")
    p.add_argument("--csv", type=Path, metavar="FILE", help="write per-stage statistics as CSV")
    p.add_argument("--plot", type=Path, metavar="FILE.png",
                   help="latency distribution per variant and accuracy vs latency (needs matplotlib)")
    p.add_argument("--brief", action="store_true", help="print only the system facts and summary table")
    return p


def run(args: argparse.Namespace) -> int:
    from fcn_edge.bench import report as render
    from fcn_edge.bench.runner import BenchmarkError, RunConfig
    from fcn_edge.bench.sweep import evaluate_accuracy, run_sweep
    from fcn_edge.bench.sysinfo import collect_system_info
    from fcn_edge.bench.variants import expand_models, expand_variants

    if args.trtexec:
        from fcn_edge.bench.trtexec import trtexec_path

        if trtexec_path() is None:
            raise BenchmarkError("--trtexec: trtexec is not on PATH (JetPack: /usr/src/tensorrt/bin)")
    config = RunConfig(
        iterations=args.iterations,
        duration_s=None if args.iterations is not None else (args.duration or 3.0),
        warmup=args.warmup,
        frame_size=tuple(args.frame_size),
        cv_threshold=None if args.cv_threshold is None else args.cv_threshold / 100.0,
        image=str(args.image) if args.image else None,
        rounds=args.rounds,
    )
    sizes = args.input_size or [None]
    models = expand_models([model_or_default(m) for m in args.model] or [default_model()], args.precision)
    variants = expand_variants(models, args.backend or ["auto"], sizes, args.providers, args.threads)

    dataset = None
    if args.data:
        from fcn_edge.data import open_dataset

        dataset = open_dataset(args.data, args.split, args.data_format)

    to_stdout = str(args.json) == "-"
    out = sys.stderr if to_stdout else sys.stdout
    system = collect_system_info()
    print("System", file=out)
    for line in system.lines():
        print(f"  {line}", file=out)
    if system.jetson and system.jetson.hint:
        print(f"[W] {system.jetson.hint}", file=out)
    bound = (f"{config.iterations} calls" if config.iterations
             else f"{config.duration_s:g} s (at least {config.min_iterations} calls)")
    if config.rounds > 1:
        bound += f" in {config.rounds} interleaved rounds"
    print(f"Timing {len(variants)} variant(s): {bound} per batch size after {config.warmup} warm-up "
          f"calls, on {render.input_description(config)}", file=out)

    def show(result):
        if not args.brief:
            print("\n" + render.format_variant(result), file=out, flush=True)

    def evaluator(segmenter, data):
        return evaluate_accuracy(segmenter, data, limit=args.limit)

    report = run_sweep(variants, args.batch, config, system, dataset=dataset, evaluator=evaluator,
                       trtexec=args.trtexec, on_result=show)
    summary_title = "Summary (batch 1 latency" + (
        f"; throughput at batch 1 and {args.batch}" if args.batch > 1 else "") + ")"
    print("\n" + summary_title, file=out)
    print(render.format_summary(report), file=out)
    if args.brief:
        for warning in render.warnings_of(report):
            print(f"[W] {warning}", file=out)
    for hint in render.stability_hints(report):
        print(f"hint: {hint}", file=out)
    if args.json:
        if to_stdout:
            print(render.report_json(report))
        else:
            print(f"wrote {render.write_json(report, args.json)}", file=out)
    if args.csv:
        print(f"wrote {render.write_csv(report, args.csv)}", file=out)
    if args.plot:
        from fcn_edge.bench.plot import write_plot

        print(f"wrote {write_plot(report, args.plot)}", file=out)
    return 0
