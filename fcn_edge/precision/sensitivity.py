"""Sensitivity analysis and automatic FP16 fallback: INT8 that meets an accuracy target.

Which layers INT8 hurts is measured, not guessed. Every quantised convolution is tried
twice on a ranking set of calibration images: quantised alone (everything else float),
and left out (everything else quantised). Its score is the agreement it costs alone plus
the agreement its absence restores, both against the FP32 model's own masks, so a layer
that hurts only in company still ranks high. The most harmful layers are then kept in
FP16 (the mixed graph's float precision) until the agreement target (``--target-agreement``)
and/or the mean-IU budget (``--max-iu-drop``) holds on a held-out split the ranking never
saw.

Speed: the calibration histograms are computed once (:func:`~fcn_edge.precision.quantize.
calibrate`, cached) and every trial is only a placement plus one ONNX Runtime pass over the
ranking images. Trials run the FP32 Q/DQ form of the placement with weights already
fake-quantised, which ORT runs about as fast as FP32 (the mixed INT8/FP16 form it runs
through casts, several times slower); the held-out check uses the real variant.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from fcn_edge.data.formats import DataLike
from fcn_edge.errors import PrecisionError
from fcn_edge.paths import PathLike
from fcn_edge.precision.calibration import CalibrationConfig, CalibrationData
from fcn_edge.precision.quantize import Calibrated, QuantizeConfig, QuantizeResult, calibrate, write_variant

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SensitivityConfig:
    """The target and how to measure it.

    ``target_agreement``: pixel agreement with FP32 (a fraction: 0.995) the variant must
    reach; ``max_iu_drop``: mean-IU loss (a fraction: 0.003 = 0.3 points) it may have, which
    needs a labelled ``holdout``. ``ranking_images``: calibration images the layers are
    ranked on. ``holdout``: the split the target is checked on (a DatasetSpec, dataset
    folder or "synthetic"); None holds out the calibration images after the ranking ones.
    ``max_fallback``: at most this many layers kept in FP16 (None: as many as it takes).
    """

    target_agreement: Optional[float] = None
    max_iu_drop: Optional[float] = None
    ranking_images: int = 16
    holdout: Optional[DataLike] = None
    holdout_limit: Optional[int] = 48
    max_fallback: Optional[int] = None
    threads: Optional[int] = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.target_agreement is None and self.max_iu_drop is None:
            raise PrecisionError("the sensitivity fallback needs a target: --target-agreement and/or --max-iu-drop")
        if self.target_agreement is not None and not 0.0 < self.target_agreement <= 1.0:
            raise PrecisionError(f"target agreement must be a fraction in (0, 1], got {self.target_agreement}")
        if self.max_iu_drop is not None and not 0.0 <= self.max_iu_drop < 1.0:
            raise PrecisionError(f"max IU drop must be a fraction in [0, 1), got {self.max_iu_drop}")
        if self.max_iu_drop is not None and self.holdout is None:
            raise PrecisionError("--max-iu-drop needs labelled held-out data: give --data (and --split)")
        if self.ranking_images < 1:
            raise PrecisionError(f"ranking_images must be >= 1, got {self.ranking_images}")


@dataclass(frozen=True)
class LayerSensitivity:
    """One quantised layer's effect on agreement with FP32 (fractions of pixels)."""

    name: str
    op: str
    alone: float  # agreement with only this layer quantised
    left_out: float  # agreement with every layer but this one quantised
    baseline: float  # agreement with every layer quantised

    @property
    def score(self) -> float:
        """Agreement this layer costs: alone, plus what leaving it out restores."""
        return (1.0 - self.alone) + (self.left_out - self.baseline)

    def as_dict(self) -> Dict[str, object]:
        return {"layer": self.name, "op": self.op, "agreement_alone": self.alone,
                "agreement_left_out": self.left_out, "score": self.score}


@dataclass(frozen=True)
class HoldoutCheck:
    kept: int  # layers kept in FP16
    agreement: float
    iu_drop: Optional[float]
    met: bool


