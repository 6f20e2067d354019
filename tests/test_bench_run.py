"""Short benchmarks of real ONNX models through the runtime: sane numbers, the JSON schema,
CSV, text and plot outputs, sweeps and the CLI. Nothing here asserts a speed."""

import csv
import io
import json
import math

import numpy as np
import pytest

from fcn_edge.bench import report as render
from fcn_edge.bench.benchmark import BenchConfig, benchmark_models
from fcn_edge.bench.runner import END_TO_END, STAGES, BenchmarkError, RunConfig, run_benchmark, synthetic_frames
from fcn_edge.bench.schema import REPORT_SCHEMA, schema_errors
from fcn_edge.bench.sweep import Accuracy, run_sweep
from fcn_edge.bench.sysinfo import collect_system_info
from fcn_edge.bench.variants import Variant, expand_models, expand_variants, precision_sibling
from fcn_edge.errors import FcnEdgeError
from tiny_models import CLASSES, make_tiny_onnx

pytest.importorskip("onnxruntime")
FAST = RunConfig(iterations=12, duration_s=None, warmup=2, frame_size=(60, 80))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_onnx(tmp_path_factory.mktemp("bench") / "tiny.onnx")  # 32x48, sizes 16x16 .. 128x160


@pytest.fixture(scope="module")
def system():
    return collect_system_info()


@pytest.fixture(scope="module")
def sweep_report(tiny, system):
    variants = expand_variants([tiny], sizes=[(48, 64), (96, 128)])
    return run_sweep(variants, batch=3, config=FAST, system=system)


def assert_sane(stats, positive=True):
    values = [stats.mean, stats.min, stats.max, stats.p50, stats.p90, stats.p95, stats.p99, stats.std]
    assert all(math.isfinite(v) and v >= 0 for v in values)
    assert stats.min <= stats.p50 <= stats.p90 <= stats.p95 <= stats.p99 <= stats.max
    assert stats.min <= stats.mean <= stats.max
    if positive:
        assert stats.min > 0


def test_short_benchmark_reports_sane_numbers(sweep_report):
    assert [tuple(v.input_size) for v in sweep_report.variants] == [(48, 64), (96, 128)]
    for variant in sweep_report.variants:
        assert variant.backend == "onnxruntime" and variant.precision == "fp32"
        assert [r.batch for r in variant.runs] == [1, 3]
        for run in variant.runs:
            assert run.iterations == 12 and len(run.samples_ms) == 12
            assert_sane(run.end_to_end)
            for stage in ("preprocess", "compute", "decode"):
                assert_sane(run.stages[stage])
            # host-only backend: no copies
            assert run.stages["h2d"].max == 0 and run.stages["d2h"].max == 0
            assert set(run.clocks.values()) == {"perf_counter"}
            # stages happen inside the timed call, so they cannot add up to more than it
            assert run.overhead_ms >= -1e-6
            assert run.throughput_fps == pytest.approx(run.iterations * run.batch / run.wall_s)
            assert run.wall_s >= sum(run.samples_ms) / 1e3 * 0.999


def test_duration_mode_runs_at_least_min_iterations(tiny):
    from fcn_edge.runtime import load_segmenter

    with load_segmenter(tiny) as segmenter:
        run = run_benchmark(segmenter, 1, RunConfig(duration_s=0.05, warmup=0, min_iterations=7, frame_size=(40, 40)))
    assert run.iterations >= 7 and run.wall_s >= 0.05


def test_config_and_batch_errors(tiny):
    with pytest.raises(BenchmarkError, match="exactly one"):
        RunConfig(iterations=5, duration_s=1.0)
    with pytest.raises(BenchmarkError, match="iterations must be"):
        RunConfig(iterations=0, duration_s=None)
    from fcn_edge.runtime import load_segmenter

    with load_segmenter(tiny) as segmenter:
        with pytest.raises(BenchmarkError, match="batch must be >= 1, got 0"):
            run_benchmark(segmenter, 0, FAST)


def test_json_matches_schema(sweep_report):
    data = json.loads(json.dumps(sweep_report.as_dict()))
    assert schema_errors(data) == []
    assert data["schema_version"] == 1
    run = data["variants"][0]["runs"][0]
    assert set(run["latency_ms"]) == {END_TO_END, *STAGES}
    assert len(run["samples_ms"]) == run["iterations"]
    assert data["config"]["batch"] == 3 and data["system"]["onnxruntime"]


