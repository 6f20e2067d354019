"""``fcn-edge segment`` on a folder of images, end to end on ONNX Runtime."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from fcn_edge.cli.main import main
from runtime_fixtures import make_onnx, sample_frame

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def fused_model(tmp_path_factory):
    pytest.importorskip("torch")
    return make_onnx(tmp_path_factory.mktemp("cli-model"), "fused", resize_mode="letterbox")


def test_segment_folder_writes_pictures_masks_and_json(tmp_path, fused_model, capsys):
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "a.png"), sample_frame(120, 160, seed=1))
    cv2.imwrite(str(images / "b.jpg"), sample_frame(90, 200, seed=2))
    (images / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    code = main(["segment", str(images), "--model", str(fused_model), "-o", str(out), "--visualize", "both",
                 "--save-mask", "--batch", "2", "--ignore-class", "class0", "--json", str(tmp_path / "r.json")])
    assert code == 0
    both = cv2.imread(str(out / "b.both.png"))
    assert both.shape == (90, 400, 3)
    mask = cv2.imread(str(out / "a.mask.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (120, 160) and mask.dtype == np.uint8 and mask.max() < 5
    report = json.loads((tmp_path / "r.json").read_text())
    assert [r["image"].split("/")[-1] for r in report["images"]] == ["a.png", "b.jpg"]
    assert report["images"][0]["class_shares"]["class0"] == 0.0  # ignored
    printed = capsys.readouterr().out
    assert "a.png: 160x120" in printed and "infer" in printed


def test_segment_errors_are_one_line(tmp_path, fused_model, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    assert main(["segment", str(bad), "--model", str(fused_model), "-o", str(tmp_path / "o")]) == 2
    assert "bad.png: not a readable image" in capsys.readouterr().err
    assert main(["segment", str(tmp_path / "nope"), "--model", str(fused_model), "-o", str(tmp_path / "o")]) == 2
    assert main(["segment", str(tmp_path), "--model", str(fused_model), "-o", str(tmp_path / "o"),
                 "--filter-mode", "linear"]) == 2
    err = capsys.readouterr().err
    assert "no such image" in err and "filter_mode='point'" in err
