"""``fcn-edge compare MODEL.onnx VARIANT.onnx ... --data DIR``: how much a variant loses.

The first model is the reference (normally the FP32 export). For each model it prints
mean IU and pixel accuracy on the dataset's split, the share of mask pixels that agree with
the reference's (at each image's own size, as the runtime returns masks), the max/mean
absolute logit difference (network outputs, when both output logits), the median compute
time of one frame and the file size. All run through the runtime on ONNX Runtime's CPU
provider. Below that, the IU of every class for every model, with the classes whose IU
drops by more than ``--class-drop`` points against the reference flagged ('!'): INT8 hurts
small, rare classes first and a mean hides it. ``--fusion`` adds, for each Q/DQ variant,
how TensorRT would fuse its Q/DQ pairs and how much of it runs in INT8, FP16 and FP32.
"""

from __future__ import annotations

import argparse
import sys

from fcn_edge.cli.args import (
    add_data_options, add_json, add_model_argument, add_quiet, data_spec, non_negative_float, non_negative_int,
    positive_int, write_json_report,
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
    p.add_argument("--class-drop", type=non_negative_float, default=1.0, metavar="POINTS",
                   help="flag classes whose IU drops by more than this many points (default 1)")
    p.add_argument("--fusion", action="store_true",
                   help="also print the predicted TensorRT fusion report of each INT8 model made for TensorRT")
    add_json(p)
    add_quiet(p)
    return p


def run(args: argparse.Namespace) -> int:
    from fcn_edge.precision.compare import CompareConfig, compare_variants, format_class_table, format_table

    config = CompareConfig(latency_runs=args.runs, threads=args.threads, progress=not args.quiet,
                           class_drop=args.class_drop / 100.0)
    reports = compare_variants(args.model[0], args.model[1:], data_spec(args), config)
    out = sys.stderr if args.json == "-" else sys.stdout  # stdout carries the JSON then
    print(f"{reports[0].images} images of {args.data} (split {reports[0].split}); reference {reports[0].name}",
          file=out)
    print(format_table(reports), file=out)
    print(file=out)
    print(format_class_table(reports, config.class_drop), file=out)
    fusion = {}
    if args.fusion:
        from fcn_edge.precision.fusion import format_fusion_report, fusion_report

        from fcn_edge.artifacts import read_onnx_meta

        for r in reports:
            history = " ".join(read_onnx_meta(r.path).history)
            if r.precision == "int8" and "target=onnxruntime" not in history:  # TensorRT-flavoured Q/DQ
                report = fusion_report(r.path)
                fusion[r.name] = report.as_dict()
                print(f"\n{r.name}", file=out)
                print("\n".join(format_fusion_report(report)), file=out)
    data = {"reports": [r.as_dict() for r in reports], "class_drop_threshold": config.class_drop}
    if args.fusion:
        data["fusion"] = fusion
    write_json_report(args.json, data)
    return 0
