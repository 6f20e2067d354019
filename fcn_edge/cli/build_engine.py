"""``fcn-edge build-engine MODEL.onnx``: ONNX -> TensorRT engine + ``<engine>.json`` sidecar."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import List

from fcn_edge.cli.args import add_batch, add_calib, add_limit, add_model_argument, add_out, non_negative_int
from fcn_edge.errors import UsageError


def add_parser(subparsers) -> argparse.ArgumentParser:
    from fcn_edge.engine.config import CALIBRATORS, HARDWARE_COMPATIBILITY, INT8_MODES, PRECISIONS, TYPINGS

    p = subparsers.add_parser(
        "build-engine",
        help="build a TensorRT engine (+ .json sidecar) from an ONNX",
        description="Build a TensorRT engine from an fcn-edge ONNX (FP32, FP16 or INT8 Q/DQ) on this "
        "machine's TensorRT and GPU, and write ENGINE plus ENGINE.json (ModelMeta and build facts).\n\n"
        "--dry-run prints the decisions for a TensorRT version without TensorRT installed, so a "
        "Jetson's build can be checked on a workstation: --dry-run --trt-version 8.6.",
    )
    add_model_argument(p, "the ONNX model (from fcn-edge export / quantize)")
    add_out(p, "engine path (default: MODEL with .engine)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="engine precision; auto = what the ONNX carries (Q/DQ -> int8, FP16 casts -> fp16)")
    p.add_argument("--typing", choices=TYPINGS, default="auto",
                   help="strong: precision from the ONNX (TensorRT 10+); weak: builder flags (< 11)")
    p.add_argument("--int8-mode", choices=INT8_MODES, default="explicit",
                   help="explicit: Q/DQ ONNX; implicit: TensorRT's legacy calibrator (< 11)")
    p.add_argument("--fp16-fallback", action="store_true",
                   help="build INT8 weakly typed with FP16 beside it (trtexec --int8 --fp16) even where strong typing "
                   "is available; weakly typed INT8 builds set FP16 anyway")
    p.add_argument("--allow-precision-mismatch", action="store_true",
                   help="keep an engine whose layers lack the asked precision (default: refuse it; the engine "
                   "inspector's per-layer precisions are checked after every build)")
    port = p.add_argument_group("portable engines")
    port.add_argument("--version-compatible", action="store_true",
                      help="an engine later TensorRT releases run (8.6+; within its major, and 8 -> 10, 10 -> 11)")
    port.add_argument("--exclude-lean-runtime", action="store_true",
                      help="with --version-compatible: leave TensorRT's lean runtime out of the engine (the runtime "
                      "then loads the build release's libnvinfer_lean.so: FCN_EDGE_LEAN_RUNTIME)")
    port.add_argument("--hardware-compatibility", choices=HARDWARE_COMPATIBILITY, default="none",
                      help="an engine other GPUs run: ampere_plus (8.6+) or same_compute_capability (10.13 has it, 10.3 not); "
                      "not on JetPack")
    cal = p.add_argument_group("implicit INT8 (legacy calibrator)")
    add_calib(cal, "calibration images (folder or manifest) for --int8-mode implicit; 'default' is the "
              "built-in model's set")
    cal.add_argument("--calibration-cache", type=Path, metavar="FILE",
                     help="INT8 scales cache, read if present, written after calibrating "
                     "(default with implicit: ENGINE.calib.cache)")
    cal.add_argument("--calibrator", choices=CALIBRATORS, default="entropy",
                     help="entropy = IInt8EntropyCalibrator2 (default), minmax = IInt8MinMaxCalibrator")
    add_batch(cal, "calibration images per batch", default=8)
    add_limit(cal, "calibrate on the first N images only")
    prof = p.add_argument_group("optimisation profile and builder")
    prof.add_argument("--min", action="append", metavar="[NAME:]SHAPE",
                      help="profile min shape in the input's own layout, e.g. 1x3x256x320 or input:1x256x320x3")
    prof.add_argument("--opt", action="append", metavar="[NAME:]SHAPE", help="profile opt shape (as --min)")
    prof.add_argument("--max", action="append", metavar="[NAME:]SHAPE", help="profile max shape (as --min)")
    prof.add_argument("--workspace", metavar="SIZE", help="workspace memory pool limit, e.g. 1G or 512M (default: TensorRT's)")
    prof.add_argument("--opt-level", type=int, choices=range(6), metavar="0-5",
                      help="builder optimisation level (TensorRT 8.6+; default 3)")
    prof.add_argument("--timing-cache", type=Path, metavar="FILE", help="timing cache file, loaded if present and saved after the build")
    prof.add_argument("--dla-core", type=non_negative_int, metavar="N", help="build for this DLA core (Jetson Xavier/Orin), GPU fallback on")
    p.add_argument("--dry-run", action="store_true", help="print the decisions only; needs no TensorRT")
    p.add_argument("--trt-version", metavar="X.Y", help="with --dry-run: plan for this TensorRT version (e.g. 8.6, 10.3, 11.4)")
    return p


def _config(args):
    from fcn_edge.artifacts.shapes import parse_byte_size
    from fcn_edge.engine.config import BuildConfig, ShapeOverrides, parse_shape_arguments

    onnx = Path(args.model)
    engine = args.out or onnx.with_suffix(".engine")
    calibration_cache = args.calibration_cache
    if calibration_cache is None and args.int8_mode == "implicit":
        calibration_cache = engine.with_name(engine.name + ".calib.cache")
    return engine, BuildConfig(
        precision=args.precision,
        typing=args.typing,
        int8_mode=args.int8_mode,
        fp16_fallback=args.fp16_fallback,
        shapes=ShapeOverrides(
            min=parse_shape_arguments(args.min),
            opt=parse_shape_arguments(args.opt),
            max=parse_shape_arguments(args.max),
        ),
        workspace_bytes=parse_byte_size(args.workspace) if args.workspace else None,
        optimization_level=args.opt_level,
        timing_cache=args.timing_cache,
        dla_core=args.dla_core,
        calibration_cache=calibration_cache,
        calibrator=args.calibrator,
        allow_precision_mismatch=args.allow_precision_mismatch,
        version_compatible=args.version_compatible,
        exclude_lean_runtime=args.exclude_lean_runtime,
        hardware_compatibility=args.hardware_compatibility,
    )


def rebuild_arguments(args, engine: Path) -> List[str]:
    """The command line that rebuilds this engine, for the sidecar and mismatch messages."""
    out = ["fcn-edge", "build-engine", str(args.model), "-o", str(engine)]
    for flag, value, default in (
        ("--precision", args.precision, "auto"), ("--typing", args.typing, "auto"),
        ("--int8-mode", args.int8_mode, "explicit"), ("--calib", args.calib, None),
        ("--calibration-cache", args.calibration_cache, None), ("--calibrator", args.calibrator, "entropy"),
        ("--batch", args.batch if args.calib else None, 8), ("--limit", args.limit if args.calib else None, None),
        ("--workspace", args.workspace, None), ("--opt-level", args.opt_level, None),
        ("--timing-cache", args.timing_cache, None), ("--dla-core", args.dla_core, None),
        ("--hardware-compatibility", args.hardware_compatibility, "none"),
    ):
        if value is not None and value != default:
            out += [flag, str(value)]
    for flag in ("min", "opt", "max"):
        for value in getattr(args, flag) or ():
            out += [f"--{flag}", value]
    for flag in ("fp16_fallback", "allow_precision_mismatch", "version_compatible", "exclude_lean_runtime"):
        if getattr(args, flag):
            out.append("--" + flag.replace("_", "-"))
    return out


def _check_calib(args) -> None:
    if args.calib and args.int8_mode != "implicit":
        raise UsageError(
            "--calib feeds TensorRT's legacy calibrator (--int8-mode implicit); for explicit INT8 the "
            f"scales are in the Q/DQ ONNX: make it with `fcn-edge quantize {args.model} --precision int8 "
            f"--calib {args.calib}`"
        )


def _calibration(args, facts, config):
    """The calibration batches for --int8-mode implicit: the images of --calib, preprocessed
    as ModelMeta says, at the optimisation profile's opt size; None without --calib."""
    if not args.calib:
        return None
    from fcn_edge.engine.plan import calibration_input
    from fcn_edge.precision.calibration import calibration_batches, resolve_calibration_source

    meta = facts.require_meta("implicit INT8 calibration preprocesses images as ModelMeta says")
    batch, size = calibration_input(facts, config, args.batch)
    return calibration_batches(resolve_calibration_source(args.calib), meta, batch_size=batch, limit=args.limit, pad_last=True,
                               input_size=size)


