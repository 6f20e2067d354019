"""``fcn-edge segment INPUT... -o DIR [--model M]``: segment still images.

For each image it writes ``<stem>.<mode>.png`` (overlay, colour mask, or both side by
side, with a legend of the classes in the picture unless ``--no-legend``) and, with
``--save-mask``, ``<stem>.mask.png`` holding the raw class indices (what evaluation tools
read), and prints the time per stage and the classes that cover the most pixels. ``--json``
writes the same facts for every image to one file. Without ``--model`` it runs the built-in
default model's ONNX, which needs no torch.
"""

from __future__ import annotations

import argparse
import sys

from fcn_edge.cli.args import (
    add_backend_options, add_batch, add_input_size, add_json, add_model_option, add_out, add_visual_options,
    load_options, model_or_default, non_negative_int, write_json_report,
)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "segment",
        help="segment still images (files or folders) and write overlays and masks",
        description=__doc__,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders of images")
    add_model_option(p)
    add_out(p, "folder for the pictures (created)", required=True, metavar="DIR")
    add_input_size(p, "network input size for a dynamic-shape model (default: the model's)")
    add_backend_options(p)
    add_batch(p, "images per inference call")
    add_visual_options(p, legend_default=True)
    p.add_argument("--save-mask", action="store_true", help="also write <stem>.mask.png with raw class indices")
    p.add_argument("--recursive", action="store_true", help="look for images in sub-folders too")
    p.add_argument("--top", type=non_negative_int, default=3, help="classes to list per image (default 3)")
    add_json(p, "write per-image timings and class shares as JSON to FILE ('-': stdout)")
    return p


def run(args) -> int:
    from fcn_edge.runtime import RenderConfig
    from fcn_edge.video.images import SegmentImagesConfig, segment_images

    config = SegmentImagesConfig(
        model=model_or_default(args.model),
        load=load_options(args),
        filter_mode=args.filter_mode,
        render=RenderConfig(args.visualize, args.alpha, args.ignore_class, args.legend),
        save_mask=args.save_mask,
        recursive=args.recursive,
        batch=args.batch,
    )
    lines = sys.stderr if args.json == "-" else sys.stdout  # stdout carries the JSON then

    def show(record) -> None:
        t = record.timings
        print(f"{record.image.name}: {record.width}x{record.height} pre {t.preprocess_ms:.1f} ms, "
              f"infer {t.infer_ms:.1f} ms, decode {t.decode_ms:.1f} ms | "
              + ", ".join(f"{name} {share:.0%}" for name, share in record.top_classes(args.top)), file=lines)

    report = segment_images(args.inputs, args.out, config, on_image=show)
    write_json_report(args.json, report.to_dict())
    print(f"{len(report.images)} image(s) -> {report.out_dir} ({report.description})", file=sys.stderr)
    return 0
