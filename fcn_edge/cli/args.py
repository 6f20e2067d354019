"""The CLI's vocabulary: every flag that more than one subcommand takes is added here, once.

One spelling per flag and one meaning per spelling, in every subcommand (README, "The
vocabulary"): commands that work on a model take it as their first positional argument;
commands that work on inputs (``segment``, ``run``) take the inputs as positionals and the
model as ``--model``. The output is ``-o/--out``; a network size is ``--input-size HxW``;
lists are comma-separated (``--providers cuda,cpu``); ``--json FILE`` writes JSON (``-``:
stdout). Network and frame sizes are HEIGHTxWIDTH; only ``--camera-size`` is WIDTHxHEIGHT,
the way cameras are described. ``--alpha`` is 0-255 as in jetson-inference's segnet.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple, Union

from fcn_edge.artifacts.shapes import parse_hw
from fcn_edge.errors import UsageError

BACKEND_CHOICES = ("auto", "tensorrt", "onnxruntime", "torch")
VISUALIZE_CHOICES = ("overlay", "mask", "both")
FILTER_MODES = ("point", "linear")
DEFAULT_ALPHA = 150
MIN_FPS, MAX_FPS = 0.01, 1000.0


# -- argument types: each raises ArgumentTypeError, which argparse prints with the usage -----
def _typed(parse: Callable[[str], object]) -> Callable[[str], object]:
    def convert(text: str):
        try:
            return parse(text)
        except (UsageError, ValueError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def size_hw(text: str) -> Tuple[int, int]:
    """'256x320' (HEIGHTxWIDTH) -> (256, 320)."""
    return _typed(lambda t: parse_hw(t))(text)  # type: ignore[return-value]


def size_hw_or_zero(text: str) -> Tuple[int, int]:
    """Like :func:`size_hw`, but '0x0' is allowed (training: no crop, the whole input)."""
    return _typed(lambda t: parse_hw(t, smallest=0))(text)  # type: ignore[return-value]


def size_hw_list(text: str) -> List[Tuple[int, int]]:
    """'256x320,384x480' -> [(256, 320), (384, 480)]."""
    return [size_hw(item) for item in comma_items(text)]


def camera_size_wh(text: str) -> Tuple[int, int]:
    """'1280x720' (WIDTHxHEIGHT, as cameras are described) -> (height, width)."""
    w, h = _typed(lambda t: parse_hw(t, what="camera size (WIDTHxHEIGHT)"))(text)  # type: ignore[misc]
    return h, w


def _number(text: str, kind: type, low: float, what: str):
    """``text`` as ``kind``, at least ``low`` and finite: every count, size, rate and
    duration the CLI takes is refused at the parser when zero or negative where it must
    be positive, and when NaN or infinite (an endless benchmark, a codec asked for inf FPS)."""
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not (value >= low and math.isfinite(value)):  # NaN fails both
        raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
    return value


def loop_count(text: str) -> int:
    """``--input-loop``: how many more times to play a file, 0 or more, or -1 for ever."""
    return _number(text, int, -1, "a count >= 0, or -1 for ever")


def positive_int(text: str) -> int:
    return _number(text, int, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    return _number(text, int, 0, "an integer >= 0")


def positive_float(text: str) -> float:
    value = _number(text, float, 0.0, "a positive number")
    if value == 0.0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def non_negative_float(text: str) -> float:
    return _number(text, float, 0.0, "a number >= 0")


def frame_rate(text: str) -> float:
    """Frames per second written to a video: 0.01 to 1000 (outside it OpenCV's FFmpeg
    writer fails to open, measured, and the codec would be blamed)."""
    value = positive_float(text)
    if not MIN_FPS <= value <= MAX_FPS:
        raise argparse.ArgumentTypeError(f"expected a frame rate of {MIN_FPS:g} to {MAX_FPS:g} frames per second, got {text}")
    return value


def fraction(text: str) -> float:
    """A number in [0, 1), e.g. SGD momentum."""
    value = non_negative_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text}")
    return value


def tensorrt_major(text: str) -> int:
    """``--min-tensorrt``: the oldest TensorRT major a Q/DQ file must build on (8 or 10)."""
    value = _number(text, int, 8, "8 or 10")
    if value not in (8, 10):
        raise argparse.ArgumentTypeError(f"expected 8 or 10 (the oldest TensorRT major to build on), got {text}")
    return value


def unit_weight(text: str) -> float:
    """A weight in [0, 1], e.g. QAT's distillation weight."""
    value = _number(text, float, 0.0, "a weight in [0, 1]")
    if value > 1:
        raise argparse.ArgumentTypeError(f"expected a weight in [0, 1], got {text}")
    return value


