"""The Keras FCNs as their original code builds them, on Keras 3's torch backend (no TensorFlow).

fcn-edge's Keras importer must reproduce these. Transcribed from the public originals, layer
arguments unchanged:

* ``keras_segmentation`` (divamgupta/image-segmentation-keras, keras_segmentation/models/):
  ``vgg16.get_vgg_encoder`` (without the ImageNet download), ``basic_models.vanilla_encoder``,
  ``fcn.crop``, ``fcn.fcn_8``, ``fcn.fcn_32``, ``model_utils.get_segmentation_model``;
  ``IMAGE_ORDERING`` channels_last (its default);
* the 2017 ``Models/FCN8.py``/``FCN32.py`` of the same repository: the same layers with
  ``IMAGE_ORDERING = 'channels_first'`` and the ``Reshape((-1, H*W))`` + ``Permute`` head;
* BBuf/Keras-Semantic-Segmentation's first ``Models/FCN8.py`` (2019-06-18): channels-last
  input under that channels-first head.

Test-only liberties, none of which changes what a layer computes: channel widths are
parameters (the originals are the defaults) so the default test run can use a slim copy; the
2017/2019 files' dangling ``Flatten``/``Dense`` fc1/fc2 (never part of the returned Model)
are not built.

Also here: the input arrays those codes feed (``get_image_array`` and its predecessors),
weights perturbed so no zero-initialised layer hides a mistake, and every save format.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, Sequence, Tuple

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402  (the backend must be chosen before the import)
from keras.layers import (  # noqa: E402
    Activation, Add, BatchNormalization, Conv2D, Conv2DTranspose, Cropping2D, Dropout, Input, MaxPooling2D,
    Permute, Reshape, ZeroPadding2D,
)
from keras.models import Model  # noqa: E402

VGG_WIDTHS = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)
VANILLA_WIDTHS = (64, 128, 256, 256, 256)
FC_WIDTH = 4096
# Slim copies for the default test run: same layers, a few channels each.
SLIM_VGG = (4, 4, 6, 6, 8, 8, 8, 12, 12, 12, 12, 12, 12)
SLIM_VANILLA = (4, 6, 8, 8, 12)
SLIM_FC = 16

FLAVOURS = ("keras_segmentation", "divamgupta_2017", "bbuf_2019")
ENCODERS = {"fcn_8_vgg": "vgg", "fcn_32_vgg": "vgg", "fcn_8": "vanilla", "fcn_32": "vanilla"}


def vgg_encoder(h, w, fmt, widths=VGG_WIDTHS, check_size=True):
    """keras_segmentation's get_vgg_encoder (pretrained=None)."""
    if check_size:  # as get_vgg_encoder asserts; the 2017/2019 FCN8 did not
        assert h % 32 == 0 and w % 32 == 0
    img_input = Input(shape=(3, h, w) if fmt == "channels_first" else (h, w, 3))
    x, levels, i = img_input, [], 0
    for block, count in enumerate((2, 2, 3, 3, 3), 1):
        for conv in range(1, count + 1):
            x = Conv2D(widths[i], (3, 3), activation="relu", padding="same",
                       name=f"block{block}_conv{conv}", data_format=fmt)(x)
            i += 1
        x = MaxPooling2D((2, 2), strides=(2, 2), name=f"block{block}_pool", data_format=fmt)(x)
        levels.append(x)
    return img_input, levels


def vanilla_encoder(h, w, fmt, widths=VANILLA_WIDTHS):
    """keras_segmentation's basic_models.vanilla_encoder."""
    img_input = Input(shape=(3, h, w) if fmt == "channels_first" else (h, w, 3))
    x, levels = img_input, []
    for width in widths:
        x = ZeroPadding2D((1, 1), data_format=fmt)(x)
        x = Conv2D(width, (3, 3), data_format=fmt, padding="valid")(x)
        x = BatchNormalization()(x)
        x = Activation("relu")(x)
        x = MaxPooling2D((2, 2), data_format=fmt)(x)
        levels.append(x)
    return img_input, levels


def _hw(shape, fmt):
    return (shape[2], shape[3]) if fmt == "channels_first" else (shape[1], shape[2])


def crop(o1, o2, i, fmt):
    """keras_segmentation's fcn.crop: the larger map loses its right columns / bottom rows."""
    h2, w2 = _hw(Model(i, o2).output_shape, fmt)
    h1, w1 = _hw(Model(i, o1).output_shape, fmt)
    cx, cy = abs(w1 - w2), abs(h2 - h1)
    if w1 > w2:
        o1 = Cropping2D(cropping=((0, 0), (0, cx)), data_format=fmt)(o1)
    else:
        o2 = Cropping2D(cropping=((0, 0), (0, cx)), data_format=fmt)(o2)
    if h1 > h2:
        o1 = Cropping2D(cropping=((0, cy), (0, 0)), data_format=fmt)(o1)
    else:
        o2 = Cropping2D(cropping=((0, cy), (0, 0)), data_format=fmt)(o2)
    return o1, o2


