"""What machine a benchmark ran on: CPU, GPU, library versions and, on a Jetson, its power
mode and whether the clocks are pinned.

Numbers from a Jetson in a low power mode or with clocks left to the governor wander by
tens of percent, so the report records both and hints at ``nvpmodel``/``jetson_clocks``.
Everything is read from files under ``root`` and from small commands run through
``run``, so tests point the reader at a fake tree in a temporary directory.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

CommandRunner = Callable[[Sequence[str]], Optional[str]]

# devfreq node names of the integrated GPU across Jetson generations (TX1 .. Thor).
GPU_DEVFREQ = re.compile(r"gpu|gm20b|gp10b|gv11b|ga10b|gb10b", re.IGNORECASE)

JETSON_CLOCKS_HINT = (
    "clocks are not pinned: benchmark numbers will wander. Run `sudo nvpmodel -m 0` (MAXN on "
    "most modules) and `sudo jetson_clocks`, then benchmark again"
)


@dataclass(frozen=True)
class JetsonInfo:
    """Facts that decide how fast a Jetson runs right now."""

    l4t: str                       # L4T release, e.g. "36.4.3"
    model: str = ""                # device-tree model, e.g. "NVIDIA Jetson AGX Orin Developer Kit"
    power_mode: Optional[str] = None   # e.g. "MAXN (0)"; None when unreadable
    clocks_pinned: Optional[bool] = None  # jetson_clocks on; None when unreadable
    clock_notes: Tuple[str, ...] = ()     # which clocks are below their maximum

    @property
    def hint(self) -> Optional[str]:
        return JETSON_CLOCKS_HINT if self.clocks_pinned is False else None

    def as_dict(self) -> Dict[str, object]:
        return {
            "l4t": self.l4t, "model": self.model, "power_mode": self.power_mode,
            "clocks_pinned": self.clocks_pinned, "clock_notes": list(self.clock_notes),
            "hint": self.hint,
        }


@dataclass(frozen=True)
class SystemInfo:
    os: str
    python: str
    cpu: str
    cpu_count: int
    cpu_governor: Optional[str] = None
    gpu: Optional[str] = None
    gpu_driver: Optional[str] = None
    tensorrt: Optional[str] = None
    onnxruntime: Optional[str] = None
    ort_providers: Tuple[str, ...] = ()
    numpy: Optional[str] = None
    opencv: Optional[str] = None
    fcn_edge: Optional[str] = None
    jetson: Optional[JetsonInfo] = None
    notes: Tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> Dict[str, object]:
        out: Dict[str, object] = {
            k: getattr(self, k) for k in (
                "os", "python", "cpu", "cpu_count", "cpu_governor", "gpu", "gpu_driver",
                "tensorrt", "onnxruntime", "numpy", "opencv", "fcn_edge",
            )
        }
        out["ort_providers"] = list(self.ort_providers)
        out["jetson"] = self.jetson.as_dict() if self.jetson else None
        out["notes"] = list(self.notes)
        return out

    def lines(self) -> List[str]:
        """Human-readable summary, one fact a line."""
        lines = [
            f"CPU: {self.cpu} ({self.cpu_count} cores"
            + (f", governor {self.cpu_governor})" if self.cpu_governor else ")"),
            f"GPU: {self.gpu or 'none found'}" + (f" (driver {self.gpu_driver})" if self.gpu_driver else ""),
            f"TensorRT: {self.tensorrt or 'not installed'}; ONNX Runtime: {self.onnxruntime or 'not installed'}"
            + (f" [{', '.join(self.ort_providers)}]" if self.ort_providers else ""),
            f"OS: {self.os}; Python {self.python}; numpy {self.numpy}; OpenCV {self.opencv}; fcn-edge {self.fcn_edge}",
        ]
        if self.jetson:
            j = self.jetson
            pinned = {True: "on", False: "off", None: "unknown"}[j.clocks_pinned]
            lines.append(f"Jetson: {j.model or 'unknown module'}, L4T {j.l4t}, power mode "
                         f"{j.power_mode or 'unknown'}, jetson_clocks {pinned}")
            lines.extend(f"  {note}" for note in j.clock_notes)
        return lines


def run_command(argv: Sequence[str]) -> Optional[str]:
    """stdout of a short command, or None when it is absent, fails or hangs."""
    # nvpmodel lives in /usr/sbin, which a normal user's PATH often lacks.
    found = shutil.which(argv[0]) or next(
        (str(p) for p in (Path("/usr/sbin") / argv[0], Path("/usr/bin") / argv[0]) if p.is_file()), None)
    if found is None:
        return None
    try:
        done = subprocess.run([found, *argv[1:]], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _read(path: Path) -> Optional[str]:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return None


def _read_int(path: Path) -> Optional[int]:
    text = _read(path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def cpu_name(root: Path = Path("/")) -> str:
    info = _read(root / "proc/cpuinfo") or ""
    for key in ("model name", "Hardware", "Processor"):
        match = re.search(rf"^{key}\s*:\s*(.+)$", info, re.MULTILINE)
        if match:
            return match.group(1).strip()
    return platform.processor() or platform.machine() or "unknown"


def cpu_governor(root: Path = Path("/")) -> Optional[str]:
    return _read(root / "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")


def parse_l4t_release(text: str) -> Optional[str]:
    """'# R35 (release), REVISION: 4.1, ...' -> '35.4.1'."""
    match = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
    return f"{match.group(1)}.{match.group(2)}" if match else None


def parse_nvpmodel_query(text: str) -> Optional[str]:
    """`nvpmodel -q` prints 'NV Power Mode: MAXN' and the mode id on the next line."""
    match = re.search(r"NV Power Mode:\s*(\S.*?)\s*$", text, re.MULTILINE)
    if not match:
        return None
    rest = text[match.end():].split()
    mode_id = rest[0] if rest and rest[0].isdigit() else None
    return f"{match.group(1)} ({mode_id})" if mode_id is not None else match.group(1)


def power_mode_from_files(root: Path) -> Optional[str]:
    """The mode nvpmodel last set (/var/lib/nvpmodel/status), named from /etc/nvpmodel.conf."""
    status = _read(root / "var/lib/nvpmodel/status")
    match = re.search(r"pmode:\s*(\d+)", status or "")
    if not match:
        return None
    mode_id = int(match.group(1))
    conf = _read(root / "etc/nvpmodel.conf") or ""
    for found in re.finditer(r"<\s*POWER_MODEL\s+ID=(\d+)\s+NAME=([^\s>]+)", conf):
        if int(found.group(1)) == mode_id:
            return f"{found.group(2)} ({mode_id})"
    return f"mode {mode_id}"


def clock_state(root: Path) -> Tuple[Optional[bool], Tuple[str, ...]]:
    """Whether every CPU core and the GPU run with min == max frequency, as jetson_clocks sets.

    Returns (pinned, notes naming each clock whose floor is below its ceiling); pinned is
    None when no clock could be read.
    """
    # (label, min file, max file, Hz per MHz): CPU cpufreq counts kHz, GPU devfreq Hz
    clocks = [(f.parent.name, f / "scaling_min_freq", f / "scaling_max_freq", 1000)
              for f in sorted((root / "sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq"))]
    clocks += [(f"GPU {n.name}", n / "min_freq", n / "max_freq", 1_000_000)
               for n in sorted((root / "sys/class/devfreq").glob("*")) if GPU_DEVFREQ.search(n.name)]
    notes: List[str] = []
    seen = 0
    for label, low_file, high_file, per_mhz in clocks:
        low, high = _read_int(low_file), _read_int(high_file)
        if low is None or high is None:
            continue
        seen += 1
        if low < high:
            notes.append(f"{label}: min {low // per_mhz} MHz < max {high // per_mhz} MHz")
    if seen == 0:
        return None, ()
    return not notes, tuple(notes)


def jetson_info(root: Path = Path("/"), run: CommandRunner = run_command) -> Optional[JetsonInfo]:
    """None unless ``root`` is a Jetson (it has /etc/nv_tegra_release)."""
    release = _read(root / "etc/nv_tegra_release")
    if release is None:
        return None
    model = (_read(root / "proc/device-tree/model") or "").rstrip("\x00")
    query = run(["nvpmodel", "-q"])
    mode = parse_nvpmodel_query(query) if query else None
    if mode is None:
        mode = power_mode_from_files(root)
    pinned, notes = clock_state(root)
    return JetsonInfo(parse_l4t_release(release) or "unknown", model, mode, pinned, notes)


def parse_nvidia_smi(text: str) -> Tuple[Optional[str], Optional[str]]:
    """First GPU's (name, driver) from `nvidia-smi --query-gpu=name,driver_version --format=csv,noheader`."""
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if parts and parts[0]:
            return parts[0], (parts[1] if len(parts) > 1 and parts[1] else None)
    return None, None


