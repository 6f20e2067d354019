"""The artifact contract, in one place: what travels with a model from checkpoint to engine.

- :mod:`.meta`: ModelMeta (classes, palette, normalisation, layout, sizes, output, precision);
- :mod:`.onnx_meta`: ModelMeta inside an ONNX's ``metadata_props``;
- :mod:`.sidecar`: the engine's ``<name>.engine.json`` (ModelMeta + :class:`EngineRecord`);
- :mod:`.compatibility`: does an engine fit this TensorRT, this GPU, and its own sidecar;
- :mod:`.kind`: what a model file is, by its content;
- :mod:`.variants`: variant file names (``model.int8.onnx``);
- :mod:`.shapes`, :mod:`.dtypes`, :mod:`.hashing`: one spelling of sizes, dtypes and digests.

The stdlib only: the runtime on a Jetson imports this, never the build layers.
"""

from fcn_edge.artifacts.compatibility import check_engine_compatible, check_engine_file, same_tensorrt_version
from fcn_edge.artifacts.hashing import file_sha256
from fcn_edge.artifacts.kind import ModelKind, model_kind
from fcn_edge.artifacts.meta import (
    IMAGENET_MEAN, IMAGENET_STD, INPUT_NAME, LOGITS_NAME, MASK_NAME, ModelMeta, meta_for_classes,
    meta_for_dataset,
)
from fcn_edge.artifacts.onnx_meta import ONNX_KEY, meta_from_props, read_onnx_meta, write_onnx_meta
from fcn_edge.artifacts.sidecar import (
    EngineRecord, ProfileShapes, read_engine_sidecar, sidecar_path, write_engine_sidecar,
)
from fcn_edge.artifacts.variants import VARIANT_TAGS, variant_path, variant_tag

__all__ = [
    "EngineRecord", "IMAGENET_MEAN", "IMAGENET_STD", "INPUT_NAME", "LOGITS_NAME", "MASK_NAME",
    "ModelKind", "ModelMeta", "ONNX_KEY", "ProfileShapes", "VARIANT_TAGS", "check_engine_compatible",
    "check_engine_file", "file_sha256", "meta_for_classes", "meta_for_dataset", "meta_from_props",
    "model_kind", "read_engine_sidecar", "read_onnx_meta", "same_tensorrt_version", "sidecar_path",
    "variant_path", "variant_tag", "write_engine_sidecar", "write_onnx_meta",
]
