"""A segmentation ONNX made elsewhere (torchvision, mmsegmentation, segmentation_models_pytorch,
tf2onnx, a vendor) -> an fcn-edge ONNX: ModelMeta, and the same heads as any export.

What the file does not say is asked for (:class:`~fcn_edge.export.config.SourceHints`) or
read from the graph: the input's layout from its shape, the class axis of the output from
one run in ONNX Runtime, and, for an (N, H*W, C) softmax output, the tensor before its
Reshape that holds H and W. Nothing of the original graph changes but its input and output
ends; the parity check compares the result with the original graph in ONNX Runtime.
Needs onnx, onnx-graphsurgeon and onnxruntime; not torch.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from fcn_edge.artifacts import ONNX_KEY, ModelMeta, file_sha256, meta_from_props
from fcn_edge.artifacts.dtypes import onnx_dtype_name
from fcn_edge.classes import ClassList, classes_for_count
from fcn_edge.errors import ExportError, FcnEdgeError
from fcn_edge.export.assemble import assemble, deployment_meta
from fcn_edge.export.config import PREPROCESSINGS, ExportConfig, ExportReport, SourceHints
from fcn_edge.export.heads import MIN_OPSET, NetworkIO, opset_of
from fcn_edge.export.parity import Reference
from fcn_edge.optional import require
from fcn_edge.paths import PathLike

log = logging.getLogger(__name__)

# Ops that carry scores unchanged in value between a rank-4 map and an (N, H*W, C) output.
_FLATTENING_OPS = ("Softmax", "LogSoftmax", "Sigmoid", "Reshape", "Transpose", "Flatten", "Identity", "Cast",
                   "Squeeze", "Unsqueeze")
_WALK_LIMIT = 8  # producers to look through for the rank-4 map before an (N, H*W, C) output


@dataclass(frozen=True)
class ForeignFacts:
    """What the graph says, and what fcn-edge concluded from it."""

    network: NetworkIO
    input_size: Tuple[int, int]
    fixed_batch: Optional[int]  # the graph's static batch, or None
    fixed_size: bool  # the graph fixes H x W
    output_shape: Tuple[int, ...]  # at batch 1 and input_size, from one run
    num_classes: int
    input_dtype: str


def _load(path: Path):
    onnx = require("onnx", "reading the ONNX to make deployable")
    try:
        return onnx.load(str(path))
    except Exception as exc:  # DecodeError, missing external data
        raise ExportError(f"{path}: not a readable ONNX model: {exc}") from exc


def _graph_inputs(model) -> List:
    initializers = {i.name for i in model.graph.initializer}  # IR < 4 lists weights as inputs
    return [v for v in model.graph.input if v.name not in initializers]


def _dims(value) -> List[Optional[int]]:
    return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
            for d in value.type.tensor_type.shape.dim]


def _input_layout(dims: Sequence[Optional[int]], hint: Optional[str], source: str, name: str) -> str:
    if hint:
        return hint
    nchw, nhwc = dims[1] == 3, dims[3] == 3
    if nchw != nhwc:
        return "NCHW" if nchw else "NHWC"
    shape = "(" + ", ".join("?" if d is None else str(d) for d in dims) + ")"
    raise ExportError(f"{source}: cannot tell the layout of input '{name}' {shape} (no axis 1 or 3 of 3 "
                      "channels, or both); give --input-layout NCHW or NHWC")


def _input_size(dims, layout: str, config: ExportConfig, meta: Optional[ModelMeta], source: str,
                name: str) -> Tuple[Tuple[int, int], bool]:
    hw = (dims[2], dims[3]) if layout == "NCHW" else (dims[1], dims[2])
    fixed = all(d is not None for d in hw)
    if config.input_size is not None:
        if fixed and tuple(config.input_size) != hw:
            raise ExportError(f"{source}: input '{name}' is fixed at {hw[0]}x{hw[1]}, not the --input-size "
                              f"{config.input_size[0]}x{config.input_size[1]} asked for")
        return tuple(config.input_size), fixed  # type: ignore[return-value]
    if fixed:
        return hw, True  # type: ignore[return-value]
    if meta is not None:
        return tuple(meta.input_size), False  # type: ignore[return-value]
    raise ExportError(f"{source}: input '{name}' has a dynamic height and width; give the size frames are "
                      "resized to with --input-size HxW")


def _producers(model) -> Dict[str, object]:
    return {out: node for node in model.graph.node for out in node.output}


def _walk_back(model, name: str) -> List[str]:
    """Tensors upstream of ``name`` through ops that only reshape or normalise, nearest first."""
    producers = _producers(model)
    found = []
    for _ in range(_WALK_LIMIT):
        node = producers.get(name)
        if node is None or node.op_type not in _FLATTENING_OPS or not node.input:
            break
        name = node.input[0]
        found.append(name)
    return found


def _session_with_outputs(model, extra: Sequence[str]):
    """An ORT session of ``model`` that also returns the tensors ``extra`` (unchanged otherwise)."""
    from fcn_edge.export.parity import ort_session

    onnx = require("onnx", "probing the ONNX")
    if not extra:
        return ort_session(model)
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for name in extra:
        probe.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    return ort_session(probe)


def _probe(model, input_name: str, output_name: str, shape: Tuple[int, ...], dtype: str,
           extra: Sequence[str], source: str) -> List[np.ndarray]:
    session = _session_with_outputs(model, extra)
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    try:
        return session.run([output_name, *extra], {input_name: x})
    except Exception as exc:
        raise ExportError(f"{source}: ONNX Runtime cannot run the graph on a {shape} {dtype} input: {exc}") from exc


def _class_axis(shape: Tuple[int, ...], classes: Optional[ClassList], source: str, name: str) -> Tuple[str, int]:
    """(output layout, class count) from the output's shape at batch 1."""
    wanted = len(classes.names) if classes is not None else None
    if len(shape) == 4:
        candidates = [("NCHW", shape[1]), ("NHWC", shape[3])]
    elif len(shape) == 3:
        candidates = [("NLC", shape[2])]
    else:
        raise ExportError(f"{source}: output '{name}' has shape {shape}; class scores are (N, C, H, W), "
                          "(N, H, W, C) or (N, H*W, C)")
    if wanted is None:
        return candidates[0]
    for layout, count in candidates:
        if count == wanted:
            return layout, count
    axes = " or ".join(f"{count} at the {layout} class axis" for layout, count in candidates)
    raise ExportError(f"{source}: output '{name}' has shape {shape}: {axes}, but --classes gives {wanted} "
                      "classes; name the model's own class list (or its count)")


