"""Streaming evaluation over a dataset with any predictor, and the `fcn-edge evaluate` command."""

import hashlib
from dataclasses import dataclass

import numpy as np
import pytest

from fcn_edge.artifacts import meta_for_dataset
from fcn_edge.classes import SYNTHETIC_CLASSES
from fcn_edge.data import open_dataset
from fcn_edge.data.synthetic import SyntheticConfig, generate_dataset
from fcn_edge.errors import DataError
from fcn_edge.evaluate import FramePredictor, evaluate_dataset

TINY = SyntheticConfig(seed=11, train_images=2, val_images=4, height=48, width=64)


@dataclass(frozen=True)
class Result:
    mask: np.ndarray


class LookupPredictor:
    """Answers from a table of known frames: a predictor whose output we choose exactly."""

    def __init__(self, answers, classes=SYNTHETIC_CLASSES):
        self.meta = meta_for_dataset("fake", "synthetic") if classes == SYNTHETIC_CLASSES else None
        self.answers = answers

    def segment(self, frame):
        return Result(self.answers[hashlib.sha1(frame.tobytes()).hexdigest()])


@pytest.fixture(scope="module")
def val_set(tmp_path_factory):
    return open_dataset(generate_dataset(tmp_path_factory.mktemp("d") / "s", TINY, progress=False), "val")


def _answers(dataset, fn):
    return {hashlib.sha1(s.image.tobytes()).hexdigest(): fn(s) for s in dataset}


def test_perfect_predictor_scores_one(val_set):
    predictor = LookupPredictor(_answers(val_set, lambda s: s.mask.copy()))
    assert isinstance(predictor, FramePredictor)
    report = evaluate_dataset(predictor, val_set, progress=False)
    assert report.images == 4 and report.metrics.pixel_accuracy == 1.0
    present = [c for c in SYNTHETIC_CLASSES if c not in report.metrics.absent]
    assert report.metrics.mean_iu == 1.0 and len(present) >= 5


def test_constant_predictor_matches_the_class_share(val_set):
    road = SYNTHETIC_CLASSES.index("road")
    report = evaluate_dataset(LookupPredictor(_answers(val_set, lambda s: np.full_like(s.mask, road))), val_set,
                              progress=False)
    masks = np.concatenate([s.mask.ravel() for s in val_set])
    share = (masks == road).mean()
    m = report.metrics
    assert m.pixel_accuracy == pytest.approx(share)
    assert m.iu[road] == pytest.approx(share)  # union = every pixel
    present = len(SYNTHETIC_CLASSES) - len(m.absent)
    assert m.mean_iu == pytest.approx(share / present)
    assert report.to_dict()["images"] == 4


def test_limit_and_wrong_mask_size(val_set):
    predictor = LookupPredictor(_answers(val_set, lambda s: s.mask[:-1]))
    with pytest.raises(DataError, match="returned a \\(47, 64\\) mask for a \\(48, 64\\) image"):
        evaluate_dataset(predictor, val_set, progress=False)
    good = LookupPredictor(_answers(val_set, lambda s: s.mask))
    assert evaluate_dataset(good, val_set, limit=2, progress=False).images == 2


def test_class_list_mismatch_is_refused(val_set):
    predictor = LookupPredictor({})
    predictor.meta = meta_for_dataset("fake", "voc")
    with pytest.raises(DataError, match="differ from the model's 21 classes"):
        evaluate_dataset(predictor, val_set, progress=False)


def test_cli_evaluates_the_shipped_model(val_set, tmp_path, capsys):
    pytest.importorskip("torch")
    from fcn_edge.cli.main import main
    from fcn_edge.weights import default_checkpoint

    out = tmp_path / "report.json"
    code = main(["evaluate", str(default_checkpoint()), "--data", str(val_set.root), "--limit", "3",
                 "--quiet", "--json", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "mean IU" in text and "pixel accuracy" in text and "person" in text
    import json

    report = json.loads(out.read_text())
    assert report["images"] == 3 and len(report["per_class"]) == 7
    # the command is evaluate_model, which is evaluate_dataset over the runtime's Segmenter
    from fcn_edge.data import DatasetSpec
    from fcn_edge.evaluate import EvaluateConfig, evaluate_model
    from fcn_edge.runtime import load_segmenter

    library = evaluate_model(default_checkpoint(), DatasetSpec(str(val_set.root), limit=3),
                             EvaluateConfig(progress=False))
    with load_segmenter(default_checkpoint()) as segmenter:
        direct = evaluate_dataset(segmenter, val_set, limit=3, progress=False)
    assert report["mean_iu"] == library.metrics.mean_iu == direct.metrics.mean_iu
    assert library.dataset == direct.dataset
