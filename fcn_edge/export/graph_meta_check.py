"""Does a ModelMeta describe the graph it travels with? Names, dtypes, layouts, sizes, classes.

ModelMeta is written by export and read by every later step; a meta that names an output
the graph does not have, or lists 19 classes for a 21-channel output, would otherwise pass
silently until the runtime trips over it. :func:`meta_graph_problems` lists each
disagreement in one line; export refuses to write a graph with any, and ``fcn-edge info``
shows them. Needs only the graph's I/O (no weights, no torch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Tuple

from fcn_edge.artifacts import ModelMeta
from fcn_edge.artifacts.dtypes import onnx_dtype_name


@dataclass(frozen=True)
class GraphTensor:
    """One graph input or output: ``shape`` has -1 for a dynamic dimension."""

    name: str
    shape: Tuple[int, ...]
    dtype: str  # numpy-style name


def graph_tensors(values: Iterable) -> List[GraphTensor]:
    """GraphTensors of onnx ValueInfoProtos (graph.input / graph.output)."""
    out = []
    for value in values:
        tensor_type = value.type.tensor_type
        shape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1 for d in tensor_type.shape.dim)
        out.append(GraphTensor(value.name, shape, onnx_dtype_name(tensor_type.elem_type)))
    return out


def _find(tensors: Sequence, name: str):
    return next((t for t in tensors if t.name == name), None)


def _fmt(shape: Sequence[int]) -> str:
    return "(" + ", ".join("?" if d < 0 else str(d) for d in shape) + ")"


def _input_problems(tensor, meta: ModelMeta) -> List[str]:
    problems = []
    shape = tuple(tensor.shape)
    if tensor.dtype != meta.input_dtype:
        problems.append(f"input '{tensor.name}' is {tensor.dtype}, ModelMeta says {meta.input_dtype}")
    if len(shape) != 4:
        return problems + [f"input '{tensor.name}' has shape {_fmt(shape)}, not the rank 4 of {meta.input_layout} images"]
    channel_axis, other_axis, spatial = (3, 1, (1, 2)) if meta.input_layout == "NHWC" else (1, 3, (2, 3))
    channels = shape[channel_axis]
    if (channels > 0 and channels != 3) or (channels < 0 and shape[other_axis] == 3):
        other = "NCHW" if meta.input_layout == "NHWC" else "NHWC"
        problems.append(f"input '{tensor.name}' {_fmt(shape)} has {_fmt((channels,))[1:-1]} at the channel axis of "
                        f"{meta.input_layout}, as ModelMeta says it is laid out (is it {other}?)")
    lo, opt, hi = meta.input_range
    for axis, low, high, what in zip(spatial, lo, hi, ("height", "width")):
        size = shape[axis]
        if size > 0 and not low <= size <= high:
            problems.append(f"input '{tensor.name}' fixes the {what} at {size}, outside ModelMeta's {low}..{high}")
    if shape[0] > 0 and meta.dynamic_batch and meta.max_batch > shape[0]:
        problems.append(f"input '{tensor.name}' fixes the batch at {shape[0]}, ModelMeta allows up to {meta.max_batch}")
    return problems


def _output_problems(tensor, meta: ModelMeta) -> List[str]:
    problems = []
    shape = tuple(tensor.shape)
    if tensor.dtype != meta.output_dtype:
        problems.append(f"output '{tensor.name}' is {tensor.dtype}, ModelMeta says {meta.output_dtype}")
    if meta.output_kind == "logits":
        if len(shape) != 4:
            problems.append(f"output '{tensor.name}' has shape {_fmt(shape)}; ModelMeta's logits are (N, C, H, W)")
        elif shape[1] > 0 and shape[1] != meta.num_classes:
            problems.append(f"output '{tensor.name}' {_fmt(shape)} has {shape[1]} channels but ModelMeta lists "
                            f"{meta.num_classes} classes")
    elif not (len(shape) == 3 or (len(shape) == 4 and shape[1] in (1, -1))):
        problems.append(f"output '{tensor.name}' has shape {_fmt(shape)}; ModelMeta's mask is (N, H, W)")
    return problems


def meta_io_problems(inputs: Sequence, outputs: Sequence, meta: ModelMeta) -> List[str]:
    """Each way ``meta`` disagrees with a graph's ``inputs``/``outputs`` (objects with
    ``name``, ``shape`` (-1 dynamic) and ``dtype``, e.g. :class:`GraphTensor` or the engine
    layer's TensorFacts), one line each; empty when it describes the graph."""
    problems = []
    tensor: Optional[object] = _find(inputs, meta.input_name)
    if tensor is None:
        problems.append(f"ModelMeta's input '{meta.input_name}' is not a graph input ({[t.name for t in inputs]})")
    else:
        problems += _input_problems(tensor, meta)
    tensor = _find(outputs, meta.output_name)
    if tensor is None:
        problems.append(f"ModelMeta's output '{meta.output_name}' is not a graph output ({[t.name for t in outputs]})")
    else:
        problems += _output_problems(tensor, meta)
    return problems


def meta_graph_problems(model, meta: ModelMeta) -> List[str]:
    """:func:`meta_io_problems` for an onnx.ModelProto."""
    return meta_io_problems(graph_tensors(model.graph.input), graph_tensors(model.graph.output), meta)
