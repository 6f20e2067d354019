"""``fcn-edge export MODEL``: a model -> a deployable ONNX with ModelMeta, checked in ONNX Runtime.

MODEL is a registry name (random weights, for benchmarks and tests; see --list), a
checkpoint (fcn-edge's own .pt, torchvision's fcn_resnet50/101 state_dict, a pytorch-fcn
FCN32s/16s/8s), Keras FCN-8/FCN-32 weights (Keras 2 .h5, Keras 3 .weights.h5 or .keras, a
keras_segmentation checkpoint: its folder, <prefix>_config.json or prefix), or a
segmentation ONNX made elsewhere (torchvision, mmsegmentation, segmentation_models_pytorch,
tf2onnx, ...), told by its content whatever its suffix. The deployment heads
(--fuse-preprocess, --fuse-resize, --output-kind mask) are added to the graph the same way
for each. Sizes are HEIGHTxWIDTH (e.g. 256x320).

Examples:
  fcn-edge export fcn8s_resnet18 --input-size 320x320 -o fcn8s_resnet18.onnx
  fcn-edge export model.pt --fuse-preprocess --output-kind mask -o model.onnx
  fcn-edge export model.pt --fuse-preprocess --fuse-resize --output-kind mask --argmax reduce -o model.onnx
  fcn-edge export fcn8s-heavy-pascal.pth --fixed-shape --input-size 512x512
  fcn-edge export fcn8.h5 --arch fcn_8_vgg --classes voc --fuse-preprocess --output-kind mask -o fcn8.onnx
  fcn-edge export deeplab.onnx --classes voc --preprocessing imagenet --input-size 512x512 \
      --fuse-preprocess --output-kind mask -o deeplab.deploy.onnx
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fcn_edge.classes import DATASETS
from fcn_edge.cli.args import (
    add_frame_size, add_head_options, add_input_size, add_json, add_model_argument, add_out, comma_items,
    non_negative_float, positive_int, size_hw, write_json_report,
)


def rgb_values(text: str):
    """'0.485,0.456,0.406' -> three floats (R, G, B)."""
    items = comma_items(text)
    try:
        values = tuple(float(v) for v in items)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not three comma-separated numbers (R,G,B)") from None
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"{text!r} has {len(values)} numbers; give three (R,G,B)")
    return values


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "export",
        help="make a deployable ONNX of a checkpoint, registry model or ONNX (with ModelMeta and parity checks)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_argument(p, "checkpoint, Keras weights or ONNX file, or a registry name such as fcn8s_vgg16 (see --list)",
                       optional=True)
    p.add_argument("--list", action="store_true", help="list the registry's architectures and exit")
    add_out(p, "output .onnx (default: <MODEL stem>.onnx in the current directory)")
    src = p.add_argument_group("model source")
    src.add_argument("--arch", help="architecture of a bare state_dict or of Keras weights (fcn_8_vgg, fcn_32_vgg, "
                     "fcn_8, fcn_32) whose file does not say (checked against what it does say)")
    src.add_argument("--classes", metavar="NAME|FILE|N",
                     help="class names and palette: a built-in list (" + ", ".join(sorted(DATASETS))
                     + "), a classes.txt (with colours: 'name R G B'), or a count (names class_0..); "
                     "default: the checkpoint's own when it has ModelMeta (given, it replaces them), else voc for "
                     "21 classes, cityscapes for 19; the count must be the model's")
    src.add_argument("--seed", type=int, default=0, help="seed of a registry model's random weights and of the parity inputs")
    from fcn_edge.export.config import PREPROCESSINGS

    onnx = p.add_argument_group("a model made elsewhere: what the file does not say")
    onnx.add_argument("--preprocessing", metavar="NAME",
                      help="how the model's input was normalised. An ONNX: " + "; ".join(
                          f"{k} ({v.origin})" for k, v in PREPROCESSINGS.items()) + " (default: the file's ModelMeta, "
                      "else imagenet). Keras weights: the Keras code's imgNorm, sub_mean, sub_mean_bgr, divide, "
                      "sub_and_divide or none (default: what the code that builds such a model used)")
    onnx.add_argument("--mean", type=rgb_values, metavar="R,G,B",
                      help="per-channel mean on RGB pixels in [0, 1] (torchvision's 0.485,0.456,0.406; divide 0..255 values by 255)")
    onnx.add_argument("--std", type=rgb_values, metavar="R,G,B", help="per-channel std on RGB pixels in [0, 1]")
    onnx.add_argument("--channel-order", choices=("RGB", "BGR"), help="the channel order the network reads (default: the preset's, else RGB)")
    onnx.add_argument("--input-layout", choices=("NCHW", "NHWC"), help="the input's layout when its shape does not tell")
    onnx.add_argument("--output-name", metavar="NAME", help="the output with the class scores, when the graph has several")
    shape = p.add_argument_group("shapes")
    add_input_size(shape, "example and optimal size (default: the checkpoint's trained size, else 320x320)")
    shape.add_argument("--fixed-shape", action="store_true", help="fix batch 1 and HxW in the graph (default: dynamic batch, height, width)")
    shape.add_argument("--min-size", type=size_hw, metavar="HxW", help="smallest size later steps must support (default: half of --input-size)")
    shape.add_argument("--max-size", type=size_hw, metavar="HxW", help="largest size later steps must support (default: twice --input-size)")
    shape.add_argument("--max-batch", type=positive_int, default=1, help="largest batch later steps must support (default 1)")
    add_frame_size(shape, "with --fuse-resize: the frame size engines are optimised for (default 480x640)")
    shape.add_argument("--min-frame-size", type=size_hw, metavar="HxW", help="with --fuse-resize: the smallest frame (default 120x160)")
    shape.add_argument("--max-frame-size", type=size_hw, metavar="HxW", help="with --fuse-resize: the largest frame (default 2160x3840)")
    graph = p.add_argument_group("graph")
    add_head_options(graph)
    graph.add_argument("--mask-dtype", choices=("uint8", "int32"), default="uint8", help="dtype of --output-kind mask (default uint8; int32 for > 256 classes)")
    graph.add_argument("--argmax", choices=("topk", "reduce"), default="topk",
                       help="the mask's argmax: topk (ONNX ArgMax, a TopK layer in TensorRT) or reduce (ReduceMax, Equal, "
                       "Where, ReduceMax: reductions and point-wise kernels); the same classes, ties to the first (default topk)")
    graph.add_argument("--fuse-resize", action="store_true",
                       help="with --fuse-preprocess: frames of any size in, resized to --input-size inside the graph; a mask "
                       "comes back at the frame's size (nearest). The host then only copies frames in and masks out")
    graph.add_argument("--opset", type=positive_int, default=17, help="ONNX opset (default 17: the newest TensorRT 8.5 parses; 8.6-11.x parse it too)")
    graph.add_argument("--exporter", choices=("legacy", "dynamo"), default="legacy", help="torch exporter (default legacy: clean dim names, direct opset 17)")
    graph.add_argument("--no-simplify", action="store_true", help="skip onnxslim")
    check = p.add_argument_group("parity checks (ONNX Runtime vs PyTorch or the original ONNX; the heads vs host preprocessing)")
    check.add_argument("--skip-parity", action="store_true", help="do not compare")
    check.add_argument("--atol", type=non_negative_float, default=1e-4, help="absolute tolerance on logits (default 1e-4)")
    check.add_argument("--rtol", type=non_negative_float, default=1e-3, help="tolerance relative to the largest |logit| (default 1e-3)")
    add_json(p)
    return p


def _parity_line(parity) -> str:
    shapes = ", ".join("x".join(map(str, s)) for s in parity.shapes)
    agreement = f"argmax agreement {parity.argmax_agreement:.4%}"
    if parity.max_abs_diff is None:
        return f"ONNX Runtime vs {parity.against} on {shapes}: mask agreement {parity.argmax_agreement:.4%}"
    tolerance = "" if parity.tolerance is None else f"tolerance {parity.tolerance:.3g}, "
    return (f"ONNX Runtime vs {parity.against} on {shapes}: max abs diff {parity.max_abs_diff:.3g} "
            f"({tolerance}max |logit| {parity.max_abs_reference:.3g}), {agreement}")


def _describe(report) -> str:
    meta = report.meta
    mib = report.file_bytes / 2**20
    slim = f"onnxslim {report.nodes_exported} -> {report.nodes_final} nodes" if report.simplified else f"{report.nodes_final} nodes, not simplified"
    layout = "uint8 NHWC BGR frames, normalised in the graph" if meta.fused_preprocess else "float NCHW RGB, normalised on the host"
    if meta.fused_resize:
        layout = "uint8 NHWC BGR frames of any size, resized and normalised in the graph"
    made = "heads grafted onto the original graph" if report.exporter == "foreign" else f"{report.exporter} exporter"
    lines = [
        f"wrote {report.path} ({mib:.1f} MiB, opset {report.opset}, {made}, {slim}, {report.seconds:.1f} s)",
        f"  model   {meta.architecture}, {meta.num_classes} classes" + (f" ({meta.dataset})" if meta.dataset else ""),
        f"  input   {report.input_dtype:<7} {list(report.input_shape)}  {layout}",
        f"  output  {report.output_name:<7} {report.output_dtype} {list(report.output_shape)}",
        f"  heads   {report.heads}",
        f"  sizes   opt {meta.input_size[0]}x{meta.input_size[1]}, range {meta.min_size[0]}x{meta.min_size[1]} .. "
        f"{meta.max_size[0]}x{meta.max_size[1]}, batch " + (f"dynamic (max {meta.max_batch} recorded)" if meta.dynamic_batch else "1 (fixed)"),
    ]
    if meta.source_hash:
        lines.append(f"  source  sha256 {meta.source_hash}")
    if report.parity is None and report.head_parity is None:
        lines.append("  parity  skipped")
    lines += [f"  parity  {_parity_line(p)}" for p in (report.parity, report.head_parity) if p is not None]
    lines += [f"  note    {note}" for note in report.notes]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from fcn_edge.errors import UsageError

    if args.list:
        from fcn_edge.models import list_models, model_spec

        for name in list_models():
            print(f"{name:<22} {model_spec(name).description}")
        return 0
    if not args.model:
        raise UsageError("name a checkpoint, an ONNX or a registry model (fcn-edge export --list shows the names)")

    from fcn_edge.classes import resolve_classes
    from fcn_edge.export import ExportConfig, export_onnx
    from fcn_edge.export.config import SourceHints

    dynamic = not args.fixed_shape
    config = ExportConfig(
        input_size=args.input_size,
        dynamic_batch=dynamic,
        dynamic_shape=dynamic,
        min_size=args.min_size if dynamic else None,
        max_size=args.max_size if dynamic else None,
        max_batch=args.max_batch if dynamic else 1,
        fuse_preprocess=args.fuse_preprocess,
        output=args.output_kind,
        mask_dtype=args.mask_dtype,
        argmax=args.argmax,
        fuse_resize=args.fuse_resize,
        frame_size=args.frame_size,
        frame_min_size=args.min_frame_size if dynamic else None,
        frame_max_size=args.max_frame_size if dynamic else None,
        opset=args.opset,
        exporter=args.exporter,
        simplify=not args.no_simplify,
        check_parity=not args.skip_parity,
        atol=args.atol,
        rtol=args.rtol,
        seed=args.seed,
    )
    hints = SourceHints(preprocessing=args.preprocessing, mean=args.mean, std=args.std,
                        channel_order=args.channel_order, input_layout=args.input_layout, output_name=args.output_name)
    source = Path(args.model)
    out: Path = args.out or Path(source.stem + ".onnx")
    if args.out is None and source.exists() and out.resolve() == source.resolve():
        out = Path(source.stem + ".deploy.onnx")  # never over the model being read
    report = export_onnx(args.model, out, config, classes=resolve_classes(args.classes) if args.classes else None,
                         architecture=args.arch, seed=args.seed, hints=hints)
    write_json_report(args.json, report.to_dict())
    if args.json != "-":
        print(_describe(report))
    return 0
