"""Quantisation-aware fine-tuning (``fcn-edge qat``): INT8 that keeps the FP32 model's masks.

1. The checkpoint is exported (the normal exporter) and calibrated (the normal INT8
   calibration): the Q/DQ placement and the post-training ranges every later step uses.
2. Fake quantisers go into the PyTorch model where that placement puts Q/DQ pairs
   (:mod:`fcn_edge.training.fakequant`): symmetric int8, per-channel weights (per-tensor for
   TensorRT's ConvTranspose), per-tensor activations started at the calibrated ranges, the
   same layers left unquantised. Before training, the fake-quantised model is checked
   against the Q/DQ ONNX in ONNX Runtime: the two must agree.
3. A few hundred iterations on the training split fine-tune weights and activation scales
   (LSQ), BatchNorm frozen at its running statistics (what the export folds), with the
   labels' cross-entropy plus distillation from the FP32 model itself, whose masks are the
   target. The progress bar shows the loss and the batch's agreement with FP32.
4. The fine-tuned weights are saved as a normal checkpoint, exported by the normal
   exporter, and quantised with the learned scales (no recalibration): the same kind of
   Q/DQ ONNX as ``fcn-edge quantize`` writes, which ``compare`` measures like any variant.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from fcn_edge.errors import PrecisionError
from fcn_edge.optional import require
from fcn_edge.paths import PathLike

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QatConfig:
    """How to fine-tune. ``quantize`` is the INT8 flavour (target, TensorRT floor, method,
    ``keep_float``) exactly as ``fcn-edge quantize`` takes it; ``data``/``split`` the
    labelled training images; ``distill`` the weight of the FP32 model's soft targets
    against the labels' cross-entropy (1: distillation only)."""

    iters: int = 300
    batch_size: int = 8
    lr: float = 2e-5  # about 1 % of the training's: fine-tuning, not retraining
    scale_lr: float = 1e-3  # per step, relative (the scales are learned as logarithms)
    distill: float = 1.0  # the FP32 model's masks are the target: distillation alone by default
    temperature: float = 1.0
    data: str = "synthetic"
    split: Optional[str] = None  # None: "train"
    data_format: str = "auto"
    crop_size: Optional[Tuple[int, int]] = (128, 160)
    seed: int = 0
    threads: int = 1
    check_images: int = 8  # calibration images the fake-quantised model is checked on
    min_check_agreement: float = 0.98
    progress: bool = True
    quantize: Any = None  # QuantizeConfig; None: the default INT8 flavour

    def __post_init__(self) -> None:
        problems = []
        if self.iters < 1 or self.batch_size < 1 or self.threads < 1:
            problems.append("iters, batch_size and threads must be >= 1")
        if self.lr <= 0 or self.scale_lr <= 0:
            problems.append("lr and scale_lr must be > 0")
        if not 0.0 <= self.distill <= 1.0:
            problems.append(f"distill must be in [0, 1], got {self.distill}")
        if problems:
            raise PrecisionError("invalid QAT configuration: " + "; ".join(problems))


@dataclass(frozen=True)
class QatResult:
    checkpoint: Path  # the fine-tuned weights (a normal fcn-edge checkpoint)
    fp32_onnx: Path  # its FP32 export
    int8_onnx: Path  # its Q/DQ variant with the learned scales
    iterations: int
    seconds: float
    check_agreement: float  # fake-quantised PyTorch vs Q/DQ ONNX before training
    history: List[Dict[str, float]] = field(default_factory=list)
    kept_float: Tuple[str, ...] = ()

    def as_dict(self) -> Dict[str, object]:
        out = dataclasses.asdict(self)
        for key in ("checkpoint", "fp32_onnx", "int8_onnx"):
            out[key] = str(out[key])
        return out


