"""trtexec's summary parser on captured text written from its documented format, and the
control flow of ``run_trtexec`` through a fake trtexec script (a stand-in, named as one)."""

import os
import stat
import textwrap

import pytest

from fcn_edge.bench.trtexec import TrtexecError, parse_trtexec_output, run_trtexec, trtexec_command

# TensorRT 8.6/10.x style, as trtexec prints after `=== Performance summary ===`.
MODERN = textwrap.dedent("""\
    &&&& RUNNING TensorRT.trtexec [TensorRT v100300] # trtexec --loadEngine=fcn.engine
    [11/20/2026-10:00:00] [I] TensorRT version: 10.3.0
    [11/20/2026-10:00:03] [I] === Performance summary ===
    [11/20/2026-10:00:03] [I] Throughput: 412.7 qps
    [11/20/2026-10:00:03] [I] Latency: min = 2.51 ms, max = 3.9 ms, mean = 2.62 ms, median = 2.6 ms, percentile(90%) = 2.7 ms, percentile(95%) = 2.75 ms, percentile(99%) = 3.1 ms
    [11/20/2026-10:00:03] [I] Enqueue Time: min = 0.3 ms, max = 0.9 ms, mean = 0.35 ms, median = 0.34 ms, percentile(90%) = 0.4 ms, percentile(95%) = 0.42 ms, percentile(99%) = 0.6 ms
    [11/20/2026-10:00:03] [I] H2D Latency: min = 0.05 ms, max = 0.09 ms, mean = 0.0612 ms, median = 0.06 ms, percentile(90%) = 0.07 ms, percentile(95%) = 0.075 ms, percentile(99%) = 0.08 ms
    [11/20/2026-10:00:03] [I] GPU Compute Time: min = 2.38 ms, max = 3.71 ms, mean = 2.4125 ms, median = 2.4 ms, percentile(90%) = 2.45 ms, percentile(95%) = 2.5 ms, percentile(99%) = 2.9 ms
    [11/20/2026-10:00:03] [I] D2H Latency: min = 0.02 ms, max = 0.04 ms, mean = 0.025 ms, median = 0.024 ms, percentile(90%) = 0.03 ms, percentile(95%) = 0.031 ms, percentile(99%) = 0.035 ms
    [11/20/2026-10:00:03] [I] Total Host Walltime: 3.00211 s
    [11/20/2026-10:00:03] [I] Total GPU Compute Time: 2.99 s
    [11/20/2026-10:00:03] [W] * GPU compute time is unstable, with coefficient of variance = 3.21%.
    [11/20/2026-10:00:03] [W]   If not already in use, locking GPU clock frequency or adding --useSpinWait may improve the stability.
    &&&& PASSED TensorRT.trtexec [TensorRT v100300] # trtexec --loadEngine=fcn.engine
""")

# TensorRT 7.x printed a block per metric.
LEGACY = textwrap.dedent("""\
    [05/10/2021-12:24:30] [I] Host Latency
    [05/10/2021-12:24:30] [I] min: 3.5 ms (end to end 5.9 ms)
    [05/10/2021-12:24:30] [I] max: 4.2 ms (end to end 6.5 ms)
    [05/10/2021-12:24:30] [I] mean: 3.58 ms (end to end 6.07 ms)
    [05/10/2021-12:24:30] [I] median: 3.57 ms (end to end 6.06 ms)
    [05/10/2021-12:24:30] [I] percentile: 3.9 ms at 99% (end to end 6.4 ms at 99%)
    [05/10/2021-12:24:30] [I] throughput: 280.5 qps
    [05/10/2021-12:24:30] [I] walltime: 3.0 s
    [05/10/2021-12:24:30] [I] GPU Compute
    [05/10/2021-12:24:30] [I] min: 2.98 ms
    [05/10/2021-12:24:30] [I] max: 3.6 ms
    [05/10/2021-12:24:30] [I] mean: 3.05 ms
    [05/10/2021-12:24:30] [I] median: 3.04 ms
    [05/10/2021-12:24:30] [I] percentile: 3.3 ms at 99%
    [05/10/2021-12:24:30] [I] total compute time: 2.9 s
""")


