"""Fixtures shared by several test modules."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def torch_single_thread():
    """One intra-op thread: on a busy 2-core machine torch's 2-thread barriers stall
    (a MobileNetV3 step took 5 s with 2 threads and 0.05 s with 1)."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def default_onnx(tmp_path_factory):
    """The shipped default model exported once per session (unfused, logits, 256x320).

    Parity and onnxslim are the exporter's own tests' business; skipped here to stay fast."""
    pytest.importorskip("torch")
    from fcn_edge.errors import CheckpointError
    from fcn_edge.export import ExportConfig, export_checkpoint
    from fcn_edge.weights import default_checkpoint

    try:
        checkpoint = default_checkpoint()
    except CheckpointError as exc:
        pytest.skip(f"no default checkpoint in this checkout: {exc}")
    out = tmp_path_factory.mktemp("default") / "default.onnx"
    export_checkpoint(checkpoint, out, ExportConfig(input_size=(256, 320), check_parity=False, simplify=False))
    return out
