#!/usr/bin/env python3
"""Measure INT8 for TensorRT (issue 17): fusion before/after, accuracy by method, the ranking.

    # predicted TensorRT fusion (standalone Q/DQ, work in INT8/FP16/FP32, file size) of the
    # default model, FCN-8s ResNet-18 and FCN-8s VGG16 (random weights), before (the quantizer
    # of git revision --before, run from an archive of it) and after
    python tools/bench_int8.py fusion --before f915d3d --json runs/int8/fusion.json
    # model x method: PTQ percentile, PTQ + sensitivity fallback, QAT -> mean IU, agreement
    # with FP32, the worst class's IU drop, layers kept in FP16, time (synthetic val split)
    python tools/bench_int8.py methods --checkpoint default --json runs/int8/default.json
    # FCN-8s ResNet-18 trained on the synthetic data for a short run, then the same table
    python tools/bench_int8.py train --arch fcn8s_resnet18 --iters 400 --out runs/int8/r18
    python tools/bench_int8.py methods --checkpoint runs/int8/r18/model.pt --json runs/int8/r18.json
    # native HardSwish/HardSigmoid against the decomposed form, default model
    python tools/bench_int8.py hardswish --json runs/int8/hardswish.json

Every number printed is also written with --json. Times are wall seconds on this machine;
other jobs on it slow them (the load average is recorded).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BEFORE_CHILD = r"""
import json, sys
from fcn_edge.precision.quantize import QuantizeConfig, quantize_int8
a = json.loads(sys.argv[1])
quantize_int8(a["model"], a["calib"], a["out"], QuantizeConfig(cache_dir=a["cache"], limit=a["limit"],
              batch_size=a["batch"], progress=False))
