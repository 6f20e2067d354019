"""``fcn-edge qat CHECKPOINT --data DIR --calib DIR|LIST``: quantisation-aware fine-tuning.

Exports and calibrates the checkpoint as ``quantize --precision int8`` would, puts fake
quantisation into the PyTorch model exactly where that Q/DQ ONNX has it (the same
placement, the same layers left unquantised: ``--keep-float`` as for quantize), checks the
two agree, and fine-tunes weights and activation scales for a few hundred iterations on the
training split, distilling from the FP32 model (``--distill`` below 1 mixes in the labels'
cross-entropy; the progress bar shows the loss and the agreement with FP32). Writes, in
``-o DIR`` and in the export form asked for (``--fuse-preprocess``, ``--output-kind``):
``model.qat.pt`` (the fine-tuned checkpoint), ``model.qat.onnx`` (its FP32 export) and
``model.qat.int8.onnx`` (its Q/DQ variant with the learned scales); measure it with
``fcn-edge compare MODEL.onnx DIR/model.qat.int8.onnx``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fcn_edge.cli.args import (
    ExtendList, add_calib, add_input_size, add_json, add_model_argument, add_out, add_quiet, comma_items,
    positive_float, positive_int, write_json_report,
)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "qat",
        help="quantisation-aware fine-tuning: an INT8 Q/DQ ONNX that keeps the FP32 model's accuracy",
        description=__doc__,
    )
    add_model_argument(p, "the FP32 checkpoint to fine-tune (.pt)")
    add_out(p, "output folder (default: runs/qat)")
    add_calib(p)
    group = p.add_argument_group("training")
    group.add_argument("--data", default="synthetic", metavar="DIR",
                       help="labelled training data: a dataset root or 'synthetic' (default)")
    group.add_argument("--split", help="training split (default: train)")
    group.add_argument("--data-format", choices=("auto", "voc", "cityscapes", "folder"), default="auto",
                       help="dataset layout (default: detected)")
    group.add_argument("--iters", type=positive_int, default=300, help="fine-tuning iterations (default 300)")
    group.add_argument("--batch", type=positive_int, default=8, metavar="N", help="crops per iteration (default 8)")
    group.add_argument("--lr", type=positive_float, default=2e-5, help="weights' learning rate (default 2e-5)")
    group.add_argument("--scale-lr", type=positive_float, default=1e-3,
                       help="activation scales' learning rate, relative per step (default 1e-3)")
    group.add_argument("--distill", type=float, default=1.0, metavar="0-1",
                       help="weight of distillation from the FP32 model against the labels' cross-entropy "
                       "(default 1: the FP32 model's masks are the target)")
    group.add_argument("--threads", type=positive_int, default=1, metavar="N", help="torch CPU threads (default 1)")
    export = p.add_argument_group("export (as fcn-edge export takes them)")
    add_input_size(export, "export size HxW (default: the checkpoint's own)")
    export.add_argument("--fuse-preprocess", action="store_true",
                        help="input uint8 NHWC BGR frames; normalisation and layout inside the graph")
    export.add_argument("--output-kind", choices=("logits", "mask"), default="logits",
                        help="logits (float NCHW scores) or mask (argmax inside the graph)")
    export.add_argument("--max-batch", type=positive_int, default=1,
                        help="largest batch later steps must support (default 1)")
    q = p.add_argument_group("int8 (as fcn-edge quantize takes them)")
    q.add_argument("--target", choices=("tensorrt", "onnxruntime"), default="tensorrt")
    q.add_argument("--min-tensorrt", type=int, choices=(8, 10), default=10)
    q.add_argument("--method", choices=("entropy", "minmax", "percentile"), default="percentile",
                   help="how the starting ranges are calibrated (default percentile)")
    q.add_argument("--keep-float", type=comma_items, action=ExtendList, default=[], metavar="NODE[,NODE...]",
                   help="Conv/ConvTranspose nodes left unquantised, as for quantize; repeatable")
    q.add_argument("--cache-dir", help="calibration cache folder (default ~/.cache/fcn-edge/calibration)")
    add_json(p, "write the run (paths, history, check) as JSON to FILE ('-': stdout)")
    add_quiet(p)
    return p


def run(args: argparse.Namespace) -> int:
    from fcn_edge.errors import PrecisionError
    from fcn_edge.export import ExportConfig
    from fcn_edge.precision.calibration import resolve_calibration_source
    from fcn_edge.precision.quantize import QuantizeConfig
    from fcn_edge.training.qat import QatConfig, qat

    if not args.calib:
        raise PrecisionError("qat starts from the post-training ranges: give --calib DIR|LIST ('default': the "
                             "default model's set)")
    if not 0.0 <= args.distill <= 1.0:
        raise PrecisionError(f"--distill must be between 0 and 1, got {args.distill}")
    quantize = QuantizeConfig(target=args.target, min_tensorrt=args.min_tensorrt, method=args.method,
                              keep_float=tuple(args.keep_float), cache_dir=args.cache_dir, progress=not args.quiet)
    config = QatConfig(iters=args.iters, batch_size=args.batch, lr=args.lr, scale_lr=args.scale_lr,
                       distill=args.distill, data=args.data, split=args.split, data_format=args.data_format,
                       threads=args.threads, progress=not args.quiet, quantize=quantize)
    export = ExportConfig(input_size=tuple(args.input_size) if args.input_size else None,
                          fuse_preprocess=args.fuse_preprocess, output=args.output_kind, max_batch=args.max_batch)
    result = qat(args.model, resolve_calibration_source(args.calib), Path(args.out or "runs/qat"), config, export)
    final = result.history[-1] if result.history else {}
    print(f"fine-tuned {result.iterations} iterations in {result.seconds:.0f} s; fake-quantised PyTorch vs the Q/DQ "
          f"ONNX before training: {100 * result.check_agreement:.2f}% pixel agreement")
    if final:
        print(f"  last batch: loss {final['loss']:.4f}, agreement with FP32 {100 * final['agreement']:.2f}%")
    print(f"wrote {result.checkpoint}\nwrote {result.fp32_onnx}\nwrote {result.int8_onnx}")
    write_json_report(args.json, result.as_dict())
    return 0