def _spatial_from(model, input_name: str, output_name: str, shape, dtype, out_shape, num_classes: int,
                  source: str) -> Tuple[str, int]:
    """The tensor (and its first spatial axis) whose H x W the (N, H*W, C) output flattened."""
    upstream = _walk_back(model, output_name)
    values = _probe(model, input_name, output_name, shape, dtype, upstream, source)[1:]
    pixels = out_shape[1]
    for name, value in zip(upstream, values):
        if value.ndim != 4:
            continue
        if value.shape[1] == num_classes and value.shape[2] * value.shape[3] == pixels:
            return name, 2
        if value.shape[3] == num_classes and value.shape[1] * value.shape[2] == pixels:
            return name, 1
    raise ExportError(f"{source}: output '{output_name}' is (N, H*W, C) = {tuple(out_shape)}, and no rank-4 "
                      f"map of {num_classes} classes precedes it through {', '.join(_FLATTENING_OPS)}; "
                      "export the model with a (N, C, H, W) output")


def _existing_meta(model, source: str) -> Optional[ModelMeta]:
    if not any(p.key == ONNX_KEY for p in model.metadata_props):
        return None
    try:
        return meta_from_props({p.key: p.value for p in model.metadata_props}, source)
    except FcnEdgeError as exc:
        raise ExportError(f"{exc}; remove the '{ONNX_KEY}' metadata entry to start from the graph alone") from exc