def test_modern_summary():
    s = parse_trtexec_output(MODERN)
    gpu = s.metrics["gpu_compute"]
    assert gpu == {"min": 2.38, "max": 3.71, "mean": 2.4125, "p50": 2.4, "p90": 2.45, "p95": 2.5, "p99": 2.9}
    assert s.metrics["latency"]["mean"] == 2.62
    assert s.metrics["h2d"]["mean"] == 0.0612 and s.metrics["d2h"]["p99"] == 0.035
    assert s.throughput_qps == 412.7
    assert s.tensorrt_version == "10.3.0"
    assert s.unstable_cv == pytest.approx(0.0321)
    assert s.gpu_compute_mean_ms == 2.4125
    assert s.overhead_ratio(4.825) == pytest.approx(2.0)


def test_tensorrt_8_summary_with_only_p99():
    text = ("[I] GPU Compute Time: min = 0.338623 ms, max = 0.656982 ms, mean = 0.499129 ms, "
            "median = 0.499756 ms, percentile(99%) = 0.593628 ms\n[I] Throughput: 1.24304e+04 qps\n")
    s = parse_trtexec_output(text)
    assert s.metrics["gpu_compute"]["p99"] == 0.593628 and "p90" not in s.metrics["gpu_compute"]
    assert s.throughput_qps == pytest.approx(12430.4)


def test_legacy_summary():
    s = parse_trtexec_output(LEGACY)
    assert s.metrics["gpu_compute"] == {"min": 2.98, "max": 3.6, "mean": 3.05, "p50": 3.04, "p99": 3.3}
    assert s.metrics["latency"]["mean"] == 3.58
    assert s.throughput_qps == 280.5


def test_no_summary_is_an_error():
    with pytest.raises(TrtexecError, match="no 'GPU Compute Time' summary"):
        parse_trtexec_output("[E] Error[1]: engine deserialization failed\n&&&& FAILED")


def test_command_line():
    argv = trtexec_command("trtexec", "m.engine", "input", (1, 480, 640, 3), dynamic=True, duration_s=2.4)
    assert argv == ("trtexec", "--loadEngine=m.engine", "--duration=2", "--warmUp=200", "--shapes=input:1x480x640x3")
    assert not any(a.startswith("--shapes") for a in trtexec_command("t", "m", "input", (1, 3, 8, 8), dynamic=False))


def _fake_trtexec(tmp_path, body: str, code: int = 0):
    """A shell script standing in for trtexec: prints captured text, records its arguments."""
    log = tmp_path / "fake_trtexec.args"
    out = tmp_path / "fake_trtexec.out"
    out.write_text(body)
    script = tmp_path / "fake_trtexec"
    script.write_text(f'#!/bin/sh\necho "$@" > "{log}"\ncat "{out}"\nexit {code}\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script, log


@pytest.mark.skipif(os.name != "posix", reason="the fake trtexec is a POSIX shell script")
def test_run_trtexec_control_flow(tmp_path):
    script, log = _fake_trtexec(tmp_path, MODERN)
    summary = run_trtexec(tmp_path / "m.engine", "input", (2, 3, 64, 80), dynamic=True,
                          duration_s=1, executable=str(script))
    assert summary.gpu_compute_mean_ms == 2.4125
    assert summary.command[0] == str(script)
    assert "--shapes=input:2x3x64x80" in log.read_text()

    failing, _ = _fake_trtexec(tmp_path, "[E] could not deserialize\n", code=1)
    with pytest.raises(TrtexecError, match="failed with exit code 1"):
        run_trtexec(tmp_path / "m.engine", "input", (1, 3, 8, 8), False, executable=str(failing))


def test_version_from_the_banner_alone():
    from fcn_edge.bench.trtexec import decode_version_code

    banner_only = MODERN.replace("[I] TensorRT version: 10.3.0", "[I] (no version line)")
    assert parse_trtexec_output(banner_only).tensorrt_version == "10.3.0"
    assert decode_version_code("8601") == "8.6.1"
    assert decode_version_code("101000") == "10.10.0"