def test_schema_catches_breakage(sweep_report):
    data = json.loads(json.dumps(sweep_report.as_dict(samples=False)))
    del data["variants"][0]["runs"][0]["latency_ms"]["compute"]
    data["variants"][1]["runs"][1]["throughput_fps"] = -1.0
    data["variants"][1]["precision"] = "bf16"
    data["system"]["cpu_count"] = "two"
    errors = schema_errors(data)
    assert "$.variants[0].runs[0].latency_ms: missing required key 'compute'" in errors
    assert "$.variants[1].runs[1].throughput_fps: -1.0 is below the minimum 0" in errors
    assert any(e.startswith("$.variants[1].precision: 'bf16'") for e in errors)
    assert "$.system.cpu_count: expected integer, got str" in errors
    assert REPORT_SCHEMA["$schema"].startswith("https://json-schema.org/")


def test_csv_long_format(sweep_report):
    rows = list(csv.DictReader(io.StringIO(render.report_csv(sweep_report))))
    assert len(rows) == 2 * 2 * (len(STAGES) + 1)  # variants x batches x (stages + end_to_end)
    assert {r["stage"] for r in rows} == {END_TO_END, *STAGES}
    e2e = [r for r in rows if r["stage"] == END_TO_END and r["batch"] == "1"]
    assert [r["input_height"] for r in e2e] == ["48", "96"]
    assert all(float(r["p50_ms"]) <= float(r["p99_ms"]) for r in rows)


def test_text_report(sweep_report):
    text = "\n".join(render.system_lines(sweep_report.system) + [render.timing_line(FAST)]
                     + [render.format_variant(v) for v in sweep_report.variants] + render.summary_lines(sweep_report))
    for word in ("System", "CPU:", "12 calls per batch size after 2 warm-up calls", "synthetic 60x80 BGR frames",
                 "preprocess", "compute", "decode", "end-to-end", "p99 ms", "fps@3",
                 "Summary (batch 1 latency; throughput at batch 1 and 3)"):
        assert word in text
    summary = render.format_summary(sweep_report).splitlines()
    assert len(summary) == 2 + 2 and "48x64" in summary[2] and "96x128" in summary[3]
    assert "mean IU" not in summary[0]  # no dataset, no accuracy column


