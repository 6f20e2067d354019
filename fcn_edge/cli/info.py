"""``fcn-edge info MODEL.onnx|MODEL.engine``: ModelMeta, I/O tensors and build facts.

For an ONNX the graph is read with onnx. For an engine the sidecar is read; when TensorRT
is installed the engine is also deserialised and its real I/O tensors shown, and the
sidecar is checked against this machine's TensorRT and GPU.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any, Dict, List

from fcn_edge.cli.args import add_json, add_model_argument, write_json_report
from fcn_edge.errors import FcnEdgeError, MetaError

log = logging.getLogger(__name__)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "info",
        help="show an ONNX's or engine's metadata and I/O tensors",
        description="Print ModelMeta, the I/O tensors and (for engines) the build facts of an fcn-edge "
        "ONNX or TensorRT engine.",
    )
    add_model_argument(p, "MODEL.onnx or MODEL.engine (with MODEL.engine.json beside it)")
    add_json(p, "write the facts as one JSON object to FILE ('-': stdout, instead of the text)")
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


def _onnx_info(path: Path) -> Dict[str, Any]:
    from fcn_edge.engine.onnx_facts import read_onnx_facts

    facts = read_onnx_facts(path)
    return {
        "kind": "onnx",
        "path": str(path),
        "sha256": facts.sha256,
        "precision_in_graph": facts.precision,
        "precision_markers": facts.describe_precision(),
        "inputs": [{"name": t.name, "shape": list(t.shape), "dtype": t.dtype} for t in facts.inputs],
        "outputs": [{"name": t.name, "shape": list(t.shape), "dtype": t.dtype} for t in facts.outputs],
        "nodes": len(facts.node_names),
        "meta": facts.meta.to_dict() if facts.meta else None,
        "meta_error": facts.meta_error,
        "_meta": facts.meta,
    }


def _engine_info(path: Path) -> Dict[str, Any]:
    from fcn_edge.artifacts import check_engine_compatible, read_engine_sidecar
    from fcn_edge.optional import is_available

    if not path.is_file():
        raise MetaError(f"{path}: no such engine file")
    info: Dict[str, Any] = {"kind": "engine", "path": str(path), "size_bytes": path.stat().st_size}
    meta = record = None
    try:
        meta, record = read_engine_sidecar(path)
        info["meta"] = meta.to_dict()
        info["engine"] = record.to_dict()
    except MetaError as exc:
        info["sidecar_error"] = str(exc)
    info["_meta"] = meta
    if not is_available("tensorrt"):
        info["live"] = "tensorrt is not installed: I/O tensors are the sidecar's record"
        if meta is None:
            raise MetaError(info["sidecar_error"] + "; and without TensorRT the engine itself cannot be read")
        return info
    import tensorrt as trt

    from fcn_edge.engine.summary import summarize_engine

    try:
        from fcn_edge.engine.cuda_driver import cuda_driver

        device = cuda_driver().facts()
        info["machine"] = {"tensorrt_version": trt.__version__, "gpu_name": device.name,
                           "compute_capability": device.capability_text}
        if record is not None:
            check_engine_compatible(record, trt.__version__, device.name, device.compute_capability, path)
            info["compatible"] = True
        summary = summarize_engine(trt, path.read_bytes(), str(path))
        info["live_io_tensors"] = [t.to_dict() for t in summary.io_tensors]
        info["layer_count"] = summary.layer_count
        info["layer_precisions"] = summary.layer_precisions
    except FcnEdgeError as exc:
        info["compatible"] = False
        info["live_error"] = str(exc)
    return info


def _print_text(info: Dict[str, Any]) -> None:
    print(f"{info['kind']:<17} {info['path']}")
    for line in _meta_lines(info.get("_meta")):
        print(line)
    if info["kind"] == "onnx":
        if info["meta_error"]:
            print(f"meta problem      {info['meta_error']}")
        print(f"graph precision   {info['precision_in_graph']} ({info['precision_markers']}), {info['nodes']} nodes")
        for group in ("inputs", "outputs"):
            for t in info[group]:
                shape = "x".join("?" if d < 0 else str(d) for d in t["shape"])
                print(f"{group[:-1]:<17} {t['name']}: {t['dtype']} {shape}")
        return
    if "sidecar_error" in info:
        print(f"sidecar           {info['sidecar_error']}")
    engine = info.get("engine")
    if engine:
        print(f"built with        TensorRT {engine['tensorrt_version']} on {engine['gpu_name']} "
              f"(compute capability {engine['compute_capability']}), {engine['built_at']}, {engine['build_seconds']:.1f} s")
        print(f"engine precision  {engine['precision']}, {engine['typing']} typing"
              + (f", int8 {engine['int8_mode']}" if engine.get("int8_mode") else ""))
        print(f"flags             {', '.join(engine['flags']) or '(none)'}")
        for p in engine["profiles"]:
            fmt = lambda s: "x".join(str(d) for d in s)  # noqa: E731
            print(f"profile           {p['input']}: min {fmt(p['min'])} opt {fmt(p['opt'])} max {fmt(p['max'])}")
        print(f"ONNX              {engine['onnx_path']} (sha256 {engine['onnx_sha256'][:12]})")
        if engine.get("rebuild_command"):
            print(f"rebuild           {engine['rebuild_command']}")
    tensors = info.get("live_io_tensors") or (engine or {}).get("io_tensors") or []
    source = "engine" if info.get("live_io_tensors") else "sidecar"
    for t in tensors:
        shape = "x".join("?" if d < 0 else str(d) for d in t["shape"])
        profile = ""
        if t.get("profile"):
            profile = "  profile " + " / ".join("x".join(str(d) for d in t["profile"][k]) for k in ("min", "opt", "max"))
        print(f"{t['mode']:<7} ({source}) {t['name']}: {t['dtype']} {shape}{profile}")
    if info.get("layer_precisions"):
        print(f"layers            {info['layer_count']}: "
              + ", ".join(f"{k} {v}" for k, v in sorted(info["layer_precisions"].items())))
    if "live" in info:
        print(f"note              {info['live']}")
    if "machine" in info:
        state = "matches" if info.get("compatible") else "does NOT match"
        m = info["machine"]
        print(f"this machine      TensorRT {m['tensorrt_version']}, {m['gpu_name']} ({m['compute_capability']}): {state}")
    if "live_error" in info:
        print(f"problem           {info['live_error']}")


def run(args) -> int:
    path = Path(args.model)
    if path.suffix.lower() == ".onnx":
        info = _onnx_info(path)
    else:
        info = _engine_info(path)
    write_json_report(args.json, {k: v for k, v in info.items() if not k.startswith("_")})
    if args.json != "-":
        _print_text(info)
    return 1 if info.get("compatible") is False else 0
