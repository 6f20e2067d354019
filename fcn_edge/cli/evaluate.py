"""``fcn-edge evaluate MODEL --data DIR``: mean IU, pixel accuracy, mean accuracy and
frequency-weighted IU (as the FCN paper defines them) and a per-class IU table.

MODEL is anything the runtime loads: a TensorRT .engine, an .onnx (FP32, FP16 or INT8
variant) or a .pt checkpoint, so the same command compares every step of the chain.
Frames go through the runtime's own preprocessing at their full size, and the mask comes
back at that size: what is scored is what a deployment would output.

Examples:
  fcn-edge evaluate                                  # the built-in model on the synthetic val split
  fcn-edge evaluate model.int8.onnx --data ~/VOCdevkit/VOC2012 --split val --json int8.json
  fcn-edge evaluate model.engine --data ~/cityscapes --limit 100
"""

from __future__ import annotations

import argparse
import sys

from fcn_edge.cli.args import (
    add_backend_options, add_data_options, add_input_size, add_json, add_model_argument, add_quiet, data_spec,
    load_options, model_or_default, write_json_report,
)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "evaluate", help="accuracy of a model (.pt, .onnx or .engine) on a dataset: mean IU, pixel accuracy",
        description=__doc__,
    )
    add_model_argument(p, "model file (default: the built-in default model)", optional=True)
    add_data_options(p, default="synthetic")
    add_input_size(p, "network input size for a dynamic-shape model (default: the model's)")
    add_backend_options(p)
    add_json(p, "also write the full report (per class, confusion matrix) as JSON to FILE ('-': stdout)")
    add_quiet(p)
    return p


def run(args: argparse.Namespace) -> int:
    from fcn_edge.evaluate.report import format_metrics
    from fcn_edge.evaluate.runner import EvaluateConfig, evaluate_model

    model = model_or_default(args.model)
    report = evaluate_model(model, data_spec(args), EvaluateConfig(load_options(args), progress=not args.quiet))
    out = sys.stderr if args.json == "-" else sys.stdout  # stdout carries the JSON then
    print(f"model:   {model}", file=out)
    print(f"data:    {report.dataset} ({report.images} evaluated)", file=out)
    print(f"speed:   {report.ms_per_image:.1f} ms per image (segment(), incl. pre/post-processing)", file=out)
    print(file=out)
    print(format_metrics(report.metrics), file=out)
    where = write_json_report(args.json, report.to_dict())
    if where:
        print(f"\nreport: {where}", file=out)
    return 0


__all__ = ["add_parser", "run"]
