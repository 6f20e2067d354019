"""Stream a dataset through any predictor and accumulate the confusion matrix.

One image is held at a time, so a full Cityscapes val split evaluates in constant memory.
The predictor gets full-size BGR frames, as a camera would give them, and must return a
mask at that size: resizing is part of what is measured.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

import numpy as np

from fcn_edge.data.dataset import SegmentationDataset
from fcn_edge.data.formats import DataLike, dataset_spec
from fcn_edge.errors import DataError
from fcn_edge.evaluate.metrics import ConfusionMatrix, SegmentationMetrics
from fcn_edge.evaluate.protocol import FramePredictor, class_names_of
from fcn_edge.paths import PathLike
from fcn_edge.runtime.segmenter import LoadOptions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationReport:
    metrics: SegmentationMetrics
    images: int
    seconds: float  # wall time of all segment() calls
    dataset: str
    model: str = ""

    @property
    def ms_per_image(self) -> float:
        return 1000.0 * self.seconds / max(self.images, 1)

    def to_dict(self) -> Dict[str, Any]:
        return {"model": self.model, "dataset": self.dataset, "images": self.images,
                "ms_per_image": self.ms_per_image, **self.metrics.to_dict()}


def check_classes(predictor: FramePredictor, dataset: SegmentationDataset) -> None:
    """The model's classes must be the dataset's, in the same order."""
    model_classes = class_names_of(predictor)
    if model_classes != dataset.class_names:
        raise DataError(
            f"{dataset.root}: the dataset's {dataset.num_classes} classes {list(dataset.class_names)[:6]}... "
            f"differ from the model's {len(model_classes)} classes {list(model_classes)[:6]}...; "
            "evaluate a model on data labelled with its own class list"
        )


def evaluate_dataset(
    predictor: FramePredictor,
    dataset: SegmentationDataset,
    limit: Optional[int] = None,
    progress: bool = True,
    model_name: str = "",
) -> EvaluationReport:
    """Mean IU, pixel accuracy and friends of ``predictor`` over ``dataset`` (or its first ``limit``)."""
    from tqdm import tqdm

    check_classes(predictor, dataset)
    count = len(dataset) if limit is None else min(limit, len(dataset))
    confusion = ConfusionMatrix(dataset.num_classes, dataset.ignore_index)
    spent = 0.0
    with tqdm(total=count, desc="evaluate", unit="img", disable=not progress, leave=False) as bar:
        for index in range(count):
            sample = dataset[index]
            start = time.perf_counter()
            result = predictor.segment(sample.image)
            spent += time.perf_counter() - start
            mask = np.asarray(result.mask)
            if mask.shape != sample.mask.shape:
                raise DataError(
                    f"{sample.image_path}: the model returned a {mask.shape} mask for a "
                    f"{sample.mask.shape} image; predictors must return masks at the frame's size"
                )
            confusion.update(mask, sample.mask, str(sample.mask_path))
            bar.update(1)
            if index % 10 == 9:
                bar.set_postfix(mIoU=f"{confusion.metrics().mean_iu:.3f}")
    metrics = confusion.metrics(dataset.class_names)
    if metrics.absent:
        log.info("classes in neither prediction nor ground truth, left out of the means: %s", ", ".join(metrics.absent))
    return EvaluationReport(metrics, count, spent, dataset.describe(), model_name)


@dataclass(frozen=True)
class EvaluateConfig:
    """How the model runs (the runtime's :class:`~fcn_edge.runtime.LoadOptions`), and whether
    to show progress."""

    load: LoadOptions = field(default_factory=LoadOptions)
    progress: bool = True


def evaluate_model(model: PathLike, data: DataLike = "synthetic", config: EvaluateConfig = EvaluateConfig()
                   ) -> EvaluationReport:
    """Accuracy of ``model`` (.engine, .onnx or .pt, through the runtime's Segmenter) on
    ``data``: a :class:`~fcn_edge.data.DatasetSpec`, a dataset folder or "synthetic"."""
    spec = dataset_spec(data)
    dataset = spec.open()
    with config.load.load(model) as segmenter:
        return evaluate_dataset(segmenter, dataset, limit=spec.limit, progress=config.progress,
                                model_name=str(model))
