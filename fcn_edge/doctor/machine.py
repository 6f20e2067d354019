"""What this machine has for fcn-edge, one check each, and what to do where something lacks.

Jetson facts (L4T, module, power mode, clocks) come from :mod:`fcn_edge.bench.sysinfo`, video
facts from :mod:`fcn_edge.video.capabilities`, GPU facts from libcuda
(:mod:`fcn_edge.engine.cuda_driver`) and each CUDA implementation's own probe
(:mod:`fcn_edge.runtime.cuda_api`): nothing here asks again what those modules know.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path
from typing import Any, Callable, List, Optional

from fcn_edge.bench.sysinfo import JETSON_CLOCKS_HINT, JetsonInfo, SystemInfo
from fcn_edge.doctor.check import Check
from fcn_edge.errors import FcnEdgeError

# L4T major -> JetPack major (JetPack 4: r32, 5: r34/r35, 6: r36, 7: r38)
JETPACK_OF_L4T = {"32": "4", "34": "5", "35": "5", "36": "6", "38": "7"}
TENSORRT_INSTALL = ("pip install tensorrt (desktop; it must match the CUDA driver); on a Jetson it comes with "
                    "JetPack: sudo apt install python3-libnvinfer")


def check_system(info: SystemInfo) -> Check:
    return Check("system", "ok", f"{info.os}, Python {info.python}, {info.cpu} ({info.cpu_count} cores), "
                 f"fcn-edge {info.fcn_edge}")


def check_jetson(jetson: Optional[JetsonInfo]) -> Check:
    if jetson is None:
        return Check("jetson", "absent", "not a Jetson (no /etc/nv_tegra_release)")
    jetpack = JETPACK_OF_L4T.get(jetson.l4t.split(".")[0])
    found = f"{jetson.model or 'unknown module'}, L4T {jetson.l4t}" + (f" (JetPack {jetpack}.x)" if jetpack else "")
    return Check("jetson", "ok", found, details=jetson.as_dict())


def check_power(jetson: Optional[JetsonInfo]) -> Check:
    """A Jetson's power mode and whether jetson_clocks pinned the clocks (timings wander if not)."""
    if jetson is None:
        return Check("power mode", "absent", "not a Jetson")
    mode = jetson.power_mode or "unknown"
    if jetson.clocks_pinned is False:
        return Check("power mode", "warn", f"{mode}, clocks not pinned ({'; '.join(jetson.clock_notes[:2])})",
                     JETSON_CLOCKS_HINT, jetson.as_dict())
    if jetson.clocks_pinned is None:
        return Check("power mode", "warn", f"{mode}, clocks unreadable",
                     "run as a user who can read /sys/devices/system/cpu/*/cpufreq, or check with `sudo jetson_clocks --show`")
    return Check("power mode", "ok", f"{mode}, clocks pinned (jetson_clocks)")


def in_venv_without_system_packages(prefix: str = sys.prefix, base_prefix: str = sys.base_prefix) -> Optional[bool]:
    """True in a venv made without --system-site-packages; False in one made with it; None
    outside a venv."""
    if prefix == base_prefix:
        return None
    config = Path(prefix) / "pyvenv.cfg"
    try:
        text = config.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "include-system-site-packages":
            return value.strip().lower() != "true"
    return True


def check_python_env(jetson: Optional[JetsonInfo], isolated: Optional[bool] = None) -> Check:
    """On a Jetson, TensorRT, pycuda and GStreamer-enabled OpenCV are JetPack's Debian packages
    in the system's dist-packages: a venv must see them."""
    isolated = in_venv_without_system_packages() if isolated is None else isolated
    where = {None: "no venv", True: "venv without system site-packages", False: "venv with system site-packages"}
    found = f"Python {sys.version.split()[0]} at {sys.executable} ({where[isolated]})"
    if jetson is not None and isolated:
        return Check("python env", "warn", found,
                     "JetPack's TensorRT, pycuda and OpenCV (with GStreamer) are system packages this venv cannot "
                     "see: recreate it with `python3 -m venv --system-site-packages VENV` and do not pip-install "
                     "opencv-python or tensorrt into it")
    return Check("python env", "ok", found)


