"""A short benchmark of the shipped default model, exported to ONNX: sane numbers only."""

import json
import math

import pytest

from fcn_edge.bench.runner import RunConfig
from fcn_edge.bench.schema import schema_errors
from fcn_edge.bench.sweep import run_sweep
from fcn_edge.bench.sysinfo import collect_system_info
from fcn_edge.bench.variants import expand_variants

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")




def test_default_model_short_benchmark(default_onnx):
    config = RunConfig(iterations=5, duration_s=None, warmup=1)  # 480x640 frames, as a camera
    report = run_sweep(expand_variants([default_onnx], sizes=[None, (192, 240)]), 2, config, collect_system_info())
    assert schema_errors(json.loads(json.dumps(report.as_dict()))) == []
    native, small = report.variants
    assert native.architecture == "fcn8s_mobilenetv3" and native.input_size == (256, 320)
    assert small.input_size == (192, 240)
    for variant in report.variants:
        for run in variant.runs:
            e2e = run.end_to_end
            assert run.iterations == 5 and math.isfinite(e2e.mean) and e2e.min > 0
            assert e2e.min <= e2e.p50 <= e2e.p90 <= e2e.p95 <= e2e.p99 <= e2e.max
            assert run.stages["compute"].min > 0 and run.stages["preprocess"].min > 0
            assert run.stages["decode"].min > 0  # argmax + resize to 480x640 happen on the host
            # compute dominates a CNN on a CPU; the stages fit inside the end-to-end time
            assert run.stages["compute"].mean > run.stages["preprocess"].mean
            assert sum(s.mean for s in run.stages.values()) <= e2e.mean * 1.0001
            assert 0 < run.throughput_fps < 1e4