def percent(text: str) -> float:
    """A percentage in (0, 100], e.g. an agreement target of 99.5."""
    value = positive_float(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"expected a percentage in (0, 100], got {text}")
    return value


def alpha_255(text: str) -> float:
    """segnet's --alpha: 0 (frame only) to 255 (mask only)."""
    value = _number(text, float, 0.0, "an alpha in 0-255")
    if value > 255:
        raise argparse.ArgumentTypeError(f"--alpha is 0-255 as in segnet, got {text}")
    return value


def comma_items(text: str) -> List[str]:
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise argparse.ArgumentTypeError(f"empty item in the comma-separated list {text!r}")
    return items


def comma_choices(choices: Sequence[str]) -> Callable[[str], List[str]]:
    """A comma-separated list whose items are each one of ``choices``."""
    def convert(text: str) -> List[str]:
        items = comma_items(text)
        bad = [item for item in items if item not in choices]
        if bad:
            raise argparse.ArgumentTypeError(f"{', '.join(bad)}: not one of {', '.join(choices)}")
        return items

    convert.__name__ = "list"
    return convert


class ExtendList(argparse.Action):
    """A repeatable flag whose values are lists: ``--x a,b --x c`` -> [a, b, c]."""

    def __call__(self, parser, namespace, values, option_string=None):
        current = list(getattr(namespace, self.dest, None) or [])
        current.extend(values if isinstance(values, list) else [values])
        setattr(namespace, self.dest, current)


# -- the shared flags -----------------------------------------------------------------------
def add_model_argument(p: argparse.ArgumentParser, help: str, optional: bool = False, several: bool = False) -> None:
    """MODEL, the first positional of every command that works on a model."""
    nargs = "*" if (optional and several) else "+" if several else "?" if optional else None
    p.add_argument("model", nargs=nargs, metavar="MODEL", help=help)


def add_model_option(p: argparse.ArgumentParser) -> None:
    """``--model`` of the commands whose positionals are inputs (segment, run), as segnet's."""
    p.add_argument("--model", metavar="MODEL", help=".engine, .onnx, .pt or triton://HOST:PORT/NAME "
                   "(default: the built-in default model)")


def add_out(p: argparse.ArgumentParser, help: str, required: bool = False, repeatable: bool = False,
            metavar: str = "PATH", default: Optional[Path] = None) -> None:
    if repeatable:
        p.add_argument("-o", "--out", action="append", metavar=metavar, required=required, help=help)
    else:
        p.add_argument("-o", "--out", type=Path, metavar=metavar, required=required, default=default, help=help)


def add_input_size(p: argparse.ArgumentParser, help: str, several: bool = False) -> None:
    if several:
        p.add_argument("--input-size", type=size_hw_list, action=ExtendList, metavar="HxW[,HxW...]", help=help)
    else:
        p.add_argument("--input-size", type=size_hw, metavar="HxW", help=help)


def add_frame_size(p, help: str, default: Optional[Tuple[int, int]] = None) -> None:
    """``--frame-size HxW``: the size of a camera's frames (not the network's input)."""
    p.add_argument("--frame-size", type=size_hw, default=default, metavar="HxW", help=help)


def add_backend_options(p: argparse.ArgumentParser, several: bool = False, cuda_graph: bool = True) -> None:
    """Which runtime backend runs the model, and on what: --backend, --providers, --device,
    --threads, --cuda-graph."""
    group = p.add_argument_group("backend")
    if several:
        group.add_argument("--backend", type=comma_choices(BACKEND_CHOICES), action=ExtendList, metavar="LIST",
                           help="auto (by file type), tensorrt, onnxruntime or torch; a comma-separated list "
                           "times each (default auto)")
    else:
        group.add_argument("--backend", choices=BACKEND_CHOICES, default="auto",
                           help="auto (by file type), tensorrt, onnxruntime or torch (default auto)")
    group.add_argument("--providers", type=comma_items, metavar="LIST",
                       help="ONNX Runtime execution providers in order, comma-separated, e.g. cuda,cpu "
                       "(default: CUDA when present, then CPU)")
    group.add_argument("--device", type=non_negative_int, default=0, metavar="N", help="CUDA device index (default 0)")
    group.add_argument("--threads", type=positive_int, metavar="N", help="CPU threads of ONNX Runtime / PyTorch")
    if cuda_graph:
        group.add_argument("--cuda-graph", action="store_true",
                           help="TensorRT: replay copies + engine as one CUDA graph per input shape")
    add_cuda(group)


