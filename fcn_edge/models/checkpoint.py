"""Checkpoints: fcn-edge's own format, and import of the two foreign layouts trained FCNs
come in.

* ``fcn-edge``: ``{"format": "fcn-edge", "format_version", "architecture", "state_dict",
  "meta": ModelMeta.to_dict(), "extra"}``; plain types and tensors only.
* ``torchvision``: the state_dict of torchvision's ``fcn_resnet50``/``fcn_resnet101``
  (``backbone.*``, ``classifier.*``; ``aux_classifier.*`` is ignored).
* ``pytorch-fcn``: the FCN32s/16s/8s of the pytorch-fcn package (``conv1_1`` ... ``fc7``,
  ``score_fr``, ``upscore*``), a plain state_dict or its training checkpoint with
  ``model_state_dict``. Loaded into the ``fcn*s_vgg16_caffe`` geometry
  (``fcn8s_vgg16_caffe_atonce`` for FCN8sAtOnce).

Every file is read with ``torch.load(weights_only=True)``: no arbitrary unpickling.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn

from fcn_edge.artifacts import ModelMeta, file_sha256
from fcn_edge.atomic import atomic_path
from fcn_edge.classes import ClassList, classes_for_count
from fcn_edge.errors import CheckpointError, MetaError
from fcn_edge.models.registry import UnknownModelError, build_model
from fcn_edge.models.vgg import VGG16_CONV_NAMES, conv_module_indices
from fcn_edge.paths import PathLike

log = logging.getLogger(__name__)

FORMAT_NAME = "fcn-edge"
FORMAT_VERSION = 1
FORMATS = ("fcn-edge", "torchvision", "pytorch-fcn", "state_dict")
AT_ONCE_ARCH = "fcn8s_vgg16_caffe_atonce"

# pytorch-fcn feeds Caffe's input: BGR planes, 0..255, minus this per-channel mean.
CAFFE_MEAN_BGR = (104.00698793, 116.66876762, 122.67891434)

StateDict = Dict[str, torch.Tensor]


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A model ready for inference (eval mode) and the facts that travel with it."""

    model: nn.Module
    meta: ModelMeta
    source_format: str  # one of FORMATS
    path: Path
    sha256: str
    extra: Mapping[str, Any] = field(default_factory=dict)


# -- writing ---------------------------------------------------------------------------------
def save_checkpoint(
    path: PathLike,
    model: nn.Module,
    meta: ModelMeta,
    extra: Optional[Mapping[str, Any]] = None,
) -> Path:
    """Write weights + ModelMeta to ``path`` (temporary name, then rename).

    ``extra`` holds plain values (epoch, metrics, optimizer state_dict) that
    ``weights_only`` loading accepts. ``meta.architecture`` must name a registry model
    whose state_dict matches ``model``.
    """
    path = Path(path)
    if meta.num_classes != getattr(model, "num_classes", meta.num_classes):
        raise CheckpointError(
            f"{path}: ModelMeta lists {meta.num_classes} classes but the model has {model.num_classes}"
        )
    payload = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "architecture": meta.architecture,
        "num_classes": meta.num_classes,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": meta.to_dict(),
        "extra": dict(extra or {}),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


# -- reading ---------------------------------------------------------------------------------
def read_checkpoint_file(path: PathLike) -> Any:
    """``torch.load(weights_only=True)`` with errors that name the file and say what to do."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, RuntimeError (not a zip/pickle), EOFError
        text = str(exc)
        if "weights_only" in text or "Unsupported global" in text or "GLOBAL" in text:
            raise CheckpointError(
                f"{path}: holds pickled Python objects besides tensors, which fcn-edge will not "
                "unpickle (torch.load weights_only=True). Re-save only the weights: "
                "torch.save(model.state_dict(), path). Detail: " + text.splitlines()[0]
            ) from exc
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint: {text.splitlines()[0] if text else exc!r}") from exc


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    )


def extract_state_dict(obj: Any, source: str) -> StateDict:
    """The weights inside a loaded file: the file itself, or a common wrapper key."""
    if _is_state_dict(obj):
        state = dict(obj)
    else:
        state = None
        if isinstance(obj, Mapping):
            for key in ("state_dict", "model_state_dict", "model", "net"):
                if _is_state_dict(obj.get(key)):
                    state = dict(obj[key])
                    break
        if state is None:
            kind = f"a dict with keys {sorted(map(str, obj))[:8]}" if isinstance(obj, Mapping) else type(obj).__name__
            raise CheckpointError(
                f"{source}: no state_dict found; expected a mapping of parameter names to tensors "
                f"(or one under 'state_dict'/'model_state_dict'/'model'), got {kind}"
            )
    if all(k.startswith("module.") for k in state):  # saved from DataParallel/DDP
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def detect_format(obj: Any) -> str:
    """Which of FORMATS a loaded checkpoint object is."""
    if isinstance(obj, Mapping) and obj.get("format") == FORMAT_NAME:
        return "fcn-edge"
    try:
        keys = set(extract_state_dict(obj, "<checkpoint>"))
    except CheckpointError:
        return "unknown"
    if "conv1_1.weight" in keys and "score_fr.weight" in keys:
        return "pytorch-fcn"
    if "classifier.4.weight" in keys and "backbone.layer4.0.conv1.weight" in keys:
        return "torchvision"
    return "state_dict"


def check_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor], source: str, limit: int = 10) -> None:
    """Raise CheckpointError listing missing keys, unexpected keys and shape mismatches."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if not (missing or unexpected or shapes):
        return
    arch = getattr(model, "architecture", type(model).__name__)
    parts = [f"{source}: does not match architecture {arch!r}"]
    for title, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shapes that differ", shapes)):
        if items:
            more = f" (and {len(items) - limit} more)" if len(items) > limit else ""
            parts.append(f"{len(items)} {title}: {', '.join(items[:limit])}{more}")
    raise CheckpointError("; ".join(parts))


