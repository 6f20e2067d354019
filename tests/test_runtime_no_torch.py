"""``import fcn_edge.runtime`` and a full ONNX Runtime segment() must never import torch."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runtime_fixtures import make_onnx

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import fcn_edge.runtime
    from fcn_edge.runtime import Renderer, RenderConfig, DecodeConfig, load_segmenter
    import fcn_edge.runtime.ort_backend, fcn_edge.runtime.trt_backend, fcn_edge.runtime.cuda_buffers
    import fcn_edge.runtime.render, fcn_edge.runtime.decode, fcn_edge.runtime.segmenter
    import fcn_edge.runtime.torch_backend  # the module may be imported; torch only when it is used
    frame = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    for path in sys.argv[1:]:
        cfg = DecodeConfig(confidence=True) if "unfused" in path else DecodeConfig()
        with load_segmenter(path, decode=cfg) as seg:
            result = seg.segment(frame)
            picture = Renderer(seg.palette, RenderConfig("both"))(frame, result.mask)
        assert result.mask.shape == (120, 160) and picture.shape == (120, 320, 3)
    leaked = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
    print("TORCH_MODULES", leaked)
    assert not leaked, leaked
""")


def test_runtime_runs_without_importing_torch(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    paths = [str(make_onnx(tmp_path, "unfused")), str(make_onnx(tmp_path, "fused", resize_mode="letterbox"))]
    proc = subprocess.run([sys.executable, "-c", SCRIPT, *paths], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "TORCH_MODULES []" in proc.stdout
