"""Entry point of ``fcn-edge``. Subcommand modules are imported for their parsers only;
each imports its heavy dependencies inside ``run``, so ``fcn-edge --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import List, Optional

from fcn_edge import __version__
from fcn_edge.errors import FcnEdgeError

# The chain's order: how `fcn-edge --help` lists the steps.
COMMANDS = (
    "demo", "train", "export", "quantize", "compare", "build_engine", "info",
    "segment", "run", "benchmark", "evaluate",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fcn-edge",
        description="FCN semantic segmentation: PyTorch -> ONNX -> FP16/INT8 -> TensorRT -> "
        "images, video and benchmarks on Jetson and desktop GPUs.",
    )
    parser.add_argument("--version", action="version", version=f"fcn-edge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"fcn_edge.cli.{name}")
        sub = module.add_parser(subparsers)
        sub.set_defaults(handler=module.run)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s" if args.verbose else "%(message)s",
    )
    try:
        return int(args.handler(args) or 0)
    except FcnEdgeError as exc:
        print(f"fcn-edge {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fcn-edge {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