def qat(checkpoint: PathLike, calibration, out_dir: PathLike, config: QatConfig = QatConfig(),
        export=None) -> QatResult:
    """Fine-tune ``checkpoint`` with fake quantisation and write, in ``out_dir``,
    ``model.qat.pt``, ``model.qat.onnx`` and ``model.qat.int8.onnx``. ``export`` is the
    ExportConfig of the ONNX files (default: the checkpoint's own input size, logits); the
    training itself runs on the logits graph, and the learned scales are carried over to a
    fused or mask export tensor by tensor."""
    torch = require("torch", "quantisation-aware training")
    from fcn_edge.export import ExportConfig, export_model
    from fcn_edge.models.checkpoint import load_checkpoint, save_checkpoint
    from fcn_edge.precision.quantize import Calibrated, QuantizeConfig, calibrate, write_variant
    from fcn_edge.precision.qdq import weight_axis

    start = time.perf_counter()
    qconfig = config.quantize or QuantizeConfig(progress=config.progress)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    loaded = load_checkpoint(checkpoint)
    model, meta = loaded.model.eval(), loaded.meta
    export = (export or ExportConfig()).for_meta(meta)

    # 1. the graph QAT must match: the FP32 export (logits: the loss needs them), calibrated
    work = out_dir / ".qat"
    work.mkdir(exist_ok=True)
    base_onnx = work / "base.onnx"
    export_model(model, meta, base_onnx, dataclasses.replace(export, fuse_preprocess=False, output="logits"))
    calibrated = calibrate(base_onnx, calibration, qconfig)
    reference_qdq, _, ranges, _ = calibrated.build(_fp32_qdq(qconfig))
    placement = calibrated.placement(qconfig)
    scales = _scales(placement, ranges)
    feeds = _check_feeds(calibrated, calibration, config.check_images)
    axes = {n.name or n.output[0]: weight_axis(n, (n.name or n.output[0]) in placement.per_tensor)
            for n in placement.weights}

    # 2. fake quantisation where the ONNX has Q/DQ, checked against ONNX Runtime
    from fcn_edge.training.fakequant import attach

    teacher = copy.deepcopy(model).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    fq = attach(model, calibrated.model, placement, scales, feeds[0][:1], axes)
    check = _check_against_onnx(model, reference_qdq, feeds, calibrated.meta.input_name)
    if check < config.min_check_agreement:
        fq.detach()
        raise PrecisionError(f"QAT: the fake-quantised PyTorch model agrees with the Q/DQ ONNX on only "
                             f"{100 * check:.3f}% of pixels (needs {100 * config.min_check_agreement:.1f}%); "
                             "its Q/DQ placement could not be reproduced")
    log.info("fake-quantised PyTorch model vs Q/DQ ONNX: %.4f%% pixel agreement", 100 * check)

    # 3. fine-tune
    history = _train(torch, model, teacher, fq, meta, config)

    # 4. checkpoint, normal export, Q/DQ with the learned scales
    learned = fq.scales()
    fq.detach()
    model.eval()
    step = (f"qat: {config.iters} iterations on {config.data} (lr {config.lr}, distill {config.distill}), "
            f"from {Path(checkpoint).name}")
    qat_meta = meta.with_history(step)
    ckpt = save_checkpoint(out_dir / "model.qat.pt", model, qat_meta,
                           {"qat": {"scales": learned, "kept_float": list(placement.kept_float),
                                    "history": history}})
    fp32_onnx = out_dir / "model.qat.onnx"
    export_model(model, qat_meta, fp32_onnx, export)
    from fcn_edge.precision.onnx_io import load_model, model_sha256
    from fcn_edge.precision.ranges import TensorRange

    fp32_model = load_model(fp32_onnx)
    learned = _rename_for(calibrated.model, fp32_model, learned)
    learned_ranges = {t: TensorRange(-127.0 * s, 127.0 * s) for t, s in learned.items()}
    from fcn_edge.artifacts import read_onnx_meta

    stub = Calibrated(fp32_onnx, fp32_model, read_onnx_meta(fp32_onnx), model_sha256(fp32_onnx), {},
                      "learned by QAT", calibrated.images_used, 0, None, False)
    result = write_variant(stub, out_dir / "model.qat.int8.onnx", qconfig, ranges=learned_ranges,
                           note=f"scales=qat iters={config.iters}")
    return QatResult(ckpt, fp32_onnx, result.path, config.iters, time.perf_counter() - start, check,
                     history, tuple(placement.kept_float))


def _rename_for(base, final, scales: Dict[str, float]) -> Dict[str, float]:
    """``scales`` keyed by the tensors of ``final`` (the requested export: fused preprocessing
    and argmax wrappers prefix node names and replace the input) instead of ``base`` (the
    logits graph QAT trained on): each tensor is found as the same input of the same node."""
    from fcn_edge.precision.graph import GraphIndex

    base_index, final_index = GraphIndex.build(base.graph), GraphIndex.build(final.graph)
    renamed = {}
    for tensor, scale in scales.items():
        if tensor in final_index.consumers and tensor not in final_index.graph_inputs:
            renamed[tensor] = scale  # the same graph
            continue
        reader = base_index.data_consumers(tensor)[0]
        matches = [n for n in final.graph.node if n.name.endswith(reader.name) and n.op_type == reader.op_type]
        if len(matches) != 1:
            raise PrecisionError(f"QAT: cannot find node {reader.name!r} (reading {tensor!r}) in the export")
        slot = list(reader.input).index(tensor)
        renamed[matches[0].input[slot]] = scale
    return renamed


def _fp32_qdq(qconfig):
    """The same placement as FP32 Q/DQ: what ONNX Runtime checks the fake quantisation against."""
    return dataclasses.replace(qconfig, min_tensorrt=8, weight_storage="fake") if qconfig.target == "tensorrt" \
        else dataclasses.replace(qconfig, weight_storage="fake")


