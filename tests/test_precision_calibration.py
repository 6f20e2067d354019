"""Calibration sets: folder and manifest formats, preprocessing, batching, bad images."""

import logging

import numpy as np
import pytest

from fcn_edge.artifacts import meta_for_classes
from fcn_edge.errors import DataError
from fcn_edge.precision.calibration import CalibrationConfig, CalibrationData, list_calibration_images
from fcn_edge.runtime.preprocess import Preprocessor

from tiny_models import make_images

UNFUSED = meta_for_classes("t", ["a", "b"], input_size=(24, 32))
FUSED = UNFUSED.replace(input_layout="NHWC", input_dtype="uint8", channel_order="BGR")


def test_folder_is_listed_recursively_and_sorted(tmp_path):
    make_images(tmp_path / "b", 2)
    make_images(tmp_path / "a", 2)
    (tmp_path / "notes.md").write_text("not an image")
    images = list_calibration_images(tmp_path)
    assert [p.parent.name for p in images] == ["a", "a", "b", "b"]
    assert images == sorted(images)


def test_manifest_resolves_relative_paths_and_skips_comments(tmp_path):
    paths = make_images(tmp_path / "imgs", 3)
    manifest = tmp_path / "calib.txt"
    manifest.write_text(f"# my set\nimgs/{paths[0].name}\n\n{paths[2]}\n")
    assert list_calibration_images(manifest) == [paths[0], paths[2]]


@pytest.mark.parametrize("make", ["missing", "empty_dir", "empty_manifest"])
def test_unusable_sources_are_errors_naming_the_source(tmp_path, make):
    source = tmp_path / "set"
    if make == "empty_dir":
        source.mkdir()
    elif make == "empty_manifest":
        source = tmp_path / "set.txt"
        source.write_text("# nothing\n")
    with pytest.raises(DataError, match=str(source.name)):
        list_calibration_images(source)


@pytest.mark.parametrize("meta", [UNFUSED, FUSED], ids=["unfused", "fused"])
def test_batches_are_the_runtime_preprocessing(tmp_path, meta):
    paths = make_images(tmp_path, 5)
    data = CalibrationData(tmp_path, meta, CalibrationConfig(batch_size=2, progress=False))
    batches = [b[meta.input_name] for b in data]
    assert [b.shape[0] for b in batches] == [2, 2, 1] and len(data) == 3
    assert batches[0].shape == meta.input_shape(2)
    assert batches[0].dtype == np.dtype(meta.input_dtype)
    import cv2

    expected, _ = Preprocessor(meta)([cv2.imread(str(p)) for p in paths[:2]])
    np.testing.assert_array_equal(batches[0], expected)
    # re-iterable, and the yielded arrays are copies that stay valid
    again = [b[meta.input_name] for b in data]
    np.testing.assert_array_equal(again[0], batches[0])
    assert not np.shares_memory(batches[0], batches[1])


def test_pad_last_fills_every_batch(tmp_path):
    make_images(tmp_path, 5)
    data = CalibrationData(tmp_path, UNFUSED, CalibrationConfig(batch_size=4, pad_last=True, progress=False))
    assert [b["input"].shape[0] for b in data] == [4, 4]


def test_unreadable_images_are_skipped_with_one_warning(tmp_path, caplog):
    make_images(tmp_path, 3)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    (tmp_path / "empty.jpg").write_bytes(b"")
    data = CalibrationData(tmp_path, UNFUSED, CalibrationConfig(batch_size=2, progress=False))
    with caplog.at_level(logging.WARNING, logger="fcn_edge.precision.calibration"):
        total = sum(b["input"].shape[0] for b in data)
    assert total == 3
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "skipped" in r.getMessage()]
    assert len(warnings) == 1  # one warning for all the skipped images (another says the set is small)
    assert "broken.png" in warnings[0].getMessage() and "empty.jpg" in warnings[0].getMessage()
    assert sorted(p.name for p, _ in data.skipped) == ["broken.png", "empty.jpg"]


def test_manifest_naming_missing_files_reports_them(tmp_path, caplog):
    paths = make_images(tmp_path, 1)
    manifest = tmp_path / "list.txt"
    manifest.write_text(f"{paths[0].name}\ngone.png\n")
    with caplog.at_level(logging.WARNING):
        list(CalibrationData(manifest, UNFUSED, CalibrationConfig(progress=False)))
    assert "gone.png (no such file)" in caplog.text


def test_all_bad_set_is_an_error_listing_the_files(tmp_path):
    (tmp_path / "a.png").write_bytes(b"junk")
    (tmp_path / "b.png").write_bytes(b"junk")
    data = CalibrationData(tmp_path, UNFUSED, CalibrationConfig(progress=False))
    with pytest.raises(DataError, match=r"none of its 2 images could be read.*a\.png.*b\.png"):
        list(data)


def test_bad_config_values_are_refused():
    with pytest.raises(DataError, match="batch_size must be >= 1, got 0"):
        CalibrationConfig(batch_size=0)
    with pytest.raises(DataError, match="limit must be >= 1, got 0"):
        CalibrationConfig(limit=0)


def _tool():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "tools" / "make_calibration_set.py"
    spec = importlib.util.spec_from_file_location("make_calibration_set", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_selection_covers_rare_classes_and_brightness():
    tool = _tool()
    rng = np.random.default_rng(0)
    fractions = np.zeros((200, 4))
    fractions[:, 0] = 0.6 + 0.1 * rng.random(200)  # background everywhere
    fractions[:, 1] = 0.3  # a common class
    rare = [17, 93, 151]
    fractions[rare, 3] = 0.01  # a rare class in only three images
    bands = np.zeros(200, int)
    bands[[5, 6]] = 3  # two bright images
    chosen = tool.select(fractions, bands, 8)
    assert len(set(chosen)) == 8
    assert set(rare) <= set(chosen), "every image with the rare class is picked"
    assert {5, 6} & set(chosen), "a bright image is picked"
