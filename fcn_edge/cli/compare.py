"""``fcn-edge compare MODEL.onnx VARIANT.onnx ... --data DIR``: how much a variant loses.

The first model is the reference (normally the FP32 export). For each model it prints
mean IU and pixel accuracy on the dataset's split, the share of mask pixels that agree with
the reference's (at each image's own size, as the runtime returns masks), the max/mean
absolute logit difference (network outputs, when both output logits), the median compute
time of one frame and the file size. All run through the runtime on ONNX Runtime's CPU
provider.
"""

from __future__ import annotations

import argparse
import sys

from fcn_edge.cli.args import (
    add_data_options, add_json, add_model_argument, add_quiet, data_spec, non_negative_int, positive_int,
    write_json_report,
)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "compare",
        help="accuracy, agreement, logit error, CPU latency and size of FP32/FP16/INT8 variants",
        description=__doc__,
    )
    add_model_argument(p, "the reference model (normally the FP32 export), then its variants", several=True)
    add_data_options(p, default="synthetic")
    p.add_argument("--runs", type=non_negative_int, default=10, help="timed runs per model (0: no timing; default 10)")
    p.add_argument("--threads", type=positive_int, metavar="N", help="CPU threads of ONNX Runtime (default: its choice)")
    add_json(p)
    add_quiet(p)
    return p


def run(args: argparse.Namespace) -> int:
    from fcn_edge.precision.compare import CompareConfig, compare_variants, format_table

    reports = compare_variants(args.model[0], args.model[1:], data_spec(args), CompareConfig(
        latency_runs=args.runs, threads=args.threads, progress=not args.quiet))
    out = sys.stderr if args.json == "-" else sys.stdout  # stdout carries the JSON then
    print(f"{reports[0].images} images of {args.data} (split {reports[0].split}); reference {reports[0].name}",
          file=out)
    print(format_table(reports), file=out)
    write_json_report(args.json, {"reports": [r.as_dict() for r in reports]})
    return 0
