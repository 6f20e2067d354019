"""PyTorch -> the bare network's ONNX (float NCHW RGB in, logits out) -> checker -> onnxslim;
then :func:`fcn_edge.export.assemble.assemble` grafts the deployment heads, checks, writes
and compares, as for every other source."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from fcn_edge.artifacts import LOGITS_NAME, ModelMeta
from fcn_edge.classes import ClassList, builtin_classes
from fcn_edge.errors import ExportError
from fcn_edge.export.assemble import assemble, deployment_meta
from fcn_edge.export.config import MAX_TRT85_OPSET, ExportConfig, ExportReport
from fcn_edge.export.graph_checks import check_model, simplify
from fcn_edge.export.heads import NetworkIO
from fcn_edge.export.torch_to_onnx import example_input, torch_to_onnx
from fcn_edge.paths import PathLike

log = logging.getLogger(__name__)

# The export size of an untrained registry model when the config leaves it to the model.
UNTRAINED_INPUT_SIZE = (320, 320)


def exported_meta(meta: ModelMeta, config: ExportConfig, source_hash: str = "") -> ModelMeta:
    """ModelMeta as the exported graph's boundary and shape range make it."""
    config = config.for_meta(meta)
    return deployment_meta(meta, config, f"export: opset {config.opset}, {config.exporter} exporter", source_hash)


def torch_reference(model: nn.Module):
    """float NCHW batch -> the model's logits, as numpy: the network parity's reference."""
    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(x)).numpy()

    return run


def export_model(
    model: nn.Module,
    meta: ModelMeta,
    out: PathLike,
    config: ExportConfig = ExportConfig(),
    source_hash: str = "",
) -> ExportReport:
    """Export ``model`` (any registry model) to ``out`` with ``meta`` in its metadata_props.

    Raises ExportError when a check fails or ONNX Runtime disagrees with PyTorch beyond the
    tolerance; ``out`` is then left untouched.
    """
    start = time.perf_counter()
    out = Path(out)
    config = config.for_meta(meta)
    if getattr(model, "num_classes", meta.num_classes) != meta.num_classes:
        raise ExportError(f"ModelMeta lists {meta.num_classes} classes but the model has {model.num_classes}")
    if config.output == "mask" and config.mask_dtype == "uint8" and meta.num_classes > 256:
        raise ExportError(f"a uint8 mask cannot hold {meta.num_classes} classes; use --mask-dtype int32")
    notes = []
    if config.opset > MAX_TRT85_OPSET:
        notes.append(f"opset {config.opset} is above {MAX_TRT85_OPSET}: TensorRT 8.5 and 8.6 (JetPack 5, 6.0) cannot parse it")
    final_meta = exported_meta(meta, config, source_hash)

    model = model.eval()
    batch = config.example_batch
    example = example_input(config.input_size, batch, config.seed)
    # with a fused resize the network runs at input_size only: a static H x W lets TensorRT plan for it
    dynamic_shape = config.dynamic_shape and not config.fuse_resize
    proto = torch_to_onnx(model, example, LOGITS_NAME, config.opset, config.dynamic_batch, dynamic_shape,
                          config.exporter)
    written = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if written != config.opset:
        # dynamo builds opset 18 and converts down; the converter gives up on some graphs
        # (e.g. Reduce* ops whose axes are inputs) and leaves 18, which TensorRT 8.5 cannot parse.
        raise ExportError(
            f"the {config.exporter} exporter wrote opset {written}, not the {config.opset} asked for "
            "(onnx's version converter could not convert this graph); use --exporter legacy, "
            "or --opset 18 when every target runs TensorRT 10 or newer (8.5 and 8.6 parse up to 17)"
        )
    source = f"{out.name} ({getattr(model, 'architecture', type(model).__name__)})"
    check_model(proto, source)
    nodes_exported = len(proto.graph.node)
    if config.simplify:
        proto = simplify(proto, source)
        check_model(proto, source)
    return assemble(proto, NetworkIO(), final_meta, config, out, reference=torch_reference(model),
                    against="PyTorch", source=source, exporter=config.exporter, nodes_exported=nodes_exported,
                    simplified=config.simplify, notes=notes, start=start)


def export_checkpoint(
    checkpoint: PathLike,
    out: PathLike,
    config: ExportConfig = ExportConfig(),
    *,
    classes: Optional[ClassList] = None,
    architecture: Optional[str] = None,
) -> ExportReport:
    """A checkpoint of any supported layout (fcn-edge, torchvision, pytorch-fcn, a bare
    state_dict with ``architecture``) -> ONNX; ModelMeta's source_hash is the file's SHA-256."""
    from fcn_edge.models.checkpoint import load_checkpoint

    loaded = load_checkpoint(checkpoint, architecture=architecture, classes=classes)
    meta = loaded.meta.with_history(f"import: {loaded.source_format} checkpoint {Path(checkpoint).name}")
    return export_model(loaded.model, meta, out, config, source_hash=loaded.sha256)


def export_keras(
    source: PathLike,
    out: PathLike,
    config: ExportConfig = ExportConfig(),
    *,
    classes: Optional[ClassList] = None,
    architecture: Optional[str] = None,
    preprocessing: Optional[str] = None,
) -> ExportReport:
    """Keras FCN-8/FCN-32 weights (Keras 2 .h5, Keras 3 .weights.h5 or .keras, or a
    keras_segmentation checkpoint) -> the PyTorch re-implementation -> ONNX, with the heads
    ``config`` asks for. ``architecture``: fcn_8_vgg, fcn_32_vgg, fcn_8, fcn_32 (or an fcn-edge
    name) when the file does not say; ``preprocessing``: the Keras code's input convention
    (sub_mean, sub_mean_bgr, divide, sub_and_divide, none) when the file does not say."""
    from fcn_edge.models.keras_import import load_keras_model

    loaded = load_keras_model(source, arch=architecture, input_size=config.input_size, preprocessing=preprocessing,
                              classes=classes)
    return export_model(loaded.model, loaded.meta, out, config, source_hash=loaded.sha256)


def export_architecture(
    name: str,
    out: PathLike,
    config: ExportConfig = ExportConfig(),
    *,
    classes: Optional[ClassList] = None,
    seed: int = 0,
) -> ExportReport:
    """A freshly initialised registry model -> ONNX (for benchmarks and tests).

    ``classes`` defaults to PASCAL VOC's 21. The weights are random (seeded); the ModelMeta
    says so in its history.
    """
    from fcn_edge.models import build_model

    classes = classes or builtin_classes("voc")
    meta = ModelMeta(name, classes.names, classes.palette, dataset=classes.dataset, input_size=UNTRAINED_INPUT_SIZE)
    torch.manual_seed(seed)
    model = build_model(name, meta.num_classes)
    meta = meta.with_history(f"random initialisation (seed {seed}); not trained")
    return export_model(model, meta, out, config)
