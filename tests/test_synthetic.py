"""The procedural street scenes: determinism, labels, the dataset and clip they write."""

import json

import cv2
import numpy as np
import pytest

from fcn_edge.classes import SYNTHETIC_CLASSES
from fcn_edge.data import open_dataset
from fcn_edge.data.synthetic import (
    SyntheticConfig,
    clip_plan,
    ensure_clip,
    ensure_dataset,
    generate_dataset,
    render_sample,
)
from fcn_edge.errors import DataError
from fcn_edge.evaluate import ConfusionMatrix

from video_fixtures import read_all

SMALL = SyntheticConfig(seed=5, train_images=6, val_images=3, height=96, width=128, clip_seconds=1.0, clip_fps=6)
FEW = SyntheticConfig(seed=5, train_images=3, val_images=2, height=64, width=80)


def test_same_seed_same_pixels_other_seed_other_pixels():
    a_img, a_mask = render_sample(SMALL, "train", 2)
    b_img, b_mask = render_sample(SMALL, "train", 2)
    assert (a_img == b_img).all() and (a_mask == b_mask).all()
    c_img, _ = render_sample(SyntheticConfig(seed=6, height=96, width=128), "train", 2)
    d_img, _ = render_sample(SMALL, "val", 2)  # val draws from its own stream
    assert not (a_img == c_img).all() and not (a_img == d_img).all()
    assert a_img.shape == (96, 128, 3) and a_img.dtype == np.uint8
    assert a_mask.shape == (96, 128) and a_mask.max() < len(SYNTHETIC_CLASSES)


def test_scenes_cover_every_class():
    counts = np.zeros(len(SYNTHETIC_CLASSES))
    for index in range(6):
        counts += np.bincount(render_sample(SMALL, "train", index)[1].ravel(), minlength=len(SYNTHETIC_CLASSES))
    assert (counts > 0).all(), dict(zip(SYNTHETIC_CLASSES, counts))


def test_written_dataset_is_identical_across_runs_and_workers(tmp_path):
    a = generate_dataset(tmp_path / "a", FEW, progress=False, workers=1)
    b = generate_dataset(tmp_path / "b", FEW, progress=False, workers=2)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) == 2 * 5 + 2 + 2  # jpg + png per image, 2 split lists, classes.txt, synthetic.json
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    ds = open_dataset(a, "train", training=True)
    assert ds.format_name == "voc" and ds.dataset_key == "synthetic" and len(ds) == 3
    assert (ds[0].mask == render_sample(FEW, "train", 0)[1]).all()
    assert not list(tmp_path.glob(".*partial"))  # built under a temporary name, then renamed


def test_ensure_dataset_caches(tmp_path):
    root = ensure_dataset(FEW, cache_dir=tmp_path, progress=False, workers=1)
    stamp = (root / "synthetic.json").stat().st_mtime_ns
    assert ensure_dataset(FEW, cache_dir=tmp_path, progress=False) == root
    assert (root / "synthetic.json").stat().st_mtime_ns == stamp
    other = SyntheticConfig(seed=FEW.seed, train_images=3, val_images=2, height=64, width=80, clip_fps=30)
    assert other.key() == FEW.key()  # clip settings do not invalidate the still images
    assert other.clip_key() != FEW.clip_key()


def test_colour_alone_does_not_separate_the_classes():
    """The best per-colour lookup table, fit on train images, scores far below a real model."""
    config = SyntheticConfig(seed=1, height=96, width=128)
    q = 16
    hist = np.zeros((q**3, len(SYNTHETIC_CLASSES)))

    def keys(image):
        k = (image // (256 // q)).astype(np.int64)
        return (k[..., 0] * q + k[..., 1]) * q + k[..., 2]

    for index in range(16):
        image, mask = render_sample(config, "train", index)
        np.add.at(hist, (keys(image).ravel(), mask.ravel()), 1)
    lut = hist.argmax(1).astype(np.uint8)
    cm = ConfusionMatrix(len(SYNTHETIC_CLASSES))
    for index in range(6):
        image, mask = render_sample(config, "val", index)
        cm.update(lut[keys(image)], mask)
    metrics = cm.metrics(SYNTHETIC_CLASSES)
    assert metrics.mean_iu < 0.5, metrics.mean_iu
    assert metrics.iu[SYNTHETIC_CLASSES.index("person")] < 0.3


def test_clip_moves_pans_and_darkens(tmp_path):
    video = ensure_clip(SMALL, cache_dir=tmp_path, progress=False)
    info = json.loads((video.parent / "clip.json").read_text())
    plan = clip_plan(SMALL)
    assert info["frames"] == plan.frames == 6 and info["fps"] == 6
    frames = read_all(video)
    assert len(frames) == 6 and frames[0].shape == (96, 128, 3)
    masks = [cv2.imread(str(video.parent / "masks" / f"{i:06d}.png")) for i in range(6)]
    assert all(m is not None and m.shape == (96, 128, 3) for m in masks)
    assert not (masks[0] == masks[-1]).all()  # objects moved and the camera turned
    assert plan.pan(0) == 0 and plan.pan(5) == plan.pan_pixels > 0
    assert plan.lighting(0) == 0 and plan.lighting(5) == 1
    assert frames[-1].mean() < frames[0].mean()  # sunny -> dusk
    assert ensure_clip(SMALL, cache_dir=tmp_path) == video


def test_unknown_split_is_refused():
    with pytest.raises(DataError, match="synthetic split 'test' is not one of"):
        render_sample(SMALL, "test", 0)
