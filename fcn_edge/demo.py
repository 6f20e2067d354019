"""The whole chain on the built-in default model, step by step through the library.

Each step calls the library function that does it (export, FP16 and INT8 variants, their
comparison, TensorRT engines where TensorRT is installed, the video run, the benchmark
sweep) and prints the equivalent ``fcn-edge`` command line first, so the demo doubles as
the worked example of the README. A step is skipped when its outputs are newer than its
inputs and were made by the same command, so a second run reuses the export, the variants
and the calibration cache; steps that print a table keep it in a transcript, shown again
when the step is skipped. The calibration set is the built-in one (``--calib default``).
"""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from fcn_edge.atomic import write_bytes_atomic, write_json_atomic
from fcn_edge.errors import FcnEdgeError
from fcn_edge.optional import install_hint, is_available

STEP_RECORD = ".demo-steps.json"  # output name -> the command line that made it
PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class DemoConfig:
    """``quick`` is the reduced mode of the tests: a few frames, a few images, a short sweep.
    ``calibration`` is what ``--calib`` takes: 'default' (the built-in set) or a path."""

    out_dir: Path = Path("runs/demo")
    calibration: str = "default"
    quick: bool = False
    force: bool = False
    sizes: Tuple[str, ...] = ("256x320", "384x480")

    @property
    def synthetic(self):
        """The full synthetic set; in quick mode 6 val images and a 1 s clip (the
        calibration set ships with the package, so no train split is needed)."""
        from fcn_edge.data.synthetic import SyntheticConfig

        if self.quick:
            return SyntheticConfig(train_images=0, val_images=6, clip_seconds=1.0)
        return SyntheticConfig()

    @property
    def max_frames(self) -> Optional[int]:
        return 8 if self.quick else None


@dataclass(frozen=True)
class Step:
    """One step: ``action`` does it through the library and returns what to print;
    ``argv`` is the equivalent command line. ``transcript``: a file that keeps the printout
    (a table), shown again when the step is skipped."""

    title: str
    argv: Tuple[str, ...]
    outputs: Tuple[Path, ...]
    action: Callable[[], str]
    inputs: Tuple[Path, ...] = ()
    transcript: Optional[Path] = None

    @property
    def command(self) -> str:
        return "fcn-edge " + " ".join(shlex.quote(a) for a in self.argv)

    def up_to_date(self, done: Dict[str, List[str]]) -> bool:
        """Outputs exist, are newer than the inputs, and were made by this same command."""
        files = self.outputs + ((self.transcript,) if self.transcript else ())
        if done.get(files[0].name) != list(self.argv) or not all(p.exists() for p in files):
            return False
        newest_input = max((p.stat().st_mtime for p in self.inputs if p.exists()), default=0.0)
        return min(p.stat().st_mtime for p in files) >= newest_input


@dataclass
class DemoResult:
    out_dir: Path
    artifacts: List[Path] = field(default_factory=list)
    seconds: float = 0.0
    skipped: List[str] = field(default_factory=list)
    tensorrt: bool = False


def deployment_export_config(input_size: Tuple[int, int]):
    """The fused deployment variant the demo exports (and the shipped default ONNX is):
    uint8 NHWC BGR frames in, uint8 class mask out, dynamic batch up to 4, sizes half to
    twice ``input_size``. The same as the export step's command line."""
    from fcn_edge.export import ExportConfig

    return ExportConfig(input_size=tuple(input_size), fuse_preprocess=True, output="mask", max_batch=4)


# -- the steps, each a thin call into the library -----------------------------------------------
def _export(checkpoint: Path, onnx: Path) -> str:
    from fcn_edge.export import export_checkpoint
    from fcn_edge.models.checkpoint import load_checkpoint

    report = export_checkpoint(checkpoint, onnx, deployment_export_config(load_checkpoint(checkpoint).meta.input_size))
    parity = report.parity
    return (f"wrote {report.path} ({report.file_bytes / 2**20:.1f} MiB, {report.nodes_final} nodes)"
            + (f"; ONNX Runtime vs PyTorch mask agreement {parity.argmax_agreement:.4%}" if parity else ""))


def _fp16(onnx: Path, out: Path) -> str:
    from fcn_edge.precision.fp16 import convert_fp16

    result = convert_fp16(onnx, out)
    return f"wrote {result.path} (fp16; kept in FP32: {', '.join(result.kept_float) or 'none'})"


# The INT8 accuracy target the full demo meets by keeping the most harmful layers in FP16
# (the quick mode of the tests quantises everything: the search takes minutes).
INT8_TARGET_AGREEMENT = 99.5


