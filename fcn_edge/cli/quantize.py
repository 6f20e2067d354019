"""``fcn-edge quantize MODEL.onnx --precision int8|fp16``: make a reduced-precision ONNX.

INT8 writes Q/DQ nodes calibrated on a calibration set (a folder of images or a manifest,
see calibration/README.md): ``--target tensorrt`` (default) gives symmetric int8 for
TensorRT 8.5-11 (strongly typed on 10/11), ``--target onnxruntime`` uint8 activations that
ONNX Runtime runs as QLinearConv on a CPU. FP16 converts weights and activations, keeping
the graph's input and output types. Either way ModelMeta is carried over with its
precision updated and a history entry, so later steps need no flags.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from fcn_edge.cli.args import (
    ExtendList, add_batch, add_calib, add_limit, add_model_argument, add_out, add_quiet, comma_items, percent,
    positive_int,
)

log = logging.getLogger("fcn_edge.cli.quantize")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "quantize",
        help="make an FP16 or INT8 (Q/DQ) variant of an ONNX model",
        description=__doc__,
    )
    add_model_argument(p, "the FP32 ONNX written by `fcn-edge export`")
    p.add_argument("--precision", choices=("int8", "fp16"), required=True)
    add_out(p, "output path (default: MODEL.int8.onnx, MODEL.int8-ort.onnx or MODEL.fp16.onnx beside MODEL)")
    p.add_argument("--keep-float", type=comma_items, action=ExtendList, default=[], metavar="NODE[,NODE...]",
                   help="keep these nodes in FP32: not quantised (int8), not converted (fp16); repeatable")
    p.add_argument("--include-input-path", action="store_true",
                   help="also reduce the first conv, which reads the image (and, for fp16, fused preprocessing); "
                   "kept in FP32 by default")
    p.add_argument("--include-output-path", action="store_true",
                   help="also reduce the last upsampling layer; kept in FP32 by default")
    q = p.add_argument_group("int8")
    add_calib(q)
    q.add_argument("--method", choices=("entropy", "minmax", "percentile"), default="percentile",
                   help="activation range: percentile of |x| (default: measured closest to FP32 on the default model); entropy = KL divergence as TensorRT's entropy calibrator; minmax")
    q.add_argument("--percentile", type=percent, default=99.99, help="for --method percentile (default 99.99)")
    q.add_argument("--target", choices=("tensorrt", "onnxruntime"), default="tensorrt",
                   help="tensorrt: symmetric int8, zero point 0 (default); onnxruntime: uint8 activations fused into QLinearConv on CPU")
    q.add_argument("--weights", choices=("fake", "int8"),
                   help="weight storage: fake = FP32 + Q/DQ (any TensorRT >= 8.5; default for tensorrt), int8 = int8 + DQ (4x smaller; TensorRT >= 10, ORT; default for onnxruntime)")
    add_batch(q, "calibration images per batch", default=8)
    add_limit(q, "calibrate on the first N images only")
    q.add_argument("--memory-budget", type=positive_int, default=1024, metavar="MB",
                   help="activation memory per calibration run; larger models are calibrated in several passes (default 1024)")
    q.add_argument("--cache-dir", help="calibration cache folder (default ~/.cache/fcn-edge/calibration)")
    q.add_argument("--no-cache", action="store_true", help="recalibrate, and do not write the cache")
    add_quiet(p)
    return p


def run(args: argparse.Namespace) -> int:
    from fcn_edge.errors import PrecisionError

    model = Path(args.model)
    # one vocabulary for both precisions: FP16Config and QuantizeConfig take the same fields
    kept = dict(keep_float=tuple(args.keep_float), include_input_path=args.include_input_path,
                include_output_path=args.include_output_path)
    if args.precision == "fp16":
        from fcn_edge.precision.fp16 import FP16Config, convert_fp16

        if args.calib:
            log.info("--calib is not used for fp16")
        result = convert_fp16(model, args.out, FP16Config(**kept))
        print(f"wrote {result.path} (fp16; kept in FP32: {', '.join(result.kept_float) or 'none'})")
        return 0

    from fcn_edge.precision.calibration import resolve_calibration_source
    from fcn_edge.precision.quantize import QuantizeConfig, quantize_int8

    if not args.calib:
        raise PrecisionError("--precision int8 needs a calibration set: --calib DIR|LIST "
                             "('default': the default model's set; see calibration/README.md)")
    config = QuantizeConfig(
        target=args.target, method=args.method, percentile=args.percentile, weight_storage=args.weights,
        batch_size=args.batch, limit=args.limit, memory_budget_mb=args.memory_budget,
        cache_dir=args.cache_dir, use_cache=not args.no_cache, progress=not args.quiet, **kept,
    )
    result = quantize_int8(model, resolve_calibration_source(args.calib), args.out, config)
    c = result.counts
    print(f"wrote {result.path} (int8 for {args.target}, {args.method} calibration on "
          f"{result.images_used} images{'; cached ranges' if result.cache_hit else ''})")
    print(f"  {c['quantized_weights']} Conv/ConvTranspose quantised (per-channel weights, {config.storage}), "
          f"{c['activation_qdq']} activation Q/DQ pairs, {c['folded_relu']} ReLUs folded; "
          f"kept in float: {', '.join(result.kept_float) or 'none'}")
    if result.images_skipped:
        print(f"  skipped {result.images_skipped} unreadable calibration images (listed in the warning above)")
    if result.cache_file is not None:
        print(f"  calibration cache: {result.cache_file}")
    log.debug("meta history: %s", result.meta.history)
    return 0