def _load_into(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> nn.Module:
    # Files saved before PyTorch 0.4.1 lack BatchNorm's step counter; it does not affect inference.
    state = dict(state)
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = value
    check_state_dict(model, state, source)
    model.load_state_dict(state, strict=True)
    return model.eval()


# -- foreign layouts -------------------------------------------------------------------------
def pytorch_fcn_head(keys: Sequence[str]) -> str:
    if "upscore8.weight" in keys:
        return "fcn8s"
    if "upscore16.weight" in keys:
        return "fcn16s"
    return "fcn32s"


def pytorch_fcn_to_fcn_edge(state: Mapping[str, torch.Tensor]) -> StateDict:
    """Rename pytorch-fcn keys to the ``fcn*s_vgg16_caffe`` layout and take RGB input.

    conv1_1's input channels are reversed so the model reads RGB planes like every other
    fcn-edge model; the Caffe mean and 0..255 scale go into ModelMeta (see
    :func:`caffe_normalisation`). With zero padding this is exact.
    """
    names = dict(zip(VGG16_CONV_NAMES, conv_module_indices()))
    out: StateDict = {}
    for key, value in state.items():
        layer, _, param = key.partition(".")
        if layer in names:
            new = f"backbone.features.{names[layer]}.{param}"
            if layer == "conv1_1" and param == "weight" and value.dim() == 4 and value.shape[1] == 3:
                value = value.flip(1)  # other shapes are left for check_state_dict to report
        elif layer == "fc6":
            new = f"backbone.classifier.0.{param}"
        elif layer == "fc7":
            new = f"backbone.classifier.3.{param}"
        else:
            new = f"head.{key}"  # score_fr, score_pool4/3, upscore* keep their names
        out[new] = value
    return out


def caffe_normalisation() -> Dict[str, Tuple[float, float, float]]:
    """mean/std on RGB in [0, 1] that reproduce Caffe's BGR 0..255 minus mean."""
    mean_rgb = tuple(m / 255.0 for m in reversed(CAFFE_MEAN_BGR))
    return {"mean": mean_rgb, "std": (1 / 255.0,) * 3}


def torchvision_architecture(state: Mapping[str, torch.Tensor]) -> str:
    blocks = {k.split(".")[2] for k in state if k.startswith("backbone.layer3.")}
    return "fcn_resnet101" if len(blocks) > 6 else "fcn_resnet50"


# -- the one entry point ---------------------------------------------------------------------
def _default_meta(architecture: str, num_classes: int, classes: Optional[ClassList], source: str,
                  **overrides: Any) -> ModelMeta:
    """ModelMeta of a checkpoint that carries none: ``classes``, else VOC's 21 or
    Cityscapes' 19 by the class count, else ``class_0``... with the default palette."""
    if classes is None:
        classes = classes_for_count(num_classes)
    _check_class_count(classes, num_classes, source)
    try:
        return ModelMeta(architecture, classes.names, classes.palette, dataset=classes.dataset, **overrides)
    except MetaError as exc:
        raise CheckpointError(f"{source}: {exc}") from exc


def _check_class_count(classes: ClassList, num_classes: int, source: str) -> None:
    if len(classes.names) != num_classes:
        given = f"the {classes.dataset} class list" if classes.dataset else "the class list given"
        raise CheckpointError(
            f"{source}: {given} has {len(classes.names)} classes, the checkpoint {num_classes}"
        )


def _num_classes(state: Mapping[str, torch.Tensor], keys: Sequence[str], source: str) -> int:
    for key in keys:
        if key in state:
            return int(state[key].shape[0])
    raise CheckpointError(f"{source}: cannot tell the number of classes: none of {list(keys)} is present")


def load_checkpoint(
    path: PathLike,
    architecture: Optional[str] = None,
    classes: Optional[ClassList] = None,
) -> LoadedCheckpoint:
    """Load any of the supported formats into a registry model, in eval mode.

    ``architecture`` is required only for a bare state_dict of an fcn-edge model; for the
    other formats it is inferred, and checked when given. ``classes`` (names and palette,
    :func:`fcn_edge.classes.resolve_classes`) names the classes of a foreign checkpoint
    (21 classes default to PASCAL VOC, 19 to Cityscapes) and replaces those an fcn-edge
    checkpoint carries; either way its count must be the checkpoint's.
    """
    path = Path(path)
    source = str(path)
    obj = read_checkpoint_file(path)
    fmt = detect_format(obj)
    digest = file_sha256(path)
    extra: Mapping[str, Any] = {}

    if fmt == "fcn-edge":
        version = obj.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise CheckpointError(
                f"{source}: fcn-edge checkpoint format_version {version!r} is newer than this "
                f"fcn-edge reads ({FORMAT_VERSION}); upgrade fcn-edge"
            )
        try:
            meta = ModelMeta.from_dict(obj.get("meta"), source)
        except MetaError as exc:
            raise CheckpointError(str(exc)) from exc
        arch = str(obj.get("architecture") or meta.architecture)
        state = extract_state_dict(obj, source)
        extra = obj.get("extra") or {}
        if classes is not None and (classes.names, classes.palette) != (meta.class_names, meta.palette):
            _check_class_count(classes, meta.num_classes, source)
            meta = meta.with_history(f"classes replaced by {classes.dataset or 'the class list given'}",
                                     class_names=classes.names, palette=classes.palette, dataset=classes.dataset)
    elif fmt == "pytorch-fcn":
        raw = extract_state_dict(obj, source)
        arch_note = str(obj.get("arch", "")) if isinstance(obj, Mapping) else ""
        arch = f"{pytorch_fcn_head(list(raw))}_vgg16_caffe"
        # FCN8sAtOnce has FCN8s's keys; its training checkpoints say so in "arch", its bare
        # state_dicts (e.g. fcn8s-atonce_from_caffe.pth) need architecture= to say it.
        if arch == "fcn8s_vgg16_caffe" and ("AtOnce" in arch_note or architecture == AT_ONCE_ARCH):
            arch = AT_ONCE_ARCH
        num = _num_classes(raw, ["score_fr.weight"], source)
        state = pytorch_fcn_to_fcn_edge(raw)
        meta = _default_meta(arch, num, classes, source, **caffe_normalisation())
    elif fmt == "torchvision":
        raw = extract_state_dict(obj, source)
        dropped = [k for k in raw if k.startswith("aux_classifier.")]
        state = {k: v for k, v in raw.items() if not k.startswith("aux_classifier.")}
        if dropped:
            log.debug("%s: ignoring %d aux_classifier tensors (training-time head)", source, len(dropped))
        arch = torchvision_architecture(state)
        num = _num_classes(state, ["classifier.4.weight"], source)
        meta = _default_meta(arch, num, classes, source)
    elif fmt == "state_dict":
        if architecture is None:
            raise CheckpointError(
                f"{source}: a bare state_dict that is neither torchvision's fcn_resnet nor "
                "pytorch-fcn's layout; name its fcn-edge architecture (--arch / architecture=)"
            )
        arch = architecture
        state = extract_state_dict(obj, source)
        num = _num_classes(state, ["head.score_fr.weight", "classifier.4.weight"], source)
        meta = _default_meta(arch, num, classes, source)
    else:
        extract_state_dict(obj, source)  # raises the descriptive error
        raise CheckpointError(f"{source}: unrecognised checkpoint")

    if architecture is not None and architecture != arch:
        raise CheckpointError(
            f"{source}: is a {fmt} checkpoint of {arch!r}, not of {architecture!r} as asked"
        )
    try:
        model = build_model(arch, meta.num_classes)
    except UnknownModelError as exc:
        raise CheckpointError(f"{source}: {exc}") from exc
    _load_into(model, state, source)
    return LoadedCheckpoint(model, meta, fmt, path, digest, extra)