def add_cuda(p) -> None:
    """``--cuda``: which CUDA library drives TensorRT (the runtime's and doctor's choice)."""
    from fcn_edge.runtime.cuda_api import CUDA_CHOICES

    p.add_argument("--cuda", choices=CUDA_CHOICES,
                   help="CUDA library of the TensorRT runtime (default: $FCN_EDGE_CUDA, else auto: pycuda, "
                   "then cuda-python)")


def add_visual_options(p: argparse.ArgumentParser, legend_default: bool) -> None:
    """How masks are drawn: segnet's --visualize, --alpha, --filter-mode, --ignore-class; and the legend."""
    group = p.add_argument_group("visualisation (segnet's options)")
    group.add_argument("--visualize", choices=VISUALIZE_CHOICES, default="overlay",
                       help="overlay on the frame, the colour mask, or both side by side (default overlay)")
    group.add_argument("--alpha", type=alpha_255, default=DEFAULT_ALPHA, metavar="0-255",
                       help=f"overlay alpha, 0 (frame only) to 255 (mask only) as in segnet (default {DEFAULT_ALPHA})")
    group.add_argument("--filter-mode", choices=FILTER_MODES, default="point",
                       help="mask upsampling: point = nearest on the mask (default); linear = bilinear on the "
                       "scores, smooth edges (needs a model without the fused argmax)")
    group.add_argument("--ignore-class", metavar="NAME|INDEX", help="class left uncoloured, e.g. background")
    group.add_argument("--legend", action=argparse.BooleanOptionalAction, default=legend_default,
                       help="draw the class legend (colour and name) on the pictures "
                       f"(default {'on' if legend_default else 'off'})")


def add_data_options(p: argparse.ArgumentParser, required: bool = False, default: Optional[str] = None,
                     title: str = "dataset", what: str = "", split_default: str = "val",
                     limit: bool = True) -> None:
    """A labelled dataset: --data, --split, --data-format, and --limit unless the command's
    --limit counts something else (quantize and qat: calibration images)."""
    group = p.add_argument_group(title)
    group.add_argument("--data", required=required, default=default, metavar="DIR",
                       help=(what or "dataset root (VOC, Cityscapes, images/+masks/) or 'synthetic' (the built-in "
                             "street scenes)") + (f"; default {default}" if default else ""))
    group.add_argument("--split", help=f"split to use (default: {split_default}; every image of a folder pair without "
                       "split lists)")
    group.add_argument("--data-format", choices=("auto", "voc", "cityscapes", "folder"), default="auto",
                       help="dataset layout (default: detected)")
    if limit:
        add_limit(group, "use only the first N images of the split")


def add_head_options(p) -> None:
    """The exported graph's boundary, as export and qat take it: --fuse-preprocess, --output-kind."""
    p.add_argument("--fuse-preprocess", action="store_true",
                   help="input uint8 NHWC BGR frames; normalisation and layout inside the graph")
    p.add_argument("--output-kind", choices=("logits", "mask"), default="logits",
                   help="logits (float NCHW scores) or mask (argmax inside the graph)")


def add_keep_float(p, help: str) -> None:
    p.add_argument("--keep-float", type=comma_items, action=ExtendList, default=[], metavar="NODE[,NODE...]",
                   help=help + "; repeatable")


def add_int8_options(p) -> None:
    """How INT8 Q/DQ is made, as quantize and qat take it: --method, --target, --min-tensorrt, --cache-dir."""
    p.add_argument("--method", choices=("entropy", "minmax", "percentile"), default="percentile",
                   help="activation range: percentile of |x| (default: measured closest to FP32 on the default "
                   "model); entropy = KL divergence as TensorRT's entropy calibrator; minmax")
    p.add_argument("--target", choices=("tensorrt", "onnxruntime"), default="tensorrt",
                   help="tensorrt: symmetric int8, zero point 0 (default); onnxruntime: uint8 activations fused "
                   "into QLinearConv on CPU")
    p.add_argument("--min-tensorrt", type=tensorrt_major, default=10, metavar="8|10",
                   help="oldest TensorRT the file must build on: 10 = mixed INT8/FP16 at opset 19 with int8 weights, "
                   "for strongly typed builds (default); 8 = FP32 Q/DQ at the export's opset (TensorRT 8.5/8.6, "
                   "JetPack 5 and 6.0)")
    p.add_argument("--cache-dir", help="calibration cache folder (default ~/.cache/fcn-edge/calibration)")


def data_spec(args: argparse.Namespace):
    """The flags of :func:`add_data_options` as a :class:`~fcn_edge.data.DatasetSpec`."""
    from fcn_edge.data.formats import DatasetSpec

    return DatasetSpec(args.data, args.split, args.data_format, args.limit)


