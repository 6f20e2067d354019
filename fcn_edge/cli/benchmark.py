"""``fcn-edge benchmark``: latency, throughput and (optionally) accuracy of model variants."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fcn_edge.artifacts.variants import VARIANT_TAGS
from fcn_edge.cli.args import (
    ExtendList, add_backend_options, add_batch, add_data_options, add_frame_size, add_input_size, add_json,
    add_model_argument, comma_choices, data_spec, default_model, model_or_default, non_negative_int, positive_float,
    positive_int, write_json_report,
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
    add_frame_size(p, "size of the synthetic BGR frames fed, as from a camera (default 480x640)", default=(480, 640))
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
    from fcn_edge.bench.benchmark import BenchConfig, benchmark_models
    from fcn_edge.bench.runner import RunConfig
    from fcn_edge.bench.sysinfo import collect_system_info

    config = BenchConfig(
        precisions=tuple(args.precision or ()),
        input_sizes=tuple(args.input_size or [None]),
        backends=tuple(args.backend or ["auto"]),
        providers=tuple(args.providers) if args.providers else None,
        device=args.device,
        threads=args.threads,
        cuda_graph=args.cuda_graph,
        cuda=args.cuda,
        batch=args.batch,
        run=RunConfig(
            iterations=args.iterations,
            duration_s=None if args.iterations is not None else (args.duration or 3.0),
            warmup=args.warmup,
            frame_size=tuple(args.frame_size),
            cv_threshold=None if args.cv_threshold is None else args.cv_threshold / 100.0,
            image=str(args.image) if args.image else None,
            rounds=args.rounds,
        ),
        data=data_spec(args) if args.data else None,
        trtexec=args.trtexec,
    )
    models = [model_or_default(m) for m in args.model] or [default_model()]

    out = sys.stderr if args.json == "-" else sys.stdout  # stdout carries the JSON then
    system = collect_system_info()
    print("\n".join(render.system_lines(system)), file=out)
    print(render.timing_line(config.run), file=out)

    def show(result):
        if not args.brief:
            print("\n" + render.format_variant(result), file=out, flush=True)

    report = benchmark_models(models, config, system=system, on_result=show)
    print("\n" + "\n".join(render.summary_lines(report, warnings=args.brief)), file=out)
    where = write_json_report(args.json, report.as_dict())
    if where and where != "stdout":
        print(f"wrote {where}", file=out)
    if args.csv:
        print(f"wrote {render.write_csv(report, args.csv)}", file=out)
    if args.plot:
        from fcn_edge.bench.plot import write_plot

        print(f"wrote {write_plot(report, args.plot)}", file=out)
    return 0
