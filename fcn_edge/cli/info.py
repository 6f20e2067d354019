"""``fcn-edge info MODEL.onnx|MODEL.engine``: ModelMeta, I/O tensors and build facts.

The facts come from :func:`fcn_edge.engine.inspect.inspect_model`; this prints them as
text, or as one JSON object with ``--json``. Exit status 1 when an engine cannot run here
(built for another TensorRT or GPU, or not the engine its sidecar describes).
"""

from __future__ import annotations

import argparse
from typing import List

from fcn_edge.cli.args import add_json, add_model_argument, write_json_report


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "info",
        help="show an ONNX's or engine's metadata and I/O tensors",
        description="Print ModelMeta, the I/O tensors and (for engines) the build facts of an fcn-edge "
        "ONNX or TensorRT engine.",
    )
    add_model_argument(p, "MODEL.onnx or MODEL.engine (with MODEL.engine.json beside it)")
    add_json(p, "write the facts as one JSON object to FILE ('-': stdout, instead of the text)")
    p.add_argument("--fusion", action="store_true",
                   help="for an ONNX: how TensorRT would fuse its Q/DQ pairs and how much runs in INT8/FP16/FP32")
    return p


def _meta_lines(meta) -> List[str]:
    if meta is None:
        return ["meta: none"]
    lines = [
        f"architecture      {meta.architecture}" + (f" ({meta.dataset})" if meta.dataset else ""),
        f"classes           {meta.num_classes}: {', '.join(meta.class_names[:8])}"
        + (" ..." if meta.num_classes > 8 else ""),
        f"input             {meta.input_name}: {meta.input_dtype} {meta.input_layout} {meta.channel_order}"
        + (" (fused preprocessing)" if meta.fused_preprocess else f", mean {meta.mean} std {meta.std}"),
        f"sizes             min {meta.size_range[0]} opt {meta.size_range[1]} max {meta.size_range[2]}, "
        f"max batch {meta.max_batch}, resize {meta.resize_mode}",
        f"output            {meta.output_name}: {meta.output_kind} ({meta.output_dtype})",
        f"precision         {meta.precision}",
    ]
    if meta.history:
        lines.append("history           " + " | ".join(meta.history))
    return lines


def _onnx_lines(info) -> List[str]:
    from fcn_edge.artifacts.shapes import format_shape

    facts = info.onnx
    lines = [f"meta problem      {info.meta_error}"] if info.meta_error else []
    lines.append(f"graph precision   {facts.precision} ({facts.describe_precision()}), {len(facts.node_ops)} nodes")
    for group, tensors in (("input", facts.inputs), ("output", facts.outputs)):
        lines += [f"{group:<17} {t.name}: {t.dtype} {format_shape(t.shape)}" for t in tensors]
    return lines


def _engine_lines(info) -> List[str]:
    from fcn_edge.artifacts.shapes import format_shape

    engine = info.engine
    lines = [f"sidecar           {info.meta_error}"] if info.meta_error else []
    record = engine.record
    if record is not None:
        lines += [
            f"built with        TensorRT {record.tensorrt_version} on {record.gpu_name} "
            f"(compute capability {record.compute_capability}), {record.built_at}, {record.build_seconds:.1f} s",
            f"engine precision  {record.precision}, {record.typing} typing"
            + (f", int8 {record.int8_mode}" if record.int8_mode else ""),
            f"flags             {', '.join(record.flags) or '(none)'}",
        ]
        if record.version_compatible or record.hardware_compatibility:
            lines.append("portable          " + ", ".join(filter(None, (
                f"version-compatible (lean runtime {record.lean_runtime})" if record.version_compatible else "",
                f"hardware {record.hardware_compatibility}" if record.hardware_compatibility else ""))))
        if record.precision_check:
            lines.append(f"precision check   {record.precision_check}: {record.precision_detail}")
        lines += [f"profile           {p.input_name}: min {format_shape(p.min)} opt {format_shape(p.opt)} "
                  f"max {format_shape(p.max)}" for p in record.profiles]
        lines.append(f"ONNX              {record.onnx_path} (sha256 {record.onnx_sha256[:12]})")
        if record.rebuild_command:
            lines.append(f"rebuild           {record.rebuild_command}")
    live = engine.live
    summary = live.summary if live is not None else None
    if summary is not None:
        tensors, source = [t.to_dict() for t in summary.io_tensors], "engine"
    else:
        tensors, source = list(record.io_tensors) if record is not None else [], "sidecar"
    for t in tensors:
        profile = ""
        if t.get("profile"):
            profile = "  profile " + " / ".join(format_shape(t["profile"][k]) for k in ("min", "opt", "max"))
        lines.append(f"{t['mode']:<7} ({source}) {t['name']}: {t['dtype']} {format_shape(t['shape'])}{profile}")
    if summary is not None and summary.layer_precisions:
        lines.append(f"layers            {summary.layer_count}: "
                     + ", ".join(f"{k} {v}" for k, v in sorted(summary.layer_precisions.items())))
    if engine.file_problem:
        lines.append(f"problem           {engine.file_problem}")
    if engine.live_unavailable:
        lines.append(f"note              {engine.live_unavailable}")
    if live is not None:
        if live.gpu_name:
            state = {True: "matches", False: "does NOT match", None: "not checked (no sidecar)"}[live.compatible]
            lines.append(f"this machine      TensorRT {live.tensorrt_version}, {live.gpu_name} "
                         f"({live.compute_capability}): {state}")
        if live.problem:
            lines.append(f"problem           {live.problem}")
    return lines


def run(args) -> int:
    from fcn_edge.engine.inspect import inspect_model

    info = inspect_model(args.model)
    fusion = None
    if args.fusion and info.onnx is not None:
        from fcn_edge.precision.fusion import fusion_report

        fusion = fusion_report(info.path)
    write_json_report(args.json, {**info.to_dict(), **({"fusion": fusion.as_dict()} if fusion else {})})
    if args.json != "-":
        print(f"{info.kind:<17} {info.path}")
        for line in _meta_lines(info.meta) + (_onnx_lines(info) if info.onnx is not None else _engine_lines(info)):
            print(line)
        if fusion is not None:
            from fcn_edge.precision.fusion import format_fusion_report

            print("\n".join(format_fusion_report(fusion)))
    return 1 if info.problems else 0
