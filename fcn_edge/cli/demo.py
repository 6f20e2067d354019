"""`fcn-edge demo`: the whole chain on the built-in default model, on any machine."""

from __future__ import annotations

import argparse
from pathlib import Path

from fcn_edge.cli.args import add_calib, add_out


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "demo",
        help="run the whole chain on the built-in default model (data, export, FP16/INT8, "
        "evaluation, engines when TensorRT is present, video, benchmark)",
        description=__doc__,
    )
    add_out(p, "output folder (default runs/demo)", default=Path("runs/demo"), metavar="DIR")
    add_calib(p, "calibration set for the INT8 variant (default: the built-in model's set)")
    p.add_argument("--quick", action="store_true", help="reduced mode: a few images and frames, a short sweep")
    p.add_argument("--force", action="store_true", help="redo every step even when its outputs are up to date")
    return p


def run(args: argparse.Namespace) -> int:
    from fcn_edge.demo import DemoConfig, demo_artifacts, run_demo

    config = DemoConfig(out_dir=args.out, calibration=args.calib or "default", quick=args.quick, force=args.force)
    result = run_demo(config, echo=lambda line: print(line, flush=True))
    print(f"\ndemo finished in {result.seconds:.0f} s; everything it wrote is in {result.out_dir}:")
    for path in demo_artifacts(result.out_dir):
        print(f"  {path.name:32s} {path.stat().st_size / 1e6:8.2f} MB")
    return 0
