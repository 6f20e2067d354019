"""``fcn-edge quantize MODEL.onnx --precision int8|fp16``: make a reduced-precision ONNX.

INT8 writes Q/DQ nodes calibrated on a calibration set (a folder of images or a manifest,
see calibration/README.md): ``--target tensorrt`` (default) gives symmetric int8 where
TensorRT fuses it, with every unquantised layer in FP16 inside the ONNX for strongly typed
TensorRT 10/11 builds (``--min-tensorrt 8``: FP32 Q/DQ that TensorRT 8.5/8.6 parse, built
with the FP16 flag beside INT8), and prints how TensorRT would fuse it; ``--target
onnxruntime`` gives uint8 activations that ONNX Runtime runs as QLinearConv on a CPU.

``--target-agreement 99.5`` and/or ``--max-iu-drop 0.3`` rank the quantised layers by how
much each costs (alone and left out, against the FP32 model's own masks, on the first
``--ranking-images`` calibration images), keep the most harmful in FP16 until the target
holds on a held-out split (``--data``; by default the calibration images not ranked on),
and print the ranking; ``--report FILE`` writes it as JSON.

FP16 converts weights and activations, keeping the graph's input and output types. Either
way ModelMeta is carried over with its precision updated and a history entry, so later
steps need no flags.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from fcn_edge.cli.args import (
    add_batch, add_calib, add_data_options, add_int8_options, add_keep_float, add_limit, add_model_argument, add_out,
    add_quiet, non_negative_float, percent, positive_int,
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
    add_keep_float(p, "keep these nodes in FP32: not quantised (int8), not converted (fp16)")
    p.add_argument("--include-input-path", action="store_true", default=None,
                   help="also reduce the first conv, which reads the image (and, for fp16, fused preprocessing); "
                   "kept in float by default (int8 for TensorRT: unless that leaves a standalone Q after it)")
    p.add_argument("--include-output-path", action="store_true",
                   help="also reduce the last upsampling layer; kept in FP32 by default")
    q = p.add_argument_group("int8")
    add_calib(q)
    add_int8_options(q)
    q.add_argument("--percentile", type=percent, default=99.99, help="for --method percentile (default 99.99)")
    q.add_argument("--weights", choices=("fake", "int8"),
                   help="weight storage: fake = float + Q/DQ (any TensorRT >= 8.5; default for --min-tensorrt 8), "
                   "int8 = int8 + DQ (4x smaller; TensorRT >= 10, ORT; the default otherwise)")
    add_batch(q, "calibration images per batch", default=8)
    add_limit(q, "calibrate on the first N images only")
    q.add_argument("--memory-budget", type=positive_int, default=1024, metavar="MB",
                   help="activation memory per calibration run; larger models are calibrated in several passes (default 1024)")
    q.add_argument("--no-cache", action="store_true", help="recalibrate, and do not write the cache")
    f = p.add_argument_group("int8 accuracy target (sensitivity analysis and FP16 fallback)")
    f.add_argument("--target-agreement", type=percent, metavar="PERCENT",
                   help="pixel agreement with the FP32 model to reach, e.g. 99.5")
    f.add_argument("--max-iu-drop", type=non_negative_float, metavar="POINTS",
                   help="mean-IU loss allowed, in points, e.g. 0.3 (needs labelled --data)")
    f.add_argument("--holdout-limit", type=positive_int, default=48, metavar="N",
                   help="held-out images checked (default 48)")
    f.add_argument("--ranking-images", type=positive_int, default=16, metavar="N",
                   help="calibration images the layers are ranked on (default 16)")
    f.add_argument("--report", metavar="FILE", help="write the sensitivity ranking and the checks as JSON")
    add_data_options(p, title="held-out data for the accuracy target", limit=False,
                     what="held-out dataset the target is checked on ('synthetic': the built-in one; default: the "
                     "calibration images not used for ranking)")
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
        result = convert_fp16(model, args.out, FP16Config(**{**kept, "include_input_path": bool(args.include_input_path)}))
        print(f"wrote {result.path} (fp16; kept in FP32: {', '.join(result.kept_float) or 'none'})")
        return 0

    from fcn_edge.precision.calibration import resolve_calibration_source
    from fcn_edge.precision.quantize import QuantizeConfig, quantize_int8

    if not args.calib:
        raise PrecisionError("--precision int8 needs a calibration set: --calib DIR|LIST "
                             "('default': the default model's set; see calibration/README.md)")
    config = QuantizeConfig(
        target=args.target, min_tensorrt=args.min_tensorrt, method=args.method, percentile=args.percentile,
        weight_storage=args.weights, batch_size=args.batch, limit=args.limit, memory_budget_mb=args.memory_budget,
        cache_dir=args.cache_dir, use_cache=not args.no_cache, progress=not args.quiet, **kept,
    )
    calibration = resolve_calibration_source(args.calib)
    fallback = None
    if args.target_agreement is not None or args.max_iu_drop is not None:
        fallback = _with_fallback(args, model, calibration, config)
        result = fallback.quantize
    else:
        if args.report:
            raise PrecisionError("--report writes the sensitivity ranking: give --target-agreement or --max-iu-drop")
        result = quantize_int8(model, calibration, args.out, config)
    c = result.counts
    print(f"wrote {result.path} (int8 for {args.target}"
          + (f" >= {args.min_tensorrt}, unquantised layers in {'FP16' if config.mixed_fp16 else 'FP32'}"
             if args.target == "tensorrt" else "")
          + f", {args.method} calibration on {result.images_used} images{'; cached ranges' if result.cache_hit else ''})")
    print(f"  {c['quantized_weights']} Conv/ConvTranspose quantised ({config.storage} weights), "
          f"{c['activation_qdq']} activation Q/DQ pairs, {c['folded_relu']} ReLUs folded")
    reasons = {}
    for name, why in result.why_float.items():
        reasons.setdefault(why, []).append(name)
    for why, names in reasons.items():
        shown = ", ".join(names[:4]) + (f" (+{len(names) - 4})" if len(names) > 4 else "")
        print(f"  unquantised ({why}): {shown}")
    if result.images_skipped:
        print(f"  skipped {result.images_skipped} unreadable calibration images (listed in the warning above)")
    if result.cache_file is not None:
        print(f"  calibration cache: {result.cache_file}")
    if fallback is not None:
        from fcn_edge.precision.sensitivity import format_ranking

        print("\n".join(format_ranking(fallback)))
        if args.report:
            from fcn_edge.atomic import write_json_atomic

            write_json_atomic(Path(args.report), fallback.as_dict())
            print(f"  ranking written to {args.report}")
    if args.target == "tensorrt":
        from fcn_edge.precision.fusion import format_fusion_report, fusion_report

        print("\n".join(format_fusion_report(fusion_report(result.path))))
    log.debug("meta history: %s", result.meta.history)
    return 1 if fallback is not None and not fallback.target_met else 0


def _with_fallback(args, model: Path, calibration: Path, config):
    from fcn_edge.data.formats import DatasetSpec
    from fcn_edge.precision.sensitivity import SensitivityConfig, quantize_with_fallback

    holdout = DatasetSpec(args.data, args.split, args.data_format) if args.data else None
    sensitivity = SensitivityConfig(
        target_agreement=None if args.target_agreement is None else args.target_agreement / 100.0,
        max_iu_drop=None if args.max_iu_drop is None else args.max_iu_drop / 100.0,
        ranking_images=args.ranking_images, holdout=holdout, holdout_limit=args.holdout_limit,
        progress=not args.quiet,
    )
    return quantize_with_fallback(model, calibration, args.out, config, sensitivity)
