#!/usr/bin/env python3
"""Generate the synthetic street-scene dataset and clip (cached), or write them to --out.

    python tools/make_synthetic.py                       # the default set, into the cache
    python tools/make_synthetic.py --out data/streets --train 1000 --val 200 --seed 7
    python tools/make_synthetic.py --clip-only           # just the 640x480 video and its masks

Prints where the dataset and the clip are. The cache is $FCN_EDGE_CACHE or ~/.cache/fcn-edge.
"""

import argparse
import os
import sys
import time
from pathlib import Path

from fcn_edge.data.synthetic import SyntheticConfig, ensure_clip, ensure_dataset, generate_dataset, write_clip


def main(argv=None) -> int:
    d = SyntheticConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, help="write here instead of the cache (the clip goes to OUT/clip)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--train", type=int, default=d.train_images, help=f"train images (default {d.train_images})")
    p.add_argument("--val", type=int, default=d.val_images, help=f"val images (default {d.val_images})")
    p.add_argument("--size", default=f"{d.height}x{d.width}", help="HEIGHTxWIDTH of images and clip (default 480x640)")
    p.add_argument("--clip-seconds", type=float, default=d.clip_seconds)
    p.add_argument("--clip-fps", type=float, default=d.clip_fps)
    p.add_argument("--clip-only", action="store_true", help="write only the clip")
    p.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, 8), help="processes rendering images")
    args = p.parse_args(argv)
    height, width = (int(v) for v in args.size.lower().split("x"))
    config = SyntheticConfig(seed=args.seed, train_images=args.train, val_images=args.val, height=height,
                             width=width, clip_seconds=args.clip_seconds, clip_fps=args.clip_fps)
    started = time.perf_counter()
    if not args.clip_only:
        if args.out:
            root = generate_dataset(args.out, config, workers=args.workers)
        else:
            root = ensure_dataset(config, workers=args.workers)
        print(f"dataset: {root}  ({args.train} train + {args.val} val, VOC layout)")
    clip = write_clip(args.out / "clip", config) if args.out else ensure_clip(config)
    print(f"clip:    {clip}  (masks in {clip.parent / 'masks'})")
    print(f"took {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
