"""Tiny segmentation ONNX graphs for the engine tests, made with onnx.helper (no torch).

Each variant is the same two-convolution "FCN" (3 -> 8 -> num_classes channels, spatial
size kept), with ModelMeta in metadata_props:

- ``fp32``: float32 throughout;
- ``fp16``: float16 weights, casts to float16 after the input and back before the output
  (what an FP16 ONNX with keep_io_types looks like);
- ``int8``: Q/DQ on activations and weights (symmetric int8, zero point 0), as TensorRT's
  explicit quantisation wants;
- ``fused``: uint8 NHWC BGR input, normalised inside the graph (fused preprocessing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Tuple

import numpy as np

from fcn_edge.artifacts import ModelMeta, meta_for_classes, write_onnx_meta

CLASSES = ("background", "road", "car", "person")
OPSET = 17


def tiny_meta(variant: str, **overrides) -> ModelMeta:
    fused = variant == "fused"
    fields = dict(
        input_size=(32, 48), min_size=(16, 16), max_size=(64, 64), max_batch=4,
        input_layout="NHWC" if fused else "NCHW", input_dtype="uint8" if fused else "float32",
        channel_order="BGR" if fused else "RGB",
        precision={"fp16": "fp16", "int8": "int8"}.get(variant, "fp32"),
    )
    fields.update(overrides)
    return meta_for_classes("tiny-fcn", CLASSES, **fields)


def _weights(seed: int = 0) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, 0.4, (8, 3, 3, 3)).astype(np.float32)
    b1 = rng.normal(0, 0.1, (8,)).astype(np.float32)
    w2 = rng.normal(0, 0.4, (len(CLASSES), 8, 1, 1)).astype(np.float32)
    b2 = rng.normal(0, 0.1, (len(CLASSES),)).astype(np.float32)
    return w1, b1, w2, b2


def make_tiny_onnx(path: Path, variant: str = "fp32", static_shape: bool = False, meta: ModelMeta = None) -> Path:
    """Write the ``variant`` graph to ``path`` and return it."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    meta = meta or tiny_meta(variant)
    w1, b1, w2, b2 = _weights()
    nodes = []
    inits = []
    fused = variant == "fused"
    if static_shape:
        dims = [1, 32, 48, 3] if fused else [1, 3, 32, 48]
    else:
        dims = ["batch", "height", "width", 3] if fused else ["batch", 3, "height", "width"]
    in_type = TensorProto.UINT8 if fused else TensorProto.FLOAT
    graph_input = helper.make_tensor_value_info(meta.input_name, in_type, dims)
    out_dims = [dims[0], len(CLASSES), dims[1], dims[2]] if fused else [dims[0], len(CLASSES), dims[2], dims[3]]
    graph_output = helper.make_tensor_value_info(meta.output_name, TensorProto.FLOAT, out_dims)

    x = meta.input_name
    if fused:
        mean = np.array([m * 255 for m in meta.mean][::-1], np.float32).reshape(1, 1, 1, 3)
        inv_std = np.array([1 / (s * 255) for s in meta.std][::-1], np.float32).reshape(1, 1, 1, 3)
        inits += [numpy_helper.from_array(mean, "mean_bgr"), numpy_helper.from_array(inv_std, "inv_std_bgr")]
        nodes += [
            helper.make_node("Cast", [x], ["x_float"], to=TensorProto.FLOAT, name="to_float"),
            helper.make_node("Sub", ["x_float", "mean_bgr"], ["x_centred"], name="sub_mean"),
            helper.make_node("Mul", ["x_centred", "inv_std_bgr"], ["x_scaled"], name="mul_inv_std"),
            helper.make_node("Transpose", ["x_scaled"], ["x_nchw_bgr"], perm=[0, 3, 1, 2], name="to_nchw"),
        ]
        # BGR -> RGB by reversing the input channels of the first convolution's weights.
        w1 = w1[:, ::-1].copy()
        x = "x_nchw_bgr"

    if variant == "fp16":
        w1, b1, w2, b2 = (a.astype(np.float16) for a in (w1, b1, w2, b2))
        nodes.append(helper.make_node("Cast", [x], ["x_half"], to=TensorProto.FLOAT16, name="cast_in_fp16"))
        x = "x_half"

    def conv_weight(name: str, w: np.ndarray) -> str:
        if variant != "int8":
            inits.append(numpy_helper.from_array(w, name))
            return name
        scale = np.float32(np.abs(w).max() / 127.0)
        q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
        inits.append(numpy_helper.from_array(q, name + "_q"))
        inits.append(numpy_helper.from_array(np.array(scale, np.float32), name + "_scale"))
        inits.append(numpy_helper.from_array(np.array(0, np.int8), name + "_zp"))
        nodes.append(helper.make_node("DequantizeLinear", [name + "_q", name + "_scale", name + "_zp"],
                                      [name + "_dq"], name=f"dq_{name}"))
        return name + "_dq"

    def quantize_activation(tensor: str, scale: float, tag: str) -> str:
        if variant != "int8":
            return tensor
        inits.append(numpy_helper.from_array(np.array(scale, np.float32), f"{tag}_scale"))
        inits.append(numpy_helper.from_array(np.array(0, np.int8), f"{tag}_zp"))
        nodes.append(helper.make_node("QuantizeLinear", [tensor, f"{tag}_scale", f"{tag}_zp"], [f"{tag}_q"], name=f"q_{tag}"))
        nodes.append(helper.make_node("DequantizeLinear", [f"{tag}_q", f"{tag}_scale", f"{tag}_zp"], [f"{tag}_dq"], name=f"dq_{tag}"))
        return f"{tag}_dq"

    x = quantize_activation(x, 4.0 / 127, "act_in")
    nodes.append(helper.make_node("Conv", [x, conv_weight("w1", w1), conv_weight("b1", b1) if variant != "int8" else "b1"],
                                  ["c1"], pads=[1, 1, 1, 1], name="conv1"))
    if variant == "int8":
        inits.append(numpy_helper.from_array(b1, "b1"))
    nodes.append(helper.make_node("Relu", ["c1"], ["r1"], name="relu1"))
    x = quantize_activation("r1", 6.0 / 127, "act_mid")
    nodes.append(helper.make_node("Conv", [x, conv_weight("w2", w2), conv_weight("b2", b2) if variant != "int8" else "b2"],
                                  ["c2"], name="conv2"))
    if variant == "int8":
        inits.append(numpy_helper.from_array(b2, "b2"))
    if variant == "fp16":
        nodes.append(helper.make_node("Cast", ["c2"], [meta.output_name], to=TensorProto.FLOAT, name="cast_out_fp32"))
    else:
        nodes[-1].output[0] = meta.output_name

    graph = helper.make_graph(nodes, f"tiny_fcn_{variant}", [graph_input], [graph_output], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="fcn-edge-tests")
    model.ir_version = 8
    write_onnx_meta(model, meta)
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def sample_input(meta: ModelMeta, batch: int = 1, size=None, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = meta.input_shape(batch, size)
    if meta.input_dtype == "uint8":
        return rng.integers(0, 256, shape, dtype=np.uint8)
    return rng.normal(0, 1, shape).astype(np.float32)
