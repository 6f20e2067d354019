"""FP32 ONNX -> INT8 Q/DQ ONNX, calibrated on a calibration set, for TensorRT or ONNX Runtime.

Why our own calibration and Q/DQ insertion instead of ONNX Runtime's ``quantize_static`` or
NVIDIA ModelOpt: quantize_static's entropy calibrator ignores the bin counts (its Entropy
equals MinMax) and keeps every activation, peaking at 16 GB on FCN-8s VGG16; ModelOpt pulls
onnxruntime-gpu and cupy and cannot share an environment with onnxruntime. Here ranges come
from ORT-run activations folded into streamed histograms (bounded memory), the entropy
method is TensorRT's KL search, and the Q/DQ placement is the one TensorRT (or ORT) fuses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from fcn_edge.artifacts import ModelMeta, meta_from_props, write_onnx_meta
from fcn_edge.artifacts.variants import variant_path, variant_tag
from fcn_edge.errors import PrecisionError
from fcn_edge.precision import cache as calib_cache
from fcn_edge.precision.calibration import CalibrationConfig, CalibrationData
from fcn_edge.precision.collect import CollectConfig, collect_histograms
from fcn_edge.precision.graph import GraphIndex
from fcn_edge.precision.histogram import TensorHistogram
from fcn_edge.precision.mixed import to_mixed_fp16
from fcn_edge.precision.onnx_io import (check_model, io_signature, load_model, model_sha256,
                                        save_model_atomic)
from fcn_edge.paths import PathLike
from fcn_edge.precision.placement import TARGETS, plan_placement
from fcn_edge.precision.qdq import activation_params, insert_qdq
from fcn_edge.precision.ranges import DEFAULT_PERCENTILE, METHODS, TensorRange, tensor_range

log = logging.getLogger(__name__)


# Measured on the shipped default model (synthetic val, 100 images, TensorRT target):
# percentile 99.99 gave 71.48 mean IU and 99.17% pixel agreement with FP32, entropy 71.34
# and 98.89%, minmax 70.94 and 98.21%. Entropy stays one flag away (--method entropy).
DEFAULT_METHOD_WHY = "percentile measured closest to FP32 on the default model"
MIN_TENSORRT = (8, 10)


@dataclass(frozen=True)
class QuantizeConfig:
    """How to make an INT8 variant.

    ``min_tensorrt`` (tensorrt target): the oldest TensorRT major version the file must
    build on. 10 (default): mixed INT8/FP16 at opset 19, every unquantised layer in FP16
    (:mod:`fcn_edge.precision.mixed`) and int8 weights, for strongly typed builds on
    TensorRT 10 and 11. 8: FP32 Q/DQ at the export's opset with float weights, for
    TensorRT 8.5/8.6 (JetPack 5, 6.0), where ``build-engine`` builds it weakly typed with
    the FP16 flag beside INT8.
    ``weight_storage``: "fake" (float weights + Q->DQ, parsed by every TensorRT from 8.5),
    "int8" (int8 weights + DQ: 4x smaller; TensorRT >= 10, ONNX Runtime), or None for the
    default (int8, but fake for ``min_tensorrt`` 8).
    The same three fields as :class:`fcn_edge.precision.fp16.FP16Config` (the CLI's
    ``--keep-float``, ``--include-input-path``, ``--include-output-path``) say what stays
    in float:

    ``include_output_path``: also quantise the last upsampling layer (FCN's upscore8,
    whose output goes straight to the crop/argmax). Off by default: on the default model
    keeping it in float gave equal or better agreement (98.88% vs 98.85% TensorRT flavour,
    98.36% vs 98.35% ORT) and ONNX Runtime has no int8 ConvTranspose kernel to gain from.
    ``include_input_path``: also quantise the first conv, which reads the image. None
    (default): for ONNX Runtime off: in float it lifted the ORT flavour from 98.36% to
    98.67% agreement and its mean IU drop from 0.34 to 0.17 points; for TensorRT off
    unless that leaves a standalone Q after it (:func:`~fcn_edge.precision.placement.
    plan_placement`): on the default model float kept 99.18% agreement against 99.14%.
    ``keep_float``: names of further Conv/ConvTranspose nodes left unquantised.
    """

    target: str = "tensorrt"
    min_tensorrt: int = 10
    method: str = "percentile"  # measured best on the default model; see DEFAULT_METHOD_WHY
    percentile: float = DEFAULT_PERCENTILE
    weight_storage: Optional[str] = None
    keep_float: Tuple[str, ...] = ()
    include_input_path: Optional[bool] = None
    include_output_path: bool = False
    batch_size: int = 8
    limit: Optional[int] = None
    memory_budget_mb: int = 1024
    cache_dir: Optional[str] = None
    use_cache: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise PrecisionError(f"unknown INT8 target {self.target!r}; choose one of {TARGETS}")
        if self.method not in METHODS:
            raise PrecisionError(f"unknown calibration method {self.method!r}; choose one of {METHODS}")
        if self.weight_storage not in (None, "fake", "int8"):
            raise PrecisionError(f"weight_storage must be 'fake', 'int8' or None, not {self.weight_storage!r}")
        if self.min_tensorrt not in MIN_TENSORRT:
            raise PrecisionError(f"min_tensorrt (--min-tensorrt) must be one of {MIN_TENSORRT}, not {self.min_tensorrt!r}")

    @property
    def storage(self) -> str:
        if self.weight_storage:
            return self.weight_storage
        return "fake" if self.target == "tensorrt" and self.min_tensorrt < 10 else "int8"

    @property
    def mixed_fp16(self) -> bool:
        """Unquantised layers in FP16 inside the ONNX (TensorRT >= 10, strongly typed)."""
        return self.target == "tensorrt" and self.min_tensorrt >= 10


@dataclass(frozen=True)
class QuantizeResult:
    path: Path
    meta: ModelMeta
    counts: Dict[str, int]
    ranges: Dict[str, TensorRange]
    cache_file: Optional[Path]
    cache_hit: bool
    images_used: int
    images_skipped: int
    kept_float: Tuple[str, ...] = field(default_factory=tuple)
    why_float: Dict[str, str] = field(default_factory=dict)  # kept_float name -> reason


@dataclass
class Calibrated:
    """An FP32 model and the activation histograms of every tensor INT8 could quantise.

    Made once by :func:`calibrate`; every Q/DQ variant of the model (other placements,
    other methods, the sensitivity search's hundred trials) is built from it by
    :meth:`build` without reading an image again.
    """

    path: Path
    model: object  # the FP32 onnx.ModelProto; build() works on copies
    meta: ModelMeta
    model_hash: str
    histograms: Dict[str, TensorHistogram]
    source: str
    images_used: int
    images_skipped: int
    cache_file: Optional[Path]
    cache_hit: bool

    def ranges(self, names, config: QuantizeConfig) -> Dict[str, TensorRange]:
        symmetric = config.target == "tensorrt"
        missing = [n for n in names if n not in self.histograms]
        if missing:
            raise PrecisionError(f"{self.path}: no calibrated (or given) range for tensors {missing[:5]}")
        return {n: tensor_range(self.histograms[n], config.method, symmetric, config.percentile) for n in names}

    def placement(self, config: QuantizeConfig, keep_float: Sequence[str] = ()):
        """The Q/DQ plan for ``config`` on the FP32 graph itself (its nodes, unmodified)."""
        return plan_placement(GraphIndex.build(self.model.graph), config.target,
                              tuple(config.keep_float) + tuple(keep_float), config.include_input_path,
                              config.include_output_path)

    def build(self, config: QuantizeConfig, keep_float: Sequence[str] = (),
              ranges: Optional[Dict[str, TensorRange]] = None, fp16_scales: Optional[bool] = None):
        """(Q/DQ ModelProto, Placement, ranges used, counts) for ``config`` with ``keep_float``
        added to ``config.keep_float``; ``ranges`` overrides calibrated ones by tensor name;
        ``fp16_scales`` puts the scales on the FP16 grid (default: where the graph is mixed)."""
        given = ranges or {}

        def ranges_for(names):
            found = self.ranges([n for n in names if n not in given], config)
            found.update({n: given[n] for n in names if n in given})
            return found

        return build_variant(self.model, config, tuple(config.keep_float) + tuple(keep_float), ranges_for,
                             str(self.path), fp16_scales)


def calibrate(model_path: PathLike, calibration: Union[PathLike, Sequence[PathLike], CalibrationData],
              config: QuantizeConfig = QuantizeConfig()) -> Calibrated:
    """Histograms of every tensor either target could quantise, from the cache when it has them."""
    model_path = Path(model_path)
    model, meta = _load_fp32(model_path)
    index = GraphIndex.build(model.graph)
    needed = _all_calibration_tensors(index, model)
    if isinstance(calibration, CalibrationData):
        data = calibration
    else:
        data = CalibrationData(calibration, meta, CalibrationConfig(
            batch_size=_batch_size(model, config.batch_size), limit=config.limit,
            pad_last=_fixed_batch(model) is not None, progress=config.progress))
    model_hash = model_sha256(model_path)
    cache_file = None
    histograms = None
    if config.use_cache:
        cache_file = calib_cache.cache_path(Path(config.cache_dir) if config.cache_dir
                                            else calib_cache.default_cache_dir(), model_hash)
        histograms = calib_cache.load_histograms(cache_file, model_hash, data.fingerprint(), needed)
    cache_hit = histograms is not None
    if histograms is None:
        histograms = collect_histograms(model, needed, data,
                                        CollectConfig(memory_budget=config.memory_budget_mb << 20))
        if cache_file is not None:
            calib_cache.save_histograms(cache_file, model_hash, data.fingerprint(), histograms,
                                        {"images": len(data.images), "source": str(data.source)})
    else:
        log.info("using cached calibration ranges from %s", cache_file)
    skipped = len(data.skipped) if not cache_hit else 0
    return Calibrated(model_path, model, meta, model_hash, histograms, str(data.source),
                      len(data.images) - skipped, skipped, cache_file, cache_hit)


def build_variant(fp32_model, config: QuantizeConfig, keep_float: Tuple[str, ...], ranges_for, where: str,
                  fp16_scales: Optional[bool] = None):
    """(Q/DQ copy of ``fp32_model``, Placement, ranges, counts); ``ranges_for(names)`` gives
    the range of each tensor the placement calibrates."""
    fp16_scales = config.mixed_fp16 if fp16_scales is None else fp16_scales
    from onnx import ModelProto

    model = ModelProto()
    model.CopyFrom(fp32_model)
    signature = io_signature(model)
    index = GraphIndex.build(model.graph)
    placement = plan_placement(index, config.target, keep_float, config.include_input_path,
                               config.include_output_path)
    ranges = ranges_for(placement.calibrate)
    params = activation_params(placement, ranges, fp16_scales)
    counts = insert_qdq(model, index, placement, params, config.storage, fp16_scales)
    _drop_stale_value_info(model)
    if config.mixed_fp16:
        to_mixed_fp16(model, where)
    if io_signature(model) != signature:
        raise PrecisionError(f"internal error: quantising {where} changed its inputs/outputs")
    return model, placement, ranges, counts


def quantize_int8(model_path: PathLike, calibration: Union[PathLike, Sequence[PathLike], CalibrationData],
                  output_path: Optional[PathLike] = None,
                  config: QuantizeConfig = QuantizeConfig()) -> QuantizeResult:
    """Calibrate ``model_path`` on ``calibration`` and write its INT8 Q/DQ variant."""
    output_path = _output_path(model_path, output_path, config)
    return write_variant(calibrate(model_path, calibration, config), output_path, config)


def write_variant(calibrated: Calibrated, output_path: Optional[PathLike], config: QuantizeConfig,
                  keep_float: Sequence[str] = (), ranges: Optional[Dict[str, TensorRange]] = None,
                  note: str = "") -> QuantizeResult:
    """Build the Q/DQ variant of a calibrated model and write it, ModelMeta updated."""
    output_path = _output_path(calibrated.path, output_path, config)
    model, placement, used, counts = calibrated.build(config, keep_float, ranges)
    meta = calibrated.meta.with_history(
        f"int8: target={config.target}"
        + (f" min_tensorrt={config.min_tensorrt} float={'fp16' if config.mixed_fp16 else 'fp32'}"
           if config.target == "tensorrt" else "")
        + f" method={config.method} weights={config.storage} "
        f"calibration={calibrated.source} images={calibrated.images_used} "
        f"parent_sha256={calibrated.model_hash[:16]}"
        + (f" unquantised={','.join(placement.kept_float)}" if placement.kept_float else "")
        + (f" {note}" if note else ""),
        precision="int8",
    )
    write_onnx_meta(model, meta)
    check_model(model, str(output_path))
    save_model_atomic(model, output_path)
    return QuantizeResult(output_path, meta, counts, used, calibrated.cache_file, calibrated.cache_hit,
                          calibrated.images_used, calibrated.images_skipped, tuple(placement.kept_float),
                          dict(placement.why))


def _output_path(model_path: PathLike, output_path: Optional[PathLike], config: QuantizeConfig) -> Path:
    model_path = Path(model_path)
    output_path = Path(output_path) if output_path else variant_path(model_path, variant_tag("int8", config.target))
    if output_path.resolve() == model_path.resolve():
        raise PrecisionError(f"{output_path}: the output would overwrite the input model")
    return output_path


def _load_fp32(model_path: Path):
    model = load_model(model_path)
    meta = meta_from_props({p.key: p.value for p in model.metadata_props}, str(model_path))
    if meta.precision != "fp32":
        raise PrecisionError(f"{model_path} is already {meta.precision}; quantise the FP32 model")
    if any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node):
        raise PrecisionError(f"{model_path} already contains Q/DQ nodes; quantise the FP32 model")
    return model, meta


def _all_calibration_tensors(index: GraphIndex, model) -> List[str]:
    """Every tensor either target's placement could quantise, whatever is kept float (the
    inputs of every Add, Mul and Concat too: with a conv kept float, an Add's other input
    can become the quantised one): one calibration serves every variant."""
    from fcn_edge.precision.fusion import float_tensors

    floats = float_tensors(model)
    names = [t for node in index.graph.node if node.op_type in ("Add", "Mul", "Concat")
             for t in index.data_inputs(node) if t in floats]
    for target in TARGETS:
        for include_output in (False, True):
            try:
                plan = plan_placement(index, target, (), include_input_path=True, include_output_path=include_output)
            except PrecisionError:
                continue
            names.extend(plan.calibrate)
    return list(dict.fromkeys(names))


def _fixed_batch(model) -> Optional[int]:
    inits = {i.name for i in model.graph.initializer}
    for value in model.graph.input:
        if value.name in inits:
            continue
        dims = value.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0:
            return int(dims[0].dim_value)
    return None


def _batch_size(model, wanted: int) -> int:
    fixed = _fixed_batch(model)
    return fixed if fixed is not None else wanted


def _drop_stale_value_info(model) -> None:
    produced = {o for n in model.graph.node for o in n.output} | {i.name for i in model.graph.input}
    keep = [v for v in model.graph.value_info if v.name in produced]
    if len(keep) != len(model.graph.value_info):
        del model.graph.value_info[:]
        model.graph.value_info.extend(keep)
