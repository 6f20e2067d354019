"""Keras FCN-8/FCN-32 weights -> :class:`~fcn_edge.models.keras_fcn.KerasFCN` + ModelMeta.

:func:`load_keras_model` is the one entry point: a Keras weight file of any layout
(:mod:`.keras_weights`) or a keras_segmentation checkpoint (:mod:`.keras_config`) in, a
:class:`~fcn_edge.models.checkpoint.LoadedCheckpoint` out, ready for ``export_model``.

Keras numbers the head's layers (``conv2d_13``, ``conv2d_transpose_1``) by how many were
built before them in the session, and Keras 3 ``.weights.h5`` files keep no names at all,
so layers are placed by their shapes: each expected layer takes the next file layer whose
arrays have exactly its shapes, in the file's (``model.layers``) order. Layers with equal
shapes sit on one chain of the graph (block4_conv2 ... block5_conv3; upscore2 ->
upscore_pool4), which every topological order keeps in sequence; the one exception,
score_pool4 and score_pool3 over the small encoder's equal-width stages, comes pool4 first
both in creation order and in Keras' depth-sorted ``model.layers``. VGG layers the file
does name (``block3_conv2``) must land where their name says. Anything left over on either
side is reported, never skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from fcn_edge.artifacts import ModelMeta, file_sha256
from fcn_edge.classes import ClassList, resolve_classes
from fcn_edge.errors import CheckpointError
from fcn_edge.models.checkpoint import LoadedCheckpoint
from fcn_edge.models.keras_config import (
    ConfigFacts, SegmentationCheckpoint, config_facts, find_segmentation_checkpoint,
)
from fcn_edge.models.keras_fcn import (
    DEFAULT_INPUT_SIZE, FC_WIDTH, KERAS_BN_EPSILON, KERAS_MODEL_CLASSES, VGG16_WIDTHS, VANILLA_WIDTHS,
    KerasFCN, KerasFCNSpec, keras_output_size, spec_for_architecture, vgg16_conv_names,
)
from fcn_edge.models.keras_preprocessing import KerasPreprocessing, default_preprocessing, keras_preprocessing
from fcn_edge.models.keras_weights import KerasFile, KerasLayer, read_keras_file
from fcn_edge.paths import PathLike

Shapes = Tuple[Tuple[int, ...], ...]
_VGG_NAME = re.compile(r"^block[1-5]_conv[1-3]$")
LIST_LIMIT = 5  # layers named per kind of problem in an error message


@dataclass(frozen=True)
class Slot:
    """One weight-bearing layer the model expects: where it goes and its Keras shapes."""

    module: str  # the torch module, e.g. "encoder.block1_conv1", "upscore2"
    role: str  # "conv" | "transposed" | "batchnorm"
    shapes: Shapes
    keras_name: str = ""  # the name the Keras code gives it; "" where Keras numbers it

    def describe(self) -> str:
        name = f"{self.module} ({self.keras_name})" if self.keras_name else self.module
        return f"{name} [{', '.join(str(s) for s in self.shapes)}]"


def _conv(module: str, k: int, cin: int, cout: int, keras_name: str = "") -> Slot:
    return Slot(module, "conv", ((k, k, cin, cout), (cout,)), keras_name)


def _up(module: str, k: int, classes: int) -> Slot:
    return Slot(module, "transposed", ((k, k, classes, classes),))


def expected_slots(spec: KerasFCNSpec) -> List[Slot]:
    """The model's weight-bearing layers in the order the Keras code builds them."""
    slots: List[Slot] = []
    cin = 3
    if spec.encoder == "vgg16":
        for name, width in zip(vgg16_conv_names(), spec.widths):
            slots.append(_conv(f"encoder.{name}", 3, cin, width, name))
            cin = width
    else:
        for i, width in enumerate(spec.widths, 1):
            slots.append(_conv(f"encoder.conv{i}", 3, cin, width))
            slots.append(Slot(f"encoder.bn{i}", "batchnorm", ((width,),) * 4))
            cin = width
    c3, c4, c5 = spec.stage_widths
    fc, n = spec.fc_width, spec.num_classes
    slots += [_conv("fc6", 7, c5, fc), _conv("fc7", 1, fc, fc), _conv("score_fr", 1, fc, n)]
    if spec.head == "fcn32":
        return slots + [_up("upscore", 64, n)]
    return slots + [_up("upscore2", 4, n), _conv("score_pool4", 1, c4, n), _up("upscore_pool4", 4, n),
                    _conv("score_pool3", 1, c3, n), _up("upscore8", 16, n)]


# -- what the file holds ---------------------------------------------------------------------
def _is_transposed(layer: KerasLayer) -> bool:
    if layer.class_name:
        return layer.class_name == "Conv2DTranspose"
    return len(layer.arrays) == 1 and layer.arrays[0].ndim == 4  # the FCNs' upsamplers have no bias