@dataclass(frozen=True)
class FallbackResult:
    quantize: QuantizeResult
    baseline: float  # ranking-set agreement with every layer quantised
    ranking: Tuple[LayerSensitivity, ...]
    kept: Tuple[str, ...]  # the layers the search kept in FP16, most harmful first
    checks: Tuple[HoldoutCheck, ...]  # held-out checks, in the order they ran
    holdout: str  # what the target was checked on
    target_met: bool
    trials: int
    seconds: float
    config: SensitivityConfig = field(repr=False, default=None)

    @property
    def final(self) -> HoldoutCheck:
        return self.checks[-1]

    def as_dict(self) -> Dict[str, object]:
        """What ``--report FILE`` writes."""
        c = self.config
        return {
            "model": str(self.quantize.path), "target_agreement": c.target_agreement if c else None,
            "max_iu_drop": c.max_iu_drop if c else None, "ranking_images": c.ranking_images if c else None,
            "holdout": self.holdout, "baseline_agreement": self.baseline,
            "ranking": [r.as_dict() for r in self.ranking], "kept_fp16": list(self.kept),
            "checks": [check.__dict__ for check in self.checks], "target_met": self.target_met,
            "trials": self.trials, "seconds": round(self.seconds, 1),
        }


def quantize_with_fallback(model_path: PathLike, calibration, output_path: Optional[PathLike] = None,
                           config: QuantizeConfig = QuantizeConfig(),
                           sensitivity: SensitivityConfig = SensitivityConfig(target_agreement=0.995)
                           ) -> FallbackResult:
    """Quantise ``model_path``, keeping in FP16 the fewest most harmful layers that make
    the variant meet ``sensitivity``'s target on the held-out split."""
    start = time.perf_counter()
    calibrated = calibrate(model_path, calibration, config)
    images = _calibration_images(calibrated, calibration)
    ranking_set = images[: sensitivity.ranking_images]
    rest = images[sensitivity.ranking_images:]
    if sensitivity.holdout is None and not rest:
        raise PrecisionError(f"the calibration set has {len(images)} images, all used for ranking "
                             f"(ranking_images={sensitivity.ranking_images}); give more images or --data to "
                             "hold out")
    trials = Trials(calibrated, config, _feeds(calibrated, ranking_set), sensitivity.threads)
    layers = trials.layers()
    progress = tqdm(total=1 + 2 * len(layers), desc="sensitivity", unit="trial", leave=False,
                    disable=not sensitivity.progress)
    baseline = trials.agreement(())
    progress.update(1)
    ranking = []
    for name, op in layers:
        others = tuple(n for n, _ in layers if n != name)
        alone = trials.agreement(others)
        progress.update(1)
        left_out = trials.agreement((name,))
        progress.update(1)
        ranking.append(LayerSensitivity(name, op, alone, left_out, baseline))
        progress.set_postfix(baseline=f"{100 * baseline:.2f}%")
    progress.close()
    ranking.sort(key=lambda r: r.score, reverse=True)
    order = [r.name for r in ranking]
    limit = len(order) if sensitivity.max_fallback is None else min(sensitivity.max_fallback, len(order))
    holdout = Holdout(calibrated, config, sensitivity, rest)
    # the fewest layers whose fallback meets the agreement target on the ranking set
    k = _first_meeting(lambda k: trials.agreement(tuple(order[:k])), limit,
                       sensitivity.target_agreement) if sensitivity.target_agreement else 0
    checks: List[HoldoutCheck] = []
    while True:
        check = holdout.check(tuple(order[:k]))
        checks.append(check)
        log.info("held-out check with %d layers in FP16: agreement %.4f%s", k, check.agreement,
                 "" if check.iu_drop is None else f", IU drop {100 * check.iu_drop:.2f} points")
        if check.met or k >= limit:
            break
        k = min(limit, k + max(1, k // 4))
    kept = tuple(order[:k])
    result = write_variant(calibrated, output_path, config, kept,
                           note=f"fallback=sensitivity kept_fp16={len(kept)}")
    return FallbackResult(result, baseline, tuple(ranking), kept, tuple(checks), holdout.describe(),
                          checks[-1].met, trials.count + holdout.count, time.perf_counter() - start, sensitivity)


def _first_meeting(agreement_of, limit: int, target: float) -> int:
    """The smallest k in 0..limit with agreement_of(k) >= target (binary search; agreement
    grows with k, about monotonically), or ``limit``."""
    if agreement_of(0) >= target:
        return 0
    low, high = 0, limit  # agreement_of(low) < target
    if agreement_of(high) < target:
        return limit
    while high - low > 1:
        mid = (low + high) // 2
        if agreement_of(mid) >= target:
            high = mid
        else:
            low = mid
    return high


def _calibration_images(calibrated: Calibrated, calibration) -> List[Path]:
    if isinstance(calibration, CalibrationData):
        return list(calibration.images)
    from fcn_edge.precision.calibration import list_calibration_images

    if isinstance(calibration, (str, Path)):
        return list_calibration_images(calibration)
    return [Path(p) for p in calibration]


def _feeds(calibrated: Calibrated, images: Sequence[Path]) -> List[Dict[str, np.ndarray]]:
    from fcn_edge.precision.quantize import _fixed_batch

    fixed = _fixed_batch(calibrated.model)
    data = CalibrationData(list(images), calibrated.meta, CalibrationConfig(
        batch_size=fixed or 8, pad_last=fixed is not None, progress=False))
    return list(data)


def _session(model, threads: Optional[int]):
    import onnxruntime as ort

    from fcn_edge.runtime.ort_backend import DISABLED_OPTIMIZERS

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"],
                                disabled_optimizers=list(DISABLED_OPTIMIZERS))


def _masks(session, feeds: Sequence[Dict[str, np.ndarray]], logits: bool) -> List[np.ndarray]:
    outputs = [session.run(None, feed)[0] for feed in feeds]
    return [o.argmax(1) if logits else o for o in outputs]


def agreement(masks: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> float:
    same = sum(int(np.count_nonzero(a == b)) for a, b in zip(masks, reference))
    return same / max(1, sum(r.size for r in reference))


def bake_weights(model) -> None:
    """Replace each weight Q->DQ pair by the fake-quantised float weight it computes, in
    place: the same numbers, and ONNX Runtime runs the convolutions at FP32 speed."""
    from onnx import numpy_helper

    from fcn_edge.precision.graph import GraphIndex

    index = GraphIndex.build(model.graph)
    drop, new = set(), []
    for node in list(model.graph.node):
        if node.op_type != "DequantizeLinear":
            continue
        q = index.producer.get(node.input[0])
        if q is None or q.op_type != "QuantizeLinear" or not index.is_constant(q.input[0]):
            continue
        w = index.constant(q.input[0]).astype(np.float32)
        scale = index.constant(q.input[1]).astype(np.float32)
        axis = next((a.i for a in q.attribute if a.name == "axis"), 1)
        shape = [1] * w.ndim
        if scale.ndim:
            shape[axis] = -1
        s = scale.reshape(shape)
        baked = (np.clip(np.round(w / s), -127, 127) * s).astype(np.float32)
        new.append(numpy_helper.from_array(baked, node.output[0]))
        drop.update({id(node), id(q)})
    nodes = [n for n in model.graph.node if id(n) not in drop]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    model.graph.initializer.extend(new)


class Trials:
    """Agreement with FP32 of placements of one calibrated model on the ranking images."""

    def __init__(self, calibrated: Calibrated, config: QuantizeConfig, feeds, threads: Optional[int]):
        self.calibrated = calibrated
        # the FP32 Q/DQ form of the same placement with the same (FP16-grid) scales: the
        # variant's numbers up to the FP16 rounding of its float layers
        self.fp16_scales = config.mixed_fp16
        self.config = replace(config, min_tensorrt=8, weight_storage="fake") if config.target == "tensorrt" \
            else replace(config, weight_storage="fake")
        self.feeds = feeds
        self.threads = threads
        self.logits = calibrated.meta.output_kind == "logits"
        self.reference = _masks(_session(calibrated.model, threads), feeds, self.logits)
        self.count = 0
        self._memo: Dict[Tuple[str, ...], float] = {}

    def layers(self) -> List[Tuple[str, str]]:
        """(name, op) of every layer the base placement quantises."""
        _, placement, _, _ = self.calibrated.build(self.config)
        return [(n.name or n.output[0], n.op_type) for n in placement.weights]

    def agreement(self, keep_float: Tuple[str, ...]) -> float:
        key = tuple(sorted(keep_float))
        if key not in self._memo:
            model, _, _, _ = self.calibrated.build(self.config, keep_float, fp16_scales=self.fp16_scales)
            bake_weights(model)
            self._memo[key] = agreement(_masks(_session(model, self.threads), self.feeds, self.logits),
                                        self.reference)
            self.count += 1
        return self._memo[key]


class Holdout:
    """Checks a fallback with the real variant on data the ranking never saw."""

    def __init__(self, calibrated: Calibrated, config: QuantizeConfig, sensitivity: SensitivityConfig,
                 rest: Sequence[Path]):
        self.calibrated = calibrated
        self.config = config
        self.sensitivity = sensitivity
        self.count = 0
        if sensitivity.holdout is None:
            images = list(rest)[: sensitivity.holdout_limit] if sensitivity.holdout_limit else list(rest)
            self.images = images
            self.feeds = _feeds(calibrated, images)
            self.reference = _masks(_session(calibrated.model, sensitivity.threads), self.feeds,
                                    calibrated.meta.output_kind == "logits")

    def describe(self) -> str:
        s = self.sensitivity
        if s.holdout is None:
            return f"{len(self.images)} calibration images not used for ranking (network resolution)"
        from fcn_edge.data.formats import dataset_spec

        spec = dataset_spec(s.holdout)
        return f"{spec.root} split {spec.split or 'val'}" + (f", first {s.holdout_limit} images" if s.holdout_limit else "")

    def check(self, keep_float: Tuple[str, ...]) -> HoldoutCheck:
        s = self.sensitivity
        self.count += 1
        with tempfile.TemporaryDirectory(prefix="fcn-edge-fallback-") as tmp:
            path = Path(tmp) / "candidate.onnx"
            write_variant(self.calibrated, path, self.config, keep_float)
            if s.holdout is None:
                from fcn_edge.precision.onnx_io import load_model

                masks = _masks(_session(load_model(path), s.threads), self.feeds,
                               self.calibrated.meta.output_kind == "logits")
                agree, drop = agreement(masks, self.reference), None
            else:
                agree, drop = self._compare(path)
        met = (s.target_agreement is None or agree >= s.target_agreement) and \
            (s.max_iu_drop is None or (drop is not None and drop <= s.max_iu_drop))
        return HoldoutCheck(len(keep_float), agree, drop, met)

    def _compare(self, path: Path) -> Tuple[float, float]:
        from fcn_edge.data.formats import dataset_spec
        from fcn_edge.precision.compare import CompareConfig, compare_variants

        s = self.sensitivity
        spec = dataset_spec(s.holdout)
        if s.holdout_limit and spec.limit is None:
            spec = replace(spec, limit=s.holdout_limit)
        ref, variant = compare_variants(self.calibrated.path, [path], spec, CompareConfig(
            latency_runs=0, threads=s.threads, progress=False))
        return variant.agreement, ref.mean_iu - variant.mean_iu


def format_ranking(result: FallbackResult, top: int = 10) -> List[str]:
    """The ranking, what was kept and the result, as ``quantize`` prints them."""
    lines = [f"sensitivity: {len(result.ranking)} quantised layers ranked on the FP32 model's masks "
             f"(all quantised: {100 * result.baseline:.3f}% agreement); {result.trials} trials, "
             f"{result.seconds:.0f} s",
             f"  {'rank':>4}  {'score':>7}  {'alone':>8}  {'left out':>8}  layer"]
    for i, r in enumerate(result.ranking[:top], 1):
        lines.append(f"  {i:>4}  {100 * r.score:6.3f}%  {100 * r.alone:7.3f}%  {100 * r.left_out:7.3f}%  {r.name}")
    if len(result.ranking) > top:
        lines.append(f"  ... {len(result.ranking) - top} more (--report FILE writes them all)")
    lines.append(f"kept in FP16: {len(result.kept)} layer(s)" + (": " + ", ".join(result.kept) if result.kept else ""))
    for check in result.checks:
        lines.append(f"  held-out ({result.holdout}) with {check.kept} in FP16: agreement {100 * check.agreement:.3f}%"
                     + ("" if check.iu_drop is None else f", mean IU drop {100 * check.iu_drop:.2f} points")
                     + (" -> meets the target" if check.met else " -> short of the target"))
    if not result.target_met:
        lines.append("  the target was NOT met; try QAT (`fcn-edge qat`) or a looser target")
    return lines
