"""Entry point of ``fcn-edge``. Subcommand modules are imported for their parsers only;
each imports its heavy dependencies inside ``run``, so ``fcn-edge --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import traceback
from typing import List, Optional

from fcn_edge import __version__
from fcn_edge.errors import EXIT_SIGNAL_BASE, FcnEdgeError, describe_os_error, exit_code_of

# The chain's order: how `fcn-edge --help` lists the steps.
COMMANDS = (
    "demo", "train", "export", "quantize", "qat", "compare", "build_engine", "info",
    "segment", "run", "benchmark", "evaluate", "triton_repo", "serve", "doctor",
)

EXIT_CODES = """\
exit codes:
  0    complete
  1    failed at run time: the file system (disk full, read-only, permission denied, file
       too large), a camera, stream or encoder, memory; running again may succeed
  2    bad input or usage: fcn-edge refused the arguments, a model, meta, sidecar,
       checkpoint, dataset or video file, an engine built for another TensorRT or GPU,
       a request a step cannot honour, a missing package
  130  interrupted by SIGINT (run: 143 SIGTERM, 129 SIGHUP), after finalising the output
errors are one line on stderr; -v adds the traceback.
"""


class Parser(argparse.ArgumentParser):
    """No prefix matching (``--mode`` must never become ``--model``), and newlines kept in
    descriptions, for every parser of the command."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> Parser:
    parser = Parser(
        prog="fcn-edge",
        description="FCN semantic segmentation: PyTorch -> ONNX -> FP16/INT8 -> TensorRT -> "
        "images, video and benchmarks on Jetson and desktop GPUs.",
        epilog=EXIT_CODES,
    )
    parser.add_argument("--version", action="version", version=f"fcn-edge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging, and the traceback of an error")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=Parser)
    for name in COMMANDS:
        module = importlib.import_module(f"fcn_edge.cli.{name}")
        sub = module.add_parser(subparsers)
        sub.set_defaults(handler=module.run, subparser=sub)
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: Optional[List[str]]) -> argparse.Namespace:
    """Like ``parse_args``, but an unknown argument is reported with the subcommand's usage
    (argparse reports what its subparsers leave over with the top-level usage)."""
    args, extras = parser.parse_known_args(argv)
    if extras:
        getattr(args, "subparser", parser).error(f"unrecognized arguments: {' '.join(extras)}")
    return args


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parse_args(parser, argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s" if args.verbose else "%(message)s",
    )
    try:
        return int(args.handler(args) or 0)
    except (FcnEdgeError, OSError, MemoryError) as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"fcn-edge {args.command}: error: {error_line(exc)}", file=sys.stderr)
        return exit_code_of(exc)
    except KeyboardInterrupt:
        if args.verbose:
            traceback.print_exc()
        print(f"fcn-edge {args.command}: interrupted", file=sys.stderr)
        return EXIT_SIGNAL_BASE + int(signal.SIGINT)


def error_line(exc: BaseException) -> str:
    """What the user reads: fcn-edge's own message; for an OSError no fcn-edge error
    wrapped, the file and the cause in words."""
    if isinstance(exc, FcnEdgeError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory" + (f": {exc}" if str(exc) else "")
    name = f"{exc.filename}: " if getattr(exc, "filename", None) is not None else ""
    return name + describe_os_error(exc, exc.filename)


if __name__ == "__main__":
    sys.exit(main())
