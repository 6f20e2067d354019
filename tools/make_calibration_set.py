#!/usr/bin/env python3
"""Pick N calibration images from a labelled dataset, covering its classes and lighting.

    python tools/make_calibration_set.py synthetic --split train -n 64 --out fcn_edge/weights/calibration
    python tools/make_calibration_set.py /data/VOC2012 --split train -n 500 --manifest calib.txt

Greedy selection: each step takes the image that adds the most *new* coverage, where a
class (or a brightness band, a proxy for lighting and exposure) is worth less the more
already-picked images contain it. Rare classes therefore appear in as many picked images as
the dataset allows, and frequent ones do not crowd them out. Calibration should see what
deployment sees: use the training split (never the split you report accuracy on).

``--out DIR`` copies the picked images into DIR (a folder calibration set) and writes
DIR/selection.json with the per-class coverage; ``--manifest FILE`` writes their paths, one
per line, instead of copying.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

BRIGHTNESS_BANDS = 4


def image_features(dataset, index: int, num_classes: int):
    """(classes present, with their pixel fraction), brightness band of one sample."""
    sample = dataset[index]
    mask = sample.mask
    valid = mask[mask < num_classes]
    counts = np.bincount(valid.ravel(), minlength=num_classes)[:num_classes].astype(np.float64)
    fraction = counts / max(valid.size, 1)
    brightness = float(sample.image.mean()) / 255.0
    band = min(BRIGHTNESS_BANDS - 1, int(brightness * BRIGHTNESS_BANDS))
    return fraction, band, sample.image_path


def select(fractions: np.ndarray, bands: np.ndarray, n: int, min_fraction: float = 0.002) -> list:
    """Indices of ``n`` images chosen greedily for class and brightness coverage."""
    present = fractions >= min_fraction
    num_images, num_classes = fractions.shape
    class_hits = np.zeros(num_classes)
    band_hits = np.zeros(BRIGHTNESS_BANDS)
    chosen: list = []
    available = np.ones(num_images, bool)
    for _ in range(min(n, num_images)):
        class_gain = (present / (1.0 + class_hits)).sum(axis=1)
        band_gain = 0.5 / (1.0 + band_hits[bands])
        # a small pull towards images with more labelled area of rare classes breaks ties
        rarity = (fractions / (1.0 + class_hits)).sum(axis=1) * 1e-3
        score = np.where(available, class_gain + band_gain + rarity, -np.inf)
        best = int(np.argmax(score))
        chosen.append(best)
        available[best] = False
        class_hits += present[best]
        band_hits[bands[best]] += 1
    return chosen


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="dataset root (VOC, Cityscapes, images/+masks/ folder) or 'synthetic'")
    parser.add_argument("--split", default="train", help="split to pick from (default train)")
    parser.add_argument("-n", "--count", type=int, default=64, help="number of images (default 64)")
    out = parser.add_mutually_exclusive_group(required=True)
    out.add_argument("--out", help="copy the picked images into this folder")
    out.add_argument("--manifest", help="write the picked image paths to this text file")
    args = parser.parse_args(argv)

    from fcn_edge.data.formats import open_dataset
    from fcn_edge.errors import FcnEdgeError

    try:
        dataset = open_dataset(args.data, args.split)
    except FcnEdgeError as exc:
        print(f"make_calibration_set: error: {exc}", file=sys.stderr)
        return 2
    if args.split == "val":
        print("make_calibration_set: warning: picking from the val split; report accuracy on another split",
              file=sys.stderr)
    k = dataset.num_classes
    feats = [image_features(dataset, i, k) for i in range(len(dataset))]
    fractions = np.stack([f[0] for f in feats])
    bands = np.array([f[1] for f in feats])
    chosen = select(fractions, bands, args.count)
    paths = [feats[i][2] for i in chosen]
    coverage = {name: int((fractions[chosen, c] >= 0.002).sum()) for c, name in enumerate(dataset.class_names)}
    available = {name: int((fractions[:, c] >= 0.002).sum()) for c, name in enumerate(dataset.class_names)}
    if args.manifest:
        manifest = Path(args.manifest)
        manifest.parent.mkdir(parents=True, exist_ok=True)
        manifest.write_text("".join(f"{p.resolve()}\n" for p in paths))
        print(f"wrote {manifest} ({len(paths)} images)")
    else:
        folder = Path(args.out)
        folder.mkdir(parents=True, exist_ok=True)
        for path in paths:
            shutil.copy2(path, folder / path.name)
        selection = {
            "source": str(args.data), "split": args.split, "images": [p.name for p in paths],
            "images_with_class": coverage, "images_with_class_in_split": available,
            "brightness_bands": np.bincount(bands[chosen], minlength=BRIGHTNESS_BANDS).tolist(),
        }
        (folder / "selection.json").write_text(json.dumps(selection, indent=2) + "\n")
        print(f"copied {len(paths)} images to {folder}")
    for name in dataset.class_names:
        print(f"  {name:12s} in {coverage[name]:4d} of {len(paths)} picked images ({available[name]} in the split)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
