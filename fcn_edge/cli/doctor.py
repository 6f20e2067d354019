"""``fcn-edge doctor [MODEL]``: what this machine can do and whether it is set up right."""

from __future__ import annotations

import argparse

from fcn_edge.cli.args import add_cuda, add_json, add_model_argument, comma_choices, write_json_report

PRECISIONS = ("fp32", "fp16", "int8")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "doctor",
        help="check this machine: TensorRT, CUDA, GPU, Jetson, video, ONNX Runtime; build and run test engines",
        description="Check what this machine can do for fcn-edge and whether it is set up right: GPU and driver, "
        "TensorRT, pycuda / cuda-python, JetPack, power mode and clocks, the Python environment, OpenCV's "
        "GStreamer and FFmpeg, ONNX Runtime's providers, DLA. Each check gets a verdict (ok, absent, warn, "
        "fail) and the fix. Where TensorRT and a GPU are here it then builds a small engine per precision the "
        "GPU supports (MODEL, or fcn8s_tiny exported on the spot), checks its layer precisions, runs it, "
        "compares its masks with ONNX Runtime on the CPU and times it (beside trtexec when on PATH).\n\n"
        "Exit status 1 when a check fails.",
    )
    add_model_argument(p, "an ONNX to build the test engines from (default: fcn8s_tiny, exported here; "
                       "needs torch)", optional=True)
    add_json(p, "write the checks as one JSON object to FILE ('-': stdout, instead of the table)")
    p.add_argument("--precision", type=comma_choices(PRECISIONS), default=list(PRECISIONS), metavar="LIST",
                   help="precisions to build engines in, comma-separated (default fp32,fp16,int8; those the GPU "
                   "lacks are skipped)")
    add_cuda(p)
    p.add_argument("--machine-only", action="store_true", help="check the machine only; build no engines")
    return p


def run(args) -> int:
    from dataclasses import replace

    from fcn_edge.doctor import DoctorConfig, run_doctor

    config = DoctorConfig(engines=not args.machine_only)
    config = replace(config, engine=replace(config.engine, precisions=tuple(args.precision), cuda=args.cuda))
    report = run_doctor(args.model, config)
    write_json_report(args.json, report.to_dict())
    if args.json != "-":
        for line in report.table():
            print(line)
    return 1 if report.verdict == "fail" else 0