def _print_facts(facts) -> None:
    from fcn_edge.artifacts.shapes import format_shape

    print(f"ONNX              {facts.path}  (sha256 {facts.sha256[:12]})")
    print(f"ONNX precision    {facts.precision}: {facts.describe_precision()}")
    for tensor in facts.inputs:
        print(f"input             {tensor.name}: {tensor.dtype} {format_shape(tensor.shape)}")
    if facts.meta is not None:
        m = facts.meta
        print(f"ModelMeta         {m.architecture}, {m.num_classes} classes, {m.input_layout} {m.input_dtype} in, "
              f"{m.output_kind} out, sizes {m.size_range[0]}..{m.size_range[2]} (opt {m.input_size}), "
              f"max batch {m.max_batch}")
    else:
        print(f"ModelMeta         none ({facts.meta_error})")


def _dry_run(args, engine: Path, config) -> int:
    from fcn_edge.engine.engine_file import plan_engine_build

    planned = plan_engine_build(args.model, config, trt_version=args.trt_version, calibration_source=args.calib or "")
    version = planned.capabilities.version
    print("dry run: " + (f"the installed TensorRT {version}, probed" if planned.probed
                         else f"declared capabilities of TensorRT {version} (no TensorRT needed)"))
    _print_facts(planned.facts)
    for line in planned.plan.describe():
        print(line)
    print(f"would write       {engine} and {engine.name}.json")
    if planned.facts.meta is None:
        print("warning: without ModelMeta the build stops before writing; export with `fcn-edge export`")
    return 0


