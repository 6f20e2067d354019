"""ModelMeta inside an ONNX file: the ``metadata_props`` entry :data:`ONNX_KEY` (a JSON value)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from fcn_edge.artifacts.meta import ModelMeta
from fcn_edge.errors import MetaError
from fcn_edge.paths import PathLike

ONNX_KEY = "fcn_edge.meta"


def write_onnx_meta(model: Any, meta: ModelMeta) -> None:
    """Store ``meta`` in an ``onnx.ModelProto``'s metadata_props, replacing an older copy."""
    props = model.metadata_props
    for i in reversed(range(len(props))):
        if props[i].key == ONNX_KEY:
            del props[i]
    entry = props.add()
    entry.key = ONNX_KEY
    entry.value = meta.to_json()


def meta_from_props(props: Mapping[str, str], source: str) -> ModelMeta:
    """ModelMeta from a ``{key: value}`` view of metadata_props; says what to do when absent."""
    if ONNX_KEY not in props:
        raise MetaError(
            f"{source} carries no ModelMeta (metadata_props key '{ONNX_KEY}'): it was not written "
            "by `fcn-edge export`; make an ONNX from elsewhere deployable with `fcn-edge export "
            f"{source} --classes voc|cityscapes|FILE|N -o deploy.onnx` (plus --preprocessing or --mean/--std)"
        )
    return ModelMeta.from_json(props[ONNX_KEY], source)


def read_onnx_meta(path: PathLike) -> ModelMeta:
    """Read ModelMeta from an ONNX file with onnx, or ONNX Runtime where onnx is absent
    (a Jetson runtime install has onnxruntime-gpu but rarely onnx)."""
    path = Path(path)
    if not path.is_file():
        raise MetaError(f"{path}: no such ONNX file")
    try:
        import onnx
    except ImportError:
        onnx = None
    if onnx is not None:
        try:
            model = onnx.load(str(path), load_external_data=False)
        except Exception as exc:  # onnx raises DecodeError and friends
            raise MetaError(f"{path}: not a readable ONNX model: {exc}") from exc
        return meta_from_props({p.key: p.value for p in model.metadata_props}, str(path))
    from fcn_edge.optional import require

    ort = require("onnxruntime", "reading ModelMeta from ONNX")
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT's own Fail/InvalidProtobuf types
        raise MetaError(f"{path}: not a readable ONNX model: {exc}") from exc
    return meta_from_props(session.get_modelmeta().custom_metadata_map, str(path))