def check_cuda_driver(open_driver: Optional[Callable[[], Any]] = None) -> Check:
    """The NVIDIA driver (libcuda) and the GPU it drives: name, compute capability, memory."""
    from fcn_edge.engine.cuda_driver import CudaDriver

    try:
        driver = (open_driver or CudaDriver)()
        facts = driver.facts()
        major, minor = driver.driver_version()
        memory = driver.total_memory()
    except FcnEdgeError as exc:
        if "could not be loaded" in str(exc):
            return Check("gpu", "absent", "no NVIDIA driver: libcuda.so.1 is not installed",
                         "install the NVIDIA driver (desktop) or flash JetPack (Jetson) to run engines here")
        return Check("gpu", "fail", str(exc), "check `nvidia-smi` (desktop) or `tegrastats` (Jetson); a driver "
                     "older than the CUDA the libraries were built for gives CUDA_ERROR_SYSTEM_DRIVER_MISMATCH")
    found = (f"{facts.name}, compute capability {facts.capability_text}, {memory / (1 << 30):.1f} GiB, "
             f"driver for CUDA {major}.{minor}")
    return Check("gpu", "ok", found, details={"name": facts.name, "compute_capability": facts.capability_text,
                                              "memory_bytes": memory, "driver_cuda": f"{major}.{minor}"})


def check_tensorrt() -> Check:
    from fcn_edge.engine.build import load_tensorrt
    from fcn_edge.engine.capabilities import probe

    if importlib.util.find_spec("tensorrt") is None:
        return Check("tensorrt", "absent", "not installed: engines can be planned (--dry-run) but not built or run",
                     TENSORRT_INSTALL)
    try:
        trt = load_tensorrt()
    except FcnEdgeError as exc:
        return Check("tensorrt", "fail", str(exc).split(":", 1)[0] + " (the package cannot load its libraries)",
                     str(exc))
    caps = probe(trt)
    typing = "strongly typed only" if not caps.fp16_flag else "strong and weak typing"
    found = (f"TensorRT {caps.version}: {typing}, " + ("legacy INT8 calibrator, " if caps.legacy_calibrator else "")
             + ("version-compatible engines, " if caps.version_compatible else "")
             + ("DLA in this release" if caps.dla else "no DLA in this release"))
    return Check("tensorrt", "ok", found, details={"version": caps.version, "capabilities": dataclasses.asdict(caps)})


def check_dla(jetson: Optional[JetsonInfo], tensorrt: Check, dla_cores: Optional[int]) -> Check:
    """DLA cores the TensorRT builder sees (Jetson Xavier/Orin), and whether this TensorRT has DLA."""
    if tensorrt.verdict != "ok":
        return Check("dla", "absent", "needs TensorRT to ask")
    version = tensorrt.details["version"]
    if dla_cores:
        return Check("dla", "ok", f"{dla_cores} DLA core(s); build with --dla-core N")
    if jetson is not None and not tensorrt.details["capabilities"]["dla"]:
        from fcn_edge.engine.capabilities import DLA_HINT

        return Check("dla", "warn", f"TensorRT {version} has no DLA", DLA_HINT)
    return Check("dla", "absent", "no DLA cores (DLA exists on Jetson Xavier and AGX/NX Orin only)")


def check_cuda_implementation(name: str, gpu: Check, probe: Optional[Callable[[str], Any]] = None) -> Check:
    """pycuda or cuda-python, which the TensorRT runtime needs one of."""
    from fcn_edge.runtime import cuda_api

    usable, why = (probe or cuda_api.probe)(name)
    if usable:
        version = cuda_api.implementation(name).cuda_version()
        return Check(name, "ok", "imports and sees the GPU" + (f" (driver CUDA {version[0]}.{version[1]})" if version else ""))
    installed = importlib.util.find_spec("pycuda" if name == "pycuda" else "cuda") is not None
    fix = ("sudo apt install python3-pycuda (Jetson), or pip install pycuda with the CUDA toolkit on PATH"
           if name == "pycuda" else "pip install cuda-python (its CUDA major must not exceed the driver's: "
           "'cuda-python<13' for CUDA 12)")
    if installed and gpu.verdict == "absent":
        return Check(name, "absent", "installed; no NVIDIA driver here to use it")
    if installed:  # installed, a driver present, and still not working: most often a CUDA major too new
        return Check(name, "warn", f"installed, not usable: {why}", fix)
    return Check(name, "absent", "not installed", fix)


