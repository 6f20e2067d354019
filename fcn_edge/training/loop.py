"""Train any registry model on any dataset reader: the loop, checkpoints and resume.

A run directory holds:

* ``last.pt``   weights + ModelMeta + optimizer state + iteration: ``--resume`` continues it;
* ``model.pt``  the final weights + ModelMeta only (what export and the runtime load);
* ``history.json`` loss and validation scores over the run, plus wall time.

Checkpoints are written with :func:`fcn_edge.models.checkpoint.save_checkpoint`, so every
one of them is a normal fcn-edge checkpoint that ``torch.load(weights_only=True)`` reads.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from fcn_edge.artifacts import ModelMeta, meta_for_classes, meta_for_dataset
from fcn_edge.atomic import write_json_atomic
from fcn_edge.data.augment import AugmentConfig
from fcn_edge.data.dataset import SegmentationDataset
from fcn_edge.data.formats import open_dataset, resolve_root
from fcn_edge.errors import CheckpointError, DataError
from fcn_edge.optional import require
from fcn_edge.training.batches import TrainStream, batch_indices
from fcn_edge.training.config import TrainConfig
from fcn_edge.training.errors import TrainingError

log = logging.getLogger(__name__)

LAST, FINAL, HISTORY = "last.pt", "model.pt", "history.json"


@dataclass
class TrainResult:
    model_path: Path
    last_path: Path
    iterations: int
    seconds: float  # wall time of this invocation (training + validation)
    val: Optional[Dict[str, Any]]  # last validation metrics (to_dict form), if any
    history: List[Dict[str, Any]] = field(default_factory=list)


def poly_factor(iteration: int, total: int, power: float, warmup: int = 0) -> float:
    """Learning-rate multiplier: linear warm-up, then the poly schedule (1 - it/total)^power."""
    if warmup and iteration < warmup:
        return (iteration + 1) / warmup
    return max(0.0, 1.0 - iteration / max(total, 1)) ** power


def model_meta(config: TrainConfig, dataset: SegmentationDataset) -> ModelMeta:
    common = dict(input_size=tuple(config.input_size), resize_mode="stretch", ignore_index=dataset.ignore_index)
    step = f"trained by fcn-edge train: {config.model} on {dataset.format_name} ({dataset.root.name}), {config.iters} iterations"
    key = dataset.dataset_key
    if key:
        meta = meta_for_dataset(config.model, key, **common)
    else:
        meta = meta_for_classes(config.model, dataset.class_names, **common).replace(palette=dataset.palette)
    return meta.with_history(step)


def open_splits(config: TrainConfig):
    root = resolve_root(config.data)
    train = open_dataset(root, config.train_split, config.data_format, training=True)
    val = None
    try:
        val = open_dataset(root, config.val_split, config.data_format)
    except DataError as exc:
        if config.val_split:  # asked for explicitly: the user wants to know
            raise
        log.warning("no validation split (%s); training without validation", exc)
    if val is not None and val.split == train.split:
        log.warning("validation split '%s' is the training split; its scores are optimistic", val.split)
    return train, val


def _device(torch, name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        index = int(name.partition(":")[2] or 0)
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            raise TrainingError(f"CUDA device {index} asked for, but this torch sees "
                                f"{torch.cuda.device_count() if torch.cuda.is_available() else 0}; use --device cpu")
    return name


def _make_optimizer(torch, model, config: TrainConfig):
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim <= 1 else decay).append(param)  # no decay on norms and biases
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    return torch.optim.AdamW(groups, lr=config.lr)


def _init_from(torch, model, path: str) -> None:
    """Copy every tensor of ``path`` whose name and shape match (fine-tuning across class lists)."""
    from fcn_edge.models.checkpoint import extract_state_dict, read_checkpoint_file

    state = extract_state_dict(read_checkpoint_file(path), path)
    own = model.state_dict()
    taken = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    if not taken:
        raise CheckpointError(f"{path}: no tensor matches {type(model).__name__} by name and shape; nothing to start from")
    skipped = [k for k in own if k not in taken]
    own.update(taken)
    model.load_state_dict(own)
    log.info("initialised %d tensors from %s; %d kept their fresh init (e.g. %s)", len(taken), path, len(skipped),
             ", ".join(skipped[:3]))


def validate(model, meta: ModelMeta, dataset: SegmentationDataset, device: str, limit: Optional[int]):
    """Scores of the in-memory ``model`` through the runtime's own Segmenter (its PyTorch
    backend), so validation sees exactly the preprocessing and decoding a deployment does."""
    torch = require("torch", "validation")
    from fcn_edge.evaluate.runner import evaluate_dataset
    from fcn_edge.runtime import Segmenter
    from fcn_edge.runtime.torch_backend import TorchBackend

    where = torch.device(device)
    was_training = model.training
    segmenter = Segmenter(TorchBackend(model, meta, device=where.index or 0, use_cuda=where.type == "cuda"))
    try:
        return evaluate_dataset(segmenter, dataset, limit=limit, progress=False)
    finally:
        segmenter.close()
        model.train(was_training)


def train(config: TrainConfig, resume: Optional[str] = None, progress: bool = True) -> TrainResult:
    """Run (or continue) a training run as ``config`` says; returns where the model went."""
    torch = require("torch", "training")
    from tqdm import tqdm

    from fcn_edge.models import build_model
    from fcn_edge.models.checkpoint import read_checkpoint_file, save_checkpoint

    state: Dict[str, Any] = {}
    if resume:
        payload = read_checkpoint_file(resume)
        extra = payload.get("extra", {}) if isinstance(payload, dict) else {}
        if "train_config" not in extra or "optimizer" not in extra:
            raise CheckpointError(f"{resume}: not a resumable training checkpoint (no optimizer state); use a last.pt")
        config = TrainConfig.from_dict(extra["train_config"])
        state = {"payload": payload, "extra": extra}
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    device = _device(torch, config.device)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)

    train_set, val_set = open_splits(config)
    meta = model_meta(config, train_set)
    model = build_model(config.model, train_set.num_classes)
    if config.init and not resume:
        _init_from(torch, model, config.init)
    model.to(device).train()
    optimizer = _make_optimizer(torch, model, config)
    start_iter, history, elapsed_before = 0, [], 0.0
    if resume:
        model.load_state_dict(state["payload"]["state_dict"])
        optimizer.load_state_dict(state["extra"]["optimizer"])
        start_iter = int(state["extra"]["iteration"])
        history = list(state["extra"].get("history", []))
        elapsed_before = float(state["extra"].get("seconds", 0.0))
        torch.manual_seed(config.seed + start_iter)
        log.info("resuming %s at iteration %d of %d", resume, start_iter, config.iters)

    augment_cfg = AugmentConfig(crop_size=config.crops, base_size=tuple(config.input_size),
                                scale_range=tuple(config.scale_range), ignore_index=train_set.ignore_index)
    stream = TrainStream(train_set, augment_cfg, config.seed, meta.mean, meta.std)
    loader = torch.utils.data.DataLoader(
        stream, batch_sampler=list(batch_indices(start_iter, config.iters, config.batch_size)),
        num_workers=config.workers, collate_fn=_collate,
    )
    criterion = torch.nn.CrossEntropyLoss(ignore_index=train_set.ignore_index)
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])
    base_lrs = [group["initial_lr"] for group in optimizer.param_groups]

    started = time.perf_counter()
    smoothed = None
    last_val: Optional[Dict[str, Any]] = history[-1].get("val") if history and history[-1].get("val") else None
    bar = tqdm(total=config.iters, initial=start_iter, desc=f"train {config.model}", unit="it", disable=not progress)
    iteration = start_iter
    for images, masks in loader:
        factor = poly_factor(iteration, config.iters, config.poly_power, config.warmup_iters)
        for group, base in zip(optimizer.param_groups, base_lrs):
            group["lr"] = base * factor
        images, masks = images.to(device), masks.to(device)
        loss = criterion(model(images), masks)
        if not torch.isfinite(loss):
            raise TrainingError(f"loss became {loss.item()} at iteration {iteration}; lower --lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        iteration += 1
        value = float(loss.item())
        smoothed = value if smoothed is None else 0.95 * smoothed + 0.05 * value
        record: Dict[str, Any] = {"iteration": iteration, "loss": value, "lr": base_lrs[0] * factor,
                                  "seconds": elapsed_before + time.perf_counter() - started}
        if val_set is not None and (iteration % config.val_every == 0 or iteration == config.iters):
            report = validate(model, meta, val_set, device, config.val_limit)
            last_val = {"mean_iu": report.metrics.mean_iu, "pixel_accuracy": report.metrics.pixel_accuracy,
                        "mean_accuracy": report.metrics.mean_accuracy,
                        "frequency_weighted_iu": report.metrics.frequency_weighted_iu, "images": report.images}
            record["val"] = last_val
        history.append(record)
        postfix = {"loss": f"{smoothed:.3f}"}
        if last_val:
            postfix["val_mIoU"] = f"{last_val['mean_iu']:.3f}"
        bar.set_postfix(postfix)
        bar.update(1)
        if iteration % config.checkpoint_every == 0 or iteration == config.iters:
            _save_last(save_checkpoint, out, model, meta, optimizer, config, iteration, history, record["seconds"])
    bar.close()
    seconds = time.perf_counter() - started
    total_seconds = elapsed_before + seconds
    if iteration == start_iter:  # nothing left to do (resumed a finished run)
        _save_last(save_checkpoint, out, model, meta, optimizer, config, iteration, history, total_seconds)
    final_extra = {"train_config": config.to_dict(), "iteration": iteration, "seconds": total_seconds,
                   "val": last_val, "dataset": train_set.describe()}
    model_path = save_checkpoint(out / FINAL, model.cpu().eval(), meta, final_extra)
    write_json_atomic(out / HISTORY, {"config": config.to_dict(), "seconds": total_seconds,
                                      "final_val": last_val, "history": history})
    return TrainResult(model_path, out / LAST, iteration, seconds, last_val, history)


def _collate(batch):
    import torch

    images = torch.from_numpy(np.stack([b[0] for b in batch]))
    masks = torch.from_numpy(np.stack([b[1] for b in batch]))
    return images, masks


def _save_last(save_checkpoint, out: Path, model, meta, optimizer, config, iteration, history, seconds) -> None:
    extra = {"train_config": config.to_dict(), "optimizer": optimizer.state_dict(), "iteration": iteration,
             "history": history, "seconds": seconds}
    save_checkpoint(out / LAST, model, meta, extra)


__all__ = ["TrainResult", "model_meta", "poly_factor", "train", "validate"]
