"""torch.nn.Module -> onnx.ModelProto, with either of torch's two exporters.

The legacy TorchScript exporter (``dynamo=False``) is the default: it writes opset 17
directly, names dynamic dims ``batch``/``height``/``width``, keeps weights in the proto, and
exports FCN-8s ResNet-18 in ~2 s against ~15 s for dynamo. It is deprecated in torch 2.x,
so ``exporter="dynamo"`` is kept working: it is given a batch-2 example (with a batch-1
example it fixes the batch at 1 even with a dynamic Dim), its opset-18 graph is converted
down to the asked opset, and its weights are kept in the proto (it writes ``.onnx.data``
by default).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from typing import Tuple

import torch
from torch import nn

from fcn_edge.errors import ExportError
from fcn_edge.optional import require

log = logging.getLogger(__name__)

INPUT = "input"


def example_input(input_size: Tuple[int, int], batch: int, seed: int) -> torch.Tensor:
    """A float NCHW batch the bare network accepts."""
    gen = torch.Generator().manual_seed(seed)
    h, w = input_size
    return torch.randn(batch, 3, h, w, generator=gen)


def _dynamic_axes(dynamic_batch: bool, dynamic_shape: bool, same_size: bool):
    """Symbolic dims of the input and output; the output's H and W share the input's names
    only when the network keeps the size (a Keras FCN's output is larger: the exporter names it)."""
    axes_in, axes_out = {}, {}
    if dynamic_batch:
        axes_in[0] = axes_out[0] = "batch"
    if dynamic_shape:
        axes_in[2], axes_in[3] = "height", "width"
        if same_size:
            axes_out[2], axes_out[3] = "height", "width"
    return axes_in, axes_out


def export_legacy(module: nn.Module, example: torch.Tensor, output_name: str, opset: int,
                  dynamic_batch: bool, dynamic_shape: bool, same_size: bool):
    onnx = require("onnx", "ONNX export")
    axes_in, axes_out = _dynamic_axes(dynamic_batch, dynamic_shape, same_size)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notices
        torch.onnx.export(
            module, (example,), buffer, dynamo=False, opset_version=opset,
            input_names=[INPUT], output_names=[output_name],
            dynamic_axes={INPUT: axes_in, output_name: axes_out} if (axes_in or axes_out) else None,
            do_constant_folding=True,
        )
    return onnx.load_from_string(buffer.getvalue())


def export_dynamo(module: nn.Module, example: torch.Tensor, output_name: str, opset: int,
                  dynamic_batch: bool, dynamic_shape: bool, same_size: bool):
    from torch.export import Dim

    if dynamic_batch and example.shape[0] < 2:
        raise ExportError("the dynamo exporter needs an example batch >= 2 to keep the batch dynamic")
    spatial = (2, 3)
    shapes = {}
    if dynamic_batch:
        shapes[0] = Dim("batch", min=1, max=1024)
    if dynamic_shape:
        shapes[spatial[0]] = Dim("height", min=1, max=8192)
        shapes[spatial[1]] = Dim("width", min=1, max=8192)
    arg_name = next(iter(_forward_arg_names(module)))
    with warnings.catch_warnings(), _quiet_loggers("onnxscript", "onnx_ir", "torch.onnx", "torch.export"):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module, (example,), dynamo=True, opset_version=opset, input_names=[INPUT],
            output_names=[output_name], dynamic_shapes={arg_name: shapes} if shapes else None,
            external_data=False, optimize=True, verbose=False,
        )
    proto = program.model_proto
    # dynamo names output dims with size formulas; where the output has the input's batch,
    # height and width, name them as the input's (and the legacy exporter's) dims.
    names = {0: "batch"} if dynamic_batch else {}
    if dynamic_shape and same_size:
        names.update({2: "height", 3: "width"})
    for value in proto.graph.output:
        dims = value.type.tensor_type.shape.dim
        for axis, name in names.items():
            if axis < len(dims) and dims[axis].HasField("dim_param"):
                dims[axis].dim_param = name
    return proto


@contextlib.contextmanager
def _quiet_loggers(*names: str):
    """dynamo's optimiser logs every folded initializer at INFO; keep the CLI readable."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _forward_arg_names(module: nn.Module):
    import inspect

    return [p for p in inspect.signature(module.forward).parameters]


def torch_to_onnx(module: nn.Module, example: torch.Tensor, output_name: str, opset: int,
                  dynamic_batch: bool, dynamic_shape: bool, exporter: str):
    """Export ``module`` (already in eval mode; float NCHW in, NCHW scores out) and return
    the onnx.ModelProto."""
    export = export_legacy if exporter == "legacy" else export_dynamo
    try:
        with torch.no_grad():
            same_size = tuple(module(example).shape[2:]) == tuple(example.shape[2:])
            return export(module, example, output_name, opset, dynamic_batch, dynamic_shape, same_size)
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"torch.onnx.export ({exporter} exporter, opset {opset}) failed: {exc}") from exc