def _scales(placement, ranges) -> Dict[str, float]:
    from fcn_edge.precision.qdq import activation_params

    return {name: p.scale for name, p in activation_params(placement, ranges).items()}


def _check_feeds(calibrated, calibration, count: int) -> List[np.ndarray]:
    from fcn_edge.precision.calibration import CalibrationConfig, CalibrationData, list_calibration_images

    images = list(calibration.images) if isinstance(calibration, CalibrationData) \
        else list_calibration_images(calibration)
    data = CalibrationData(images[:count], calibrated.meta, CalibrationConfig(batch_size=count, progress=False))
    return [batch[calibrated.meta.input_name] for batch in data]


def _check_against_onnx(model, qdq_model, feeds: List[np.ndarray], input_name: str) -> float:
    """Pixel agreement of the fake-quantised model's masks with the Q/DQ ONNX's."""
    import torch

    from fcn_edge.precision.sensitivity import _session, agreement, bake_weights

    bake_weights(qdq_model)
    session = _session(qdq_model, None)
    ours, theirs = [], []
    with torch.no_grad():
        for batch in feeds:
            ours.append(model(torch.from_numpy(batch)).numpy().argmax(1))
            theirs.append(session.run(None, {input_name: batch})[0].argmax(1))
    return agreement(ours, theirs)


def _train(torch, model, teacher, fq, meta, config: QatConfig) -> List[Dict[str, float]]:
    from tqdm import tqdm

    from fcn_edge.data.augment import AugmentConfig
    from fcn_edge.data.formats import open_dataset, resolve_root
    from fcn_edge.training.batches import TrainStream, batch_indices
    from fcn_edge.training.loop import _collate

    dataset = open_dataset(resolve_root(config.data), config.split, config.data_format, training=True)
    if dataset.num_classes != meta.num_classes:
        raise PrecisionError(f"{config.data} has {dataset.num_classes} classes, the model {meta.num_classes}")
    augment = AugmentConfig(crop_size=tuple(config.crop_size or meta.input_size), base_size=tuple(meta.input_size),
                            ignore_index=dataset.ignore_index)
    stream = TrainStream(dataset, augment, config.seed, meta.mean, meta.std)
    loader = torch.utils.data.DataLoader(stream, batch_sampler=list(batch_indices(0, config.iters, config.batch_size)),
                                         num_workers=0, collate_fn=_collate)
    scales = list(fq.quantizers.parameters())
    scale_ids = {id(p) for p in scales}
    weights = [p for p in model.parameters() if id(p) not in scale_ids and p.requires_grad]
    optimizer = torch.optim.AdamW([{"params": weights, "lr": config.lr, "weight_decay": 0.0},
                                   {"params": scales, "lr": config.scale_lr, "weight_decay": 0.0}])
    base_lrs = [config.lr, config.scale_lr]
    criterion = torch.nn.CrossEntropyLoss(ignore_index=dataset.ignore_index)
    model.eval()  # BatchNorm keeps its running statistics (the export folds them); no dropout
    history: List[Dict[str, float]] = []
    bar = tqdm(total=config.iters, desc="qat", unit="it", disable=not config.progress)
    smoothed = agree_avg = None
    for iteration, (images, masks) in enumerate(loader):
        factor = 0.5 * (1.0 + np.cos(np.pi * iteration / config.iters))  # cosine decay
        for group, base in zip(optimizer.param_groups, base_lrs):
            group["lr"] = base * factor
        with torch.no_grad():
            target = teacher(images)
        logits = model(images)
        loss = _loss(torch, logits, target, masks, criterion, config)
        if not torch.isfinite(loss):
            raise PrecisionError(f"QAT loss became {loss.item()} at iteration {iteration}; lower --lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        agree = float((logits.argmax(1) == target.argmax(1)).float().mean())
        value = float(loss.item())
        smoothed = value if smoothed is None else 0.9 * smoothed + 0.1 * value
        agree_avg = agree if agree_avg is None else 0.9 * agree_avg + 0.1 * agree
        history.append({"iteration": iteration + 1, "loss": value, "agreement": agree})
        bar.set_postfix(loss=f"{smoothed:.4f}", agree=f"{100 * agree_avg:.2f}%")
        bar.update(1)
    bar.close()
    return history


def _loss(torch, logits, target, masks, criterion, config: QatConfig):
    import torch.nn.functional as F

    loss = 0.0
    if config.distill < 1.0:
        loss = (1.0 - config.distill) * criterion(logits, masks)
    if config.distill > 0.0:
        t = config.temperature
        soft = F.kl_div(F.log_softmax(logits / t, dim=1), F.log_softmax(target / t, dim=1), reduction="none",
                        log_target=True).sum(1).mean() * (t * t)
        loss = loss + config.distill * soft
    return loss
