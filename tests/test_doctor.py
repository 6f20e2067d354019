"""``fcn-edge doctor``: the machine checks on this machine and on a fake Jetson tree, the engine
checks with FakeTensorRT standing in for TensorRT, and the command's table and JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from fake_tensorrt import FakeDevice, make_fake_tensorrt
from fcn_edge.cli.main import main
from fcn_edge.doctor import VERDICTS, Check, DoctorConfig, run_doctor
from fcn_edge.doctor import machine
from fcn_edge.optional import is_available
from tiny_models import make_tiny_checkpoint, make_tiny_onnx

MACHINE_ONLY = DoctorConfig(engines=False)


def _fake_jetson_root(root: Path, pinned: bool) -> Path:
    """The files bench.sysinfo reads on an Orin: L4T release, model, nvpmodel state, clocks."""
    (root / "etc").mkdir(parents=True)
    (root / "etc/nv_tegra_release").write_text("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic\n")
    (root / "proc/device-tree").mkdir(parents=True)
    (root / "proc/device-tree/model").write_text("NVIDIA Jetson AGX Orin Developer Kit\x00")
    (root / "var/lib/nvpmodel").mkdir(parents=True)
    (root / "var/lib/nvpmodel/status").write_text("pmode:0000\n")
    (root / "etc/nvpmodel.conf").write_text("< POWER_MODEL ID=0 NAME=MAXN >\n")
    cpu = root / "sys/devices/system/cpu/cpu0/cpufreq"
    cpu.mkdir(parents=True)
    (cpu / "scaling_min_freq").write_text("2201600" if pinned else "729600")
    (cpu / "scaling_max_freq").write_text("2201600")
    return root


@pytest.fixture
def jetson_info(tmp_path):
    from fcn_edge.bench.sysinfo import collect_system_info

    def make(pinned: bool):
        root = _fake_jetson_root(tmp_path / ("pinned" if pinned else "free"), pinned)
        return lambda: collect_system_info(root, run=lambda argv: None)

    return make


# -- the machine checks --------------------------------------------------------------------------
def test_every_check_has_a_verdict_and_each_problem_a_fix():
    report = run_doctor(config=MACHINE_ONLY)
    names = [c.name for c in report.checks]
    for expected in ("system", "jetson", "power mode", "python env", "gpu", "tensorrt", "pycuda", "cuda-python",
                     "runtime cuda", "trtexec", "onnxruntime", "opencv", "dla", "engines"):
        assert expected in names
    for check in report.checks:
        assert check.verdict in VERDICTS, check
        assert check.found, check
        assert check.verdict in ("ok", "absent") or check.fix, f"{check.name} says {check.verdict} without a fix"
    assert report.by_name("engines").found == "not checked (--machine-only)"


@pytest.mark.skipif(is_available("tensorrt"), reason="checks what the doctor says without TensorRT")
def test_without_tensorrt_the_doctor_says_so_and_runs_the_rest():
    report = run_doctor(config=DoctorConfig())
    tensorrt = report.by_name("tensorrt")
    assert tensorrt.verdict == "absent" and "pip install tensorrt" in tensorrt.fix and "python3-libnvinfer" in tensorrt.fix
    assert report.by_name("engines").verdict == "absent"
    assert "no engines built: this machine has no" in report.by_name("engines").found
    assert report.by_name("onnxruntime").verdict == "ok"  # what it can check, it checks
    assert report.by_name("opencv").found.startswith("OpenCV ")


def test_a_jetson_is_described_and_its_clocks_checked(jetson_info):
    from fcn_edge.bench.sysinfo import JETSON_CLOCKS_HINT

    report = run_doctor(config=MACHINE_ONLY, system_info=jetson_info(pinned=False))
    jetson = report.by_name("jetson")
    assert jetson.verdict == "ok" and jetson.found == "NVIDIA Jetson AGX Orin Developer Kit, L4T 36.4.3 (JetPack 6.x)"
    power = report.by_name("power mode")
    assert power.verdict == "warn" and power.found.startswith("MAXN (0), clocks not pinned (cpu0: min 729 MHz")
    assert power.fix == JETSON_CLOCKS_HINT
    pinned = run_doctor(config=MACHINE_ONLY, system_info=jetson_info(pinned=True))
    assert pinned.by_name("power mode").verdict == "ok"


def test_a_venv_that_hides_jetpacks_packages_is_a_warning(jetson_info):
    info = jetson_info(pinned=True)()
    hidden = machine.check_python_env(info.jetson, isolated=True)
    assert hidden.verdict == "warn" and "python3 -m venv --system-site-packages" in hidden.fix
    assert machine.check_python_env(info.jetson, isolated=False).verdict == "ok"
    assert machine.check_python_env(None, isolated=True).verdict == "ok"  # a desktop venv is fine


def test_venv_detection_reads_pyvenv_cfg(tmp_path):
    (tmp_path / "pyvenv.cfg").write_text("home = /usr/bin\ninclude-system-site-packages = false\n")
    assert machine.in_venv_without_system_packages(str(tmp_path), "/usr") is True
    (tmp_path / "pyvenv.cfg").write_text("home = /usr/bin\ninclude-system-site-packages = true\n")
    assert machine.in_venv_without_system_packages(str(tmp_path), "/usr") is False
    assert machine.in_venv_without_system_packages("/usr", "/usr") is None


def test_video_and_onnxruntime_on_a_jetson_want_gstreamer_and_cuda(jetson_info, monkeypatch):
    import fcn_edge.video.capabilities as capabilities

    monkeypatch.setattr(capabilities, "is_jetson", lambda: True)  # the hint asks the machine itself
    info = jetson_info(pinned=True)()
    pip_cv2 = {"opencv": "4.10.0", "video_io": {"FFMPEG": True, "GStreamer": False}, "gstreamer": False}
    opencv = machine.check_opencv(info.jetson, describe=lambda: pip_cv2)
    assert opencv.verdict == "warn" and "JetPack's OpenCV" in opencv.fix
    assert machine.check_opencv(None, describe=lambda: pip_cv2).verdict == "ok"  # a desktop needs FFmpeg only
    cpu_only = replace(info, onnxruntime="1.20.0", ort_providers=("CPUExecutionProvider",))
    assert machine.check_onnxruntime(cpu_only, info.jetson).verdict == "warn"
    assert machine.check_onnxruntime(replace(cpu_only, onnxruntime=None), None).verdict == "absent"


@pytest.mark.parametrize("usable, installed, gpu, verdict", [
    ((True, ""), True, "ok", "ok"),
    ((False, "cudaErrorInsufficientDriver"), True, "ok", "warn"),  # a CUDA major newer than the driver
    ((False, "no driver"), True, "absent", "absent"),
    ((False, "not installed"), False, "ok", "absent"),
])
def test_cuda_implementation_verdicts(monkeypatch, usable, installed, gpu, verdict):
    import importlib.util

    from fcn_edge.runtime import cuda_api

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object() if installed else None)
    monkeypatch.setattr(cuda_api.implementation("cuda-python"), "cuda_version", lambda: (12, 6))
    check = machine.check_cuda_implementation("cuda-python", Check("gpu", gpu, "x"), probe=lambda name: usable)
    assert check.verdict == verdict
    if verdict == "warn":
        assert "cudaErrorInsufficientDriver" in check.found and "'cuda-python<13' for CUDA 12" in check.fix


def test_tensorrt_without_a_usable_cuda_implementation_fails(monkeypatch):
    tensorrt = Check("tensorrt", "ok", "TensorRT 10.3.0")
    none_usable = [Check("pycuda", "absent", "not installed"), Check("cuda-python", "warn", "x")]
    failed = machine.check_runtime_cuda(tensorrt, none_usable)
    assert failed.verdict == "fail" and "engines cannot run" in failed.found and "pip install cuda-python" in failed.fix
    usable = [Check("pycuda", "absent", "x"), Check("cuda-python", "ok", "x")]
    assert machine.check_runtime_cuda(tensorrt, usable).found == "cuda-python (auto)"
    assert machine.check_runtime_cuda(tensorrt, usable, "pycuda").verdict == "fail"
    monkeypatch.setenv("FCN_EDGE_CUDA", "cupy")
    assert machine.check_runtime_cuda(tensorrt, usable).verdict == "fail"
    assert machine.check_runtime_cuda(Check("tensorrt", "absent", "x"), none_usable, "auto").verdict == "absent"


def test_dla_and_trtexec(jetson_info):
    info = jetson_info(pinned=True)()
    trt11 = Check("tensorrt", "ok", "x", details={"version": "11.4.0", "capabilities": {"dla": False}})
    assert machine.check_dla(info.jetson, trt11, 0).verdict == "warn"  # a Jetson on a release without DLA
    trt10 = Check("tensorrt", "ok", "x", details={"version": "10.3.0", "capabilities": {"dla": True}})
    assert machine.check_dla(info.jetson, trt10, 2).found == "2 DLA core(s); build with --dla-core N"
    assert machine.check_dla(None, trt10, 0).verdict == "absent"
    assert machine.check_trtexec(None).verdict == "absent" and machine.check_trtexec("/usr/bin/trtexec").verdict == "ok"


def test_a_model_is_run_in_onnx_runtime_even_without_tensorrt(tmp_path):
    onnx = make_tiny_onnx(tmp_path / "m.onnx", fused=True)
    model = run_doctor(onnx, MACHINE_ONLY).by_name("model")
    assert model.verdict == "ok" and "in ONNX Runtime on the CPU" in model.found
    checkpoint = make_tiny_checkpoint(tmp_path / "m.pt")
    report = run_doctor(checkpoint, DoctorConfig())
    refused = report.by_name("model")
    assert refused.verdict == "fail" and refused.fix == f"export it first: fcn-edge export {checkpoint}"
    assert report.by_name("engines").verdict == "absent"
    assert run_doctor(tmp_path / "missing.onnx", MACHINE_ONLY).by_name("model").found.endswith("no such file")


# -- the engine checks, FakeTensorRT standing in for TensorRT ---------------------------------------
@pytest.fixture
def fake_trt_machine(monkeypatch):
    import fcn_edge.engine.cuda_driver as cuda_driver

    monkeypatch.setattr(cuda_driver, "cuda_driver", lambda: FakeDevice("NVIDIA RTX A4000 (fake)", (8, 6)))


def test_engines_are_built_per_precision_and_their_precision_checked(tmp_path, fake_trt_machine):
    from fcn_edge.doctor.engines import EngineCheckConfig, engine_checks

    onnx = make_tiny_onnx(tmp_path / "m.onnx", fused=True)
    checks = {c.name: c for c in engine_checks(onnx, tmp_path / "work", make_fake_tensorrt("10.3.0"),
                                               EngineCheckConfig(size=(32, 48), frames=2, runs=2))}
    for precision in ("fp32", "fp16", "int8"):
        built = checks[f"engine {precision}"]
        assert built.verdict == "ok" and f"{precision} in " in built.found, built
        assert Path(built.details["engine"]).is_file()
        # no GPU here: the runtime says why it cannot run the engine, instead of pretending
        run = checks[f"run {precision}"]
        assert run.verdict == "fail" and "the runtime cannot run the engine" in run.found
    heads = checks["mask heads"]  # both heads exported and built; no GPU to run them on
    assert heads.verdict == "fail" and heads.found.startswith("topk head: the runtime cannot run the engine"), heads


def test_an_engine_without_its_precision_fails_and_a_missing_fast_path_is_skipped(tmp_path, fake_trt_machine):
    from fcn_edge.doctor.engines import EngineCheckConfig, engine_checks

    onnx = make_tiny_onnx(tmp_path / "m.onnx", fused=True)
    trt = make_fake_tensorrt("8.6.1", fast_fp16=False, fast_int8=False)
    checks = {c.name: c for c in engine_checks(onnx, tmp_path / "work", trt,
                                               EngineCheckConfig(precisions=("fp16", "int8"), size=(32, 48)))}
    assert checks["engine fp16"].verdict == "absent" and "no fast FP16" in checks["engine fp16"].found
    assert checks["engine int8"].verdict == "absent"


def test_the_doctors_mask_heads_give_the_same_masks(tmp_path):
    """What the GPU comparison builds: the doctor's model with a TopK and a reduce mask head,
    equal masks in ONNX Runtime, and no ArgMax in the reduce graph."""
    import onnx

    from fcn_edge.doctor.engines import doctor_model
    from fcn_edge.runtime import load_segmenter
    from tiny_models import sample_frame

    pytest.importorskip("torch")
    masks = {}
    for head in ("topk", "reduce"):
        path = doctor_model(tmp_path, (32, 48), mask_head=head)
        ops = {node.op_type for node in onnx.load(str(path)).graph.node}
        assert ("ArgMax" in ops) == (head == "topk")
        with load_segmenter(path) as segmenter:
            masks[head] = [segmenter.segment(sample_frame(seed=i)).mask for i in range(3)]
    assert all((a == b).all() for a, b in zip(masks["topk"], masks["reduce"]))
    assert len({m.tobytes() for m in masks["topk"]}) == 3  # three different frames, three different masks


# -- the command -----------------------------------------------------------------------------------
def test_the_command_prints_a_table_and_writes_json(capsys, tmp_path):
    assert main(["doctor", "--machine-only"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["CHECK", "VERDICT", "FOUND"]
    assert "tensorrt" in out and out.splitlines()[-1].startswith("verdict: ")
    assert main(["doctor", "--machine-only", "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] in VERDICTS and sum(data["counts"].values()) == len(data["checks"])
    assert {"name", "verdict", "found", "fix", "details"} <= set(data["checks"][0])
    assert data["machine"]["python"] == sys.version.split()[0]
    assert main(["doctor", "--machine-only", "--json", str(tmp_path / "d.json")]) == 0
    assert json.loads((tmp_path / "d.json").read_text())["checks"] == data["checks"]


def test_the_command_exits_1_when_a_check_fails(capsys, tmp_path):
    checkpoint = make_tiny_checkpoint(tmp_path / "m.pt")
    assert main(["doctor", str(checkpoint), "--machine-only"]) == 1
    assert "FAIL" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        main(["doctor", "--precision", "fp64"])
    assert info.value.code == 2 and "fp64: not one of fp32, fp16, int8" in capsys.readouterr().err


def test_the_doctor_imports_nothing_heavy():
    code = ("import sys, fcn_edge.doctor, fcn_edge.doctor.engines, fcn_edge.cli.doctor\n"
            "print(sorted(m for m in ('tensorrt', 'torch', 'pycuda', 'cuda', 'onnx') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_gpu_check_script_runs_doctor_with_both_cuda_implementations(tmp_path):
    """tools/gpu_check.py, the one call a session with a GPU makes (its tests and bench steps
    left out here: they belong to that machine)."""
    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "tools/gpu_check.py", "--out", str(tmp_path), "--skip", "tests",
                           "--skip", "bench", "--timeout", "120"], cwd=repo, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    for cuda in ("pycuda", "cuda-python"):
        step = summary[f"doctor-{cuda}"]
        assert step["exit"] == 0 and step["command"][-4:-2] == ["--cuda", cuda]
        assert step["verdicts"]["tensorrt"].split(":")[0] in VERDICTS
        assert (tmp_path / f"doctor-{cuda}.json").is_file()


def test_the_overall_verdict_ignores_what_is_merely_absent():
    from fcn_edge.doctor import DoctorReport

    def report(*verdicts):
        return DoctorReport(tuple(Check(f"c{i}", v, "x", "fix") for i, v in enumerate(verdicts)))

    assert report("ok", "absent").verdict == "ok"
    assert report("absent", "warn", "ok").verdict == "warn"
    assert report("warn", "fail", "absent").verdict == "fail"
    assert report("absent").table()[-1] == "verdict: OK (0 ok, 1 absent, 0 warn, 0 fail)"