def fcn_head(head, n, img_input, levels, fmt, fc=FC_WIDTH, fc6_kernel=(7, 7)):
    """fcn.fcn_8 / fcn.fcn_32 from ``o = f5`` to the last Conv2DTranspose (``fc6_kernel``
    other than 7x7 only to make a network fcn-edge must refuse)."""
    _, _, f3, f4, f5 = levels
    o = Conv2D(fc, fc6_kernel, activation="relu", padding="same", data_format=fmt)(f5)
    o = Dropout(0.5)(o)
    o = Conv2D(fc, (1, 1), activation="relu", padding="same", data_format=fmt)(o)
    o = Dropout(0.5)(o)
    o = Conv2D(n, (1, 1), kernel_initializer="he_normal", data_format=fmt)(o)
    if head == "fcn_32":
        return Conv2DTranspose(n, kernel_size=(64, 64), strides=(32, 32), use_bias=False, data_format=fmt)(o)
    o = Conv2DTranspose(n, kernel_size=(4, 4), strides=(2, 2), use_bias=False, data_format=fmt)(o)
    o2 = Conv2D(n, (1, 1), kernel_initializer="he_normal", data_format=fmt)(f4)
    o, o2 = crop(o, o2, img_input, fmt)
    o = Add()([o, o2])
    o = Conv2DTranspose(n, kernel_size=(4, 4), strides=(2, 2), use_bias=False, data_format=fmt)(o)
    o2 = Conv2D(n, (1, 1), kernel_initializer="he_normal", data_format=fmt)(f3)
    o2, o = crop(o2, o, img_input, fmt)
    o = Add(name="seg_feats")([o2, o])
    return Conv2DTranspose(n, kernel_size=(16, 16), strides=(8, 8), use_bias=False, data_format=fmt)(o)


def segmentation_model(img_input, o, fmt, planar=False):
    """model_utils.get_segmentation_model's softmax head (and the 2019 copy's, ``planar``)."""
    out_h, out_w = _hw(Model(img_input, o).output_shape, fmt)
    if fmt == "channels_first" or planar:
        o = Reshape((-1, out_h * out_w))(o)
        o = Permute((2, 1))(o)
    else:
        o = Reshape((out_h * out_w, -1))(o)
    o = Activation("softmax")(o)
    return Model(img_input, o)


def data_format(flavour: str) -> str:
    return "channels_first" if flavour == "divamgupta_2017" else "channels_last"


def build(model_class: str, n: int, size: Tuple[int, int], flavour: str = "keras_segmentation",
          widths: Sequence[int] = None, fc: int = FC_WIDTH, check_size: bool = True):
    """A Keras FCN as ``flavour``'s code builds it; ``widths`` None = the original encoder.
    ``check_size=False`` lifts keras_segmentation's multiple-of-32 assertion, to run the same
    weights at an odd size as the 2017/2019 code (which had no such assertion) could."""
    fmt = data_format(flavour)
    h, w = size
    if ENCODERS[model_class] == "vgg":
        strict = check_size and flavour == "keras_segmentation"
        img_input, levels = vgg_encoder(h, w, fmt, widths or VGG_WIDTHS, check_size=strict)
    else:
        img_input, levels = vanilla_encoder(h, w, fmt, widths or VANILLA_WIDTHS)
    head = "fcn_32" if model_class.startswith("fcn_32") else "fcn_8"
    o = fcn_head(head, n, img_input, levels, fmt, fc)
    return segmentation_model(img_input, o, fmt, planar=flavour == "bbuf_2019")


# Spread (std) of each preprocessing's network input for uniform random pixels.
INPUT_STD = {"sub_mean": 74.0, "sub_mean_bgr": 74.0, "none": 74.0, "divide": 0.29, "sub_and_divide": 0.58}


def perturb(model, seed: int = 0, input_std: float = 1.0) -> None:
    """Random weights everywhere, biases and BatchNorm statistics included, so no
    zero-initialised layer hides a mistake. He-scaled, with the first conv divided by the
    input's spread, so logits stay in the tens like a trained net's instead of saturating the
    softmax (a float32 comparison of saturated probabilities measures nothing)."""
    rng = np.random.default_rng(seed)
    values, first = [], True
    for var in model.weights:
        shape, path = tuple(var.shape), var.path
        if path.endswith("kernel"):
            # a transposed conv with kernel 2 x stride sums 4 taps per input channel
            fan_in = 4 * shape[3] if "transpose" in path else int(np.prod(shape[:-1]))
            std = np.sqrt(2.0 / fan_in) / (input_std if first else 1.0)
            values.append(rng.normal(0, std, shape))
            first = False
        elif path.endswith(("gamma", "moving_variance")):
            values.append(rng.uniform(0.5, 1.5, shape))
        else:  # bias, beta, moving_mean
            values.append(rng.normal(0, 0.1, shape))
    model.set_weights([v.astype(np.float32) for v in values])