def analyse(model, config: ExportConfig, classes: Optional[ClassList], hints: SourceHints, source: str,
            meta: Optional[ModelMeta] = None) -> ForeignFacts:
    """Read the graph's input and output ends, run it once, and decide the NetworkIO."""
    inputs = _graph_inputs(model)
    if len(inputs) != 1:
        raise ExportError(f"{source}: the graph has {len(inputs)} inputs ({[v.name for v in inputs]}); "
                          "a segmentation model takes one image batch")
    value = inputs[0]
    dims = _dims(value)
    if len(dims) != 4:
        raise ExportError(f"{source}: input '{value.name}' has rank {len(dims)}; images are (N, C, H, W) or (N, H, W, C)")
    dtype = onnx_dtype_name(value.type.tensor_type.elem_type)
    if dtype not in ("float32", "float16"):
        raise ExportError(f"{source}: input '{value.name}' is {dtype}; the heads graft onto float inputs")
    layout = _input_layout(dims, hints.input_layout or (meta.input_layout if meta else None), source, value.name)
    size, fixed_size = _input_size(dims, layout, config, meta, source, value.name)
    outputs = [o.name for o in model.graph.output]
    output_name = hints.output_name or (meta.output_name if meta and meta.output_name in outputs else None)
    if output_name is None:
        if len(outputs) != 1:
            raise ExportError(f"{source}: the graph has outputs {outputs}; name the one with the class scores "
                              "with --output-name")
        output_name = outputs[0]
    elif output_name not in outputs:
        raise ExportError(f"{source}: the graph has no output '{output_name}'; its outputs are {outputs}")
    batch = dims[0] or 1
    shape = (batch, 3, *size) if layout == "NCHW" else (batch, *size, 3)
    (out,) = _probe(model, value.name, output_name, shape, dtype, (), source)
    out_layout, num_classes = _class_axis(tuple(out.shape), classes, source, output_name)
    spatial = None
    if out_layout == "NLC":
        spatial = _spatial_from(model, value.name, output_name, shape, dtype, out.shape, num_classes, source)
    norm = hints.normalization()
    order = norm.channel_order if norm else (meta.channel_order if meta else "RGB")
    network = NetworkIO(input_layout=layout, channel_order=order, output_layout=out_layout, spatial_from=spatial,
                        input_name=value.name, output_name=output_name)
    return ForeignFacts(network, size, dims[0], fixed_size, tuple(out.shape), num_classes, dtype)


def original_reference(model, facts: ForeignFacts) -> Reference:
    """float NCHW RGB batch -> the original graph's scores as NCHW float32: the network
    parity's reference, adapted in numpy, independently of the grafted heads."""
    io = facts.network
    extra = [io.spatial_from[0]] if io.spatial_from else []
    session = _session_with_outputs(model, extra)

    def run(x: np.ndarray) -> np.ndarray:
        y = x[:, ::-1] if io.channel_order == "BGR" else x
        if io.input_layout == "NHWC":
            y = y.transpose(0, 2, 3, 1)
        results = session.run([io.output_name, *extra], {io.input_name: np.ascontiguousarray(y, facts.input_dtype)})
        scores = results[0].astype(np.float32)
        if io.output_layout == "NLC":
            axis = io.spatial_from[1]
            h, w = results[1].shape[axis : axis + 2]
            scores = scores.reshape(scores.shape[0], h, w, scores.shape[2])
        if io.output_layout in ("NHWC", "NLC"):
            scores = scores.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(scores)

    return run


def _fit_config(config: ExportConfig, facts: ForeignFacts, meta: Optional[ModelMeta], notes: List[str]) -> ExportConfig:
    """The config as the graph allows it (a batch or size the graph fixes stays fixed) and as
    the file's ModelMeta, if any, fills in what was not asked (the size range, the max batch)."""
    changes: Dict[str, object] = {"input_size": facts.input_size}
    if meta is not None:
        if not config.fuse_resize:
            changes.update(min_size=config.min_size or meta.min_size, max_size=config.max_size or meta.max_size)
        changes.update(max_batch=meta.max_batch if config.max_batch == 1 else config.max_batch)
    if facts.fixed_batch is not None and config.dynamic_batch:
        changes.update(dynamic_batch=False, max_batch=facts.fixed_batch)
        notes.append(f"the graph fixes the batch at {facts.fixed_batch}: kept fixed")
    if facts.fixed_size and config.dynamic_shape and not config.fuse_resize:
        changes.update(dynamic_shape=False, min_size=None, max_size=None)
        notes.append(f"the graph fixes the size at {facts.input_size[0]}x{facts.input_size[1]}: kept fixed")
    return dataclasses.replace(config, **changes)


