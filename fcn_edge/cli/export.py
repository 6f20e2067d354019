"""``fcn-edge export MODEL``: PyTorch -> ONNX with ModelMeta, checked against PyTorch.

MODEL is a registry name (random weights, for benchmarks and tests; see --list) or a
checkpoint: fcn-edge's own .pt, torchvision's fcn_resnet50/101 state_dict, or a
pytorch-fcn FCN32s/16s/8s, told by its content whatever its suffix. Sizes are
HEIGHTxWIDTH (e.g. 256x320).

Examples:
  fcn-edge export fcn8s_resnet18 --input-size 320x320 -o fcn8s_resnet18.onnx
  fcn-edge export model.pt --fuse-preprocess --output-kind mask -o model.onnx
  fcn-edge export fcn8s-heavy-pascal.pth --fixed-shape --input-size 512x512
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fcn_edge.classes import DATASETS
from fcn_edge.cli.args import (
    add_input_size, add_json, add_model_argument, add_out, non_negative_float, positive_int, size_hw,
    write_json_report,
)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "export",
        help="export a checkpoint or registry model to ONNX (with ModelMeta and a parity check)",
        description=__doc__,
    )
    add_model_argument(p, "checkpoint file, or a registry name such as fcn8s_vgg16 (see --list)", optional=True)
    p.add_argument("--list", action="store_true", help="list the registry's architectures and exit")
    add_out(p, "output .onnx (default: <MODEL stem>.onnx in the current directory)")
    src = p.add_argument_group("model source")
    src.add_argument("--arch", help="architecture of a bare state_dict (checked against other formats)")
    src.add_argument("--classes", metavar="NAME|FILE|N",
                     help="class names and palette: a built-in list (" + ", ".join(sorted(DATASETS))
                     + "), a classes.txt (with colours: 'name R G B'), or a count (names class_0..); "
                     "default: the checkpoint's own when it has ModelMeta (given, it replaces them), else voc for "
                     "21 classes, cityscapes for 19; the count must be the model's")
    src.add_argument("--seed", type=int, default=0, help="seed of a registry model's random weights and of the parity inputs")
    shape = p.add_argument_group("shapes")
    add_input_size(shape, "example and optimal size (default: the checkpoint's trained size, else 320x320)")
    shape.add_argument("--fixed-shape", action="store_true", help="fix batch 1 and HxW in the graph (default: dynamic batch, height, width)")
    shape.add_argument("--min-size", type=size_hw, metavar="HxW", help="smallest size later steps must support (default: half of --input-size)")
    shape.add_argument("--max-size", type=size_hw, metavar="HxW", help="largest size later steps must support (default: twice --input-size)")
    shape.add_argument("--max-batch", type=positive_int, default=1, help="largest batch later steps must support (default 1)")
    graph = p.add_argument_group("graph")
    graph.add_argument("--fuse-preprocess", action="store_true", help="input uint8 NHWC BGR frames; normalisation and layout inside the graph")
    graph.add_argument("--output-kind", choices=("logits", "mask"), default="logits", help="logits (float NCHW scores) or mask (argmax inside the graph)")
    graph.add_argument("--mask-dtype", choices=("uint8", "int32"), default="uint8", help="dtype of --output-kind mask (default uint8; int32 for > 256 classes)")
    graph.add_argument("--opset", type=positive_int, default=17, help="ONNX opset (default 17: the newest TensorRT 8.5 parses; 8.6-11.x parse it too)")
    graph.add_argument("--exporter", choices=("legacy", "dynamo"), default="legacy", help="torch exporter (default legacy: clean dim names, direct opset 17)")
    graph.add_argument("--no-simplify", action="store_true", help="skip onnxslim")
    check = p.add_argument_group("parity check (ONNX Runtime vs PyTorch)")
    check.add_argument("--skip-parity", action="store_true", help="do not compare against PyTorch")
    check.add_argument("--atol", type=non_negative_float, default=1e-4, help="absolute tolerance on logits (default 1e-4)")
    check.add_argument("--rtol", type=non_negative_float, default=1e-3, help="tolerance relative to the largest |logit| (default 1e-3)")
    add_json(p)
    return p


def _describe(report) -> str:
    meta = report.meta
    mib = report.file_bytes / 2**20
    slim = f"onnxslim {report.nodes_exported} -> {report.nodes_final} nodes" if report.simplified else f"{report.nodes_final} nodes, not simplified"
    layout = "uint8 NHWC BGR frames, normalised in the graph" if meta.fused_preprocess else "float NCHW RGB, normalised on the host"
    lines = [
        f"wrote {report.path} ({mib:.1f} MiB, opset {report.opset}, {report.exporter} exporter, {slim}, {report.seconds:.1f} s)",
        f"  model   {meta.architecture}, {meta.num_classes} classes" + (f" ({meta.dataset})" if meta.dataset else ""),
        f"  input   {report.input_dtype:<7} {list(report.input_shape)}  {layout}",
        f"  output  {report.output_name:<7} {report.output_dtype} {list(report.output_shape)}",
        f"  sizes   opt {meta.input_size[0]}x{meta.input_size[1]}, range {meta.min_size[0]}x{meta.min_size[1]} .. "
        f"{meta.max_size[0]}x{meta.max_size[1]}, batch " + (f"dynamic (max {meta.max_batch} recorded)" if meta.dynamic_batch else "1 (fixed)"),
    ]
    if meta.source_hash:
        lines.append(f"  source  sha256 {meta.source_hash}")
    parity = report.parity
    if parity is None:
        lines.append("  parity  skipped")
    else:
        shapes = ", ".join("x".join(map(str, s)) for s in parity.shapes)
        agreement = f"argmax agreement {parity.argmax_agreement:.4%}"
        if parity.max_abs_diff is None:
            lines.append(f"  parity  ONNX Runtime vs PyTorch on {shapes}: mask agreement {parity.argmax_agreement:.4%}")
        else:
            lines.append(
                f"  parity  ONNX Runtime vs PyTorch on {shapes}: max abs diff {parity.max_abs_diff:.3g} "
                f"(tolerance {parity.tolerance:.3g}, max |logit| {parity.max_abs_reference:.3g}), {agreement}"
            )
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
        raise UsageError("name a checkpoint or a registry model (fcn-edge export --list shows the names)")

    from fcn_edge.classes import resolve_classes
    from fcn_edge.export import ExportConfig, export_onnx

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
        opset=args.opset,
        exporter=args.exporter,
        simplify=not args.no_simplify,
        check_parity=not args.skip_parity,
        atol=args.atol,
        rtol=args.rtol,
        seed=args.seed,
    )
    out: Path = args.out or Path(Path(args.model).stem + ".onnx")
    report = export_onnx(args.model, out, config, classes=resolve_classes(args.classes) if args.classes else None,
                         architecture=args.arch, seed=args.seed)
    write_json_report(args.json, report.to_dict())
    if args.json != "-":
        print(_describe(report))
    return 0