def check_runtime_cuda(tensorrt: Check, implementations: List[Check], asked: Optional[str] = None) -> Check:
    """Which CUDA implementation the TensorRT runtime will use (``asked``, else $FCN_EDGE_CUDA,
    else auto)."""
    from fcn_edge.runtime.cuda_api import ENV_VAR, chosen_name

    try:
        choice = chosen_name(asked)
    except FcnEdgeError as exc:
        return Check("runtime cuda", "fail", str(exc), f"unset {ENV_VAR} or set it to pycuda or cuda-python")
    usable = [c.name for c in implementations if c.verdict == "ok"]
    picked = choice if choice != "auto" else (usable[0] if usable else "")
    needed = tensorrt.verdict == "ok"
    if picked and picked in usable:
        return Check("runtime cuda", "ok", f"{picked} ({'chosen' if choice != 'auto' else 'auto'})")
    if not needed:
        return Check("runtime cuda", "absent", "no usable pycuda or cuda-python (needed only with TensorRT)")
    what = f"the chosen {choice} is not usable" if choice != "auto" else "neither pycuda nor cuda-python is usable"
    return Check("runtime cuda", "fail", f"TensorRT is installed but {what}: engines cannot run",
                 "pip install cuda-python, or on a Jetson sudo apt install python3-pycuda")


def check_onnxruntime(info: SystemInfo, jetson: Optional[JetsonInfo]) -> Check:
    if info.onnxruntime is None:
        return Check("onnxruntime", "absent", "not installed: ONNX models cannot run or be compared",
                     "pip install onnxruntime (onnxruntime-gpu for the CUDA/TensorRT providers)")
    providers = list(info.ort_providers)
    found = f"{info.onnxruntime}: {', '.join(providers) or 'no providers'}"
    if jetson is not None and "CUDAExecutionProvider" not in providers:
        return Check("onnxruntime", "warn", found + " (CPU only on a Jetson)",
                     "for GPU inference through ONNX Runtime install the onnxruntime-gpu wheel for your JetPack "
                     "(Jetson Zoo); TensorRT engines do not need it")
    return Check("onnxruntime", "ok", found, details={"providers": providers})


def check_opencv(jetson: Optional[JetsonInfo], describe: Optional[Callable[[], dict]] = None) -> Check:
    """OpenCV's video backends: FFmpeg (files, RTSP clients) and GStreamer (CSI cameras,
    hardware encoding, RTSP out)."""
    from fcn_edge.video import capabilities

    try:
        facts = (describe or capabilities.describe)()
    except FcnEdgeError as exc:
        return Check("opencv", "fail", str(exc), "pip install opencv-python (desktop) or JetPack's python3-opencv")
    io = facts["video_io"]
    found = (f"OpenCV {facts['opencv']}: FFmpeg {'yes' if io.get('FFMPEG') else 'no'}, "
             f"GStreamer {'yes' if facts['gstreamer'] else 'no'}")
    if jetson is not None and not facts["gstreamer"]:
        return Check("opencv", "warn", found + " (CSI cameras and hardware H.264 need GStreamer)",
                     capabilities.gstreamer_install_hint(), facts)
    if not io.get("FFMPEG") and not facts["gstreamer"]:
        return Check("opencv", "warn", found + ": no video files or streams", capabilities.gstreamer_install_hint(), facts)
    return Check("opencv", "ok", found, details=facts)


def check_trtexec(path: Optional[str]) -> Check:
    if path is None:
        return Check("trtexec", "absent", "not on PATH: engine timings are not compared with trtexec's",
                     "add TensorRT's bin directory to PATH (JetPack: /usr/src/tensorrt/bin)")
    return Check("trtexec", "ok", path)