def _meta_base(path: Path, model, facts: ForeignFacts, classes: Optional[ClassList], architecture: Optional[str],
               hints: SourceHints, meta: Optional[ModelMeta], notes: List[str]) -> ModelMeta:
    norm = hints.normalization()
    if norm is not None:
        mean, std, origin = norm.mean, norm.std, norm.origin
    elif meta is not None:
        mean, std, origin = meta.mean, meta.std, "its ModelMeta"
    else:
        preset = PREPROCESSINGS["imagenet"]
        mean, std, origin = preset.mean, preset.std, "assumed"
        notes.append("normalisation assumed ImageNet's (--preprocessing imagenet); give --preprocessing or "
                     "--mean/--std if the model was trained otherwise")
    if classes is None and meta is not None and meta.num_classes == facts.num_classes:
        classes = ClassList(meta.class_names, meta.palette, meta.dataset)
    classes = classes or classes_for_count(facts.num_classes)
    producer = f"{model.producer_name} {model.producer_version}".strip() or "unknown producer"
    name = architecture or (meta.architecture if meta else path.stem)
    history = tuple(meta.history) if meta else ()
    history += (
        f"import: ONNX {path.name} ({producer}, opset {opset_of(model)}); input {facts.network.input_layout} "
        f"{facts.network.channel_order}, scores {facts.network.output_layout}, normalisation {origin} "
        f"(mean {tuple(round(v, 6) for v in mean)}, std {tuple(round(v, 6) for v in std)})",
    )
    try:
        return ModelMeta(name, classes.names, classes.palette, input_size=facts.input_size, mean=tuple(mean),
                         std=tuple(std), dataset=classes.dataset, history=history)
    except FcnEdgeError as exc:
        raise ExportError(f"{path}: {exc}") from exc


def export_foreign_onnx(
    path: PathLike,
    out: PathLike,
    config: ExportConfig = ExportConfig(),
    *,
    classes: Optional[ClassList] = None,
    architecture: Optional[str] = None,
    hints: SourceHints = SourceHints(),
) -> ExportReport:
    """A segmentation ONNX from elsewhere (or an fcn-edge ONNX without heads) -> ``out`` with
    ModelMeta and the heads ``config`` asks for, checked against the original in ONNX Runtime.

    ``classes``: names and colours (their count must be the output's class axis; default:
    the file's ModelMeta, else VOC for 21, Cityscapes for 19, else numbered).
    ``architecture``: the name ModelMeta records (default: the file's stem).
    """
    start = time.perf_counter()
    path, out = Path(path), Path(out)
    source = str(path)
    if out.resolve() == path.resolve():
        raise ExportError(f"{source}: the export would overwrite the ONNX it reads; write it elsewhere (-o)")
    model = _load(path)
    notes: List[str] = []
    if opset_of(model) < MIN_OPSET:
        onnx = require("onnx", "converting an old opset")
        try:
            converted = onnx.version_converter.convert_version(model, 13)
        except Exception as exc:
            raise ExportError(f"{source}: opset {opset_of(model)} is older than {MIN_OPSET} and onnx's version "
                              f"converter could not raise it: {exc}") from exc
        notes.append(f"opset {opset_of(model)} raised to 13 with onnx.version_converter")
        model = converted
    meta = _existing_meta(model, source)
    if meta is not None and (meta.fused_preprocess or meta.fused_argmax):
        raise ExportError(f"{source}: this fcn-edge ONNX already has its heads ({meta.input_dtype} input, "
                          f"{meta.output_kind} output); export again from its source to change them")
    facts = analyse(model, config, classes, hints, source, meta)
    config = _fit_config(config, facts, meta, notes)
    base = _meta_base(path, model, facts, classes, architecture, hints, meta, notes)
    final_meta = deployment_meta(base, config, f"export: foreign ONNX, opset {opset_of(model)}",
                                 source_hash=file_sha256(path))
    reference = original_reference(model, facts) if config.check_parity else None
    return assemble(model, facts.network, final_meta, config, out, reference=reference,
                    against="the original graph", source=source, exporter="foreign",
                    nodes_exported=len(model.graph.node), simplified=False, notes=notes, start=start)