def _int8(onnx: Path, calibration: str, out: Path, limit: Optional[int], target: Optional[float]) -> str:
    from fcn_edge.precision.calibration import resolve_calibration_source
    from fcn_edge.precision.quantize import QuantizeConfig, quantize_int8

    config = QuantizeConfig(limit=limit, progress=False)
    source = resolve_calibration_source(calibration)
    if target is None:
        result = quantize_int8(onnx, source, out, config)
        return (f"wrote {result.path} (int8 for tensorrt, calibrated on {result.images_used} images"
                f"{'; cached ranges' if result.cache_hit else ''})")
    from fcn_edge.precision.sensitivity import SensitivityConfig, format_ranking, quantize_with_fallback

    fallback = quantize_with_fallback(onnx, source, out, config, SensitivityConfig(
        target_agreement=target / 100.0, progress=False))
    if not fallback.target_met:
        raise FcnEdgeError(f"INT8 missed the {target}% agreement target even with {len(fallback.kept)} layers in FP16")
    return "\n".join([f"wrote {fallback.quantize.path} (int8 for tensorrt, {len(fallback.kept)} layers kept in FP16)",
                      *format_ranking(fallback)])


def _compare(variants: Sequence[Path], dataset: Path, report_json: Path) -> str:
    from fcn_edge.precision.compare import CompareConfig, compare_variants, format_table

    reports = compare_variants(variants[0], variants[1:], dataset, CompareConfig(progress=False))
    write_json_atomic(report_json, {"reports": [r.as_dict() for r in reports]})
    return (f"{reports[0].images} images of {dataset} (split {reports[0].split}); reference {reports[0].name}\n"
            + format_table(reports))


def _engine(onnx: Path, engine: Path, argv: Sequence[str], trt=None, device=None) -> str:
    """``trt``/``device``: the tensorrt module and GPU (None: the installed ones; a test passes fakes)."""
    from fcn_edge.engine.artifact import write_engine
    from fcn_edge.engine.build import run_build
    from fcn_edge.engine.config import BuildConfig

    result = run_build(onnx, BuildConfig(), trt=trt, device=device)
    engine_path, sidecar = write_engine(engine, result, None, ["fcn-edge", *argv])
    return "\n".join([f"built {engine_path} in {result.build_seconds:.1f} s on {result.gpu_name}",
                      *result.plan.describe(), f"sidecar           {sidecar}"])


def _video(clip: Path, video: Path, model: Path, max_frames: Optional[int], summary_json: Path) -> str:
    from fcn_edge.runtime import RenderConfig
    from fcn_edge.video import PipelineConfig, VideoRunConfig, run_video

    config = VideoRunConfig(model=model, headless=True,
                            pipeline=PipelineConfig(render=RenderConfig(legend=True), max_frames=max_frames))
    summary = run_video([str(clip)], [str(video)], config)
    write_json_atomic(summary_json, summary.to_dict())
    if summary.error:
        raise FcnEdgeError(f"the video run stopped: {summary.error}")
    return summary.format()


def _benchmark(onnx: Path, sizes: Sequence[str], quick: bool, dataset: Path, out: Path) -> str:
    from fcn_edge.artifacts.shapes import parse_hw
    from fcn_edge.bench import report as render
    from fcn_edge.bench.benchmark import BenchConfig, benchmark_models
    from fcn_edge.bench.plot import write_plot
    from fcn_edge.bench.runner import RunConfig
    from fcn_edge.bench.sysinfo import collect_system_info
    from fcn_edge.data.formats import DatasetSpec

    run = RunConfig(iterations=5, duration_s=None, warmup=1) if quick else RunConfig(duration_s=3.0)
    config = BenchConfig(precisions=PRECISIONS, input_sizes=tuple(parse_hw(s) for s in sizes), run=run,
                         data=DatasetSpec(str(dataset)))
    system = collect_system_info()
    report = benchmark_models([onnx], config, system=system)
    write_json_atomic(out / "benchmark.json", report.as_dict())
    render.write_csv(report, out / "benchmark.csv")
    write_plot(report, out / "benchmark.png")
    lines = ["System", *(f"  {line}" for line in system.lines()), "", "Summary (batch 1 latency)",
             render.format_summary(report)]
    lines += [f"[W] {warning}" for warning in render.warnings_of(report)]
    return "\n".join(lines)


