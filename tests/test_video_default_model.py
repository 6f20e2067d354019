"""`fcn-edge run` on the synthetic street clip with the shipped default model (ONNX Runtime):
a short run (24 frames) whose output plays and whose masks match the clip's ground truth
better than chance."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from fcn_edge.cli.main import main

from video_fixtures import read_all

pytest.importorskip("torch")
FRAMES = 24




@pytest.fixture(scope="module")
def clip():
    from fcn_edge.data.synthetic import ensure_clip

    return ensure_clip(progress=False)


def test_default_model_on_the_synthetic_clip(default_onnx, clip, tmp_path):
    out = tmp_path / "street_seg.mp4"
    masks = tmp_path / "masks"
    summary_json = tmp_path / "summary.json"
    rc = main(["run", str(clip), "-o", str(out), "--model", str(default_onnx), "--headless", "--max-frames", str(FRAMES),
               "--json", str(summary_json)])
    assert rc == 0
    summary = json.loads(summary_json.read_text())
    assert summary["frames_in"] == summary["frames_out"] == FRAMES and summary["dropped"] == 0
    frames = read_all(out)
    assert len(frames) == FRAMES and frames[0].shape == (480, 640, 3)

    # the masks themselves, as an image sequence of class colours, against the ground truth
    rc = main(["run", str(clip), "-o", str(masks / "%03d.png"), "--model", str(default_onnx), "--headless",
               "--max-frames", "6", "--visualize", "mask", "--no-stats", "--filter-mode", "point"])
    assert rc == 0
    from fcn_edge.artifacts import read_onnx_meta
    from fcn_edge.data.images import colours_to_indices, read_label_png

    palette = read_onnx_meta(default_onnx).palette
    agree = []
    for i in range(6):
        path = masks / f"{i:03d}.png"
        predicted = colours_to_indices(cv2.imread(str(path)), palette, str(path))
        truth = read_label_png(clip.parent / "masks" / f"{i:06d}.png")
        agree.append(np.mean(predicted == truth))
    assert np.mean(agree) > 0.5, agree  # 7 classes: chance is far lower
