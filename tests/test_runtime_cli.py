"""``fcn-edge segment`` and its library call ``segment_images``, end to end on ONNX Runtime."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from fcn_edge.cli.main import build_parser, main
from fcn_edge.errors import DataError
from fcn_edge.runtime import DEFAULT_ALPHA, RenderConfig, load_segmenter
from fcn_edge.video.images import SegmentImagesConfig, segment_images
from tiny_models import CLASSES, make_tiny_onnx, sample_frame

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def fused_model(tmp_path_factory):
    pytest.importorskip("torch")
    return make_tiny_onnx(tmp_path_factory.mktemp("cli-model"), fused=True, output_kind="mask", resize_mode="letterbox")


@pytest.fixture()
def images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), sample_frame(120, 160, seed=1))
    cv2.imwrite(str(folder / "b.jpg"), sample_frame(90, 200, seed=2))
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_segment_folder_writes_pictures_masks_and_json(tmp_path, images, fused_model, capsys):
    out = tmp_path / "out"
    code = main(["segment", str(images), "--model", str(fused_model), "-o", str(out), "--visualize", "both",
                 "--save-mask", "--batch", "2", "--ignore-class", "background", "--json", str(tmp_path / "r.json")])
    assert code == 0
    both = cv2.imread(str(out / "b.both.png"))
    assert both.shape == (90, 400, 3)
    mask = cv2.imread(str(out / "a.mask.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (120, 160) and mask.dtype == np.uint8 and mask.max() < len(CLASSES)
    report = json.loads((tmp_path / "r.json").read_text())
    assert [r["image"].split("/")[-1] for r in report["images"]] == ["a.png", "b.jpg"]
    assert report["images"][0]["class_shares"]["background"] == 0.0  # ignored
    assert report["images"][0]["mask"].endswith("a.mask.png") and report["backend"] == "onnxruntime"
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
    assert main(["segment", str(bad), "--model", str(fused_model), "-o", str(tmp_path / "o"),
                 "--ignore-class", "tree"]) == 2
    err = capsys.readouterr().err
    assert "no such image" in err and "filter_mode='point'" in err
    assert "'tree' is not a class of this model: background, road" in err


def test_overlay_has_a_legend_unless_no_legend(tmp_path, images, fused_model):
    for flag in ("--legend", "--no-legend"):
        assert main(["segment", str(images / "a.png"), "--model", str(fused_model), "-o", str(tmp_path / flag)]
                    + ([flag] if flag == "--no-legend" else [])) == 0
    frame = cv2.imread(str(images / "a.png"))
    with load_segmenter(fused_model) as seg:
        result = seg.segment(frame)
    with_legend = cv2.imread(str(tmp_path / "--legend" / "a.overlay.png"))
    without = cv2.imread(str(tmp_path / "--no-legend" / "a.overlay.png"))
    np.testing.assert_array_equal(without, result.overlay(frame, alpha=DEFAULT_ALPHA))
    np.testing.assert_array_equal(with_legend, result.overlay(frame, alpha=DEFAULT_ALPHA, legend=True))
    assert (with_legend != without).any()


def test_cli_and_python_spell_alpha_and_ignore_class_alike(tmp_path, images, fused_model):
    """--alpha 200 --ignore-class road on the command line is alpha=200, ignore_class="road"
    (or its index) in Python: the same picture."""
    assert main(["segment", str(images / "a.png"), "--model", str(fused_model), "-o", str(tmp_path / "cli"),
                 "--alpha", "200", "--ignore-class", "1", "--no-legend"]) == 0
    frame = cv2.imread(str(images / "a.png"))
    with load_segmenter(fused_model) as seg:
        picture = seg.segment(frame).overlay(frame, alpha=200, ignore_class="road")
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "cli" / "a.overlay.png")), picture)
    defaults = build_parser().parse_args(["segment", "x.png", "-o", "out"])
    assert defaults.alpha == RenderConfig().alpha == DEFAULT_ALPHA and defaults.filter_mode == "point"


def test_segment_images_library_call(tmp_path, images, fused_model):
    seen = []
    config = SegmentImagesConfig(model=fused_model, save_mask=True, batch=2)
    report = segment_images([images], tmp_path / "out", config, on_image=seen.append)
    assert [r.image.name for r in report.images] == [r.image.name for r in seen] == ["a.png", "b.jpg"]
    record = report.images[1]
    assert (record.height, record.width) == (90, 200) and record.picture.name == "b.overlay.png"
    assert cv2.imread(str(record.picture)).shape == (90, 200, 3)
    mask = cv2.imread(str(record.mask), cv2.IMREAD_UNCHANGED)
    counts = np.bincount(mask.ravel(), minlength=len(CLASSES)) / mask.size
    assert [record.class_shares[name] for name in CLASSES] == pytest.approx(list(counts))
    assert record.top_classes(2) == sorted(record.class_shares.items(), key=lambda kv: -kv[1])[:2]
    assert report.model == str(fused_model) and "onnxruntime" in report.description
    assert not list((tmp_path / "out").glob(".*"))  # no temporary files left


def test_segment_images_uses_a_given_segmenter_and_leaves_it_open(tmp_path, images, fused_model):
    with load_segmenter(fused_model) as seg:
        segment_images([images / "a.png"], tmp_path / "out", segmenter=seg)
        assert seg.segment(sample_frame(30, 40)).mask.shape == (30, 40)  # still open


def test_segment_images_refuses_clashing_names(tmp_path, images, fused_model):
    (images / "sub").mkdir()
    cv2.imwrite(str(images / "sub" / "a.jpg"), sample_frame(20, 30))
    with pytest.raises(DataError, match="same name stem"):
        segment_images([images], tmp_path / "out", SegmentImagesConfig(model=fused_model, recursive=True))
    assert not (tmp_path / "out").exists()  # refused before anything was written
