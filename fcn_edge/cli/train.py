"""``fcn-edge train``: train a registry model on VOC, Cityscapes, a folder pair or the
built-in synthetic street scenes. Defaults suit a 2-core CPU; ``--device 0`` for the first GPU.

Examples:
  fcn-edge train                                          # fcn8s_mobilenetv3 on synthetic data
  fcn-edge train --arch fcn8s_resnet18 --data ~/VOCdevkit/VOC2012 --input-size 320x320
  fcn-edge train --data my_set --iters 4000 --optimizer sgd --lr 0.01 -o runs/mine
  fcn-edge train --resume runs/mine/last.pt               # continue an interrupted run

The run directory (-o/--out) gets last.pt (resumable), model.pt (weights + ModelMeta, ready
for `fcn-edge export`) and history.json (loss, val mean IU, wall time); --json FILE writes
a summary of the run.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Tuple

from fcn_edge.cli.args import (
    add_batch, add_json, add_out, add_quiet, fraction, non_negative_float, non_negative_int, positive_float, positive_int,
    size_hw, size_hw_or_zero, write_json_report,
)
from fcn_edge.training.config import OPTIMIZERS, TrainConfig

DEFAULTS = TrainConfig()


def _device(text: str) -> str:
    """--device: 'auto', 'cpu' or a CUDA device index (as in the runtime commands) -> a torch device."""
    if text in ("auto", "cpu"):
        return text
    return f"cuda:{non_negative_int(text)}"


def _range(text: str) -> Tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN,MAX such as 0.75,1.5, got {text!r}") from None
    return lo, hi


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train", help="train a model on a dataset (synthetic, VOC, Cityscapes, images/+masks/)",
        description=__doc__,
    )
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = DEFAULTS
    data = p.add_argument_group("data")
    data.add_argument("--data", default=d.data, help="dataset folder, or 'synthetic' (generated and cached on first use)")
    data.add_argument("--data-format", default=d.data_format,
                      choices=("auto", "voc", "cityscapes", "folder"), help="dataset layout (default: detected)")
    data.add_argument("--train-split", help="default: train (all for a folder pair without split lists)")
    data.add_argument("--val-split", help="default: val, when the dataset has one")
    model = p.add_argument_group("model")
    model.add_argument("--arch", default=d.model, help=f"registry architecture (default {d.model}); see `fcn-edge export --list`")
    model.add_argument("--init", help="start from the matching weights of this checkpoint (fine-tuning)")
    model.add_argument("--input-size", type=size_hw, default=d.input_size, metavar="HxW",
                       help="the model's input size: frames are stretched to it (default %dx%d)" % d.input_size)
    model.add_argument("--crop-size", type=size_hw_or_zero, metavar="HxW",
                       help="training crops cut from the stretched frames (default %dx%d; 0x0 = the input size); "
                       "small crops train faster on a CPU, and the model stays fully convolutional" % d.crop_size)
    opt = p.add_argument_group("optimisation")
    opt.add_argument("--iters", type=positive_int, default=d.iters, help=f"iterations (default {d.iters})")
    add_batch(opt, "images per training step", default=d.batch_size)
    opt.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer, help=f"default {d.optimizer}")
    opt.add_argument("--lr", type=positive_float, default=d.lr, help=f"peak learning rate (default {d.lr}); poly decay to 0")
    opt.add_argument("--weight-decay", type=non_negative_float, default=d.weight_decay, help=f"default {d.weight_decay}")
    opt.add_argument("--momentum", type=fraction, default=d.momentum, help="SGD momentum (default 0.9)")
    opt.add_argument("--poly-power", type=non_negative_float, default=d.poly_power, help="default 0.9")
    opt.add_argument("--warmup-iters", type=non_negative_int, default=d.warmup_iters, help=f"linear warm-up (default {d.warmup_iters})")
    opt.add_argument("--scale-range", type=_range, default=d.scale_range, metavar="MIN,MAX",
                     help="random scale of the augmentation (default 0.75,1.5)")
    run = p.add_argument_group("run")
    add_out(run, f"run directory (default {d.out})", default=Path(d.out), metavar="DIR")
    run.add_argument("--save-to", type=Path, help="also copy the final model.pt here")
    run.add_argument("--resume", help="continue from a last.pt, with the settings it was started with")
    run.add_argument("--seed", type=int, default=d.seed, help="seed of initialisation, sample order and augmentation")
    run.add_argument("--threads", type=positive_int, default=d.threads, help=f"torch CPU threads (default {d.threads}: on 2 cores shared with other jobs, 1 thread "
                     "ran 10x faster than 2; give a dedicated machine all its cores)")
    run.add_argument("--workers", type=non_negative_int, default=d.workers, help="data-loading processes (default 0: in-process)")
    run.add_argument("--device", type=_device, default=d.device, metavar="auto|cpu|N",
                     help="auto (the first GPU when torch sees one, else the CPU), cpu, or the CUDA device index N")
    run.add_argument("--val-every", type=positive_int, default=d.val_every, help=f"validate every N iterations (default {d.val_every})")
    run.add_argument("--val-limit", type=positive_int, help="validate on the first N val images only")
    run.add_argument("--checkpoint-every", type=positive_int, default=d.checkpoint_every, help="write last.pt every N iterations")
    add_json(run, "write a summary of the run (iterations, wall time, last validation, files) as JSON to FILE ('-': stdout)")
    add_quiet(run)


def _crop(value):
    if value is None:
        return DEFAULTS.crop_size
    return None if tuple(value) == (0, 0) else tuple(value)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        model=args.arch, data=str(args.data), data_format=args.data_format, train_split=args.train_split,
        val_split=args.val_split, out=str(args.out), iters=args.iters, batch_size=args.batch,
        input_size=tuple(args.input_size), crop_size=_crop(args.crop_size),
        scale_range=tuple(args.scale_range), optimizer=args.optimizer,
        lr=args.lr, weight_decay=args.weight_decay, momentum=args.momentum, poly_power=args.poly_power,
        warmup_iters=args.warmup_iters, seed=args.seed, threads=args.threads, workers=args.workers,
        device=args.device, val_every=args.val_every, val_limit=args.val_limit,
        checkpoint_every=args.checkpoint_every, init=args.init,
    )


def run(args: argparse.Namespace) -> int:
    from fcn_edge.atomic import atomic_path
    from fcn_edge.training.loop import train

    config = config_from_args(args)
    started = time.perf_counter()
    result = train(config, resume=args.resume, progress=not args.quiet)
    wall = time.perf_counter() - started
    copied = None
    if args.save_to:
        with atomic_path(args.save_to) as tmp:
            shutil.copyfile(result.model_path, tmp)
        copied = args.save_to
    out = sys.stderr if args.json == "-" else sys.stdout  # stdout carries the JSON then
    print(f"trained {result.iterations} iterations in {wall:.0f} s (this invocation, incl. data and validation)",
          file=out)
    if result.val:
        print(f"val mean IU {100 * result.val['mean_iu']:.2f} %, pixel accuracy "
              f"{100 * result.val['pixel_accuracy']:.2f} % ({result.val['images']} images)", file=out)
    print(f"model:  {result.model_path}", file=out)
    print(f"resume: {result.last_path}", file=out)
    if copied:
        print(f"copied: {copied}", file=out)
    write_json_report(args.json, {
        "wall_seconds": round(wall, 1), "iterations": result.iterations, "val": result.val,
        "model": str(result.model_path), "last": str(result.last_path), "copied": str(copied) if copied else None,
    })
    return 0
