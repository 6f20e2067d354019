"""``fcn-edge segment IMAGE|DIR --model M --out DIR``: segment still images.

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

from fcn_edge.cli.args import default_model, overlay_alpha, resolve_ignore_class, size_hw

log = logging.getLogger("fcn_edge.cli.segment")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "segment",
        help="segment still images (a file or a folder) and write overlays and masks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="IMAGE|DIR", help="image files and/or folders of images")
    p.add_argument("--model", help=".engine, .onnx or .pt (default: the built-in default model)")
    p.add_argument("--out", "-o", required=True, metavar="DIR", help="folder for the pictures (created)")
    p.add_argument("--backend", default="auto", help="auto (by file type) | tensorrt | onnxruntime | torch")
    p.add_argument("--providers", help="ONNX Runtime providers in order, e.g. cuda,cpu or tensorrt,cuda,cpu")
    p.add_argument("--device", type=int, default=0, help="CUDA device index (default 0)")
    p.add_argument("--threads", type=int, help="CPU threads for ONNX Runtime / PyTorch")
    p.add_argument("--cuda-graph", action="store_true", help="TensorRT: capture copies + engine in a CUDA graph (fixed shapes)")
    p.add_argument("--input-size", type=size_hw, metavar="HxW", help="network input size for dynamic-shape models (default: the model's)")
    p.add_argument("--batch", type=int, default=1, help="images per inference call (default 1)")
    p.add_argument("--mode", choices=("overlay", "mask", "both"), default="overlay", help="picture to write: overlay on the image, the colour mask, or both side by side")
    p.add_argument("--alpha", type=overlay_alpha, default=150 / 255, help="overlay alpha, 0-255 as in segnet (default 150)")
    p.add_argument("--ignore-class", metavar="NAME|INDEX", help="class left uncoloured, e.g. background")
    p.add_argument("--filter-mode", choices=("point", "linear"), default="point", help="mask upsampling: point (nearest on the mask) or linear (bilinear on the scores; needs a model without fused argmax)")
    p.add_argument("--save-mask", action="store_true", help="also write <stem>.mask.png with raw class indices")
    p.add_argument("--recursive", action="store_true", help="look for images in sub-folders too")
    p.add_argument("--json", metavar="FILE", help="write per-image timings and class shares to FILE")
    p.add_argument("--top", type=int, default=3, help="classes to list per image (default 3)")
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
    from fcn_edge.errors import FcnEdgeError
    from fcn_edge.meta import write_json_atomic
    from fcn_edge.runtime import DecodeConfig, RenderConfig, Renderer, load_segmenter

    if args.batch < 1:
        raise FcnEdgeError(f"--batch must be at least 1, got {args.batch}")
    images = collect_images(args.inputs, args.recursive)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = Path(args.model) if args.model else default_model()
    providers = [p.strip() for p in args.providers.split(",")] if args.providers else None
    segmenter = load_segmenter(model, args.backend, decode=DecodeConfig(args.filter_mode),
                               input_size=args.input_size, providers=providers, device=args.device,
                               threads=args.threads, cuda_graph=args.cuda_graph)
    records = []
    with segmenter:
        meta = segmenter.meta
        ignore = resolve_ignore_class(args.ignore_class, meta.class_names)
        renderer = Renderer(meta.palette, RenderConfig(args.mode, args.alpha, ignore))
        print(f"model: {segmenter.description}", file=sys.stderr)
        for start in range(0, len(images), args.batch):
            chunk = images[start : start + args.batch]
            frames = [read_image(p) for p in chunk]
            results = segmenter.segment_batch(frames)
            for path, frame, result in zip(chunk, frames, results):
                picture = renderer(frame, result.mask)
                picture_path = out / f"{path.stem}.{args.mode}.png"
                write_image(picture_path, picture)
                if args.save_mask:
                    write_image(out / f"{path.stem}.mask.png", result.mask)
                shares = result.class_shares(ignore)
                top = sorted(shares.items(), key=lambda kv: -kv[1])[: max(args.top, 0)]
                t = result.timings
                print(
                    f"{path.name}: {frame.shape[1]}x{frame.shape[0]} "
                    f"pre {t.preprocess_ms:.1f} ms, infer {t.infer_ms:.1f} ms, decode {t.decode_ms:.1f} ms | "
                    + ", ".join(f"{name} {share:.0%}" for name, share in top if share > 0)
                )
                records.append({"image": str(path), "output": str(picture_path), "width": frame.shape[1],
                                "height": frame.shape[0], "timings": t.as_dict(), "class_shares": shares})
    if args.json:
        write_json_atomic(args.json, {"model": str(model), "backend": segmenter.backend.name, "images": records})
    print(f"{len(images)} image(s) -> {out}", file=sys.stderr)
    return 0
