"""Run NVIDIA's trtexec on the same engine and read its performance summary.

trtexec's "GPU Compute Time" is the engine alone, timed with CUDA events and no Python in
the way. Dividing our end-to-end latency by it gives the runtime's overhead ratio: how
much preprocessing, copies, decoding and the interpreter cost on top of the engine.

Two summary formats exist. TensorRT 8 and later print one line per metric::

    [I] GPU Compute Time: min = 5.3 ms, max = 13.3 ms, mean = 7.5 ms, median = 7.1 ms,
        percentile(90%) = 10.2 ms, percentile(95%) = 10.8 ms, percentile(99%) = 12.9 ms

(older 8.x print only percentile(99%)). TensorRT 7 printed a block, "GPU Compute" then
"min: 1.5 ms", "mean: ...", "median: ...", "percentile: 1.6 ms at 99%". Both are parsed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

from fcn_edge.errors import FcnEdgeError

_NUMBER = r"([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"
_MODERN_KEYS = {"min": "min", "max": "max", "mean": "mean", "median": "p50",
                "percentile(90%)": "p90", "percentile(95%)": "p95", "percentile(99%)": "p99"}
_METRICS = {"GPU Compute Time": "gpu_compute", "Latency": "latency", "H2D Latency": "h2d",
            "D2H Latency": "d2h", "Enqueue Time": "enqueue"}
_LEGACY_BLOCKS = {"GPU Compute": "gpu_compute", "Host Latency": "latency", "Enqueue Time": "enqueue"}


class TrtexecError(FcnEdgeError):
    """trtexec is missing, failed, or printed no performance summary."""


@dataclass(frozen=True)
class TrtexecSummary:
    """What trtexec measured; each metric maps min/max/mean/p50/p90/p95/p99 to ms."""

    metrics: Dict[str, Dict[str, float]]
    throughput_qps: Optional[float] = None
    tensorrt_version: Optional[str] = None
    unstable_cv: Optional[float] = None  # trtexec's own CV warning, as a fraction
    command: Tuple[str, ...] = ()

    @property
    def gpu_compute_mean_ms(self) -> float:
        return self.metrics["gpu_compute"]["mean"]

    def overhead_ratio(self, end_to_end_mean_ms: float) -> float:
        """Our end-to-end mean over trtexec's GPU compute mean (1.0 = no overhead)."""
        return end_to_end_mean_ms / self.gpu_compute_mean_ms

    def as_dict(self) -> Dict[str, object]:
        return {"metrics": self.metrics, "throughput_qps": self.throughput_qps,
                "tensorrt_version": self.tensorrt_version, "unstable_cv": self.unstable_cv,
                "command": list(self.command)}


def _strip_prefix(line: str) -> str:
    # "[10/03/2024-10:47:59] [I] text" -> "text"
    return re.sub(r"^(\[[^\]]*\]\s*)+", "", line.strip())


def _parse_modern(body: str) -> Dict[str, float]:
    values = {}
    for key, value in re.findall(r"(min|max|mean|median|percentile\(\d+%\))\s*=\s*" + _NUMBER + r"\s*ms", body):
        if key in _MODERN_KEYS:
            values[_MODERN_KEYS[key]] = float(value)
    return values


def decode_version_code(code: str) -> str:
    """trtexec's banner code: 'v100300' -> '10.3.0', 'v8601' -> '8.6.1'."""
    if len(code) >= 6:
        return f"{int(code[:-4])}.{int(code[-4:-2])}.{int(code[-2:])}"
    if len(code) == 4:
        return f"{code[0]}.{code[1]}.{int(code[2:])}"
    return code