def _print_build(build) -> None:
    result = build.result
    print(f"built {build.engine_path} in {result.build_seconds:.1f} s on {result.gpu_name} "
          f"(compute capability {result.compute_capability})")
    for line in result.plan.describe():
        print(line)
    print(f"network layers    {result.network_layers}")
    if result.dla_gpu_fallback_layers is not None:
        print(f"DLA               {result.network_layers - result.dla_gpu_fallback_layers} of "
              f"{result.network_layers} layers can run on DLA core {result.plan.dla_core}; "
              f"{result.dla_gpu_fallback_layers} fall back to the GPU")
    if build.summary is not None:
        for line in build.summary.describe():
            print(line)
    if build.precision_check is not None:
        print(f"precision check   {build.precision_check.verdict}: {build.precision_check.detail}")
    if result.timing_cache_saved:
        print(f"timing cache      saved to {result.timing_cache_saved}")
    print(f"sidecar           {build.sidecar_path}")


def run(args) -> int:
    engine, config = _config(args)
    _check_calib(args)
    if args.dry_run:
        return _dry_run(args, engine, config)
    if args.trt_version:
        raise UsageError("--trt-version is for --dry-run; a real build uses the installed TensorRT")

    from fcn_edge.engine.engine_file import build_engine_file
    from fcn_edge.engine.onnx_facts import read_onnx_facts

    facts = read_onnx_facts(args.model)  # once: the calibration batches and the build share it
    build = build_engine_file(facts, engine, config, calibration=_calibration(args, facts, config),
                              rebuild_args=rebuild_arguments(args, engine))
    _print_build(build)
    return 0
