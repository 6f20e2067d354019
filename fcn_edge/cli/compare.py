"""``fcn-edge compare MODEL.onnx VARIANT.onnx ... --data DIR``: how much a variant loses.

The first model is the reference (normally the FP32 export). For each model it prints
mean IU and pixel accuracy on the dataset's split, argmax agreement with the reference,
the max/mean absolute logit difference (when both output logits), the median ONNX Runtime
CPU latency of one frame and the file size. All run on the CPU through ONNX Runtime.
"""

from __future__ import annotations

import argparse

from fcn_edge.cli.args import non_negative_int


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "compare",
        help="accuracy, agreement, logit error, CPU latency and size of FP32/FP16/INT8 variants",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("models", nargs="+", metavar="MODEL.onnx", help="the reference model first, then its variants")
    p.add_argument("--data", required=True, help="dataset root (VOC, Cityscapes, image/mask folders) or 'synthetic'")
    p.add_argument("--split", default=None, help="split to evaluate (default: val, or every image of a folder pair without split lists)")
    p.add_argument("--limit", type=non_negative_int, help="only the first N images")
    p.add_argument("--runs", type=non_negative_int, default=10, help="timed runs per model (0: no timing; default 10)")
    p.add_argument("--threads", type=non_negative_int, default=0, help="ONNX Runtime CPU threads (default: ORT's choice)")
    p.add_argument("--json", metavar="FILE", help="also write the reports as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def run(args: argparse.Namespace) -> int:
    from fcn_edge.meta import write_json_atomic
    from fcn_edge.precision.compare import CompareConfig, compare_variants, format_table

    reference, variants = args.models[0], args.models[1:]
    reports = compare_variants(reference, variants, args.data, args.split, CompareConfig(
        limit=args.limit or None, latency_runs=args.runs, threads=args.threads, progress=not args.quiet))
    print(f"{reports[0].images} images of {args.data} (split {reports[0].split}); reference {reports[0].name}")
    print(format_table(reports))
    if args.json:
        write_json_atomic(args.json, {"reports": [r.as_dict() for r in reports]})
    return 0
