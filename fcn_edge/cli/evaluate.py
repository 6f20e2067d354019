"""``fcn-edge evaluate MODEL --data DIR``: mean IU, pixel accuracy, mean accuracy and
frequency-weighted IU (as the FCN paper defines them) and a per-class IU table.

MODEL is anything the runtime loads: a TensorRT .engine, an .onnx (FP32, FP16 or INT8
variant) or a .pt checkpoint, so the same command compares every step of the chain.
Frames go through the runtime's own preprocessing at their full size, and the mask comes
back at that size: what is scored is what a deployment would output.

Examples:
  fcn-edge evaluate fcn_edge/weights/fcn8s_mobilenetv3_synthetic.pt --data synthetic
  fcn-edge evaluate model.int8.onnx --data ~/VOCdevkit/VOC2012 --split val --json int8.json
  fcn-edge evaluate model.engine --data ~/cityscapes --limit 100
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "evaluate", help="accuracy of a model (.pt, .onnx or .engine) on a dataset: mean IU, pixel accuracy",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", nargs="?", help="model file (default: the shipped default model)")
    p.add_argument("--data", default="synthetic", help="dataset folder, or 'synthetic' (default)")
    p.add_argument("--format", dest="data_format", default="auto", choices=("auto", "voc", "cityscapes", "folder"))
    p.add_argument("--split", help="default: val (all for a folder pair without split lists)")
    p.add_argument("--backend", default="auto", help="auto | tensorrt | onnxruntime | torch (default: by file type)")
    p.add_argument("--threads", type=int, help="CPU threads of ONNX Runtime / PyTorch")
    p.add_argument("--limit", type=int, help="evaluate the first N images only")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the full report (per class, confusion matrix)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def run(args: argparse.Namespace) -> int:
    from fcn_edge.data.formats import open_dataset
    from fcn_edge.evaluate.report import format_metrics
    from fcn_edge.evaluate.runner import evaluate_dataset
    from fcn_edge.meta import write_json_atomic
    from fcn_edge.runtime import load_segmenter

    model = args.model
    if model is None:
        from fcn_edge.weights import default_checkpoint

        model = default_checkpoint()
    dataset = open_dataset(args.data, args.split, args.data_format)
    with load_segmenter(model, args.backend, threads=args.threads) as segmenter:
        report = evaluate_dataset(segmenter, dataset, limit=args.limit, progress=not args.quiet,
                                  model_name=str(model))
    print(f"model:   {model}")
    print(f"data:    {report.dataset} ({report.images} evaluated)")
    print(f"speed:   {report.ms_per_image:.1f} ms per image (segment(), incl. pre/post-processing)")
    print()
    print(format_metrics(report.metrics))
    if args.json:
        write_json_atomic(args.json, report.to_dict())
        print(f"\nreport: {args.json}")
    return 0


__all__ = ["add_parser", "run"]
