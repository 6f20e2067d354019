"""Build, check, run and time small engines on this machine's TensorRT: the doctor's model part.

For each precision the GPU supports, the model (MODEL, or ``fcn8s_tiny`` exported here with
fused preprocessing) is made into the ONNX that precision needs (the product's own FP16
converter and Q/DQ quantiser, calibrated on synthetic street scenes), built with
:func:`fcn_edge.engine.build_engine_file` (whose precision check reads the engine
inspector), run through the TensorRT runtime, compared with ONNX Runtime on the CPU running
the same ONNX (mask agreement), and timed beside trtexec where trtexec is on the PATH.
The TopK mask head is then compared with the reduce mask head, once the exporter has them.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from fcn_edge.doctor.check import Check
from fcn_edge.errors import FcnEdgeError
from fcn_edge.optional import require

DOCTOR_ARCH = "fcn8s_tiny"
# Masks agree with ONNX Runtime on the CPU at least this much (as in tests/test_engine_trt.py:
# TF32 convolutions for FP32; FP16 and INT8 rounding near class boundaries).
MIN_AGREEMENT = {"fp32": 0.99, "fp16": 0.97, "int8": 0.90}


@dataclass(frozen=True)
class EngineCheckConfig:
    precisions: Tuple[str, ...] = ("fp32", "fp16", "int8")
    size: Tuple[int, int] = (64, 96)  # network input (H, W) of the doctor's own model
    frames: int = 4  # synthetic frames compared with ONNX Runtime
    runs: int = 20  # timed runs per engine
    cuda: Optional[str] = None  # pycuda / cuda-python / auto ($FCN_EDGE_CUDA)
    trtexec: Optional[str] = None  # its path, when on PATH


def platform_facts(trt: Any) -> Dict[str, Any]:
    """What the builder says of this GPU: fast FP16/INT8 (before 11) and DLA cores."""
    from fcn_edge.engine.capabilities import probe

    caps = probe(trt)
    builder = trt.Builder(trt.Logger(trt.Logger.ERROR))
    facts: Dict[str, Any] = {"dla_cores": int(builder.num_DLA_cores), "fast_fp16": None, "fast_int8": None}
    if caps.fast_fp16_query:  # trt-versions: <11
        facts["fast_fp16"] = bool(builder.platform_has_fast_fp16)
        facts["fast_int8"] = bool(builder.platform_has_fast_int8)
    return facts


def supported_precisions(wanted: Sequence[str], facts: Dict[str, Any]) -> Dict[str, str]:
    """precision -> "" when this GPU runs it fast, else why it is skipped."""
    out = {}
    for precision in wanted:
        fast = {"fp32": True, "fp16": facts["fast_fp16"], "int8": facts["fast_int8"]}[precision]
        out[precision] = "" if fast is not False else f"this GPU has no fast {precision.upper()} (TensorRT's builder says)"
    return out


def synthetic_frames(count: int, size: Tuple[int, int]) -> List[np.ndarray]:
    """Street scenes at twice the network size (the Segmenter resizes them), as the product's
    synthetic data set renders them."""
    from fcn_edge.data.synthetic import SyntheticConfig, render_sample

    config = SyntheticConfig(height=size[0] * 2, width=size[1] * 2)
    return [render_sample(config, "val", i)[0] for i in range(count)]


def doctor_model(workdir: Path, size: Tuple[int, int], mask_head: str = "") -> Path:
    """``fcn8s_tiny`` with fused preprocessing, exported by the real exporter: logits out, or a
    uint8 mask through ``mask_head`` (topk / reduce). Its weights are seeded and its score
    layers spread: a fresh FCN's scores are near zero, and argmax ties would make the
    agreement measure noise instead of the engine."""
    require("torch", "exporting the doctor's test model")
    from fcn_edge.artifacts import ModelMeta
    from fcn_edge.classes import resolve_classes
    from fcn_edge.export import ExportConfig, export_model
    from fcn_edge.models.tiny import smoke_test_model

    classes = resolve_classes("synthetic")
    model = smoke_test_model(len(classes.names))
    meta = ModelMeta(DOCTOR_ARCH, classes.names, classes.palette, dataset=classes.dataset).with_history(
        "fcn-edge doctor: seeded weights with spread score layers; not trained")
    head = dict(output="mask", argmax=mask_head) if mask_head else {}
    config = ExportConfig(input_size=size, dynamic_batch=False, dynamic_shape=False, fuse_preprocess=True,
                          simplify=False, **head)
    out = workdir / f"doctor_{mask_head or 'fp32'}.onnx"
    export_model(model, meta, out, config)
    return out


def read_precision(onnx: Path) -> str:
    from fcn_edge.engine.onnx_facts import read_onnx_facts

    return read_onnx_facts(onnx).precision


def precision_variant(onnx: Path, precision: str, workdir: Path) -> Path:
    """The ONNX to build for ``precision``: FP16 and INT8 live in the ONNX (DESIGN.md), made by
    the product's converters; the plan maps them onto the TensorRT at hand (FP16/INT8 flags
    before 10, strong typing from 10)."""
    if precision == "fp32":
        return onnx
    if precision == "fp16":
        from fcn_edge.precision.fp16 import convert_fp16

        return convert_fp16(onnx, workdir / f"{onnx.stem}.fp16.onnx").path
    from fcn_edge.artifacts import read_onnx_meta
    from fcn_edge.precision.quantize import QuantizeConfig, quantize_int8

    meta = read_onnx_meta(onnx)
    images = workdir / "calibration"
    images.mkdir(exist_ok=True)
    import cv2

    size = meta.input_size
    for i, frame in enumerate(synthetic_frames(8, size)):
        cv2.imwrite(str(images / f"{i:02d}.png"), frame)
    return quantize_int8(onnx, images, workdir / f"{onnx.stem}.int8.onnx",
                         QuantizeConfig(use_cache=False, progress=False)).path


def build_check(onnx: Path, label: str, workdir: Path, trt: Any) -> Tuple[Check, Any]:
    """Build one engine; its Check says whether the inspector found the precision."""
    from fcn_edge.engine import BuildConfig, build_engine_file

    name = f"engine {label}"
    engine = workdir / f"{onnx.stem}.{label}.engine"
    try:
        built = build_engine_file(onnx, engine, BuildConfig(), trt=trt)
    except FcnEdgeError as exc:
        return Check(name, "fail", f"build failed: {exc}", "see the message; `fcn-edge build-engine --dry-run` "
                     "shows the plan"), None
    check = built.precision_check
    verdict = {"ok": "ok", "unchecked": "warn", "mismatch": "fail"}[check.verdict]
    found = f"built in {built.result.build_seconds:.1f} s, {built.result.plan.typing} typing; {check.detail}"
    return Check(name, verdict, found, details={"engine": str(engine), "onnx": str(onnx),
                                                "layers": dict(check.layers)}), built


@dataclass(frozen=True)
class EngineRun:
    masks: List[np.ndarray]  # the engine's, one per frame
    agreement: float  # with ONNX Runtime on the CPU running the same ONNX
    engine_ms: float  # median of the runtime's GPU-timed engine stage
    description: str
    trtexec_ms: Optional[float]
    trtexec_error: str

    def details(self) -> Dict[str, Any]:
        return {"agreement": self.agreement, "engine_ms_p50": self.engine_ms, "runtime": self.description,
                "trtexec_gpu_compute_ms_mean": self.trtexec_ms, "trtexec_error": self.trtexec_error}


def run_engine(built: Any, onnx: Path, frames: Sequence[np.ndarray], config: EngineCheckConfig) -> EngineRun:
    """Run the engine through the TensorRT runtime, compare its masks with ONNX Runtime on the
    CPU (same ONNX), and time it (beside trtexec's GPU compute time when trtexec is here)."""
    from fcn_edge.runtime import Segmenter, load_segmenter
    from fcn_edge.runtime.trt_backend import TrtBackend

    backend = TrtBackend.from_file(built.engine_path, cuda=config.cuda)
    with Segmenter(backend) as trt_seg, load_segmenter(onnx, providers=["cpu"]) as ort_seg:
        got = [trt_seg.segment(frame).mask.copy() for frame in frames]
        want = [ort_seg.segment(frame).mask for frame in frames]
        times = [trt_seg.segment(frames[i % len(frames)]).timings.compute_ms for i in range(config.runs)]
        description = backend.description
    trtexec_ms, trtexec_error = None, ""
    if config.trtexec:
        from fcn_edge.bench.trtexec import TrtexecError, run_trtexec

        meta = built.result.facts.require_meta()
        try:
            trtexec_ms = run_trtexec(built.engine_path, meta.input_name, meta.input_shape(1), dynamic=False,
                                     duration_s=2, executable=config.trtexec).gpu_compute_mean_ms
        except TrtexecError as exc:
            trtexec_error = str(exc)
    agreement = float(np.mean([(a == b).mean() for a, b in zip(got, want)]))
    return EngineRun(got, agreement, statistics.median(times), description, trtexec_ms, trtexec_error)


def run_check(built: Any, onnx: Path, precision: str, frames: Sequence[np.ndarray], config: EngineCheckConfig) -> Check:
    name = f"run {precision}"
    try:
        run = run_engine(built, onnx, frames, config)
    except FcnEdgeError as exc:
        return Check(name, "fail", f"the runtime cannot run the engine: {exc}",
                     "see the pycuda / cuda-python checks above")
    found = (f"{run.agreement:.2%} of pixels agree with ONNX Runtime (CPU); engine {run.engine_ms:.3f} ms p50 "
             f"({run.description})")
    if run.trtexec_ms is not None:
        found += f"; trtexec {run.trtexec_ms:.3f} ms"
    elif run.trtexec_error:
        found += "; trtexec failed (see --json)"
    if run.agreement < MIN_AGREEMENT[precision]:
        return Check(name, "fail", found, f"agreement below {MIN_AGREEMENT[precision]:.0%}: the engine computes "
                     "something else than the ONNX; report it with the --json output", run.details())
    return Check(name, "ok", found, details=run.details())


def mask_head_check(workdir: Path, trt: Any, config: EngineCheckConfig, frames: Sequence[np.ndarray]) -> Check:
    """ArgMax becomes a TopK layer in TensorRT, slow on segmentation outputs; the reduce mask
    head (``fcn-edge export --argmax reduce``) must give the same mask: both are built, run
    and timed here."""
    name = "mask heads"
    runs: Dict[str, EngineRun] = {}
    for head in ("topk", "reduce"):
        onnx = doctor_model(workdir, config.size, mask_head=head)
        check, built = build_check(onnx, head, workdir, trt)
        if built is None:
            return Check(name, "fail", f"{head} head: {check.found}", check.fix)
        try:
            runs[head] = run_engine(built, onnx, frames, config)
        except FcnEdgeError as exc:
            return Check(name, "fail", f"{head} head: the runtime cannot run the engine: {exc}")
    topk, reduce = runs["topk"], runs["reduce"]
    equal = all(np.array_equal(a, b) for a, b in zip(topk.masks, reduce.masks))
    found = (f"TopK {topk.engine_ms:.3f} ms, reduce {reduce.engine_ms:.3f} ms p50 "
             f"({topk.engine_ms / reduce.engine_ms:.2f}x); masks {'equal' if equal else 'DIFFER'}")
    details = {"topk": topk.details(), "reduce": reduce.details(), "masks_equal": equal}
    if not equal:
        return Check(name, "fail", found, "the reduce head must equal ArgMax (first index wins on ties): report it",
                     details)
    return Check(name, "ok", found, details=details)


def engine_checks(model: Optional[Path], workdir: Path, trt: Any, config: EngineCheckConfig) -> List[Check]:
    """Every engine check for ``model`` (None: the doctor's own fcn8s_tiny) on TensorRT ``trt``."""
    from fcn_edge.errors import MissingDependencyError

    try:
        facts = platform_facts(trt)
    except Exception as exc:  # noqa: BLE001 - the builder needs a working GPU; say why not
        return [Check("engines", "fail", f"TensorRT's builder cannot start: {exc}", "see the gpu check")]
    precisions = config.precisions
    if model is None:
        try:
            model = doctor_model(workdir, config.size)
        except MissingDependencyError as exc:
            return [Check("engines", "absent", f"exporting the doctor's model needs torch ({exc})".split(". Import")[0],
                          "pass an ONNX model: fcn-edge doctor MODEL.onnx")]
    else:
        carried = read_precision(model)
        if carried != "fp32":  # already reduced: build it as it is
            precisions = tuple(p for p in precisions if p == carried) or (carried,)
    frames = synthetic_frames(config.frames, config.size)
    checks: List[Check] = []
    for precision, why_not in supported_precisions(precisions, facts).items():
        if why_not:
            checks.append(Check(f"engine {precision}", "absent", why_not))
            continue
        try:
            onnx = model if precision == read_precision(model) else precision_variant(model, precision, workdir)
        except FcnEdgeError as exc:
            checks.append(Check(f"engine {precision}", "fail", f"making the {precision} ONNX failed: {exc}"))
            continue
        check, built = build_check(onnx, precision, workdir, trt)
        checks.append(check)
        if built is not None and check.verdict != "fail":
            checks.append(run_check(built, onnx, precision, frames, config))
    try:
        checks.append(mask_head_check(workdir, trt, config, frames))
    except MissingDependencyError as exc:
        checks.append(Check("mask heads", "absent", f"needs torch to export ({exc})".split(". Import")[0]))
    return checks
