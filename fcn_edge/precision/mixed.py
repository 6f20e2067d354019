"""A Q/DQ graph -> mixed INT8/FP16: everything not quantised runs in FP16.

TensorRT 10 and 11 build a Q/DQ ONNX strongly typed: every layer runs in the type the ONNX
gives its tensors. Left FP32, the parts between quantised convolutions (activations, the
squeeze-excitation branches, the residual Adds' convolution side, the full-resolution
head) move twice the bytes they would in the FP16 engine, and the INT8 engine can end up
slower than FP16. NVIDIA's ModelOpt writes those regions in FP16 (``high_precision_dtype=
"fp16"``); so does this. Q/DQ nodes take FP16 scales, which needs opset 19 (TensorRT >= 10
parses it; TensorRT 8.5/8.6 parse up to opset 17 and get the FP32 Q/DQ graph built weakly
typed with the FP16 builder flag instead).

FP32 is kept only where it must be (:data:`fcn_edge.precision.fusion.ALLOWED_FP32`: casts at
the graph's inputs and outputs, ArgMax, reductions and exponentials that overflow FP16);
the graph's input and output types do not change.
"""

from __future__ import annotations

from fcn_edge.errors import PrecisionError
from fcn_edge.precision.fp16 import convert_graph_fp16
from fcn_edge.precision.fusion import ALLOWED_FP32

MIXED_OPSET = 19  # QuantizeLinear/DequantizeLinear with FP16 scales
MIN_IR_VERSION = 9  # the IR version of opset 19
# Opset 18 moved these ops' ``axes`` from an attribute to an input.
_AXES_TO_INPUT = ("ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean",
                  "ReduceMin", "ReduceProd", "ReduceSumSquare")
# Ops whose semantics changed between opset 13 and 19 in ways no attribute rewrite fixes.
_UNSUPPORTED_BELOW_19 = ("Split",)


def upgrade_opset(model, opset: int = MIXED_OPSET, where: str = "") -> None:
    """Raise the default-domain opset of ``model`` (13..18) to ``opset`` in place.

    Every op an FCN graph uses kept its meaning from 13 to 19, except the Reduce* ops that
    took ``axes`` as an attribute; those are rewritten to take it as an input. A 2 GB VGG16
    is not copied, as ``onnx.version_converter`` would.
    """
    import numpy as np
    from onnx import numpy_helper

    current = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if current >= opset:
        return
    if current < 13:
        raise PrecisionError(f"{where}: opset {current} is too old for Q/DQ; re-export with --opset 17")
    graph = model.graph
    for node in graph.node:
        if node.op_type in _UNSUPPORTED_BELOW_19 and current < 18 and len(node.input) < 2:
            raise PrecisionError(f"{where}: {node.op_type} node {node.name!r} needs rewriting for opset {opset}; "
                                 "re-export the model with --opset 18 or newer")
        if node.op_type in _AXES_TO_INPUT and current < 18:
            axes = [a for a in node.attribute if a.name == "axes"]
            if axes:
                name = f"{node.name or node.output[0]}_axes"
                graph.initializer.append(numpy_helper.from_array(np.array(list(axes[0].ints), np.int64), name))
                node.attribute.remove(axes[0])
                while len(node.input) < 1:
                    node.input.append("")
                node.input.append(name)
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            entry.version = opset
    model.ir_version = max(model.ir_version, MIN_IR_VERSION)


def to_mixed_fp16(model, where: str = ""):
    """Convert a Q/DQ ``model`` in place to mixed INT8/FP16 at opset 19; return it."""
    upgrade_opset(model, MIXED_OPSET, where)
    fp32_ops = tuple(op for op in ALLOWED_FP32 if op != "Cast")
    return convert_graph_fp16(model, fp32_ops, set(), where)
