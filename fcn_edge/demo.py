"""The whole chain on the built-in default model, as the `fcn-edge` commands a user would type.

Each step is a real ``fcn-edge`` command line, printed before it runs, so the demo doubles
as the worked example of the README. A step is skipped when its outputs are newer than its
inputs, so a second run reuses the export, the variants and the calibration cache.
"""

from __future__ import annotations

import logging
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
import contextlib
import io
import json
import sys
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from fcn_edge.atomic import write_json_atomic
from fcn_edge.errors import FcnEdgeError
from fcn_edge.optional import install_hint, is_available

log = logging.getLogger(__name__)

STEP_RECORD = ".demo-steps.json"  # output name -> the command line that made it
REPO_CALIBRATION = Path(__file__).resolve().parent.parent / "calibration" / "default"


@dataclass(frozen=True)
class DemoConfig:
    """``quick`` is the reduced mode of the tests: a few frames, a few images, a short sweep."""

    out_dir: Path = Path("runs/demo")
    calibration: Path = REPO_CALIBRATION
    quick: bool = False
    force: bool = False
    sizes: Tuple[str, ...] = ("256x320", "384x480")

    @property
    def synthetic(self):
        """The full synthetic set; in quick mode 6 val images and a 1 s clip (the
        calibration set is committed, so no train split is needed)."""
        from fcn_edge.data.synthetic import SyntheticConfig

        if self.quick:
            return SyntheticConfig(train_images=0, val_images=6, clip_seconds=1.0)
        return SyntheticConfig()

    @property
    def max_frames(self) -> Optional[int]:
        return 8 if self.quick else None


@dataclass(frozen=True)
class Step:
    """One command line. ``transcript``: a file that keeps what the command printed (its
    table), shown again when the step is skipped."""

    title: str
    argv: Tuple[str, ...]
    outputs: Tuple[Path, ...]
    inputs: Tuple[Path, ...] = ()
    transcript: Optional[Path] = None

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


def demo_steps(config: DemoConfig, checkpoint: Path, dataset: Path, clip: Path) -> List[Step]:
    """The chain as `fcn-edge` command lines: export, quantize, compare, build, run, benchmark."""
    out = config.out_dir
    onnx = out / "model.onnx"
    fp16 = out / "model.fp16.onnx"
    int8 = out / "model.int8.onnx"
    variants = (onnx, fp16, int8)
    steps = [
        Step("export the default model to ONNX, fused variant (uint8 BGR in, class mask out)",
             ("export", str(checkpoint), "--fuse-preprocess", "--output-kind", "mask", "--max-batch", "4",
              "-o", str(onnx)),
             (onnx,), (checkpoint,)),
        Step("FP16 variant (strongly typed TensorRT builds take precision from the ONNX)",
             ("quantize", str(onnx), "--precision", "fp16", "--quiet"), (fp16,), (onnx,)),
        Step("INT8 Q/DQ variant, calibrated on calibration/default",
             ("quantize", str(onnx), "--precision", "int8", "--calib", str(config.calibration), "--quiet",
              *(("--limit", "16") if config.quick else ())),
             (int8,), (onnx,)),
        Step("evaluate every variant on the synthetic val split",
             ("compare", *map(str, variants), "--data", str(dataset), "--quiet",
              "--json", str(out / "accuracy.json")),
             (out / "accuracy.json",), variants, out / "accuracy.txt"),
    ]
    if is_available("tensorrt"):
        for variant in variants:
            engine = variant.with_suffix(".engine")
            steps.append(Step(f"TensorRT engine from {variant.name}",
                              ("build-engine", str(variant), "-o", str(engine)),
                              (engine,), (variant,)))
    video = out / "street_overlay.mp4"
    frames = ("--max-frames", str(config.max_frames)) if config.max_frames else ()
    steps.append(Step("segment the synthetic street clip into an overlay video",
                      ("run", str(clip), "-o", str(video), "--model", str(_runtime_model(onnx, int8)),
                       "--headless", *frames, "--json", str(out / "video_summary.json")),
                      (video, out / "video_summary.json"), (clip, *variants)))
    bench = ("--iterations", "5", "--warmup", "1") if config.quick else ("--duration", "3")
    steps.append(Step("latency sweep: precision x resolution, with accuracy",
                      ("benchmark", str(onnx), "--precision", "fp32,fp16,int8",
                       "--input-size", ",".join(config.sizes), *bench, "--data", str(dataset),
                       "--brief", "--json", str(out / "benchmark.json"), "--csv", str(out / "benchmark.csv"),
                       "--plot", str(out / "benchmark.png")),
                      (out / "benchmark.json", out / "benchmark.csv", out / "benchmark.png"), variants,
                      out / "benchmark.txt"))
    return steps


def _runtime_model(fp32_onnx: Path, int8_onnx: Path) -> Path:
    """The INT8 engine where TensorRT built one; else the FP32 ONNX, the fastest of the
    TensorRT-flavoured variants on ONNX Runtime's CPU provider (it fuses symmetric Q/DQ poorly)."""
    return int8_onnx.with_suffix(".engine") if is_available("tensorrt") else fp32_onnx


def run_demo(config: DemoConfig = DemoConfig(), echo: Callable[[str], None] = print) -> DemoResult:
    """Run every step; raise the first step's error. ``echo`` receives the progress lines."""
    from fcn_edge.cli.main import main as fcn_edge_main
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
        command = "fcn-edge " + " ".join(shlex.quote(a) for a in step.argv)
        echo(f"\n[{number}] {step.title}\n    $ {command}")
        if not config.force and step.up_to_date(done):
            echo("    up to date: reusing " + ", ".join(p.name for p in step.outputs))
            if step.transcript:
                echo(step.transcript.read_text().rstrip())
            result.skipped.append(step.title)
        else:
            done.pop(step.outputs[0].name, None)
            code = _run_command(fcn_edge_main, step)
            if code != 0:
                raise FcnEdgeError(f"demo step {number} failed (exit code {code}): {command}")
            done[step.outputs[0].name] = list(step.argv)
            write_json_atomic(record, done)
        result.artifacts.extend(step.outputs)
    result.seconds = time.perf_counter() - start
    return result


def _run_command(fcn_edge_main, step: Step) -> int:
    """Run one `fcn-edge` command in this process; keep its printout when asked to."""
    if step.transcript is None:
        return fcn_edge_main(list(step.argv))
    captured = io.StringIO()
    with contextlib.redirect_stdout(_Tee(sys.stdout, captured)):
        code = fcn_edge_main(list(step.argv))
    step.transcript.write_text(captured.getvalue())
    return code


class _Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


def demo_artifacts(out_dir: Path) -> Sequence[Path]:
    """Every file the demo leaves, for the closing listing."""
    return sorted(p for p in Path(out_dir).iterdir() if p.is_file() and not p.name.startswith("."))