def demo_steps(config: DemoConfig, checkpoint: Path, dataset: Path, clip: Path) -> List[Step]:
    """The chain: export, quantize, compare, build engines (with TensorRT), run, benchmark."""
    out = config.out_dir
    onnx, fp16, int8 = out / "model.onnx", out / "model.fp16.onnx", out / "model.int8.onnx"
    variants = (onnx, fp16, int8)
    limit = 16 if config.quick else None
    steps = [
        Step("export the default model to ONNX, fused variant (uint8 BGR in, class mask out)",
             ("export", str(checkpoint), "--fuse-preprocess", "--output-kind", "mask", "--max-batch", "4",
              "-o", str(onnx)),
             (onnx,), lambda: _export(checkpoint, onnx), (checkpoint,)),
        Step("FP16 variant (strongly typed TensorRT builds take precision from the ONNX)",
             ("quantize", str(onnx), "--precision", "fp16", "--quiet"), (fp16,), lambda: _fp16(onnx, fp16), (onnx,)),
        Step("INT8 Q/DQ variant, calibrated on the built-in calibration set"
             + ("" if config.quick else f", the most harmful layers in FP16 until {INT8_TARGET_AGREEMENT}% agreement"),
             ("quantize", str(onnx), "--precision", "int8", "--calib", config.calibration, "--quiet",
              *(("--limit", str(limit)) if limit else ("--target-agreement", str(INT8_TARGET_AGREEMENT)))),
             (int8,), lambda: _int8(onnx, config.calibration, int8, limit, None if config.quick else INT8_TARGET_AGREEMENT),
             (onnx,), out / "int8.txt"),
        Step("evaluate every variant on the synthetic val split",
             ("compare", *map(str, variants), "--data", str(dataset), "--quiet", "--json", str(out / "accuracy.json")),
             (out / "accuracy.json",), lambda: _compare(variants, dataset, out / "accuracy.json"), variants,
             out / "accuracy.txt"),
    ]
    if is_available("tensorrt"):
        for variant in variants:
            engine = variant.with_suffix(".engine")
            argv = ("build-engine", str(variant), "-o", str(engine))
            steps.append(Step(f"TensorRT engine from {variant.name}", argv, (engine,),
                              lambda v=variant, e=engine, a=argv: _engine(v, e, a), (variant,)))
    video, summary = out / "street_overlay.mp4", out / "video_summary.json"
    model = _runtime_model(onnx, int8)
    frames = ("--max-frames", str(config.max_frames)) if config.max_frames else ()
    steps.append(Step("segment the synthetic street clip into an overlay video, with the class legend",
                      ("run", str(clip), "-o", str(video), "--model", str(model), "--headless", "--legend",
                       *frames, "--json", str(summary)),
                      (video, summary), lambda: _video(clip, video, model, config.max_frames, summary),
                      (clip, *variants)))
    bench = ("--iterations", "5", "--warmup", "1") if config.quick else ("--duration", "3")
    steps.append(Step("latency sweep: precision x resolution, with accuracy",
                      ("benchmark", str(onnx), "--precision", ",".join(PRECISIONS),
                       "--input-size", ",".join(config.sizes), *bench, "--data", str(dataset),
                       "--brief", "--json", str(out / "benchmark.json"), "--csv", str(out / "benchmark.csv"),
                       "--plot", str(out / "benchmark.png")),
                      (out / "benchmark.json", out / "benchmark.csv", out / "benchmark.png"),
                      lambda: _benchmark(onnx, config.sizes, config.quick, dataset, out), variants,
                      out / "benchmark.txt"))
    return steps


def _runtime_model(fp32_onnx: Path, int8_onnx: Path) -> Path:
    """The INT8 engine where TensorRT built one; else the FP32 ONNX, the fastest of the
    TensorRT-flavoured variants on ONNX Runtime's CPU provider (it fuses symmetric Q/DQ poorly)."""
    return int8_onnx.with_suffix(".engine") if is_available("tensorrt") else fp32_onnx


def run_demo(config: DemoConfig = DemoConfig(), echo: Callable[[str], None] = print) -> DemoResult:
    """Run every step; raise the first step's error. ``echo`` receives the progress lines."""
    from fcn_edge.data.synthetic import ensure_clip, ensure_dataset
    from fcn_edge.weights import default_checkpoint

    start = time.perf_counter()
    out = config.out_dir
    out.mkdir(parents=True, exist_ok=True)
    result = DemoResult(out_dir=out.resolve(), tensorrt=is_available("tensorrt"))

    echo("[1] synthetic street scenes and clip (generated once, then cached)")
    dataset = ensure_dataset(config.synthetic, progress=False)
    clip = ensure_clip(config.synthetic, progress=False)
    echo(f"    dataset {dataset}\n    clip    {clip}")
    if not result.tensorrt:
        echo("    TensorRT is not installed here: no engines are built, and ONNX Runtime on the CPU "
             f"runs every variant instead ({install_hint('tensorrt')})")

    record = out / STEP_RECORD
    done = json.loads(record.read_text()) if record.is_file() else {}
    for number, step in enumerate(demo_steps(config, default_checkpoint(), dataset, clip), start=2):
        echo(f"\n[{number}] {step.title}\n    $ {step.command}")
        if not config.force and step.up_to_date(done):
            echo("    up to date: reusing " + ", ".join(p.name for p in step.outputs))
            if step.transcript:
                echo(step.transcript.read_text().rstrip())
            result.skipped.append(step.title)
        else:
            done.pop(step.outputs[0].name, None)
            try:
                printed = step.action()
            except FcnEdgeError as exc:
                raise FcnEdgeError(f"demo step {number} ({step.command}) failed: {exc}") from exc
            echo(printed)
            if step.transcript:
                write_bytes_atomic(step.transcript, (printed + "\n").encode())
            done[step.outputs[0].name] = list(step.argv)
            write_json_atomic(record, done)
        result.artifacts.extend(step.outputs)
    result.seconds = time.perf_counter() - start
    return result


def demo_artifacts(out_dir: Path) -> Sequence[Path]:
    """Every file the demo leaves, for the closing listing."""
    return sorted(p for p in Path(out_dir).iterdir() if p.is_file() and not p.name.startswith("."))
