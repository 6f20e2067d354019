"""What runs on a Jetson without torch: every runtime, video, bench, evaluate, artifacts and serve
module imports without pulling torch or the build-time layers, ONNX models segment without
torch, and ``fcn-edge segment`` runs the default model with torch made unimportable."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import pytest

from tiny_models import make_tiny_onnx, sample_frame

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("fcn_edge.runtime", "fcn_edge.video", "fcn_edge.bench", "fcn_edge.evaluate", "fcn_edge.artifacts",
            "fcn_edge.serve")
BUILD_TIME = ("torch", "fcn_edge.engine", "fcn_edge.precision", "fcn_edge.export", "fcn_edge.models")

# Makes `import torch` fail in the child, as on a machine without it.
BLOCK_TORCH = textwrap.dedent("""
    import sys

    class _NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError(f"No module named {name!r} (torch is blocked in this test)")
            return None

    sys.meta_path.insert(0, _NoTorch())
""")

IMPORT_EVERYTHING = textwrap.dedent("""
    import importlib, json, pkgutil, sys
    names = []
    for package in sys.argv[1].split(","):
        module = importlib.import_module(package)
        names.append(package)
        for info in pkgutil.walk_packages(module.__path__, package + "."):
            importlib.import_module(info.name)
            names.append(info.name)
    print(json.dumps({"imported": names, "loaded": sorted(sys.modules)}))
""")


def _run(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_every_runtime_module_imports_without_build_time_layers():
    """pkgutil finds the modules (a new one is covered without editing this test); none of
    them may import torch, the engine builder, precision, export or the models."""
    import json

    proc = _run(IMPORT_EVERYTHING, ",".join(PACKAGES))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    imported = report["imported"]
    for known in ("fcn_edge.runtime.segmenter", "fcn_edge.runtime.trt_backend", "fcn_edge.runtime.legend",
                  "fcn_edge.video.job", "fcn_edge.video.images", "fcn_edge.bench.sweep",
                  "fcn_edge.evaluate.runner", "fcn_edge.artifacts.sidecar"):
        assert known in imported, f"walk_packages lost {known}"
    assert len(imported) >= 45
    leaked = [m for m in report["loaded"] if any(m == b or m.startswith(b + ".") for b in BUILD_TIME)]
    assert not leaked, f"imported by the runtime side: {leaked}"


def test_the_import_check_sees_a_leak(tmp_path):
    """The check above is not vacuous: a module that imports a build-time layer is caught."""
    import json

    package = tmp_path / "leaky"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "uses_precision.py").write_text("import fcn_edge.precision.calibration\n")
    proc = subprocess.run([sys.executable, "-c", IMPORT_EVERYTHING, "leaky"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": ""})
    assert proc.returncode == 0, proc.stderr
    assert "fcn_edge.precision" in json.loads(proc.stdout)["loaded"]


SEGMENT_WITHOUT_TORCH = BLOCK_TORCH + textwrap.dedent("""
    import numpy as np
    from fcn_edge.runtime import DecodeConfig, RenderConfig, Renderer, load_segmenter
    frame = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    for path in sys.argv[1:]:
        cfg = DecodeConfig(confidence=True) if "unfused" in path else DecodeConfig()
        with load_segmenter(path, decode=cfg) as seg:
            result = seg.segment(frame)
            picture = Renderer(seg.palette, RenderConfig("both", legend=True), seg.class_names)(frame, result.mask)
        assert result.mask.shape == (120, 160) and picture.shape == (120, 320, 3)
    print("SEGMENTED", len(sys.argv) - 1)
""")


def test_onnx_models_segment_without_torch(tmp_path):
    pytest.importorskip("torch")  # to make the models; the child cannot import it
    pytest.importorskip("onnxruntime")
    paths = [str(make_tiny_onnx(tmp_path)),
             str(make_tiny_onnx(tmp_path, fused=True, output_kind="mask", resize_mode="letterbox"))]
    proc = _run(SEGMENT_WITHOUT_TORCH, *paths)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SEGMENTED 2" in proc.stdout


CLI_WITHOUT_TORCH = BLOCK_TORCH + textwrap.dedent("""
    from fcn_edge.cli.main import main
    code = main(sys.argv[1:])
    assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules)
    sys.exit(code)
""")


def test_segment_runs_the_default_model_without_torch(tmp_path):
    """`fcn-edge segment IMAGE -o OUT` with every default: the shipped fused ONNX, ONNX Runtime."""
    pytest.importorskip("onnxruntime")
    image = tmp_path / "street.png"
    cv2.imwrite(str(image), sample_frame(120, 160))
    proc = _run(CLI_WITHOUT_TORCH, "segment", str(image), "-o", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    overlay = cv2.imread(str(tmp_path / "out" / "street.overlay.png"))
    assert overlay is not None and overlay.shape == (120, 160, 3)
    assert (overlay != cv2.imread(str(image))).any()
    assert "fcn8s_mobilenetv3" in proc.stderr  # the default model said what it was

    proc = _run(BLOCK_TORCH + "import torch")
    assert proc.returncode != 0 and "torch is blocked" in proc.stderr  # the block itself works