def _dist_version(*names: str) -> Optional[str]:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _tensorrt_version() -> Optional[str]:
    # JetPack's python3-libnvinfer may carry no dist-info; then ask the module itself.
    version = _dist_version("tensorrt", "tensorrt-cu12", "tensorrt-cu13", "tensorrt_libs")
    if version:
        return version
    try:
        import tensorrt  # noqa: F401  (only reached where a TensorRT without metadata is installed)
    except Exception:
        return None
    return getattr(tensorrt, "__version__", None)


def _onnxruntime() -> Tuple[Optional[str], Tuple[str, ...]]:
    try:
        import onnxruntime as ort
    except Exception:
        return None, ()
    return ort.__version__, tuple(ort.get_available_providers())


def collect_system_info(root: Path = Path("/"), run: CommandRunner = run_command) -> SystemInfo:
    root = Path(root)
    import numpy

    from fcn_edge import __version__

    try:
        import cv2

        opencv = cv2.__version__
    except Exception:
        opencv = None
    jetson = jetson_info(root, run)
    gpu, driver = None, None
    smi = run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"])
    if smi:
        gpu, driver = parse_nvidia_smi(smi)
    if gpu is None and jetson is not None and jetson.model:
        gpu = f"integrated GPU of {jetson.model}"
    ort_version, providers = _onnxruntime()
    notes = []
    if jetson is not None and jetson.hint:
        notes.append(jetson.hint)
    return SystemInfo(
        os=f"{platform.system()} {platform.release()} {platform.machine()}",
        python=platform.python_version(),
        cpu=cpu_name(root),
        cpu_count=os.cpu_count() or 0,
        cpu_governor=cpu_governor(root),
        gpu=gpu,
        gpu_driver=driver,
        tensorrt=_tensorrt_version(),
        onnxruntime=ort_version,
        ort_providers=providers,
        numpy=numpy.__version__,
        opencv=opencv,
        fcn_edge=__version__,
        jetson=jetson,
        notes=tuple(notes),
    )
