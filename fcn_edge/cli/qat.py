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
    add_batch, add_calib, add_data_options, add_head_options, add_input_size, add_int8_options, add_json,
    add_keep_float, add_model_argument, add_out, add_quiet, positive_float, positive_int, unit_weight,
    write_json_report,
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
    add_data_options(p, default="synthetic", title="training data", limit=False, split_default="train",
                     what="labelled training data: a dataset root or 'synthetic'")
    group = p.add_argument_group("training")
    group.add_argument("--iters", type=positive_int, default=300, help="fine-tuning iterations (default 300)")
    add_batch(group, "crops per iteration", default=8)
    group.add_argument("--lr", type=positive_float, default=2e-5, help="weights' learning rate (default 2e-5)")
    group.add_argument("--scale-lr", type=positive_float, default=1e-3,
                       help="activation scales' learning rate, relative per step (default 1e-3)")
    group.add_argument("--distill", type=unit_weight, default=1.0, metavar="0-1",
                       help="weight of distillation from the FP32 model against the labels' cross-entropy "
                       "(default 1: the FP32 model's masks are the target)")
    group.add_argument("--threads", type=positive_int, default=1, metavar="N", help="torch CPU threads (default 1)")
    export = p.add_argument_group("export (as fcn-edge export takes them)")
    add_input_size(export, "export size HxW (default: the checkpoint's own)")
    add_head_options(export)
    export.add_argument("--max-batch", type=positive_int, default=1,
                        help="largest batch later steps must support (default 1)")
    q = p.add_argument_group("int8 (as fcn-edge quantize takes them)")
    add_int8_options(q)
    add_keep_float(q, "Conv/ConvTranspose nodes left unquantised, as for quantize")
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