def parse_trtexec_output(text: str) -> TrtexecSummary:
    """Read the performance summary of trtexec's log; raises if there is none."""
    metrics: Dict[str, Dict[str, float]] = {}
    throughput = None
    version = None
    unstable = None
    legacy_block: Optional[str] = None
    for raw in text.splitlines():
        line = _strip_prefix(raw)
        found = re.search(r"TensorRT version:\s*([\d.]+)", line)
        if found:
            version = found.group(1)  # the explicit line wins over the banner's code
        elif version is None:
            found = re.search(r"\[TensorRT v(\d+)\]", line)
            if found:
                version = decode_version_code(found.group(1))
        found = re.match(r"Throughput:\s*" + _NUMBER + r"\s*qps", line) or re.match(
            r"throughput:\s*" + _NUMBER + r"\s*qps", line)
        if found:
            throughput = float(found.group(1))
            continue
        found = re.search(r"coefficient of variance\s*=\s*" + _NUMBER + r"\s*%", line)
        if found:
            unstable = float(found.group(1)) / 100.0
            continue
        head, sep, body = line.partition(":")
        if sep and head in _METRICS and "=" in body:
            parsed = _parse_modern(body)
            if "mean" in parsed:
                metrics[_METRICS[head]] = parsed
            legacy_block = None
            continue
        if line in _LEGACY_BLOCKS:
            legacy_block = _LEGACY_BLOCKS[line]
            metrics.setdefault(legacy_block, {})
            continue
        if legacy_block is not None:
            found = re.match(r"(min|max|mean|median):\s*" + _NUMBER + r"\s*ms", line)
            if found:
                key = "p50" if found.group(1) == "median" else found.group(1)
                metrics[legacy_block][key] = float(found.group(2))
                continue
            found = re.match(r"percentile:\s*" + _NUMBER + r"\s*ms at (\d+)%", line)
            if found:
                metrics[legacy_block][f"p{found.group(2)}"] = float(found.group(1))
                continue
            if line and not line.startswith(("walltime", "throughput", "end to end")):
                legacy_block = None
    metrics = {k: v for k, v in metrics.items() if "mean" in v}
    if "gpu_compute" not in metrics:
        raise TrtexecError(
            "trtexec printed no 'GPU Compute Time' summary; run it by hand to see why "
            "(an engine from another TensorRT version or GPU is the usual cause)"
        )
    return TrtexecSummary(metrics, throughput, version, unstable)


def trtexec_path() -> Optional[str]:
    """trtexec on PATH, or where TensorRT packages put it (JetPack: /usr/src/tensorrt/bin)."""
    found = shutil.which("trtexec")
    if found:
        return found
    for candidate in ("/usr/src/tensorrt/bin/trtexec", "/usr/local/tensorrt/bin/trtexec"):
        if Path(candidate).is_file():
            return candidate
    return None


def trtexec_command(
    executable: str, engine: Path, input_name: str, input_shape: Sequence[int],
    dynamic: bool, duration_s: float = 3.0, warmup_ms: int = 200,
) -> Tuple[str, ...]:
    argv = [executable, f"--loadEngine={engine}", f"--duration={max(1, int(round(duration_s)))}",
            f"--warmUp={warmup_ms}"]
    if dynamic:
        argv.append(f"--shapes={input_name}:{'x'.join(str(d) for d in input_shape)}")
    return tuple(argv)


def run_trtexec(
    engine: Path, input_name: str, input_shape: Sequence[int], dynamic: bool,
    duration_s: float = 3.0, executable: Optional[str] = None, timeout_s: float = 600.0,
) -> TrtexecSummary:
    """Run trtexec on ``engine`` at ``input_shape`` and parse its summary."""
    executable = executable or trtexec_path()
    if executable is None:
        raise TrtexecError("--trtexec: trtexec is not on PATH (JetPack: /usr/src/tensorrt/bin)")
    argv = trtexec_command(executable, Path(engine), input_name, input_shape, dynamic, duration_s)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise TrtexecError(f"{' '.join(argv)}: {exc}") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-8:])
        raise TrtexecError(f"{' '.join(argv)} failed with exit code {done.returncode}:\n{tail}")
    summary = parse_trtexec_output(done.stdout)
    return TrtexecSummary(summary.metrics, summary.throughput_qps, summary.tensorrt_version,
                          summary.unstable_cv, argv)
