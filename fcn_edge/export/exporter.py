"""The export step: model -> wrappers -> ONNX -> checker -> onnxslim -> ModelMeta ->
parity in ONNX Runtime -> one .onnx file, renamed into place only when all passed."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from fcn_edge.artifacts import LOGITS_NAME, MASK_NAME, ModelMeta, write_onnx_meta
from fcn_edge.atomic import atomic_path
from fcn_edge.classes import ClassList, builtin_classes
from fcn_edge.errors import ExportError
from fcn_edge.export.config import MAX_TRT85_OPSET, ExportConfig, ExportReport
from fcn_edge.export.graph_checks import check_boundary, check_model, dims, simplify
from fcn_edge.export.parity import check_parity, parity_inputs
from fcn_edge.export.torch_to_onnx import example_input, torch_to_onnx
from fcn_edge.export.wrappers import export_module
from fcn_edge.optional import require
from fcn_edge.paths import PathLike

log = logging.getLogger(__name__)

PROTOBUF_LIMIT = 2 * 1024**3  # one ModelProto cannot exceed 2 GiB; beyond it weights go to .onnx.data
# The export size of an untrained registry model when the config leaves it to the model.
UNTRAINED_INPUT_SIZE = (320, 320)


def exported_meta(meta: ModelMeta, config: ExportConfig, source_hash: str = "") -> ModelMeta:
    """ModelMeta as the exported graph's boundary and shape range make it."""
    config = config.for_meta(meta)
    lo, hi = config.size_range
    fused = config.fuse_preprocess
    mask = config.output == "mask"
    return meta.with_history(
        f"export: opset {config.opset}, {config.exporter} exporter"
        + (", fused preprocessing" if fused else "") + (f", {config.mask_dtype} mask" if mask else ""),
        input_size=tuple(config.input_size),
        min_size=lo,
        max_size=hi,
        max_batch=config.max_batch,
        dynamic_batch=config.dynamic_batch,
        input_layout="NHWC" if fused else "NCHW",
        input_dtype="uint8" if fused else "float32",
        channel_order="BGR" if fused else "RGB",
        output_kind=config.output,
        output_dtype=config.mask_dtype if mask else "float32",
        output_name=MASK_NAME if mask else LOGITS_NAME,
        precision="fp32",
        source_hash=source_hash or meta.source_hash,
    )


def _save_single_file(model, path: Path, final_name: str) -> None:
    onnx = require("onnx", "writing the ONNX file")
    if model.ByteSize() < PROTOBUF_LIMIT:
        onnx.save_model(model, str(path))
        return
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=final_name + ".data")


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
    output_name = final_meta.output_name

    model = model.eval()
    module = export_module(model, config.fuse_preprocess, config.output, config.mask_dtype, meta.mean, meta.std)
    batch = 2 if config.dynamic_batch else 1  # dynamo fixes a batch-1 example's batch at 1
    example = example_input(config.input_size, batch, config.fuse_preprocess, config.seed)
    proto = torch_to_onnx(module, example, output_name, config.opset, config.dynamic_batch,
                          config.dynamic_shape, config.exporter, output_rank=3 if config.output == "mask" else 4)
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
    check_boundary(proto, source, final_meta.input_dtype, final_meta.output_dtype)
    proto.producer_name = "fcn-edge"
    proto.doc_string = f"{final_meta.architecture}, {final_meta.num_classes} classes; ModelMeta in metadata_props"
    write_onnx_meta(proto, final_meta)

    with atomic_path(out) as tmp:
        _save_single_file(proto, tmp, out.name)
        parity = None
        if config.check_parity:
            parity = check_parity(module, tmp, parity_inputs(config), config.output,
                                  config.atol, config.rtol, config.min_agreement)
            if not parity.passed:
                diff = "n/a" if parity.max_abs_diff is None else f"{parity.max_abs_diff:.3g} (tolerance {parity.tolerance:.3g})"
                raise ExportError(
                    f"{out}: ONNX Runtime disagrees with PyTorch on inputs {list(parity.shapes)}: max abs "
                    f"diff {diff}, argmax agreement {parity.argmax_agreement:.5%} "
                    f"(needs {config.min_agreement:.3%}); the file was not written"
                )
    return ExportReport(
        path=out,
        opset=proto.opset_import[0].version,
        exporter=config.exporter,
        input_shape=dims(proto.graph.input[0]),
        output_shape=dims(proto.graph.output[0]),
        input_dtype=final_meta.input_dtype,
        output_name=output_name,
        output_dtype=final_meta.output_dtype,
        nodes_exported=nodes_exported,
        nodes_final=len(proto.graph.node),
        simplified=config.simplify,
        file_bytes=out.stat().st_size,
        seconds=time.perf_counter() - start,
        parity=parity,
        notes=tuple(notes),
        meta=final_meta,
    )


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