def add_calib(p, help: str = "calibration set: a folder of images or a manifest with one path per line "
              "(see calibration/README.md); 'default' is the built-in model's set") -> None:
    p.add_argument("--calib", metavar="DIR|LIST", help=help)


def add_batch(p, help: str, default: Optional[int] = 1) -> None:
    p.add_argument("--batch", type=positive_int, default=default, metavar="N",
                   help=help + (f" (default {default})" if default is not None else ""))


def add_limit(p, help: str) -> None:
    p.add_argument("--limit", type=positive_int, metavar="N", help=help)


def add_json(p, help: str = "write the report as JSON to FILE ('-': stdout)") -> None:
    p.add_argument("--json", metavar="FILE", help=help)


def add_quiet(p) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def positive_int_list(text: str) -> List[int]:
    """'2,4,8' -> [2, 4, 8]."""
    return [positive_int(item) for item in comma_items(text)]


def add_serving_options(p: argparse.ArgumentParser, repository: bool) -> None:
    """Triton's batching and instances, as triton-repo writes them and serve runs them."""
    group = p.add_argument_group("Triton batching and instances")
    group.add_argument("--max-batch", type=non_negative_int, metavar="N",
                       help="Triton's max_batch_size (default: the engine profile's max batch, or the model's)")
    group.add_argument("--preferred-batch", type=positive_int_list, metavar="LIST",
                       help="batch sizes the dynamic batcher completes a batch at, e.g. 2,4 "
                       "(default: the max batch, and an engine profile's opt batch)")
    group.add_argument("--queue-delay-us", type=non_negative_int, default=500, metavar="US",
                       help="how long the dynamic batcher waits for more requests, in microseconds (default 500)")
    group.add_argument("--instances", type=positive_int, default=1, metavar="N",
                       help="model instances (copies) that run requests in parallel (default 1)")
    if repository:
        group.add_argument("--instance-kind", choices=("auto", "gpu", "cpu"), default="auto",
                           help="where instances run (default auto: GPU where the server has one; an engine is always gpu)")
        group.add_argument("--gpus", type=lambda t: [non_negative_int(i) for i in comma_items(t)], metavar="LIST",
                           help="GPU indices for the instances, e.g. 0,1 (default: every GPU)")
        group.add_argument("--accelerator", choices=("none", "tensorrt"), default="none",
                           help="ONNX models: run GPU instances through ONNX Runtime's TensorRT provider at the "
                           "model's own precision (default none: CUDA)")


def serving_options(args: argparse.Namespace):
    """The flags of :func:`add_serving_options` as :class:`fcn_edge.serve.ServingOptions`."""
    from fcn_edge.serve.model_config import ServingOptions

    return ServingOptions(
        max_batch=args.max_batch,
        preferred_batch=tuple(args.preferred_batch) if args.preferred_batch else None,
        queue_delay_us=args.queue_delay_us,
        instances=args.instances,
        instance_kind=getattr(args, "instance_kind", "auto"),
        gpus=tuple(getattr(args, "gpus", None) or ()),
        accelerator=getattr(args, "accelerator", "none"),
    )


# -- resolution shared by the handlers -------------------------------------------------------
def default_model() -> Path:
    """The shipped default model, for commands run without a model: its fused ONNX where
    it ships (runs without torch), else the checkpoint."""
    from fcn_edge import weights

    for name in ("default_onnx", "default_checkpoint"):
        getter = getattr(weights, name, None)
        if getter is not None:
            return Path(getter())
    raise UsageError("no model given and fcn_edge.weights offers no default model; name one")


def model_or_default(value: Optional[str]) -> Union[Path, str]:
    """The model a user named (a file, or a ``triton://`` URI kept as text), else the default."""
    from fcn_edge.runtime.triton_uri import is_triton_uri

    if value and is_triton_uri(value):
        return value
    return Path(value) if value else default_model()


def load_options(args: argparse.Namespace):
    """The flags of :func:`add_backend_options` (single backend) and ``--input-size`` as the
    runtime's :class:`~fcn_edge.runtime.LoadOptions`."""
    from fcn_edge.runtime import LoadOptions

    return LoadOptions(args.backend, tuple(args.providers) if args.providers else None, args.device,
                       args.threads, getattr(args, "cuda_graph", False), args.input_size, args.cuda)


def write_json_report(destination: Optional[str], data) -> Optional[str]:
    """``--json FILE``: ``data`` to FILE atomically, or to stdout for '-'; returns where it went."""
    if destination is None:
        return None
    if destination == "-":
        import json
        import sys

        json.dump(data, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
        return "stdout"
    from fcn_edge.atomic import write_json_atomic

    return str(write_json_atomic(destination, data))
