"""The second half of every export: a bare network's graph -> the deployable ONNX file.

Whatever made the network (PyTorch's exporter, a Keras import, another tool's ONNX), the
rest is the same: the heads the config asks for are grafted (:mod:`.heads`), the graph is
checked (onnx.checker, boundary dtypes, ModelMeta against the graph), ModelMeta goes into
metadata_props, both parity checks run (:mod:`.parity`), and the file is renamed into
place only when all passed. Needs onnx, onnx-graphsurgeon and onnxruntime; not torch.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional, Sequence

from fcn_edge.artifacts import ModelMeta, write_onnx_meta
from fcn_edge.atomic import atomic_path
from fcn_edge.errors import ExportError
from fcn_edge.export.config import ExportConfig, ExportReport, ParityResult
from fcn_edge.export.graph_checks import check_boundary, check_model, dims
from fcn_edge.export.graph_meta_check import meta_graph_problems
from fcn_edge.export.heads import Heads, NetworkIO, graft_heads, opset_of
from fcn_edge.export.parity import (
    PROTOBUF_LIMIT, Reference, frame_batches, head_parity, network_inputs, network_parity,
)
from fcn_edge.optional import require


def heads_for(config: ExportConfig, meta: ModelMeta) -> Heads:
    """The heads ``config`` asks for, with ``meta``'s normalisation and class count."""
    return Heads(
        num_classes=meta.num_classes, fuse_preprocess=config.fuse_preprocess, mean=tuple(meta.mean),
        std=tuple(meta.std), resize_to=tuple(config.input_size) if config.fuse_resize else None,
        frame_size=None if config.dynamic_shape or not config.fuse_resize else config.frame_range[1],
        output=config.output, mask_dtype=config.mask_dtype, argmax=config.argmax,
    )


def deployment_meta(meta: ModelMeta, config: ExportConfig, step: str, source_hash: str = "") -> ModelMeta:
    """ModelMeta as the deployment graph's boundary and shape range make it; ``step`` (with
    the heads in words) goes into its history."""
    config = config.for_meta(meta)
    lo, hi = config.size_range
    fused = config.fuse_preprocess
    mask = config.output == "mask"
    frames = config.frame_range if config.fuse_resize else (None, None, None)
    heads = heads_for(config, meta).describe()
    return meta.with_history(
        step + ("" if heads == "no heads" else f", {heads}"),
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
        output_name=heads_for(config, meta).output_name,
        precision="fp32",
        source_hash=source_hash or meta.source_hash,
        frame_min_size=frames[0],
        frame_size=frames[1],
        frame_max_size=frames[2],
    )


def network_meta(meta: ModelMeta) -> ModelMeta:
    """The bare network's ModelMeta: what the host path feeds it and reads from it."""
    return meta.replace(input_layout="NCHW", input_dtype="float32", channel_order="RGB", output_kind="logits",
                        output_dtype="float32", output_name=Heads(meta.num_classes).output_name,
                        min_size=meta.input_size, max_size=meta.input_size,
                        frame_size=None, frame_min_size=None, frame_max_size=None)


def _save_single_file(model, path: Path, final_name: str) -> None:
    onnx = require("onnx", "writing the ONNX file")
    if model.ByteSize() < PROTOBUF_LIMIT:
        onnx.save_model(model, str(path))
        return
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=final_name + ".data")


def _failed(out: Path, parity: ParityResult, min_agreement: float) -> ExportError:
    diff = "n/a" if parity.max_abs_diff is None else f"{parity.max_abs_diff:.3g}" + (
        "" if parity.tolerance is None else f" (tolerance {parity.tolerance:.3g})")
    shapes = ", ".join("x".join(map(str, s)) for s in parity.shapes)
    return ExportError(
        f"{out}: ONNX Runtime disagrees with {parity.against} on inputs {shapes}: max abs diff {diff}, "
        f"argmax agreement {parity.argmax_agreement:.5%} (needs {min_agreement:.3%}); the file was not written"
    )


def assemble(
    network,
    io: NetworkIO,
    meta: ModelMeta,
    config: ExportConfig,
    out: Path,
    *,
    reference: Optional[Reference],
    against: str,
    source: str,
    exporter: str,
    nodes_exported: int,
    simplified: bool,
    notes: Sequence[str] = (),
    start: Optional[float] = None,
) -> ExportReport:
    """Graft ``config``'s heads onto ``network`` (an onnx.ModelProto laid out as ``io``),
    check it, write it to ``out`` with ``meta`` (the deployment ModelMeta), and compare it.

    ``reference`` maps float NCHW RGB batches to NCHW logits (PyTorch, or the original graph);
    None skips the network parity (the graph is its own reference).
    """
    start = time.perf_counter() if start is None else start
    config = config.for_meta(meta)
    heads = heads_for(config, meta)
    bare = graft_heads(network, Heads(meta.num_classes), io, source)  # float NCHW RGB -> NCHW logits
    check_model(bare, source)
    parity = None
    if config.check_parity and reference is not None:
        parity = network_parity(bare, reference, network_inputs(config), against, config.atol, config.rtol,
                                config.min_agreement)
        if not parity.passed:
            raise _failed(out, parity, config.min_agreement)
    grafted = heads != Heads(meta.num_classes)
    deployed = graft_heads(network, heads, io, source) if grafted else bare
    if grafted:
        check_model(deployed, source)
    check_boundary(deployed, source, meta.input_dtype, meta.output_dtype)
    problems = meta_graph_problems(deployed, meta)
    if problems:
        raise ExportError(f"{source}: the ModelMeta disagrees with the graph: " + "; ".join(problems))
    deployed.producer_name = "fcn-edge"
    deployed.doc_string = f"{meta.architecture}, {meta.num_classes} classes; ModelMeta in metadata_props"
    write_onnx_meta(deployed, meta)

    head_result = None
    with atomic_path(out) as tmp:
        _save_single_file(deployed, tmp, out.name)
        if config.check_parity and grafted:
            min_agreement = config.min_resize_agreement if config.fuse_resize else config.min_agreement
            head_result = head_parity(deployed, bare, meta, network_meta(meta), frame_batches(config), config.atol,
                                      config.rtol, min_agreement)
            if not head_result.passed:
                raise _failed(out, head_result, min_agreement)
    notes = list(notes)
    if config.fuse_resize:
        lo, opt, hi = config.frame_range
        notes.append(f"frames {lo[0]}x{lo[1]} .. {hi[0]}x{hi[1]} (opt {opt[0]}x{opt[1]}) are resized to "
                     f"{config.input_size[0]}x{config.input_size[1]} in the graph")
    return ExportReport(
        path=out,
        opset=opset_of(deployed),
        exporter=exporter,
        input_shape=dims(deployed.graph.input[0]),
        output_shape=dims(deployed.graph.output[0]),
        input_dtype=meta.input_dtype,
        output_name=meta.output_name,
        output_dtype=meta.output_dtype,
        nodes_exported=nodes_exported,
        nodes_final=len(deployed.graph.node),
        simplified=simplified,
        file_bytes=out.stat().st_size,
        seconds=time.perf_counter() - start,
        parity=parity,
        notes=tuple(notes),
        meta=meta,
        head_parity=head_result,
        heads=heads.describe(),
    )