def test_plot_file_written(sweep_report, tmp_path):
    from fcn_edge.bench.plot import write_plot

    out = write_plot(sweep_report, tmp_path / "plots" / "latency.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert not list(out.parent.glob(".*.tmp*"))  # the temporary file was renamed away


def test_accuracy_column_and_plot(tiny, system, tmp_path):
    """The sweep calls the evaluator once per variant, at that variant's input size."""
    seen = []

    def evaluator(segmenter, dataset):  # a stand-in for fcn_edge.evaluate: scores agreement with itself
        seen.append(tuple(segmenter.input_size))
        frame = synthetic_frames(1, (60, 80))[0]
        mask = segmenter.segment(frame).mask
        return Accuracy(mean_iu=float(np.mean(mask == mask[0, 0])), pixel_accuracy=1.0, images=1, dataset=dataset)

    report = run_sweep(expand_variants([tiny], sizes=[(48, 64), (64, 96)]), 1, FAST, system,
                       dataset="fixture", evaluator=evaluator)
    assert seen == [(48, 64), (64, 96)]
    header = render.format_summary(report).splitlines()[0]
    assert "mean IU" in header and "pixel acc" in header
    assert schema_errors(report.as_dict()) == []
    from fcn_edge.bench.plot import write_plot

    assert write_plot(report, tmp_path / "acc.png").stat().st_size > 10_000


def test_sizes_outside_the_model_range_are_refused(tiny, system):
    with pytest.raises(FcnEdgeError, match=r"tiny.onnx 512x512: input size 512x512 is outside the model's range"):
        run_sweep([Variant(tiny, input_size=(512, 512))], 1, FAST, system)


def test_precision_siblings(tiny, tmp_path):
    base = make_tiny_onnx(tmp_path / "m.onnx")
    int8 = make_tiny_onnx(tmp_path / "m.int8.onnx", precision="int8")
    assert precision_sibling(int8, "fp32") == base
    assert expand_models([base], ["fp32", "int8"]) == [base, int8]
    with pytest.raises(BenchmarkError, match="fcn-edge quantize .*m.onnx --precision fp16"):
        expand_models([base], ["fp16"])
    with pytest.raises(BenchmarkError, match="no such model file"):
        expand_models([tmp_path / "absent.onnx"], None)


def test_cli_end_to_end(tiny, tmp_path, capsys):
    from fcn_edge.cli.main import main

    int8 = make_tiny_onnx(tiny.with_name("tiny.int8.onnx"), precision="int8")
    out_json, out_csv, out_png = tmp_path / "r.json", tmp_path / "r.csv", tmp_path / "r.png"
    code = main(["benchmark", str(tiny), "--precision", "fp32,int8", "--input-size", "48x64,32x48",
                 "--batch", "2", "--iterations", "4", "--warmup", "1", "--frame-size", "30x40",
                 "--json", str(out_json), "--csv", str(out_csv), "--plot", str(out_png)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "Summary" in printed and "tiny.int8.onnx" in printed and "fps@2" in printed
    data = json.loads(out_json.read_text())
    assert schema_errors(data) == []
    assert [(v["precision"], tuple(v["input_size"])) for v in data["variants"]] == [
        ("fp32", (48, 64)), ("fp32", (32, 48)), ("int8", (48, 64)), ("int8", (32, 48))]
    assert out_csv.read_text().startswith("model,architecture,precision")
    assert out_png.read_bytes()[:4] == b"\x89PNG"
    int8.unlink()


def test_cli_cuda_graph_and_device_reach_the_variants(tiny, capsys):
    from fcn_edge.cli.main import main

    assert main(["benchmark", str(tiny), "--iterations", "2", "--warmup", "0", "--cuda-graph", "--device", "1"]) == 0
    assert "note: --cuda-graph not used: it applies to TensorRT engines, this variant runs on onnxruntime" \
        in capsys.readouterr().out
    (variant,) = BenchConfig(cuda_graph=True, device=1, providers=("cpu",)).variants([tiny])
    assert (variant.device, variant.cuda_graph, variant.providers) == (1, True, ("cpu",))


def test_load_passes_cuda_graph_to_engines_and_providers_to_onnx(tiny, tmp_path, monkeypatch):
    """Our own control flow only: a recorder stands in for load_segmenter."""
    import fcn_edge.runtime
    from fcn_edge.bench.sweep import _load

    calls = []
    monkeypatch.setattr(fcn_edge.runtime, "load_segmenter", lambda path, backend, **kw: calls.append((path, kw)))
    engine = tmp_path / "m.plan"
    engine.write_bytes(b"ftrt" + bytes(60))  # a TensorRT plan by its magic bytes
    for model in (engine, tiny):
        _load(Variant(model, providers=("cpu",), device=1, cuda_graph=True))
    (_, on_engine), (_, on_onnx) = calls
    assert on_engine == {"input_size": None, "device": 1, "threads": None, "cuda_graph": True}
    assert on_onnx == {"input_size": None, "device": 1, "threads": None, "providers": ["cpu"]}


def test_cli_json_to_stdout_and_bad_arguments(tiny, capsys, tmp_path):
    from fcn_edge.cli.main import main
    from fcn_edge.data import write_image

    image = write_image(tmp_path / "frame.png", synthetic_frames(1, (50, 70))[0])
    assert main(["benchmark", str(tiny), "--iterations", "2", "--warmup", "0", "--image", str(image)]) == 0
    assert f"on the image {image}" in capsys.readouterr().out
    assert main(["benchmark", str(tiny), "--iterations", "2", "--image", str(tmp_path / "absent.png")]) == 2
    assert "image file not found" in capsys.readouterr().err

    assert main(["benchmark", str(tiny), "--iterations", "3", "--warmup", "0", "--json", "-", "--brief"]) == 0
    captured = capsys.readouterr()
    assert schema_errors(json.loads(captured.out)) == []  # stdout holds the JSON only
    assert "Summary" in captured.err and "System" in captured.err
    for bad, message in ((["--input-size", "48by64"], "HEIGHTxWIDTH"), (["--batch", "0"], "positive integer"),
                         (["--iterations", "3", "--duration", "1"], "not allowed with")):
        with pytest.raises(SystemExit) as exit_info:
            main(["benchmark", str(tiny), *bad])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert message in err and "usage: fcn-edge benchmark" in err  # the subcommand's usage


def test_timing_clocks_follow_the_backend():
    from types import SimpleNamespace

    from fcn_edge.bench.runner import timing_clocks

    def clocks(**backend):
        return timing_clocks(SimpleNamespace(backend=SimpleNamespace(**backend)))

    trt = clocks(name="tensorrt")
    assert [trt[s] for s in ("h2d", "compute", "d2h")] == ["cuda_event"] * 3
    assert trt["preprocess"] == trt["decode"] == trt[END_TO_END] == "perf_counter"
    assert set(clocks(name="onnxruntime").values()) == {"perf_counter"}
    assert clocks(name="onnxruntime", timing_clock="cuda_event")["compute"] == "cuda_event"


def test_accuracy_through_fcn_edge_evaluate(tiny, system, tmp_path):
    """Masks labelled by the model itself at 48x64 score 100% at 48x64, through the real
    evaluator; at another size the sweep's scores are the evaluator's at that size."""
    from fcn_edge.artifacts import read_onnx_meta
    from fcn_edge.data import DatasetSpec, open_dataset, write_image, write_label_png
    from fcn_edge.data.classfile import write_class_file
    from fcn_edge.evaluate import evaluate_dataset
    from fcn_edge.runtime import load_segmenter

    palette = read_onnx_meta(tiny).palette
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    write_class_file(tmp_path / "classes.txt", CLASSES, palette)
    with load_segmenter(tiny, input_size=(48, 64)) as segmenter:
        for i, frame in enumerate(synthetic_frames(2, (72, 96), seed=3)):
            write_image(tmp_path / "images" / f"f{i}.png", frame)
            write_label_png(tmp_path / "masks" / f"f{i}.png", segmenter.segment(frame).mask, palette)
    dataset = open_dataset(tmp_path)
    report = run_sweep(expand_variants([tiny], sizes=[(48, 64), (32, 48)]), 1, FAST, system, dataset=dataset)
    same, other = (v.accuracy for v in report.variants)
    assert same.images == 2 and same.pixel_accuracy == pytest.approx(1.0) and same.mean_iu == pytest.approx(1.0)
    with load_segmenter(tiny, input_size=(32, 48)) as segmenter:
        expected = evaluate_dataset(segmenter, dataset, progress=False).metrics
    assert (other.pixel_accuracy, other.mean_iu) == (expected.pixel_accuracy, expected.mean_iu)
    assert "mean IU" in render.format_summary(report)
    # benchmark_models opens the dataset itself and honours its limit
    limited = benchmark_models([tiny], BenchConfig(input_sizes=((48, 64),), run=FAST,
                                                   data=DatasetSpec(str(tmp_path), limit=1)), system=system)
    assert limited.variants[0].accuracy.images == 1


def test_importing_the_benchmark_pulls_neither_torch_nor_matplotlib():
    import subprocess
    import sys

    code = ("import sys, fcn_edge.bench, fcn_edge.bench.report, fcn_edge.cli.benchmark; "
            "print(sorted(m for m in ('torch', 'matplotlib', 'tensorrt') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_instability_warning_and_one_hint_per_clock(tiny, system):
    config = RunConfig(iterations=6, duration_s=None, warmup=1, frame_size=(30, 40), cv_threshold=1e-12)
    report = run_sweep(expand_variants([tiny], sizes=[(48, 64), (32, 48)]), 1, config, system)
    warnings = render.warnings_of(report)
    assert len(warnings) == 4  # end-to-end and compute, for each variant
    assert all("is unstable, with coefficient of variation" in w for w in warnings)
    text = "\n".join(render.summary_lines(report, warnings=True))
    assert text.count("hint: unstable perf_counter timings") == 1 and "cpupower" in text
    assert text.count("[W] ") == 4 and "[W] " not in "\n".join(render.summary_lines(report))


def test_trtexec_beside_ours_control_flow(tiny, system, tmp_path, monkeypatch):
    """A fake: the tiny ONNX model on ORT, relabelled as the TensorRT backend, and a fake
    trtexec script printing a captured summary. Checks our wiring, not TensorRT."""
    import stat

    from test_bench_trtexec import MODERN

    import fcn_edge.bench.sweep as sweep
    from fcn_edge.runtime import load_segmenter

    def fake_tensorrt_load(variant):
        segmenter = load_segmenter(variant.model, input_size=variant.input_size)
        segmenter.backend.name = "tensorrt"  # the fake: ORT underneath
        return segmenter

    monkeypatch.setattr(sweep, "_load", fake_tensorrt_load)
    (tmp_path / "out.txt").write_text(MODERN)
    script = tmp_path / "fake_trtexec"
    script.write_text(f'#!/bin/sh\necho "$@" > "{tmp_path}/args.txt"\ncat "{tmp_path}/out.txt"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)

    report = run_sweep([Variant(tiny, input_size=(48, 64))], 1, FAST, system, trtexec=True,
                       trtexec_executable=str(script))
    (variant,) = report.variants
    assert variant.trtexec.gpu_compute_mean_ms == 2.4125
    assert "--shapes=input:1x3x48x64" in (tmp_path / "args.txt").read_text()
    assert variant.latency_run.clocks["compute"] == "cuda_event"
    summary = render.format_summary(report)
    ratio = variant.latency_run.end_to_end.mean / 2.4125
    assert "trtexec GPU ms" in summary and f"{ratio:.2f}x" in summary
    assert "overhead ratio" in render.format_variant(variant)
    data = report.as_dict()
    assert schema_errors(data) == [] and data["variants"][0]["trtexec"]["overhead_ratio"] == pytest.approx(ratio)


def test_trtexec_skipped_for_other_backends(tiny, system):
    report = run_sweep([Variant(tiny)], 1, FAST, system, trtexec=True, trtexec_executable="/nonexistent")
    assert report.variants[0].trtexec is None
    assert "trtexec runs TensorRT engines" in report.variants[0].notes[0]


def test_round_config_shares_out_the_budget():
    config = RunConfig(iterations=7, duration_s=None, warmup=4, rounds=3)
    shares = [config.round_config(i) for i in range(3)]
    assert [c.iterations for c in shares] == [3, 2, 2]
    assert [c.warmup for c in shares] == [4, 1, 1] and all(c.rounds == 1 for c in shares)
    timed = RunConfig(duration_s=3.0, min_iterations=10, rounds=4).round_config(2)
    assert timed.duration_s == 0.75 and timed.min_iterations == 3
    with pytest.raises(BenchmarkError, match="cannot be split"):
        RunConfig(iterations=2, duration_s=None, rounds=3)


def test_interleaved_rounds_pool_samples(tiny, system):
    config = RunConfig(iterations=7, duration_s=None, warmup=1, frame_size=(30, 40), rounds=3)
    seen = []
    report = run_sweep(expand_variants([tiny], sizes=[(48, 64), (32, 48)]), 2, config, system,
                       on_result=seen.append)
    assert [v.input_size for v in seen] == [(48, 64), (32, 48)]
    for variant in report.variants:
        assert "3 rounds interleaved" in variant.notes[0]
        for run in variant.runs:
            assert run.iterations == 7 and len(run.samples_ms) == 7
            assert all(len(v) == 7 for v in run.stage_samples_ms.values())
            assert_sane(run.end_to_end)
            assert run.throughput_fps == pytest.approx(7 * run.batch / run.wall_s)
    assert schema_errors(report.as_dict()) == []


def test_merge_runs_recomputes_statistics(tiny):
    from fcn_edge.bench.runner import merge_runs
    from fcn_edge.runtime import load_segmenter

    with load_segmenter(tiny) as segmenter:
        a = run_benchmark(segmenter, 1, RunConfig(iterations=3, duration_s=None, warmup=0, frame_size=(30, 40)))
        b = run_benchmark(segmenter, 1, RunConfig(iterations=5, duration_s=None, warmup=0, frame_size=(30, 40)))
        two = run_benchmark(segmenter, 2, RunConfig(iterations=2, duration_s=None, warmup=0, frame_size=(30, 40)))
    merged = merge_runs([a, b])
    assert merged.iterations == 8 and merged.wall_s == pytest.approx(a.wall_s + b.wall_s)
    assert merged.end_to_end.max == max(a.end_to_end.max, b.end_to_end.max)
    assert merged.stages["compute"].mean == pytest.approx(
        (a.stages["compute"].mean * 3 + b.stages["compute"].mean * 5) / 8)
    with pytest.raises(BenchmarkError, match="batches"):
        merge_runs([a, two])