"""


def _load():
    return [round(x, 2) for x in os.getloadavg()]


def _archive(rev: str, into: Path) -> Path:
    """The package as of git revision ``rev``, unpacked into ``into``."""
    tar = into / "src.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(tar), rev, "fcn_edge"], check=True)
    with tarfile.open(tar) as archive:
        archive.extractall(into, filter="data")
    return into


def _fusion_row(name: str, variant: str, path: Path) -> dict:
    from fcn_edge.precision.fusion import fusion_report

    r = fusion_report(path)
    share = r.element_share
    return {"model": name, "variant": variant, "pairs": r.pairs, "standalone": r.standalone_pairs,
            "q_sites": r.q_sites, "int8": round(100 * share["int8"], 1), "fp16": round(100 * share["fp16"], 1),
            "fp32": round(100 * share["fp32"], 1), "fp32_layers": len(r.fp32_layers),
            "convs": r.convs, "float_convs_into_q": len(r.float_convs_into_q), "mb": round(r.file_bytes / 1e6, 1)}


def cmd_fusion(args) -> dict:
    from fcn_edge.export import ExportConfig, export_architecture
    from fcn_edge.precision.calibration import resolve_calibration_source
    from fcn_edge.precision.quantize import QuantizeConfig, quantize_int8
    from fcn_edge.weights import default_onnx

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    calib = str(resolve_calibration_source(args.calib))
    models = {"default (fused, 256x320)": default_onnx()}
    for arch in args.archs:
        path = work / f"{arch}_{args.size}.onnx"
        if not path.is_file():
            export_architecture(arch, path, ExportConfig(input_size=(args.size, args.size), dynamic_shape=False,
                                                         check_parity=False))
        models[f"{arch} ({args.size}x{args.size}, random weights)"] = path
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        old = _archive(args.before, Path(tmp)) if args.before else None
        for name, fp32 in models.items():
            rows.append(_fusion_row(name, "fp32", Path(fp32)))
            if old is not None:
                out = work / f"{Path(fp32).stem}.before.int8.onnx"
                payload = json.dumps({"model": str(fp32), "calib": calib, "out": str(out), "cache": str(work / "cache-before"),
                                      "limit": args.calib_limit, "batch": args.batch})
                env = dict(os.environ, PYTHONPATH=str(old))
                start = time.perf_counter()
                subprocess.run([sys.executable, "-c", BEFORE_CHILD, payload], check=True, env=env, cwd=tmp)
                rows.append(dict(_fusion_row(name, f"int8 before ({args.before})", out),
                                 seconds=round(time.perf_counter() - start, 1)))
            out = work / f"{Path(fp32).stem}.int8.onnx"
            start = time.perf_counter()
            quantize_int8(fp32, calib, out, QuantizeConfig(cache_dir=str(work / "cache"), limit=args.calib_limit,
                                                          batch_size=args.batch, progress=False))
            rows.append(dict(_fusion_row(name, "int8 after", out), seconds=round(time.perf_counter() - start, 1)))
            print(f"{name}: done", flush=True)
    print(f"\n{'model':42s} {'variant':24s} {'pairs':>5s} {'standalone':>10s} {'INT8%':>6s} {'FP16%':>6s} "
          f"{'FP32%':>6s} {'FP32 layers':>11s} {'conv->pw->Q':>11s} {'MB':>7s}")
    for r in rows:
        print(f"{r['model']:42s} {r['variant']:24s} {r['pairs']:5d} {r['standalone']:10d} {r['int8']:6.1f} "
              f"{r['fp16']:6.1f} {r['fp32']:6.1f} {r['fp32_layers']:11d} {r['float_convs_into_q']:11d} {r['mb']:7.1f}")
    return {"rows": rows, "load": _load()}


def _checkpoint(text: str) -> Path:
    if text == "default":
        from fcn_edge.weights import default_checkpoint

        return default_checkpoint()
    return Path(text)


def cmd_methods(args) -> dict:
    from fcn_edge.data import DatasetSpec
    from fcn_edge.export import ExportConfig, export_checkpoint
    from fcn_edge.precision.calibration import resolve_calibration_source
    from fcn_edge.precision.compare import CompareConfig, compare_variants, format_class_table, format_table
    from fcn_edge.precision.quantize import QuantizeConfig, quantize_int8
    from fcn_edge.precision.sensitivity import SensitivityConfig, format_ranking, quantize_with_fallback
    from fcn_edge.training.qat import QatConfig, qat

    checkpoint = _checkpoint(args.checkpoint)
    work = Path(args.workdir) / checkpoint.stem
    work.mkdir(parents=True, exist_ok=True)
    calib = resolve_calibration_source(args.calib)
    fp32 = work / "model.onnx"
    if not fp32.is_file():
        export_checkpoint(checkpoint, fp32, ExportConfig())
    # a fresh cache: PTQ's time includes calibrating, the fallback and QAT reuse it as they would
    qconfig = QuantizeConfig(cache_dir=str(work / f"cache-{os.getpid()}"), progress=False)
    methods, variants = {}, []

    start = time.perf_counter()
    ptq = quantize_int8(fp32, calib, work / "model.int8.onnx", qconfig)
    methods["PTQ percentile"] = {"seconds": time.perf_counter() - start, "kept_fp16": 0, "path": str(ptq.path)}
    variants.append(ptq.path)

    start = time.perf_counter()
    fallback = quantize_with_fallback(fp32, calib, work / "model.int8-fallback.onnx", qconfig, SensitivityConfig(
        target_agreement=args.target / 100.0, ranking_images=args.ranking_images, progress=False))
    methods["PTQ + sensitivity fallback"] = {"seconds": time.perf_counter() - start, "kept_fp16": len(fallback.kept),
                                             "path": str(fallback.quantize.path), "kept": list(fallback.kept)}
    variants.append(fallback.quantize.path)
    print("\n".join(format_ranking(fallback)), flush=True)

    if args.qat_iters:
        start = time.perf_counter()
        result = qat(checkpoint, calib, work / "qat", QatConfig(iters=args.qat_iters, distill=args.distill, lr=args.lr,
                                                                 progress=False, quantize=qconfig))
        methods["QAT"] = {"seconds": time.perf_counter() - start, "kept_fp16": 0, "path": str(result.int8_onnx),
                          "iterations": args.qat_iters, "check_agreement": result.check_agreement}
        variants.append(result.int8_onnx)

    reports = compare_variants(fp32, variants, DatasetSpec("synthetic", args.split),
                               CompareConfig(latency_runs=0, progress=False))
    print(f"\n{reports[0].images} images of synthetic ({reports[0].split}); reference {fp32}")
    print(format_table(reports))
    print(format_class_table(reports))
    ref = reports[0]
    print(f"\nmean IU and per-class IU as changes against FP32's {100 * ref.mean_iu:.2f} (negative: a loss)")
    print(f"{'method':28s} {'mean IU':>8s} {'change':>7s} {'agree %':>8s} {'worst class: IU change':>26s} "
          f"{'FP16 layers':>11s} {'seconds':>8s}")
    for (name, info), r in zip(methods.items(), reports[1:]):
        worst = r.worst_class
        info.update(mean_iu=r.mean_iu, iu_drop=ref.mean_iu - r.mean_iu, agreement=r.agreement,
                    worst_class=worst[0] if worst else None, worst_drop=worst[1] if worst else None)
        print(f"{name:28s} {100 * r.mean_iu:8.2f} {-100 * info['iu_drop']:+7.2f} {100 * r.agreement:8.3f} "
              f"{(f'{worst[0]}: {-100 * worst[1]:+.2f}' if worst else '-'):>26s} {info['kept_fp16']:11d} "
              f"{info['seconds']:8.0f}")
    return {"checkpoint": str(checkpoint), "fp32_mean_iu": ref.mean_iu, "methods": methods,
            "ranking": [r.as_dict() for r in fallback.ranking], "fallback_checks": [c.__dict__ for c in fallback.checks],
            "reports": [r.as_dict() for r in reports], "load": _load()}


def cmd_train(args) -> dict:
    from fcn_edge.training.config import TrainConfig
    from fcn_edge.training.loop import train

    start = time.perf_counter()
    result = train(TrainConfig(model=args.arch, data="synthetic", iters=args.iters, out=args.out,
                               val_every=args.iters, checkpoint_every=args.iters, threads=args.threads),
                   progress=not args.quiet)
    seconds = time.perf_counter() - start
    print(f"trained {args.arch} for {args.iters} iterations in {seconds:.0f} s: val {result.val}")
    return {"arch": args.arch, "iters": args.iters, "seconds": seconds, "val": result.val,
            "model": str(result.model_path), "load": _load()}


def cmd_hardswish(args) -> dict:
    from fcn_edge.data import DatasetSpec
    from fcn_edge.export import ExportConfig, export_model
    from fcn_edge.models.checkpoint import load_checkpoint
    from fcn_edge.models.mobilenetv3 import use_native_hard_activations
    from fcn_edge.precision.calibration import resolve_calibration_source
    from fcn_edge.precision.compare import CompareConfig, compare_variants
    from fcn_edge.precision.quantize import QuantizeConfig, quantize_int8

    work = Path(args.workdir) / "hardswish"
    work.mkdir(parents=True, exist_ok=True)
    calib = resolve_calibration_source(args.calib)
    rows = {}
    paths = {}
    for native in (False, True):
        loaded = load_checkpoint(_checkpoint("default"))
        use_native_hard_activations(loaded.model, native)
        name = "native" if native else "decomposed"
        fp32 = work / f"{name}.onnx"
        export_model(loaded.model, loaded.meta, fp32, ExportConfig())
        int8 = quantize_int8(fp32, calib, work / f"{name}.int8.onnx",
                             QuantizeConfig(cache_dir=str(work / "cache"), progress=False)).path
        rows[name] = {"fusion": _fusion_row("default", name, int8)}
        paths[name] = (fp32, int8)
    reports = compare_variants(paths["decomposed"][0], [paths["native"][0], paths["decomposed"][1], paths["native"][1]],
                               DatasetSpec("synthetic", "val", limit=args.limit),
                               CompareConfig(latency_runs=args.runs, progress=False))
    names = ["decomposed fp32", "native fp32", "decomposed int8", "native int8"]
    for name, r in zip(names, reports):
        rows.setdefault(name.split()[0], {})[name.split()[1]] = {
            "agreement_with_decomposed_fp32": r.agreement, "mean_iu": r.mean_iu, "ort_cpu_ms": r.compute_ms}
    print(f"{'form':12s} {'standalone':>10s} {'conv->pw->Q':>11s} {'INT8%':>6s} {'FP16%':>6s} {'fp32 ORT ms':>11s} "
          f"{'int8 agree %':>12s}")
    for name in ("decomposed", "native"):
        f = rows[name]["fusion"]
        print(f"{name:12s} {f['standalone']:10d} {f['float_convs_into_q']:11d} {f['int8']:6.1f} {f['fp16']:6.1f} "
              f"{rows[name]['fp32']['ort_cpu_ms']:11.1f} {100 * rows[name]['int8']['agreement_with_decomposed_fp32']:12.3f}")
    return {"rows": rows, "load": _load()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--calib", default="default")
    common.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "fcn-edge-bench-int8"))
    common.add_argument("--json", help="write the numbers here")
    f = sub.add_parser("fusion", parents=[common])
    f.add_argument("--before", default="f915d3d", help="git revision whose quantizer is 'before' ('' to skip)")
    f.add_argument("--archs", nargs="*", default=["fcn8s_resnet18", "fcn8s_vgg16"])
    f.add_argument("--size", type=int, default=320)
    f.add_argument("--calib-limit", type=int, default=16)
    f.add_argument("--batch", type=int, default=4)
    m = sub.add_parser("methods", parents=[common])
    m.add_argument("--checkpoint", default="default")
    m.add_argument("--target", type=float, default=99.5, help="agreement target of the fallback, percent")
    m.add_argument("--ranking-images", type=int, default=16)
    m.add_argument("--qat-iters", type=int, default=300)
    m.add_argument("--distill", type=float, default=1.0)
    m.add_argument("--lr", type=float, default=2e-5)
    m.add_argument("--split", default="val")
    t = sub.add_parser("train", parents=[common])
    t.add_argument("--arch", default="fcn8s_resnet18")
    t.add_argument("--iters", type=int, default=400)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--out", default="runs/int8/r18")
    t.add_argument("--quiet", action="store_true")
    h = sub.add_parser("hardswish", parents=[common])
    h.add_argument("--limit", type=int, default=30)
    h.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    result = {"fusion": cmd_fusion, "methods": cmd_methods, "train": cmd_train, "hardswish": cmd_hardswish}[args.what](args)
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    print(f"\n{args.what}: {result['wall_seconds']:.0f} s wall, load average {_load()}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
