#!/usr/bin/env python3
"""Measure the precision variants: fidelity of the default model, speed of FCN-8s VGG16.

    # FP32 / FP16 / INT8 (both targets) of the shipped default model on the synthetic val split
    python tools/bench_precision.py default --calib default
    # ORT CPU latency of FCN-8s VGG16 (random weights) at 320x320: FP32 vs both INT8 flavours,
    # with the peak memory and time of calibrating it
    python tools/bench_precision.py vgg16 --calib default

Quantisation runs in a child process so that its peak resident memory (ru_maxrss) is the
calibration's own, not this script's. Prints tables; --json FILE keeps the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"fidelity": {"int8": (0.3, 0.995), "fp16": (0.05, 0.9999)}}

QUANTIZE_CHILD = r"""
import json, sys, time
from fcn_edge.precision.quantize import QuantizeConfig, quantize_int8
args = json.loads(sys.argv[1])
start = time.perf_counter()
r = quantize_int8(args["model"], args["calib"], args["out"], QuantizeConfig(
    target=args["target"], min_tensorrt=args["min_tensorrt"], method=args["method"], cache_dir=args["cache"],
    use_cache=args["use_cache"], limit=args["limit"], batch_size=args["batch"], weight_storage=args["storage"],
    progress=False))
print(json.dumps({"seconds": time.perf_counter() - start, "cache_hit": r.cache_hit,
                  "images": r.images_used, "counts": r.counts}))
"""


def quantize_in_child(model, calib, out, target, method, cache, use_cache, limit, batch, storage=None,
                      min_tensorrt=10):
    """(result dict, peak RSS in MiB) of one quantize_int8 run in a fresh interpreter."""
    payload = json.dumps({"model": str(model), "calib": str(calib), "out": str(out), "target": target,
                          "method": method, "cache": str(cache), "use_cache": use_cache,
                          "limit": limit, "batch": batch, "storage": storage, "min_tensorrt": min_tensorrt})
    proc = subprocess.Popen([sys.executable, "-c", QUANTIZE_CHILD, payload], stdout=subprocess.PIPE,
                            cwd=str(ROOT), text=True)
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"quantize ({target}) failed with exit code {proc.returncode}")
    result = json.loads(stdout.strip().splitlines()[-1])
    return result, usage.ru_maxrss / 1024.0  # Linux: KiB


def ort_latencies(paths, runs, warmup, threads):
    """Median compute ms per model through the runtime on ORT's CPU provider, the models
    taking turns run by run (fair under machine load), on one random frame at the input size."""
    import contextlib

    import numpy as np

    from fcn_edge.precision.compare import open_cpu_segmenter, time_segmenters

    with contextlib.ExitStack() as stack:
        segmenters = [stack.enter_context(open_cpu_segmenter(p, threads or None)) for p in paths]
        h, w = segmenters[0].input_size
        frame = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
        return time_segmenters(segmenters, frame, runs, warmup)


def _fused_convs(path, threads):
    """(QLinearConv count, Conv count) after ORT's graph optimisations."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.optimized_model_filepath = os.path.join(tmp, "opt.onnx")
        options.log_severity_level = 3  # no warning about saving NCHWc-optimised graphs
        if threads:
            options.intra_op_num_threads = threads
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        ops = [n.op_type for n in onnx.load(options.optimized_model_filepath, load_external_data=False).graph.node]
    convs = sum(ops.count(o) for o in ("Conv", "FusedConv", "ConvTranspose"))
    return ops.count("QLinearConv"), convs


def bench_vgg16(args) -> dict:
    from fcn_edge.artifacts.variants import variant_tag
    from fcn_edge.export import ExportConfig, export_architecture

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    fp32 = work / f"{args.arch}_{args.size}.onnx"
    if not fp32.is_file():
        t = time.perf_counter()
        export_architecture(args.arch, fp32, ExportConfig(input_size=(args.size, args.size), dynamic_shape=False,
                                                          check_parity=False))
        print(f"exported {fp32} in {time.perf_counter() - t:.1f} s")
    rows, quant = {"fp32": fp32}, {}
    cache = work / "cache"
    if not args.reuse:
        shutil.rmtree(cache, ignore_errors=True)  # the first run calibrates, the others reuse its cache
    # TensorRT 8.x flavour (FP32 Q/DQ, fake-quant weights), ORT flavour, TensorRT >= 10 (mixed
    # INT8/FP16, int8 weights: ORT runs its FP16 layers through casts, so its time here says
    # nothing of TensorRT's)
    runs = (("tensorrt", None, 8, "int8 TensorRT 8.x (FP32 Q/DQ)"),
            ("onnxruntime", None, 10, "int8 ORT (uint8 act.)"),
            ("tensorrt", None, 10, "int8 TensorRT >= 10 (INT8/FP16)"))
    for target, storage, min_tensorrt, label in runs:
        suffix = variant_tag("int8", target) + ("-trt8" if target == "tensorrt" and min_tensorrt == 8 else "")
        out = work / f"{fp32.stem}.{suffix}.onnx"
        if args.reuse and out.is_file():
            rows[label] = out
            continue
        result, peak = quantize_in_child(fp32, args.calib, out, target, args.method, cache, True,
                                         args.calib_limit, args.batch_size, storage, min_tensorrt)
        quant[label] = dict(result, peak_rss_mib=round(peak, 1))
        rows[label] = out
        print(f"quantize {label}: {result['seconds']:.1f} s on {result['images']} images, peak RSS {peak:.0f} MiB"
              f"{' (cached ranges)' if result['cache_hit'] else ' (calibrated)'}")
    table = {}
    latencies = ort_latencies(list(rows.values()), args.runs, 2, args.threads)
    for (name, path), ms in zip(rows.items(), latencies):
        qconv, conv = _fused_convs(path, args.threads)
        size = path.stat().st_size + (path.with_name(path.name + '.data').stat().st_size
                                      if path.with_name(path.name + '.data').is_file() else 0)
        table[name] = {"ms": round(ms, 1), "qlinearconv": qconv, "float_convs": conv, "mb": round(size / 1e6, 1)}
    base = table["fp32"]["ms"]
    print(f"\n{args.arch} at {args.size}x{args.size}, ONNX Runtime CPU, median of {args.runs}, batch 1")
    print(f"{'variant':36s} {'ms':>8s} {'speed-up':>9s} {'QLinearConv':>12s} {'float convs':>12s} {'MB':>7s}")
    for name, row in table.items():
        print(f"{name:36s} {row['ms']:8.1f} {base / row['ms']:8.2f}x {row['qlinearconv']:12d} "
              f"{row['float_convs']:12d} {row['mb']:7.1f}")
    return {"arch": args.arch, "size": args.size, "latency": table, "quantize": quant}


