"""``run_doctor(model) -> DoctorReport``: every machine check, then the engine checks where
TensorRT and a GPU are here (without TensorRT the report says so and runs what it can)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, List, Optional

from fcn_edge.doctor import machine
from fcn_edge.doctor.check import Check, DoctorReport
from fcn_edge.doctor.engines import EngineCheckConfig, engine_checks
from fcn_edge.paths import PathLike


@dataclass(frozen=True)
class DoctorConfig:
    engines: bool = True  # build, run and time engines where TensorRT and a GPU are here
    engine: EngineCheckConfig = EngineCheckConfig()
    workdir: Optional[Path] = None  # where engines are built (default: a temporary directory)


def _model_check(model: Optional[PathLike]) -> Optional[Check]:
    """MODEL: an ONNX the engine checks build from; loaded and run once in ONNX Runtime on the
    CPU here, so a machine without TensorRT still learns whether the model itself is sound."""
    if model is None:
        return None
    from fcn_edge.artifacts import model_kind
    from fcn_edge.errors import FcnEdgeError, MissingDependencyError

    if not Path(model).is_file():
        return Check("model", "fail", f"{model}: no such file", "give the path of an ONNX model")
    kind = model_kind(Path(model)).kind
    if kind != "onnx":
        return Check("model", "fail", f"{model} is {kind}, and the doctor builds engines from an ONNX",
                     f"export it first: fcn-edge export {model}")
    from fcn_edge.doctor.engines import synthetic_frames
    from fcn_edge.runtime import load_segmenter

    try:
        with load_segmenter(model, providers=["cpu"]) as segmenter:
            frame = synthetic_frames(1, segmenter.input_size)[0]
            segmenter.segment(frame)
            ms = segmenter.segment(frame).timings.compute_ms
            found = f"{model}: {segmenter.description}, {ms:.1f} ms in ONNX Runtime on the CPU"
    except MissingDependencyError as exc:
        return Check("model", "absent", f"{model}: not run here ({str(exc).split(': install')[0]})",
                     "pip install onnxruntime to check the model on the CPU")
    except FcnEdgeError as exc:
        return Check("model", "fail", f"{model}: ONNX Runtime cannot run it: {exc}", "re-export it with fcn-edge export")
    return Check("model", "ok", found)


def run_doctor(model: Optional[PathLike] = None, config: DoctorConfig = DoctorConfig(),
               system_info: Optional[Callable[[], Any]] = None) -> DoctorReport:
    """What this machine can do for fcn-edge and whether it is set up right.

    ``system_info`` collects the machine's facts (default
    :func:`fcn_edge.bench.sysinfo.collect_system_info`; tests give a fake Jetson tree).
    """
    from fcn_edge.bench.sysinfo import collect_system_info
    from fcn_edge.bench.trtexec import trtexec_path

    info = (system_info or collect_system_info)()
    jetson = info.jetson
    tensorrt = machine.check_tensorrt()
    gpu = machine.check_cuda_driver()
    implementations = [machine.check_cuda_implementation(name, gpu) for name in ("pycuda", "cuda-python")]
    checks: List[Check] = [
        machine.check_system(info), machine.check_jetson(jetson), machine.check_power(jetson),
        machine.check_python_env(jetson), gpu, tensorrt, *implementations,
        machine.check_runtime_cuda(tensorrt, implementations, config.engine.cuda),
    ]
    trtexec = trtexec_path()
    checks += [machine.check_trtexec(trtexec), machine.check_onnxruntime(info, jetson), machine.check_opencv(jetson)]
    model_check = _model_check(model)
    if model_check is not None:
        checks.append(model_check)
    runnable = tensorrt.verdict == "ok" and gpu.verdict == "ok"
    trt = None
    if runnable:
        from fcn_edge.engine.build import load_tensorrt
        from fcn_edge.doctor.engines import platform_facts

        trt = load_tensorrt()
        try:
            dla_cores = platform_facts(trt)["dla_cores"]
        except Exception:  # noqa: BLE001 - reported by the engine checks
            dla_cores = None
        checks.append(machine.check_dla(jetson, tensorrt, dla_cores))
    else:
        checks.append(machine.check_dla(jetson, tensorrt, None))
    if not config.engines:
        checks.append(Check("engines", "absent", "not checked (--machine-only)"))
    elif not runnable:
        missing = "TensorRT" if tensorrt.verdict != "ok" else "a working GPU"
        checks.append(Check("engines", "absent", f"no engines built: this machine has no {missing}",
                            tensorrt.fix if tensorrt.verdict != "ok" else gpu.fix))
    elif model_check is not None and model_check.verdict != "ok":
        checks.append(Check("engines", "absent", "no engines built: see the model check"))
    else:
        engine_config = replace(config.engine, trtexec=config.engine.trtexec or trtexec)
        with tempfile.TemporaryDirectory(prefix="fcn-edge-doctor-") as scratch:
            workdir = Path(config.workdir or scratch)
            workdir.mkdir(parents=True, exist_ok=True)
            checks += engine_checks(Path(model) if model else None, workdir, trt, engine_config)
    return DoctorReport(tuple(checks), info.as_dict())
