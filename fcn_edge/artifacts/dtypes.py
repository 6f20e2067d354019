"""Tensor element types by one name each (numpy's), from ONNX, ONNX Runtime and TensorRT spellings.

ModelMeta, sidecars and messages say ``uint8``/``float16``/``int32``; the three engines
spell them ``TensorProto.UINT8`` (an int), ``tensor(uint8)`` and ``DataType.UINT8``.
"""

from __future__ import annotations

from typing import Any

# onnx.TensorProto.DataType value -> name
ONNX_ELEM_TYPES = {
    1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
    9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 16: "bfloat16",
}
# ONNX Runtime NodeArg.type -> name
ORT_TYPES = {
    "tensor(float)": "float32", "tensor(float16)": "float16", "tensor(uint8)": "uint8",
    "tensor(int8)": "int8", "tensor(int32)": "int32", "tensor(int64)": "int64",
    "tensor(bool)": "bool", "tensor(double)": "float64", "tensor(bfloat16)": "bfloat16",
}
# tensorrt.DataType member name -> name. BF16/FP8/INT4 have no numpy type the runtime feeds.
TRT_TYPES = {
    "FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT8": "int8", "UINT8": "uint8",
    "INT32": "int32", "INT64": "int64", "BOOL": "bool", "FP8": "float8", "INT4": "int4",
}


def onnx_dtype_name(elem_type: int) -> str:
    return ONNX_ELEM_TYPES.get(int(elem_type), f"onnx elem_type {elem_type}")


def ort_dtype_name(type_text: str) -> str:
    return ORT_TYPES.get(type_text, type_text)


def trt_dtype_name(trt_dtype: Any) -> str:
    """``trt.DataType.HALF`` (or its repr) -> "float16"."""
    member = getattr(trt_dtype, "name", None) or str(trt_dtype).split(".")[-1]
    return TRT_TYPES.get(member, member.lower())


# name -> Triton's DataType (model configs); requests spell it without "TYPE_" ("UINT8").
TRITON_TYPES = {
    "bool": "TYPE_BOOL", "uint8": "TYPE_UINT8", "int8": "TYPE_INT8", "int16": "TYPE_INT16",
    "int32": "TYPE_INT32", "int64": "TYPE_INT64", "float16": "TYPE_FP16", "float32": "TYPE_FP32",
    "float64": "TYPE_FP64", "bfloat16": "TYPE_BF16",
}


def triton_dtype_name(type_name: str) -> str:
    """``TYPE_UINT8`` or ``UINT8`` -> "uint8"."""
    wanted = type_name if type_name.startswith("TYPE_") else f"TYPE_{type_name}"
    for name, triton in TRITON_TYPES.items():
        if triton == wanted:
            return name
    return type_name