def bench_default(args) -> dict:
    from fcn_edge.data import DatasetSpec
    from fcn_edge.export import ExportConfig, export_checkpoint
    from fcn_edge.precision.compare import CompareConfig, compare_variants, format_table
    from fcn_edge.precision.fp16 import convert_fp16
    from fcn_edge.precision.quantize import QuantizeConfig, quantize_int8
    from fcn_edge.weights import default_checkpoint

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    results = {}
    for fused in (False, True) if args.fused else (False,):
        fp32 = work / ("default_fused.onnx" if fused else "default.onnx")
        if not fp32.is_file():
            export_checkpoint(args.checkpoint or default_checkpoint(), fp32, ExportConfig(
                input_size=tuple(args.input_size), fuse_preprocess=fused,
                output="mask" if fused else "logits"))
        variants = [convert_fp16(fp32).path]
        for target in ("tensorrt", "onnxruntime"):
            variants.append(quantize_int8(fp32, args.calib, None, QuantizeConfig(
                target=target, method=args.method, cache_dir=str(work / "cache"),
                include_output_path=args.include_output_path)).path)
        reports = compare_variants(fp32, variants, DatasetSpec(args.data, args.split),
                                   CompareConfig(latency_runs=args.runs, threads=args.threads or None))
        print(f"\n{fp32.name}: {reports[0].images} images of {args.data} ({reports[0].split})")
        print(format_table(reports))
        ref = reports[0]
        for r in reports[1:]:
            drop = 100 * (ref.mean_iu - r.mean_iu)
            limit_drop, limit_agree = TARGETS["fidelity"][r.precision]
            ok = drop <= limit_drop and r.agreement >= limit_agree
            print(f"  {r.name}: mean IU {100 * r.mean_iu:.2f} ({-drop:+.2f} points), agreement "
                  f"{100 * r.agreement:.3f}% -> {'meets' if ok else 'MISSES'} the target "
                  f"(<= {limit_drop} points, >= {100 * limit_agree:g}%)")
        results[fp32.name] = [r.as_dict() for r in reports]
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    for name in ("default", "vgg16"):
        p = sub.add_parser(name)
        p.add_argument("--calib", default="default", help="calibration set ('default': the built-in one)")
        p.add_argument("--method", default="entropy", choices=("entropy", "minmax", "percentile"))
        p.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / f"fcn-edge-bench-{name}"))
        p.add_argument("--runs", type=int, default=10)
        p.add_argument("--threads", type=int, default=0)
        p.add_argument("--json", help="write the numbers here")
    d = sub.choices["default"]
    d.add_argument("--data", default="synthetic")
    d.add_argument("--split", default="val")
    d.add_argument("--input-size", type=int, nargs=2, default=(256, 320), metavar=("H", "W"))
    d.add_argument("--fused", action="store_true", help="also the fused uint8-in / mask-out export")
    d.add_argument("--include-output-path", action="store_true", help="also quantise the last upsampling layer")
    d.add_argument("--checkpoint", help="checkpoint to export (default: the shipped default model)")
    v = sub.choices["vgg16"]
    v.add_argument("--arch", default="fcn8s_vgg16")
    v.add_argument("--size", type=int, default=320)
    v.add_argument("--calib-limit", type=int, default=32)
    v.add_argument("--batch-size", type=int, default=4)
    v.add_argument("--reuse", action="store_true", help="time variants already in --workdir instead of re-quantising")
    args = parser.parse_args(argv)
    from fcn_edge.precision.calibration import resolve_calibration_source

    args.calib = str(resolve_calibration_source(args.calib))
    results = bench_default(args) if args.what == "default" else bench_vgg16(args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
