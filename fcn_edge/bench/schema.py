"""The JSON schema of ``fcn-edge benchmark --json``, and a small validator for it.

The schema is standard JSON Schema (draft 2020-12), so any validator can check a report;
:func:`validate_report` covers the subset used here (type, required, properties, items,
enum, minimum) so fcn-edge needs no extra package to check its own output.
"""

from __future__ import annotations

from typing import Any, Dict, List

_NUM = {"type": "number", "minimum": 0}
_STATS = {
    "type": "object",
    "required": ["count", "mean", "std", "min", "max", "p50", "p90", "p95", "p99", "cv"],
    "properties": {"count": {"type": "integer", "minimum": 1},
                   **{k: _NUM for k in ("mean", "std", "min", "max", "p50", "p90", "p95", "p99", "cv")}},
}
_CLOCK = {"type": "string", "enum": ["perf_counter", "cuda_event"]}
_STAGE_KEYS = ["end_to_end", "preprocess", "h2d", "compute", "d2h", "decode"]
_RUN = {
    "type": "object",
    "required": ["batch", "iterations", "wall_s", "throughput_fps", "latency_ms", "clocks", "warnings"],
    "properties": {
        "batch": {"type": "integer", "minimum": 1},
        "iterations": {"type": "integer", "minimum": 1},
        "wall_s": _NUM,
        "throughput_fps": _NUM,
        "latency_ms": {"type": "object", "required": _STAGE_KEYS,
                       "properties": {k: _STATS for k in _STAGE_KEYS}},
        "clocks": {"type": "object", "required": _STAGE_KEYS, "properties": {k: _CLOCK for k in _STAGE_KEYS}},
        "warnings": {"type": "array", "items": {"type": "string"}},
        "samples_ms": {"type": "array", "items": _NUM},
    },
}
_SIZE = {"type": "array", "items": {"type": "integer", "minimum": 1}}
_VARIANT = {
    "type": "object",
    "required": ["model", "architecture", "precision", "backend", "backend_description", "input_size",
                 "fused_preprocess", "fused_argmax", "runs", "accuracy", "trtexec", "notes"],
    "properties": {
        "model": {"type": "string"},
        "architecture": {"type": "string"},
        "precision": {"type": "string", "enum": ["fp32", "fp16", "int8"]},
        "backend": {"type": "string", "enum": ["tensorrt", "onnxruntime", "torch", "triton"]},
        "backend_description": {"type": "string"},
        "input_size": _SIZE,
        "fused_preprocess": {"type": "boolean"},
        "fused_argmax": {"type": "boolean"},
        "runs": {"type": "array", "items": _RUN},
        "accuracy": {"type": ["object", "null"],
                     "required": ["mean_iu", "pixel_accuracy", "images", "dataset"],
                     "properties": {"mean_iu": _NUM, "pixel_accuracy": _NUM,
                                    "images": {"type": "integer", "minimum": 0},
                                    "dataset": {"type": "string"}}},
        "trtexec": {"type": ["object", "null"],
                    "required": ["metrics", "throughput_qps", "overhead_ratio"],
                    "properties": {"overhead_ratio": _NUM}},
        "notes": {"type": "array", "items": {"type": "string"}},
        # a triton:// model: the server's counters per batch size (Triton statistics API)
        "server": {"type": ["object", "null"],
                   "additionalProperties": {"type": "object",
                                            "required": ["inference_count", "execution_count", "queue_ms", "compute_ms"]}},
    },
}
REPORT_SCHEMA: Dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "fcn-edge benchmark report",
    "type": "object",
    "required": ["schema_version", "tool", "created", "system", "config", "variants"],
    "properties": {
        "schema_version": {"type": "integer", "enum": [1]},
        "tool": {"type": "string"},
        "created": {"type": "string"},
        "system": {
            "type": "object",
            "required": ["os", "python", "cpu", "cpu_count", "gpu", "tensorrt", "onnxruntime", "jetson"],
            "properties": {
                "cpu": {"type": "string"}, "cpu_count": {"type": "integer", "minimum": 0},
                "gpu": {"type": ["string", "null"]}, "tensorrt": {"type": ["string", "null"]},
                "onnxruntime": {"type": ["string", "null"]},
                "jetson": {"type": ["object", "null"],
                           "required": ["l4t", "power_mode", "clocks_pinned", "hint"],
                           "properties": {"clocks_pinned": {"type": ["boolean", "null"]}}},
            },
        },
        "config": {"type": "object", "required": ["batch", "warmup", "frame_size"],
                   "properties": {"batch": {"type": "integer", "minimum": 1},
                                  "warmup": {"type": "integer", "minimum": 0}, "frame_size": _SIZE}},
        "variants": {"type": "array", "items": _VARIANT},
    },
}

_TYPES = {
    "object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
    "integer": int, "number": (int, float),
}


def _is(value: Any, kind: str) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[kind])


def schema_errors(data: Any, schema: Dict[str, Any] = REPORT_SCHEMA, where: str = "$") -> List[str]:
    """Every place ``data`` breaks ``schema``, as 'path: problem' strings; empty when valid."""
    errors: List[str] = []
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_is(data, k) for k in kinds):
            return [f"{where}: expected {' or '.join(kinds)}, got {type(data).__name__}"]
    if data is None:
        return errors
    if "enum" in schema and data not in schema["enum"]:
        errors.append(f"{where}: {data!r} is not one of {schema['enum']}")
    if "minimum" in schema and isinstance(data, (int, float)) and data < schema["minimum"]:
        errors.append(f"{where}: {data} is below the minimum {schema['minimum']}")
    if isinstance(data, dict):
        for key in schema.get("required", ()):
            if key not in data:
                errors.append(f"{where}: missing required key {key!r}")
        for key, sub in schema.get("properties", {}).items():
            if key in data:
                errors.extend(schema_errors(data[key], sub, f"{where}.{key}"))
    if isinstance(data, list) and "items" in schema:
        for i, item in enumerate(data):
            errors.extend(schema_errors(item, schema["items"], f"{where}[{i}]"))
    return errors
