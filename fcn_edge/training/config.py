"""Training settings: one frozen dataclass, stored inside every checkpoint so a run resumes
with exactly the settings it started with."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

from fcn_edge.errors import UsageError

OPTIMIZERS = ("adamw", "sgd")


@dataclass(frozen=True)
class TrainConfig:
    """Defaults suit a 2-core CPU and the synthetic data: a few thousand crops, minutes not hours."""

    model: str = "fcn8s_mobilenetv3"
    data: str = "synthetic"  # a dataset folder, or "synthetic" for the built-in set
    data_format: str = "auto"
    train_split: Optional[str] = None  # None: "train" (or "all" for a folder pair without lists)
    val_split: Optional[str] = None  # None: "val" when the dataset has one
    out: str = "runs/train"
    iters: int = 1600
    batch_size: int = 8
    input_size: Tuple[int, int] = (256, 320)  # (H, W): ModelMeta.input_size; frames are stretched to it
    crop_size: Optional[Tuple[int, int]] = (128, 160)  # training crops from the stretched frames; None = input_size
    scale_range: Tuple[float, float] = (0.75, 1.5)
    optimizer: str = "adamw"
    lr: float = 2e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9  # SGD only
    poly_power: float = 0.9
    warmup_iters: int = 50
    seed: int = 0
    threads: int = 1  # measured: 1 thread ran 10x faster than 2 on 2 cores shared with other jobs
    workers: int = 0
    device: str = "auto"  # auto | cpu | cuda:N
    val_every: int = 250
    val_limit: Optional[int] = None  # evaluate on the first N val images only
    checkpoint_every: int = 250
    init: Optional[str] = None  # checkpoint whose matching weights start the model

    def __post_init__(self) -> None:
        problems = []
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer {self.optimizer!r} is not one of {OPTIMIZERS}")
        for name in ("iters", "batch_size", "threads", "val_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            problems.append(f"lr must be > 0, got {self.lr}")
        if len(self.input_size) != 2 or min(self.input_size) < 32:
            problems.append(f"input_size {self.input_size} must be (H, W), each >= 32")
        if self.crop_size is not None and (len(self.crop_size) != 2 or min(self.crop_size) < 32):
            problems.append(f"crop_size {self.crop_size} must be (H, W), each >= 32")
        lo, hi = self.scale_range
        if not 0 < lo <= hi:
            problems.append(f"scale_range {self.scale_range} must satisfy 0 < min <= max")
        for name in ("workers", "warmup_iters"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.val_limit is not None and self.val_limit < 1:
            problems.append(f"val_limit must be >= 1 (or None for every val image), got {self.val_limit}")
        if not (self.device in ("auto", "cpu") or self.device.startswith("cuda")):
            problems.append(f"device {self.device!r} is not auto, cpu or cuda[:N]")
        if problems:
            raise UsageError("invalid training config: " + "; ".join(problems))

    @property
    def crops(self) -> Tuple[int, int]:
        return tuple(self.crop_size or self.input_size)  # type: ignore[return-value]

    def to_dict(self) -> Dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known}
        return cls(**kwargs)
