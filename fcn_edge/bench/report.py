"""Benchmark reports as text tables, CSV and JSON. Formatting only: no timing here."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import List, Sequence

from fcn_edge.atomic import write_text_atomic
from fcn_edge.bench.runner import END_TO_END, STAGES, RunResult
from fcn_edge.bench.sweep import BenchReport, VariantResult

STAT_COLUMNS = ("mean", "min", "max", "p50", "p90", "p95", "p99")


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool] = ()) -> str:
    """Plain aligned columns; numeric columns (``right``) are right-aligned."""
    right = list(right) or [False] * len(headers)
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(headers)]

    def line(cells):
        return "  ".join(str(c).rjust(w) if r else str(c).ljust(w)
                         for c, w, r in zip(cells, widths, right)).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out.extend(line(r) for r in rows)
    return "\n".join(out)


def _ms(value: float) -> str:
    if value == 0:
        return "0"
    return f"{value:.3f}" if value < 10 else f"{value:.2f}" if value < 1000 else f"{value:.0f}"


def format_run(run: RunResult) -> str:
    """trtexec-like block: one row per stage and one for end-to-end, in ms per call."""
    rows = []
    for name in STAGES + (END_TO_END,):
        stats = run.end_to_end if name == END_TO_END else run.stages[name]
        label = "end-to-end" if name == END_TO_END else name
        rows.append([label, run.clocks[name], *(_ms(getattr(stats, c)) for c in STAT_COLUMNS),
                     f"{stats.cv * 100:.1f}%"])
    headers = ["stage", "clock", *(f"{c} ms" for c in STAT_COLUMNS), "cv"]
    head = (f"batch {run.batch}: {run.iterations} calls in {run.wall_s:.2f} s, "
            f"throughput {run.throughput_fps:.1f} frames/s; per-call latency:")
    table = format_table(headers, rows, [False, False] + [True] * (len(headers) - 2))
    tail = f"(end-to-end minus the stages: {run.overhead_ms:.3f} ms/call of Python and result objects)"
    return "\n".join([head, table, tail])


def format_variant(variant: VariantResult) -> str:
    fused = []
    if variant.fused_preprocess:
        fused.append("fused preprocessing")
    if variant.fused_argmax:
        fused.append("fused argmax")
    lines = [
        f"== {Path(variant.model).name}: {variant.architecture} {variant.precision} "
        f"{variant.input_size[0]}x{variant.input_size[1]} on {variant.backend_description}"
        + (f" ({', '.join(fused)})" if fused else "") + " ==",
    ]
    for run in variant.runs:
        lines.append(format_run(run))
    if variant.accuracy:
        acc = variant.accuracy
        lines.append(f"accuracy: mean IU {acc.mean_iu * 100:.2f}%, pixel accuracy "
                     f"{acc.pixel_accuracy * 100:.2f}% on {acc.images} images of {acc.dataset}")
    for batch, stats in variant.server.items():
        run = variant.run_at(batch)
        lines.append(f"server at batch {batch} (Triton statistics, warm-up included): {stats.describe()}; "
                     f"client end-to-end mean {run.end_to_end.mean:.2f} ms per call")
    if variant.trtexec:
        t = variant.trtexec
        ours = variant.latency_run.end_to_end.mean
        lines.append(f"trtexec GPU compute mean {t.gpu_compute_mean_ms:.3f} ms vs our end-to-end "
                     f"mean {ours:.3f} ms: overhead ratio {t.overhead_ratio(ours):.2f}x")
    for warning in variant.warnings:
        lines.append(f"[W] {warning}")
    for note in variant.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def summary_headers(report: BenchReport) -> List[str]:
    b = report.batch
    headers = ["model", "precision", "input", "backend", "e2e mean ms", "p50 ms", "p90 ms",
               "p99 ms", "cv", "compute p50 ms", "fps@1"]
    if b > 1:
        headers.append(f"fps@{b}")
    if report.has_accuracy:
        headers += ["mean IU", "pixel acc"]
    if any(v.trtexec for v in report.variants):
        headers += ["trtexec GPU ms", "overhead"]
    return headers


def summary_rows(report: BenchReport) -> List[List[str]]:
    rows = []
    with_trtexec = any(v.trtexec for v in report.variants)
    for v in report.variants:
        run = v.latency_run
        e2e = run.end_to_end
        row = [Path(v.model).name, v.precision, f"{v.input_size[0]}x{v.input_size[1]}", v.backend,
               _ms(e2e.mean), _ms(e2e.p50), _ms(e2e.p90), _ms(e2e.p99), f"{e2e.cv * 100:.1f}%",
               _ms(run.stages["compute"].p50), f"{run.throughput_fps:.1f}"]
        if report.batch > 1:
            big = v.run_at(report.batch)
            row.append(f"{big.throughput_fps:.1f}" if big else "-")
        if report.has_accuracy:
            row += ([f"{v.accuracy.mean_iu * 100:.2f}%", f"{v.accuracy.pixel_accuracy * 100:.2f}%"]
                    if v.accuracy else ["-", "-"])
        if with_trtexec:
            row += ([_ms(v.trtexec.gpu_compute_mean_ms), f"{v.trtexec.overhead_ratio(e2e.mean):.2f}x"]
                    if v.trtexec else ["-", "-"])
        rows.append(row)
    return rows


def format_summary(report: BenchReport) -> str:
    headers = summary_headers(report)
    return format_table(headers, summary_rows(report), [False] * 4 + [True] * (len(headers) - 4))


def input_description(cfg) -> str:
    if cfg.image:
        return f"the image {cfg.image}"
    return f"synthetic {cfg.frame_size[0]}x{cfg.frame_size[1]} BGR frames (height x width)"


def system_lines(system) -> List[str]:
    """The machine, and on a Jetson whose clocks float, the warning to pin them."""
    lines = ["System", *("  " + line for line in system.lines())]
    if system.jetson and system.jetson.hint:
        lines.append(f"[W] {system.jetson.hint}")
    return lines


def timing_line(cfg) -> str:
    """What one variant's timing is: the bound, the warm-up and the frames fed."""
    bound = f"{cfg.iterations} calls" if cfg.iterations else f"{cfg.duration_s:g} s (at least {cfg.min_iterations} calls)"
    if cfg.rounds > 1:
        bound += f" in {cfg.rounds} interleaved rounds"
    return (f"Timing each variant: {bound} per batch size after {cfg.warmup} warm-up calls, on "
            f"{input_description(cfg)}; latencies are per call, in ms")