def _is_batchnorm(layer: KerasLayer) -> bool:
    if layer.class_name:
        return layer.class_name == "BatchNormalization"
    return len(layer.arrays) == 4 and all(a.ndim == 1 for a in layer.arrays)


def _convs(layers: Sequence[KerasLayer], k: int) -> List[KerasLayer]:
    """Biased k x k convs, in file order."""
    return [l for l in layers if len(l.arrays) == 2 and l.arrays[0].ndim == 4 and l.shapes[0][:2] == (k, k)]


def _listing(layers: Sequence[KerasLayer]) -> str:
    more = f" ... and {len(layers) - 8} more" if len(layers) > 8 else ""
    return "; ".join(l.describe() for l in layers[:8]) + more


def infer_spec(layers: Sequence[KerasLayer], source: str, head: Optional[str] = None,
               encoder: Optional[str] = None, num_classes: Optional[int] = None,
               output_order: str = "per_pixel", bn_epsilon: float = KERAS_BN_EPSILON) -> KerasFCNSpec:
    """The spec the file's layers describe; ``head``/``encoder``/``num_classes`` when known.

    Widths are read from the file, so a narrowed VGG16 loads as what it is; the shape check
    in :func:`match_layers` then holds every layer to the architecture.
    """
    ups = [l for l in layers if _is_transposed(l)]
    if head is None:
        head = {3: "fcn8", 1: "fcn32"}.get(len(ups))
        if head is None:
            raise CheckpointError(
                f"{source}: not a Keras FCN-8 or FCN-32: they upsample with 3 (FCN-8) or 1 (FCN-32) "
                f"Conv2DTranspose layers, this file has {len(ups)}. Its {len(layers)} weight layers: "
                + _listing(layers))
    file_classes = ups[-1].shapes[0][2] if ups else None
    if num_classes is None:
        if file_classes is None:
            raise CheckpointError(f"{source}: no Conv2DTranspose layer to read the number of classes from; "
                                  f"its weight layers: {_listing(layers)}")
        num_classes = int(file_classes)
    elif file_classes is not None and file_classes != num_classes:
        raise CheckpointError(
            f"{source}: its upsampling layers score {file_classes} classes, not {num_classes} as asked")
    if encoder is None:
        encoder = "vanilla" if any(_is_batchnorm(l) for l in layers) else "vgg16"
    defaults = VGG16_WIDTHS if encoder == "vgg16" else VANILLA_WIDTHS
    convs3 = _convs(layers, 3)
    named = [l for l in convs3 if _VGG_NAME.match(l.name)]
    if encoder == "vgg16" and len(named) == len(defaults):
        convs3 = named
    widths = tuple(l.shapes[0][3] for l in convs3[: len(defaults)]) if len(convs3) >= len(defaults) else ()
    fc6 = _convs(layers, 7)
    fc7 = [l for l in _convs(layers, 1) if l.shapes[0][2] == l.shapes[0][3]]
    fc = fc6[0].shapes[0][3] if fc6 else fc7[0].shapes[0][3] if fc7 else FC_WIDTH
    return KerasFCNSpec(head, encoder, num_classes, output_order, widths, fc, bn_epsilon)


# -- placing layers --------------------------------------------------------------------------
def match_layers(slots: Sequence[Slot], layers: Sequence[KerasLayer], source: str,
                 what: str) -> List[Tuple[Slot, KerasLayer]]:
    """Pair every slot with the file layer of its shapes, in order; raise CheckpointError
    listing the first missing layers, extra layers and shape mismatches otherwise."""
    queues: Dict[Shapes, List[int]] = {}
    for index, layer in enumerate(layers):
        queues.setdefault(layer.shapes, []).append(index)
    pairs, missing, used = [], [], set()
    for slot in slots:
        queue = queues.get(slot.shapes)
        if queue:
            index = queue.pop(0)
            used.add(index)
            pairs.append((slot, layers[index]))
        else:
            missing.append(slot)
    extra = [layer for index, layer in enumerate(layers) if index not in used]
    misplaced = [(s, l) for s, l in pairs if _VGG_NAME.match(l.name) and l.name != s.keras_name]
    if not (missing or extra or misplaced):
        return pairs
    # A missing and an extra layer with as many arrays of the same ranks are one layer of the
    # wrong shape (the one agreeing in most dimensions): say so rather than listing it twice.
    mismatched = []
    for slot in list(missing):
        ranks = tuple(len(s) for s in slot.shapes)
        twins = [l for l in extra if tuple(len(s) for s in l.shapes) == ranks]
        if twins:
            twin = max(twins, key=lambda l: sum(a == b for x, y in zip(l.shapes, slot.shapes) for a, b in zip(x, y)))
            mismatched.append(f"{slot.describe()} but the file has {twin.describe()}")
            missing.remove(slot)
            extra.remove(twin)
    parts = [f"{source}: the weights do not fit {what}"]
    for title, items in (
        ("shape mismatches", mismatched),
        ("layers the file lacks", [s.describe() for s in missing]),
        ("layers the model lacks", [l.describe() for l in extra]),
        ("layers out of order", [f"{l.name} would load into {s.module}" for s, l in misplaced]),
    ):
        if items:
            more = f" (and {len(items) - LIST_LIMIT} more)" if len(items) > LIST_LIMIT else ""
            parts.append(f"{len(items)} {title}, first: {'; '.join(items[:LIST_LIMIT])}{more}")
    raise CheckpointError("; ".join(parts))


