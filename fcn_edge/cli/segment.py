"""``fcn-edge segment INPUT... -o DIR [--model M]``: segment still images.

For each image it writes ``<stem>.<mode>.png`` (overlay, colour mask, or both side by
side) and, with ``--save-mask``, ``<stem>.mask.png`` holding the raw class indices (what
evaluation tools read), and prints the time per stage and the classes that cover the most
pixels. ``--json`` writes the same facts for every image to one file.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List

from fcn_edge.cli.args import (
    add_backend_options, add_batch, add_input_size, add_json, add_model_option, add_out, add_visual_options,
    model_or_default, non_negative_int, resolve_ignore_class, write_json_report,
)

log = logging.getLogger("fcn_edge.cli.segment")


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


def collect_images(inputs: List[str], recursive: bool) -> List[Path]:
    """Image files named or inside the given folders, in natural order (img2 before img10)."""
    from fcn_edge.errors import DataError
    from fcn_edge.video.sources import list_images
    from fcn_edge.video.uri import IMAGE_EXTENSIONS

    images: List[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            folders = [path] + (sorted(p for p in path.rglob("*") if p.is_dir()) if recursive else [])
            for folder in folders:
                images.extend(Path(p) for p in list_images(str(folder)))
        elif path.is_file():
            images.append(path)
        else:
            raise DataError(f"{path}: no such image file or folder")
    if not images:
        raise DataError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in {', '.join(inputs)}")
    return images


def run(args) -> int:
    # `fcn-edge run` already resolves the default model and --ignore-class; use the same rules.
    from fcn_edge.data.images import read_image, write_image
    from fcn_edge.runtime import DecodeConfig, RenderConfig, Renderer, load_segmenter

    images = collect_images(args.inputs, args.recursive)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = model_or_default(args.model)
    segmenter = load_segmenter(model, args.backend, decode=DecodeConfig(args.filter_mode),
                               input_size=args.input_size, providers=args.providers, device=args.device,
                               threads=args.threads, cuda_graph=args.cuda_graph)
    records = []
    with segmenter:
        meta = segmenter.meta
        ignore = resolve_ignore_class(args.ignore_class, meta.class_names)
        renderer = Renderer(meta.palette, RenderConfig(args.visualize, args.alpha / 255.0, ignore))
        print(f"model: {segmenter.description}", file=sys.stderr)
        for start in range(0, len(images), args.batch):
            chunk = images[start : start + args.batch]
            frames = [read_image(p) for p in chunk]
            results = segmenter.segment_batch(frames)
            for path, frame, result in zip(chunk, frames, results):
                picture = renderer(frame, result.mask)
                picture_path = out / f"{path.stem}.{args.visualize}.png"
                write_image(picture_path, picture)
                if args.save_mask:
                    write_image(out / f"{path.stem}.mask.png", result.mask)
                shares = result.class_shares(ignore)
                top = sorted(shares.items(), key=lambda kv: -kv[1])[: max(args.top, 0)]
                t = result.timings
                print(
                    f"{path.name}: {frame.shape[1]}x{frame.shape[0]} "
                    f"pre {t.preprocess_ms:.1f} ms, infer {t.infer_ms:.1f} ms, decode {t.decode_ms:.1f} ms | "
                    + ", ".join(f"{name} {share:.0%}" for name, share in top if share > 0),
                    file=sys.stderr if args.json == "-" else sys.stdout,  # stdout carries the JSON then
                )
                records.append({"image": str(path), "output": str(picture_path), "width": frame.shape[1],
                                "height": frame.shape[0], "timings": t.as_dict(), "class_shares": shares})
    write_json_report(args.json, {"model": str(model), "backend": segmenter.backend.name, "images": records})
    print(f"{len(images)} image(s) -> {out}", file=sys.stderr)
    return 0