def summary_lines(report: BenchReport, warnings: bool = False) -> List[str]:
    """The summary table, the variants' instability warnings (when asked: the detailed
    blocks already show them) and one hint per unstable clock."""
    title = "Summary (batch 1 latency" + (
        f"; throughput at batch 1 and {report.batch}" if report.batch > 1 else "") + ")"
    lines = [title, format_summary(report)]
    if warnings:
        lines += [f"[W] {warning}" for warning in warnings_of(report)]
    lines += [f"hint: {hint}" for hint in stability_hints(report)]
    return lines


CSV_COLUMNS = (
    "model", "architecture", "precision", "backend", "input_height", "input_width", "batch",
    "iterations", "wall_s", "throughput_fps", "stage", "clock", "count", "mean_ms", "std_ms",
    "min_ms", "max_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "cv", "mean_iu", "pixel_accuracy",
)


def report_csv(report: BenchReport) -> str:
    """Long format: one row per variant x batch x stage (end_to_end included)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for v in report.variants:
        for run in v.runs:
            for name in (END_TO_END,) + STAGES:
                stats = run.end_to_end if name == END_TO_END else run.stages[name]
                writer.writerow([
                    v.model, v.architecture, v.precision, v.backend, v.input_size[0], v.input_size[1],
                    run.batch, run.iterations, f"{run.wall_s:.6f}", f"{run.throughput_fps:.4f}",
                    name, run.clocks[name], stats.count, *(f"{getattr(stats, k):.6f}" for k in
                    ("mean", "std", "min", "max", "p50", "p90", "p95", "p99", "cv")),
                    f"{v.accuracy.mean_iu:.6f}" if v.accuracy else "",
                    f"{v.accuracy.pixel_accuracy:.6f}" if v.accuracy else "",
                ])
    return buffer.getvalue()


def write_csv(report: BenchReport, path: Path) -> Path:
    return write_text_atomic(path, report_csv(report))


def warnings_of(report: BenchReport) -> List[str]:
    out: List[str] = []
    for v in report.variants:
        out += [f"{v.label}: {w}" for w in v.warnings]
    return out


def stability_hints(report: BenchReport) -> List[str]:
    """One hint per clock that produced an instability warning anywhere in the report."""
    from fcn_edge.bench.stats import stability_hint

    clocks = []
    for v in report.variants:
        for run in v.runs:
            clocks += [c for c in run.unstable_clocks if c not in clocks]
    return [f"unstable {clock} timings: {stability_hint(clock)}" for clock in clocks]
