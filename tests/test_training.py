"""Training: a short run lowers the loss; checkpoints carry ModelMeta and resume."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fcn_edge.data.synthetic import SyntheticConfig, generate_dataset  # noqa: E402
from fcn_edge.errors import CheckpointError, UsageError  # noqa: E402
from fcn_edge.models.checkpoint import load_checkpoint, read_checkpoint_file  # noqa: E402
from fcn_edge.training import TrainConfig, poly_factor, train  # noqa: E402
from fcn_edge.training.batches import TrainStream  # noqa: E402

TINY = SyntheticConfig(seed=3, train_images=4, val_images=2, height=64, width=80)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return generate_dataset(tmp_path_factory.mktemp("data") / "synthetic", TINY, progress=False)


def _config(tiny_data, out, **changes):
    base = dict(model="fcn8s_mobilenetv3", data=str(tiny_data), out=str(out), iters=24, batch_size=2,
                input_size=(64, 80), crop_size=None, lr=3e-3, warmup_iters=2, val_every=24, checkpoint_every=100,
                threads=1)
    base.update(changes)
    return TrainConfig(**base)


def test_short_run_lowers_the_loss_and_writes_a_usable_checkpoint(tiny_data, tmp_path):
    result = train(_config(tiny_data, tmp_path / "run"), progress=False)
    losses = [h["loss"] for h in result.history]
    assert len(losses) == 24
    first, last = np.mean(losses[:4]), np.mean(losses[-4:])
    assert last < 0.8 * first, (first, last)
    assert result.val is not None and result.val["images"] == 2 and result.val["mean_iu"] > 0
    loaded = load_checkpoint(result.model_path)
    assert loaded.meta.architecture == "fcn8s_mobilenetv3" and loaded.meta.dataset == "synthetic"
    assert loaded.meta.input_size == (64, 80) and loaded.meta.resize_mode == "stretch"
    assert loaded.meta.num_classes == 7 and "trained by fcn-edge train" in loaded.meta.history[-1]
    assert "optimizer" not in read_checkpoint_file(result.model_path)["extra"]  # the shipped form stays small
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history["final_val"] == result.val and len(history["history"]) == 24


@pytest.mark.slow
def test_resume_continues_where_it_stopped(tiny_data, tmp_path):
    first = train(_config(tiny_data, tmp_path / "a", iters=12, val_every=100, checkpoint_every=12), progress=False)
    assert first.iterations == 12
    payload = read_checkpoint_file(first.last_path)
    assert payload["extra"]["iteration"] == 12 and "optimizer" in payload["extra"]
    # resume a run whose config asks for more iterations: rewrite its stored config as the CLI would
    payload["extra"]["train_config"]["iters"] = 18
    torch.save(payload, tmp_path / "a" / "more.pt")
    resumed = train(TrainConfig(), resume=str(tmp_path / "a" / "more.pt"), progress=False)
    assert resumed.iterations == 18 and len(resumed.history) == 18
    assert [h["iteration"] for h in resumed.history] == list(range(1, 19))


def test_resume_refuses_a_weights_only_checkpoint(tiny_data, tmp_path):
    result = train(_config(tiny_data, tmp_path / "b", iters=2, val_every=100), progress=False)
    with pytest.raises(CheckpointError, match="not a resumable training checkpoint"):
        train(TrainConfig(), resume=str(result.model_path), progress=False)


def test_training_stream_is_deterministic_and_independent_of_order(tiny_data):
    from fcn_edge.data import open_dataset
    from fcn_edge.data.augment import AugmentConfig

    ds = open_dataset(tiny_data, "train", training=True)
    cfg = AugmentConfig(crop_size=(32, 40), base_size=(64, 80))
    a = TrainStream(ds, cfg, 0, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    b = TrainStream(ds, cfg, 0, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    x7, y7 = a[7]
    b[3]  # touching other samples first changes nothing
    assert (b[7][0] == x7).all() and (b[7][1] == y7).all()
    assert x7.shape == (3, 32, 40) and x7.dtype == np.float32 and y7.dtype == np.int64
    # every epoch visits each image once
    assert sorted(a.image_index(g) for g in range(4, 8)) == [0, 1, 2, 3]


def test_poly_schedule_and_config_checks():
    assert poly_factor(0, 100, 0.9) == 1.0
    assert poly_factor(50, 100, 1.0) == pytest.approx(0.5)
    assert poly_factor(100, 100, 0.9) == 0.0
    assert poly_factor(4, 100, 0.9, warmup=10) == pytest.approx(0.5)
    with pytest.raises(UsageError, match="optimizer 'adam' is not one of"):
        TrainConfig(optimizer="adam")
    with pytest.raises(UsageError, match="iters must be >= 1, got 0; workers must be >= 0, got -1"):
        TrainConfig(iters=0, workers=-1)
    with pytest.raises(UsageError, match="device 'gpu' is not auto, cpu or cuda"):
        TrainConfig(device="gpu")
    assert TrainConfig.from_dict(TrainConfig(crop_size=(64, 64)).to_dict()) == TrainConfig(crop_size=(64, 64))


def test_train_command_runs_and_copies_the_model(tiny_data, tmp_path, capsys):
    from fcn_edge.cli.main import main

    target = tmp_path / "weights" / "model.pt"
    code = main(["train", "--data", str(tiny_data), "--iters", "2", "--batch", "2", "--input-size", "64x80",
                 "--crop-size", "0x0", "--val-every", "100", "--out", str(tmp_path / "run"), "--save-to", str(target),
                 "--quiet", "--json", str(tmp_path / "run.json")])
    assert code == 0 and target.is_file()
    assert "trained 2 iterations" in capsys.readouterr().out
    assert load_checkpoint(target).meta.input_size == (64, 80)
    summary = json.loads((tmp_path / "run.json").read_text())
    assert summary["iterations"] == 2 and summary["copied"] == str(target)
    assert summary["model"] == str(tmp_path / "run" / "model.pt")
    with pytest.raises(SystemExit):
        main(["train", "--threads", "0"])
    assert "expected a positive integer, got 0" in capsys.readouterr().err