def state_dict_from(pairs: Sequence[Tuple[Slot, KerasLayer]], flip_kernels: bool,
                    bgr_input: bool) -> Dict[str, torch.Tensor]:
    """Keras arrays -> torch tensors under the slots' module names.

    Kernels go (kh, kw, in, out) -> (out, in, kh, kw); transposed kernels are stored
    (kh, kw, out, in) and go -> (in, out, kh, kw): the same axis permutation, no flip. Keras 2
    on Theano convolved (kernels flipped in space), hence ``flip_kernels`` for its files.
    ``bgr_input`` reverses the first conv's input channels so a BGR-trained net reads RGB.
    """
    state: Dict[str, torch.Tensor] = {}
    first_conv = True
    for slot, layer in pairs:
        arrays = [np.asarray(a, dtype=np.float32) for a in layer.arrays]
        if slot.role == "batchnorm":
            for key, value in zip(("weight", "bias", "running_mean", "running_var"), arrays):
                state[f"{slot.module}.{key}"] = torch.from_numpy(np.ascontiguousarray(value))
            continue
        kernel = arrays[0].transpose(3, 2, 0, 1)
        if flip_kernels:
            kernel = kernel[:, :, ::-1, ::-1]
        if slot.role == "conv" and first_conv:
            first_conv = False
            if bgr_input:
                kernel = kernel[:, ::-1]
        state[f"{slot.module}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel))
        if len(arrays) > 1:
            state[f"{slot.module}.bias"] = torch.from_numpy(np.ascontiguousarray(arrays[1]))
    return state


# -- the entry point -------------------------------------------------------------------------
def _class_list(classes: Optional[ClassList], num_classes: int, source: str) -> ClassList:
    if classes is None:
        return resolve_classes(str(num_classes))
    if len(classes.names) != num_classes:
        raise CheckpointError(
            f"{source}: {len(classes.names)} class names given for a model of {num_classes} classes")
    return classes


def _spec(kfile: KerasFile, facts: Optional[ConfigFacts], segmentation: Optional[SegmentationCheckpoint],
          arch: Optional[str], num_classes: Optional[int], output_order: Optional[str]) -> KerasFCNSpec:
    """The model to build: what the file and its config say, the arguments where they are silent."""
    source = str(kfile.path)
    head = encoder = asked_order = None
    if arch is not None:
        named = spec_for_architecture(arch, 1)
        head, encoder = named.head, named.encoder
        asked_order = named.output_order if named.output_order != "per_pixel" else None
    asked_order = output_order or asked_order
    if segmentation is not None:
        saved = KERAS_MODEL_CLASSES[segmentation.model_class]
        if arch is not None and (head, encoder) != saved:
            raise CheckpointError(f"{segmentation.config_path}: model_class {segmentation.model_class!r} "
                                  f"is not the {arch!r} asked for")
        if num_classes is not None and num_classes != segmentation.num_classes:
            raise CheckpointError(f"{segmentation.config_path}: n_classes {segmentation.num_classes}, "
                                  f"not {num_classes} as asked")
        (head, encoder), num_classes = saved, segmentation.num_classes
    saved_order = facts.output_order if facts else None
    if asked_order and saved_order and asked_order != saved_order:
        raise CheckpointError(f"{source}: the saved model's head orders its output {saved_order}, "
                              f"not {asked_order} as asked")
    epsilon = facts.bn_epsilon if facts and facts.bn_epsilon is not None else KERAS_BN_EPSILON
    return infer_spec(kfile.layers, source, head, encoder, num_classes,
                      asked_order or saved_order or "per_pixel", epsilon)


def _history(spec: KerasFCNSpec, kfile: KerasFile, source_format: str, pre: KerasPreprocessing,
             size: Tuple[int, int]) -> Tuple[str, ...]:
    """ModelMeta's provenance lines: what was read, how it is fed, what comes out."""
    out_h, out_w = keras_output_size(spec.head, size)
    version = f"Keras {kfile.keras_version}" if kfile.keras_version else "Keras"
    history = [
        f"import: {source_format} {kfile.path.name} ({spec.keras_name}; {version}"
        + (f", {kfile.backend} backend" if kfile.backend else "") + ")",
        f"keras preprocessing: {pre.text}",
        f"keras output: {out_h}x{out_w} for {size[0]}x{size[1]} input, the whole map covering "
        f"the frame; head order {spec.output_order}",
    ]
    if kfile.backend == "theano":
        history.append("kernels flipped in space: Keras 2's Theano backend convolves")
    if not spec.original_widths:
        history.append(f"encoder widths {spec.widths}, fc {spec.fc_width} (not the original's)")
    return tuple(history)


def load_keras_model(
    path: PathLike,
    arch: Optional[str] = None,
    num_classes: Optional[int] = None,
    input_size: Optional[Tuple[int, int]] = None,
    preprocessing: Optional[str] = None,
    output_order: Optional[str] = None,
    classes: Optional[ClassList] = None,
) -> LoadedCheckpoint:
    """Load a Keras FCN-8/FCN-32 into a :class:`KerasFCN` (eval mode) with its ModelMeta.

    ``path``: a Keras 2 ``.h5`` (``save_weights`` or ``model.save``), a Keras 3
    ``.weights.h5`` or ``.keras``, or a keras_segmentation checkpoint (its folder, its
    ``<prefix>_config.json``, its prefix: the newest epoch is loaded; or one epoch's file).
    Everything the file or checkpoint says is used; the arguments fill in what it does not
    (weights-only files) and must agree with what it does (``input_size`` may differ: the
    network is fully convolutional):

    * ``arch``: fcn_8_vgg, fcn_32_vgg, fcn_8, fcn_32 (keras_segmentation's names) or an
      fcn-edge name (fcn8s_vgg16_keras, ..., with ``_planar`` for that head); default: from
      the layers (3 transposed convs: FCN-8, 1: FCN-32; BatchNormalization: the small encoder);
    * ``num_classes``: default from the upsampling layers;
    * ``input_size``: (H, W) frames are resized to; default the saved model's, else 416x608;
    * ``preprocessing``: one of :data:`~.keras_preprocessing.PREPROCESSINGS`; default what the
      code that builds such a model used (keras_segmentation: sub_mean);
    * ``output_order``: per_pixel | planar_reshape; default from the saved head, else per_pixel;
    * ``classes``: names and colours; default class_0 ... class_N-1.
    """
    path = Path(path)
    segmentation = find_segmentation_checkpoint(path)
    if segmentation is None and not path.is_file():
        raise CheckpointError(f"{path}: no such Keras weight file or keras_segmentation checkpoint")
    kfile = read_keras_file(segmentation.weights_path if segmentation else path)
    source = str(kfile.path)
    facts = config_facts(kfile.config, source) if kfile.config is not None else None
    spec = _spec(kfile, facts, segmentation, arch, num_classes, output_order)
    what = f"a Keras {spec.keras_name} ({spec.architecture}, {spec.num_classes} classes)"
    pairs = match_layers(expected_slots(spec), kfile.layers, source, what)

    data_format = facts.data_format if facts else "channels_last"
    pre = keras_preprocessing(preprocessing) if preprocessing else default_preprocessing(data_format, spec.output_order)
    with torch.device("meta"):  # no random init of 134 M parameters only to overwrite them
        model = KerasFCN(spec)
    state = state_dict_from(pairs, flip_kernels=kfile.backend == "theano", bgr_input=pre.network_order == "BGR")
    state.update({k: torch.zeros((), dtype=torch.long) for k in model.state_dict() if k.endswith("num_batches_tracked")})
    model.load_state_dict(state, strict=True, assign=True)
    model.eval()

    size = tuple(input_size or (facts.input_size if facts else None)
                 or (segmentation.input_size if segmentation else None) or DEFAULT_INPUT_SIZE)
    class_list = _class_list(classes, spec.num_classes, source)
    source_format = "keras_segmentation" if segmentation else kfile.format
    meta = ModelMeta(spec.architecture, class_list.names, class_list.palette, input_size=size,
                     mean=pre.mean, std=pre.std, dataset=class_list.dataset,
                     history=_history(spec, kfile, source_format, pre, size))
    extra = {
        "keras_format": kfile.format,
        "keras_version": kfile.keras_version,
        "keras_backend": kfile.backend,
        "keras_model": spec.keras_name,
        "preprocessing": pre.name,
        "output_order": spec.output_order,
        "output_size": list(keras_output_size(spec.head, size)),
    }
    if segmentation is not None:
        extra.update(epoch=segmentation.epoch, config=str(segmentation.config_path))
    return LoadedCheckpoint(model, meta, source_format, kfile.path, file_sha256(kfile.path), extra)