def at_size(model, model_class: str, n: int, size: Tuple[int, int], flavour: str,
            widths: Sequence[int] = None, fc: int = FC_WIDTH):
    """The same Keras model (same weights) built for another input size."""
    other = build(model_class, n, size, flavour, widths, fc, check_size=False)
    other.set_weights(model.get_weights())
    return other


def pre_head(model):
    """The sub-model up to the last Conv2DTranspose: the logits before the softmax head."""
    last = [layer for layer in model.layers if isinstance(layer, Conv2DTranspose)][-1]
    return Model(model.inputs[0], last.output)


def run(model, x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(softmax output (N, H*W, C), logits before the head as (N, C, H, W)), in one call of a
    model with both outputs (cached on ``model``)."""
    both = getattr(model, "_both_outputs", None)
    if both is None:
        both = Model(model.inputs[0], [model.outputs[0], pre_head(model).outputs[0]])
        model._both_outputs = both
    import torch

    with torch.no_grad():  # as predict() runs; a plain call would record the autograd graph
        out, logits = (keras.ops.convert_to_numpy(t) for t in both(x, training=False))
    if model.layers[1].data_format == "channels_last":
        logits = logits.transpose(0, 3, 1, 2)
    return out, logits


def planar(logits: np.ndarray) -> np.ndarray:
    """What the 2019 head makes of (N, C, H, W) logits: the NHWC buffer read as planes."""
    return np.ascontiguousarray(logits.transpose(0, 2, 3, 1)).reshape(logits.shape)


# -- what the Keras code feeds the network ---------------------------------------------------
def keras_input(frame_bgr: np.ndarray, preprocessing: str, fmt: str) -> np.ndarray:
    """A batch of one, as get_image_array (keras_segmentation), getImageArr (2017) or BBuf's
    getImageArr (``none``) make it from a cv2.imread frame already at the model's size."""
    img = frame_bgr.astype(np.float32)
    if preprocessing in ("sub_mean", "sub_mean_bgr"):
        means = [103.939, 116.779, 123.68]
        for i in range(3):
            img[:, :, i] -= means[i]
        if preprocessing == "sub_mean":
            img = img[:, :, ::-1]
    elif preprocessing == "divide":
        img = img / 255.0
    elif preprocessing == "sub_and_divide":
        img = np.float32(frame_bgr) / 127.5 - 1
    if fmt == "channels_first":
        img = np.rollaxis(img, 2, 0)
    return np.ascontiguousarray(img[None])


# -- every way to save ----------------------------------------------------------------------
def save_hdf5_weights(model, path: Path) -> Path:
    """Keras 2's save_weights layout (layer_names, weight_names), written by Keras' own
    legacy writer (what Keras 3's model.save('x.h5') also uses)."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    return path


def save(model, directory: Path, fmt: str, stem: str = "model") -> Path:
    """Save in one of fcn-edge's KERAS_FORMATS (or as a keras_segmentation checkpoint)."""
    directory.mkdir(parents=True, exist_ok=True)
    if fmt == "hdf5-weights":
        return save_hdf5_weights(model, directory / f"{stem}.h5")
    if fmt == "hdf5-model":
        path = directory / f"{stem}.h5"
        model.save(path)
        return path
    if fmt == "keras3-weights":
        path = directory / f"{stem}.weights.h5"
        model.save_weights(path)
        return path
    if fmt == "keras3-archive":
        path = directory / f"{stem}.keras"
        model.save(path)
        return path
    raise ValueError(fmt)


def save_segmentation_checkpoint(models: Dict[int, "keras.Model"], directory: Path, model_class: str,
                                 n: int, size: Tuple[int, int], prefix: str = "fcn") -> Path:
    """What keras_segmentation's train() leaves: ``<prefix>_config.json`` and one
    ``<prefix>.<epoch>`` HDF5 per epoch (standalone Keras' save_weights, no suffix)."""
    directory.mkdir(parents=True, exist_ok=True)
    out_h, out_w = _hw(pre_head(next(iter(models.values()))).output_shape, "channels_last")
    config = {"model_class": model_class, "n_classes": n, "input_height": size[0], "input_width": size[1],
              "output_height": out_h, "output_width": out_w}
    (directory / f"{prefix}_config.json").write_text(json.dumps(config))
    for epoch, model in models.items():
        save_hdf5_weights(model, directory / f"{prefix}.{epoch}")
    return directory
