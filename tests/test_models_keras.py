"""Keras FCN-8/FCN-32 import: Keras 3 (torch backend, no TensorFlow) builds each model as its
original code does (tests/keras_reference.py), with every weight perturbed, saves it in every
format, and fcn-edge's import must give Keras's numbers: logits before the softmax head and the
head's probabilities to 1e-4 of their largest value, and the same argmax on >= 99.99 % of
pixels; through ONNX Runtime too.

The default run uses slim copies (same layers, a few channels each, 3 classes, ~64x96); the
full-width models at 416x608 are the ``slow`` tests at the end.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Dict, Tuple

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("h5py")
kr = pytest.importorskip("keras_reference", reason="needs keras 3 (KERAS_BACKEND=torch) and h5py")

from fcn_edge.errors import CheckpointError, MetaError, MissingDependencyError, UsageError  # noqa: E402
from fcn_edge.models.keras_fcn import (  # noqa: E402
    KerasFCN, KerasFCNSpec, keras_output_size, keras_softmax_output, spec_for_architecture,
)
from fcn_edge.models.keras_import import load_keras_model  # noqa: E402
from fcn_edge.models.keras_preprocessing import PREPROCESSINGS  # noqa: E402
from fcn_edge.runtime.preprocess import Preprocessor  # noqa: E402

pytestmark = [
    # Keras 3's torch backend converts tensors with np.array(x, copy=False) thousands of times
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword"),
    pytest.mark.usefixtures("torch_single_thread"),  # tiny convs: 2-thread barriers stall
]

N = 3  # classes in the slim models
EVEN, ODD = (64, 96), (67, 101)
FORMATS = ("hdf5-weights", "hdf5-model", "keras3-weights", "keras3-archive")
MAX_REL = 1e-4
MIN_AGREEMENT = 0.9999
DEFAULT_PRE = {"keras_segmentation": "sub_mean", "divamgupta_2017": "sub_mean_bgr", "bbuf_2019": "none"}


def slim(model_class: str):
    return (kr.SLIM_VGG if kr.ENCODERS[model_class] == "vgg" else kr.SLIM_VANILLA), kr.SLIM_FC


def frame_for(size, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def compare(keras_model, flavour: str, model: torch.nn.Module, meta, preprocessing: str, size) -> Dict[str, float]:
    """Keras on the frame as its own code feeds it, against fcn-edge on the frame as the
    runtime's Preprocessor feeds it: the whole chain, preprocessing included."""
    frame = frame_for(size)
    k_out, k_logits = kr.run(keras_model, kr.keras_input(frame, preprocessing, kr.data_format(flavour)))
    x, _ = Preprocessor(meta, size)([frame])
    with torch.no_grad():
        logits = model(torch.from_numpy(x.copy()))
        out = keras_softmax_output(logits).numpy()
        raw = model.scores(torch.from_numpy(x.copy())).numpy()
    return {
        "rel_output": float(np.abs(out - k_out).max() / np.abs(k_out).max()),
        "rel_logits": float(np.abs(raw - k_logits).max() / np.abs(k_logits).max()),
        "agreement": float((out.argmax(-1) == k_out.argmax(-1)).mean()),
    }


def onnx_result(logits: np.ndarray, k_out: np.ndarray, k_logits: np.ndarray) -> Dict[str, float]:
    out = keras_softmax_output(torch.from_numpy(logits)).numpy()
    return {
        "rel_output": float(np.abs(out - k_out).max() / np.abs(k_out).max()),
        "rel_logits": float(np.abs(logits - k_logits).max() / np.abs(k_logits).max()),
        "agreement": float((out.argmax(-1) == k_out.argmax(-1)).mean()),
    }


def assert_parity(result: Dict[str, float]) -> None:
    assert result["rel_output"] <= MAX_REL, result
    assert result["rel_logits"] <= MAX_REL, result
    assert result["agreement"] >= MIN_AGREEMENT, result


_MODELS: Dict[Tuple, object] = {}


def keras_model(model_class: str, flavour: str, size, seed: int = 0, widths=None, fc=None):
    """A perturbed Keras model, built once per session per arguments."""
    key = (model_class, flavour, tuple(size), seed, widths, fc)
    if key not in _MODELS:
        w, f = slim(model_class)
        model = kr.build(model_class, N, size, flavour, widths or w, fc or f)
        kr.perturb(model, seed, kr.INPUT_STD[DEFAULT_PRE[flavour]])
        _MODELS[key] = model
    return _MODELS[key]


# -- the architecture ------------------------------------------------------------------------
def test_full_width_fcn8_has_the_keras_parameter_count():
    """134,292,079 parameters: the count Keras 3 reports for the original FCN-8 with 5 classes
    (docs/MEASURED.md); built on the meta device, nothing allocated."""
    with torch.device("meta"):
        model = KerasFCN(KerasFCNSpec("fcn8", "vgg16", 5))
    assert sum(p.numel() for p in model.parameters()) == 134_292_079


@pytest.mark.parametrize("model_class", ["fcn_8_vgg", "fcn_32_vgg", "fcn_8", "fcn_32"])
@pytest.mark.parametrize("size", [(416, 608), (67, 101), (32, 33), (100, 150)])
def test_output_size_and_parameter_count_match_keras(model_class, size):
    w, f = slim(model_class)
    model = kr.build(model_class, N, size, "keras_segmentation", w, f, check_size=False)
    head, encoder = {"fcn_8_vgg": ("fcn8", "vgg16"), "fcn_32_vgg": ("fcn32", "vgg16"),
                     "fcn_8": ("fcn8", "vanilla"), "fcn_32": ("fcn32", "vanilla")}[model_class]
    ours = KerasFCN(KerasFCNSpec(head, encoder, N, encoder_widths=w, fc_width=f))
    assert keras_output_size(head, size) == kr.pre_head(model).output_shape[1:3]
    with torch.no_grad():
        assert tuple(ours(torch.zeros(1, 3, *size)).shape[2:]) == keras_output_size(head, size)
    # Keras counts BatchNormalization's moving statistics; torch keeps them as buffers
    stats = sum(b.numel() for name, b in ours.named_buffers() if name.endswith(("running_mean", "running_var")))
    assert sum(p.numel() for p in ours.parameters()) + stats == model.count_params()


def test_output_is_larger_than_the_input_at_416x608():
    assert keras_output_size("fcn8", (416, 608)) == (424, 616)
    assert keras_output_size("fcn32", (416, 608)) == (448, 640)
    with pytest.raises(UsageError, match="at least 32x32"):
        keras_output_size("fcn8", (31, 64))


@pytest.mark.parametrize("name,arch", [
    ("fcn_8_vgg", "fcn8s_vgg16_keras"), ("fcn_32", "fcn32s_vanilla_keras"),
    ("fcn8s_vgg16_keras_planar", "fcn8s_vgg16_keras_planar"), ("fcn32s_vgg16_keras", "fcn32s_vgg16_keras"),
])
def test_architecture_names(name, arch):
    assert spec_for_architecture(name, 4).architecture == arch


def test_unknown_architecture_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown Keras FCN architecture 'fcn_16'.*fcn_8_vgg"):
        spec_for_architecture("fcn_16", 4)


# -- preprocessing ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(PREPROCESSINGS))
def test_preprocessing_reproduces_keras_numbers_to_float32_precision(name):
    """Every 0..255 value on every channel, through the runtime's Preprocessor and the fused
    exporter's graph head, against the Keras code's own arithmetic: within one float32 ulp of
    the largest value (sub_mean differs by half an ulp: -mean/std is rounded once more)."""
    from fcn_edge.artifacts import meta_for_classes
    from fcn_edge.export.heads import preprocess_model

    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx_graphsurgeon", reason="the fused preprocessing is grafted with onnx-graphsurgeon")

    pre = PREPROCESSINGS[name]
    ramp = np.arange(256, dtype=np.uint8)
    frame = np.ascontiguousarray(np.stack([np.tile(ramp[:, None], (1, 256)), np.tile(ramp[None, :], (256, 1)),
                                           np.tile(ramp[::-1, None], (1, 256))], -1))
    expected = kr.keras_input(frame, name, "channels_first")[0]  # the planes the Keras net reads
    if pre.network_order == "BGR":
        expected = expected[::-1]  # fcn-edge feeds RGB and reverses the first conv's inputs instead
    meta = meta_for_classes("x", ["a", "b"], input_size=(256, 256), mean=pre.mean, std=pre.std)
    host, _ = Preprocessor(meta)([frame])
    graph = preprocess_model(pre.mean, pre.std).SerializeToString()
    (fused,) = ort.InferenceSession(graph, providers=["CPUExecutionProvider"]).run(None, {"input": frame[None]})
    ulp = np.spacing(np.float32(np.abs(expected).max()))
    assert np.abs(host[0] - expected).max() <= ulp
    assert np.abs(fused[0] - expected).max() <= ulp


def test_unknown_preprocessing_is_a_usage_error(tmp_path):
    path = kr.save(keras_model("fcn_32_vgg", "keras_segmentation", EVEN), tmp_path, "keras3-weights")
    with pytest.raises(UsageError, match="unknown Keras preprocessing 'caffe'; one of sub_mean"):
        load_keras_model(path, preprocessing="caffe")


# -- parity, every format --------------------------------------------------------------------
PARITY = [
    *[("fcn_8_vgg", "keras_segmentation", EVEN, fmt, {}) for fmt in FORMATS],
    *[("fcn_32_vgg", "keras_segmentation", EVEN, fmt, {}) for fmt in FORMATS],
    ("fcn_8", "keras_segmentation", ODD, "keras3-archive", {}),
    ("fcn_8", "keras_segmentation", ODD, "hdf5-weights", {}),
    ("fcn_32", "keras_segmentation", ODD, "hdf5-model", {}),
    ("fcn_32", "keras_segmentation", ODD, "keras3-weights", {}),
    ("fcn_8_vgg", "divamgupta_2017", ODD, "hdf5-model", {}),
    ("fcn_8_vgg", "divamgupta_2017", ODD, "hdf5-weights", {"preprocessing": "sub_mean_bgr"}),
    ("fcn_32_vgg", "divamgupta_2017", ODD, "keras3-archive", {}),
    ("fcn_8_vgg", "bbuf_2019", ODD, "hdf5-model", {}),
    ("fcn_8_vgg", "bbuf_2019", ODD, "keras3-weights", {"preprocessing": "none", "output_order": "planar_reshape"}),
]


@pytest.mark.parametrize("model_class,flavour,size,fmt,kwargs", PARITY,
                         ids=[f"{c}-{f}-{s[0]}x{s[1]}-{fmt}" for c, f, s, fmt, _ in PARITY])
def test_import_matches_keras(tmp_path, model_class, flavour, size, fmt, kwargs):
    model = keras_model(model_class, flavour, size)
    loaded = load_keras_model(kr.save(model, tmp_path, fmt), **kwargs)
    pre = DEFAULT_PRE[flavour]
    assert loaded.source_format == fmt
    assert loaded.extra["preprocessing"] == pre
    assert loaded.extra["output_order"] == ("planar_reshape" if flavour == "bbuf_2019" else "per_pixel")
    saved_config = fmt in ("hdf5-model", "keras3-archive")
    assert loaded.meta.input_size == (size if saved_config else (416, 608))
    assert loaded.meta.architecture.startswith(("fcn8s_" if "fcn_8" in model_class else "fcn32s_"))
    assert_parity(compare(model, flavour, loaded.model, loaded.meta, pre, size))
    # the same weights at the other size (keras_segmentation itself needs multiples of 32)
    other = ODD if size == EVEN else EVEN
    w, f = slim(model_class)
    resized = kr.at_size(model, model_class, N, other, flavour, w, f)
    assert_parity(compare(resized, flavour, loaded.model, loaded.meta, pre, other))


def test_a_head_that_does_not_score_pixels_is_refused(tmp_path):
    """The 2019 copy's FCN32: channels-first, but its Reshape((-1, C * H_out)) takes the
    class count for the height; its softmax runs along the width, not over classes."""
    import keras

    w, f = slim("fcn_32_vgg")
    img, levels = kr.vgg_encoder(64, 96, "channels_first", w, check_size=False)
    o = kr.fcn_head("fcn_32", N, img, levels, "channels_first", f)
    _, classes, out_h, _ = keras.Model(img, o).output_shape
    o = keras.layers.Activation("softmax")(keras.layers.Permute((2, 1))(keras.layers.Reshape((-1, classes * out_h))(o)))
    path = kr.save(keras.Model(img, o), tmp_path, "hdf5-model")
    with pytest.raises(CheckpointError, match=r"the model's head, Reshape\(\(-1, 288\)\) \+ Permute on a "
                                              r"channels_first output of 12288 pixels x 3 classes, does not give"):
        load_keras_model(path)


def test_planar_head_is_not_per_pixel(tmp_path):
    """The 2019 copy's head really scrambles: read per pixel, its masks are another model's."""
    model = keras_model("fcn_8_vgg", "bbuf_2019", ODD)
    path = kr.save(model, tmp_path, "keras3-weights")
    wrong = load_keras_model(path, preprocessing="none")  # weights alone cannot tell the head
    assert wrong.extra["output_order"] == "per_pixel"
    assert compare(model, "bbuf_2019", wrong.model, wrong.meta, "none", ODD)["agreement"] < 0.9


def test_theano_backend_files_have_their_kernels_flipped(tmp_path):
    """Keras 2 on Theano convolved (T.nnet.conv2d flips the filter): the same function is
    stored with every kernel mirrored in space, and the file says backend 'theano'."""
    import h5py

    model = keras_model("fcn_8_vgg", "divamgupta_2017", ODD)
    path = kr.save(model, tmp_path, "hdf5-model")
    with h5py.File(path, "r+") as f:
        f.attrs["backend"] = "theano"
        def flip(name, obj):
            if isinstance(obj, h5py.Dataset) and obj.ndim == 4:
                obj[...] = obj[...][::-1, ::-1]
        f["model_weights"].visititems(flip)
    loaded = load_keras_model(path)
    assert "Theano" in " ".join(loaded.meta.history)
    assert_parity(compare(model, "divamgupta_2017", loaded.model, loaded.meta, "sub_mean_bgr", ODD))


def test_meta_records_where_the_model_came_from(tmp_path):
    from fcn_edge.classes import ClassList

    path = kr.save(keras_model("fcn_8", "keras_segmentation", ODD), tmp_path, "hdf5-model")
    loaded = load_keras_model(path, classes=ClassList(("sky", "road", "car"), ((0, 0, 255),) * 3))
    meta = loaded.meta
    assert meta.class_names == ("sky", "road", "car")
    assert meta.architecture == "fcn8s_vanilla_keras"
    assert np.allclose(meta.mean, (123.68 / 255, 116.779 / 255, 103.939 / 255))
    assert np.allclose(meta.std, (1 / 255,) * 3)
    assert loaded.extra["output_size"] == [72, 104]
    assert loaded.sha256 and loaded.path == path
    assert any("keras output: 72x104 for 67x101 input" in h for h in meta.history)
    assert any(h.startswith("import: hdf5-model model.h5 (fcn_8; Keras 3.") for h in meta.history)


# -- keras_segmentation checkpoints ----------------------------------------------------------
@pytest.fixture(scope="module")
def segmentation_dir(tmp_path_factory):
    """Epochs 2, 9 and 10 of a keras_segmentation fcn_8_vgg run, each with other weights."""
    models = {epoch: keras_model("fcn_8_vgg", "keras_segmentation", EVEN, seed=epoch) for epoch in (2, 9, 10)}
    directory = tmp_path_factory.mktemp("keras_segmentation") / "checkpoints"
    return kr.save_segmentation_checkpoint(models, directory, "fcn_8_vgg", N, EVEN), models


@pytest.mark.parametrize("given", ["folder", "config", "prefix"])
def test_segmentation_checkpoint_imports_the_newest_epoch(segmentation_dir, given):
    directory, models = segmentation_dir
    path = {"folder": directory, "config": directory / "fcn_config.json", "prefix": directory / "fcn"}[given]
    loaded = load_keras_model(path)
    assert loaded.source_format == "keras_segmentation"
    assert loaded.extra["epoch"] == 10 and loaded.path == directory / "fcn.10"
    assert loaded.meta.input_size == EVEN and loaded.extra["preprocessing"] == "sub_mean"
    assert_parity(compare(models[10], "keras_segmentation", loaded.model, loaded.meta, "sub_mean", EVEN))
    assert compare(models[9], "keras_segmentation", loaded.model, loaded.meta, "sub_mean", EVEN)["rel_logits"] > 0.01


def test_segmentation_checkpoint_epoch_file_given_by_name(segmentation_dir):
    directory, models = segmentation_dir
    loaded = load_keras_model(directory / "fcn.9")
    assert loaded.extra["epoch"] == 9 and loaded.meta.input_size == EVEN
    assert_parity(compare(models[9], "keras_segmentation", loaded.model, loaded.meta, "sub_mean", EVEN))


def _config_dir(tmp_path, **config) -> Path:
    values = {"model_class": "fcn_8_vgg", "n_classes": N, "input_height": 64, "input_width": 96}
    values.update(config)
    (tmp_path / "run_config.json").write_text(json.dumps(values))
    return tmp_path


@pytest.mark.parametrize("model_class,detail", [
    ("unet", "model_class 'unet' is not one of the Keras FCNs fcn-edge imports \\(fcn_32, fcn_32_vgg, fcn_8, fcn_8_vgg\\)"),
    ("fcn_8_resnet50", "model_class 'fcn_8_resnet50' is not one of .* \\(fcn_8_resnet50 is an FCN over an "
                       "encoder fcn-edge does not model\\)"),
])
def test_segmentation_config_naming_an_unknown_model_class(tmp_path, model_class, detail):
    directory = _config_dir(tmp_path, model_class=model_class)
    with pytest.raises(CheckpointError, match=f"run_config.json: {detail}"):
        load_keras_model(directory)


def test_segmentation_config_output_size_must_fit(tmp_path):
    directory = _config_dir(tmp_path, output_height=64, output_width=96)
    with pytest.raises(CheckpointError, match="output 64x96 does not fit a fcn_8_vgg at 64x96 input, which gives 72x104"):
        load_keras_model(directory)


def test_segmentation_checkpoint_without_weights(tmp_path):
    with pytest.raises(CheckpointError, match="no weight files run.<epoch> beside it"):
        load_keras_model(_config_dir(tmp_path))


def test_segmentation_checkpoint_in_tensorflow_format_says_how_to_convert(tmp_path):
    directory = _config_dir(tmp_path)
    (directory / "run.4.index").write_bytes(b"\0" * 16)  # tf.keras' checkpoint: index + data shards
    (directory / "run.4.data-00000-of-00001").write_bytes(b"\0" * 16)
    message = r"run.4.index: saved in TensorFlow's checkpoint format.*model.save_weights\('run.4.h5'\)"
    with pytest.raises(CheckpointError, match=message):
        load_keras_model(directory)
    with pytest.raises(CheckpointError, match=message):
        load_keras_model(directory / "run.4.index")


def test_folder_without_a_segmentation_config(tmp_path):
    with pytest.raises(CheckpointError, match="a keras_segmentation checkpoint folder holds one "
                                              "<prefix>_config.json, this one none"):
        load_keras_model(tmp_path)


# -- bad files -------------------------------------------------------------------------------
def test_hdf5_of_another_network_lists_its_layers(tmp_path):
    """A VGG16 classifier (the encoder, Flatten, Dense): no upsampling layers at all."""
    import keras

    img, levels = kr.vgg_encoder(64, 96, "channels_last", kr.SLIM_VGG)
    x = keras.layers.Dense(10, name="predictions")(keras.layers.Flatten()(levels[-1]))
    path = kr.save(keras.Model(img, x), tmp_path, "hdf5-model")
    with pytest.raises(CheckpointError) as info:
        load_keras_model(path)
    text = str(info.value)
    assert text.startswith(f"{path}: not a Keras FCN-8 or FCN-32")
    assert "this file has 0" in text and "block1_conv1 (Conv2D) [(3, 3, 3, 4), (4,)]" in text
    assert "and 6 more" in text  # 14 weight layers, 8 named


def test_fcn_with_another_fc6_lists_the_shape_mismatch(tmp_path):
    """The FCN-8 with a 3x3 fc6: one layer of the wrong shape, named as such."""
    w, f = slim("fcn_8_vgg")
    img, levels = kr.vgg_encoder(64, 96, "channels_last", w)
    o = kr.fcn_head("fcn_8", N, img, levels, "channels_last", f, fc6_kernel=(3, 3))
    path = kr.save(kr.segmentation_model(img, o, "channels_last"), tmp_path, "hdf5-model")
    with pytest.raises(CheckpointError) as info:
        load_keras_model(path)
    text = str(info.value)
    assert text.startswith(f"{path}: the weights do not fit a Keras fcn_8_vgg (fcn8s_vgg16_keras, 3 classes); ")
    assert re.search(r"; 1 shape mismatches, first: fc6 \[\(7, 7, 12, 16\), \(16,\)\] but the file has "
                     r"conv2d(_\d+)? \(Conv2D\) \[\(3, 3, 12, 16\), \(16,\)\]$", text), text


def test_fcn8_weights_loaded_as_fcn32_list_missing_and_extra_layers(tmp_path):
    path = kr.save(keras_model("fcn_8_vgg", "keras_segmentation", EVEN), tmp_path, "keras3-weights")
    with pytest.raises(CheckpointError) as info:
        load_keras_model(path, arch="fcn_32_vgg")
    text = str(info.value)
    assert "do not fit a Keras fcn_32_vgg" in text
    assert re.search(r"1 shape mismatches, first: upscore \[\(64, 64, 3, 3\)\] but the file has "
                     r"conv2d_transpose(_\d+)? \(Conv2DTranspose\) \[\(4, 4, 3, 3\)\]", text), text
    # score_pool4/score_pool3 and the two other upsamplers
    assert re.search(r"4 layers the model lacks, first: conv2d(_\d+)? \(Conv2D\) \[\(1, 1, 12, 3\), \(3,\)\]", text), text


def test_vgg_layers_out_of_order_are_refused(tmp_path):
    """Equal-shape layers are placed in file order; a file that names them otherwise is refused."""
    import h5py

    path = kr.save(keras_model("fcn_8_vgg", "keras_segmentation", EVEN), tmp_path, "hdf5-weights")
    with h5py.File(path, "r+") as f:
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in f.attrs["layer_names"]]
        i, j = names.index("block4_conv2"), names.index("block5_conv1")
        names[i], names[j] = names[j], names[i]
        f.attrs["layer_names"] = [n.encode() for n in names]
    with pytest.raises(CheckpointError, match="layers out of order, first: block5_conv1 would load into "
                                              "encoder.block4_conv2; block4_conv2 would load into"):
        load_keras_model(path)


@pytest.mark.parametrize("fmt,problem", [("hdf5-model", "cannot be read as HDF5 \\(truncated or damaged\\?\\)"),
                                         ("keras3-archive", "cannot read it as a .keras archive")])
def test_truncated_file(tmp_path, fmt, problem):
    path = kr.save(keras_model("fcn_32_vgg", "keras_segmentation", EVEN), tmp_path, fmt)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=f"{path}: {problem}"):
        load_keras_model(path)


def test_asked_head_order_must_agree_with_the_saved_head(tmp_path):
    path = kr.save(keras_model("fcn_8_vgg", "bbuf_2019", ODD), tmp_path, "hdf5-model")
    with pytest.raises(CheckpointError, match="the saved model's head orders its output planar_reshape, "
                                              "not per_pixel as asked"):
        load_keras_model(path, output_order="per_pixel")


def test_hdf5_that_is_not_keras(tmp_path):
    import h5py

    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((2, 2))
    with pytest.raises(CheckpointError, match="an HDF5 file, but not Keras weights"):
        load_keras_model(path)


def test_pytorch_checkpoint_is_named_for_what_it_is(tmp_path):
    path = tmp_path / "model.h5"
    torch.save({"w": torch.zeros(1)}, path)
    with pytest.raises(MetaError, match="this is a PyTorch checkpoint, not an HDF5 file"):
        load_keras_model(path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such Keras weight file or keras_segmentation checkpoint"):
        load_keras_model(tmp_path / "nope.h5")


def test_class_count_must_agree(tmp_path):
    from fcn_edge.classes import resolve_classes

    path = kr.save(keras_model("fcn_32_vgg", "keras_segmentation", EVEN), tmp_path, "keras3-archive")
    with pytest.raises(CheckpointError, match="upsampling layers score 3 classes, not 5 as asked"):
        load_keras_model(path, num_classes=5)
    with pytest.raises(CheckpointError, match="21 class names given for a model of 3 classes"):
        load_keras_model(path, classes=resolve_classes("voc"))


def test_missing_h5py_names_the_install(tmp_path, monkeypatch):
    import sys

    path = kr.save(keras_model("fcn_32_vgg", "keras_segmentation", EVEN), tmp_path, "keras3-weights")
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(MissingDependencyError, match="'h5py' is not installed.*pip install h5py"):
        load_keras_model(path)


# -- export and the runtime ------------------------------------------------------------------
EXPORTS = [
    ("fcn_8_vgg", "keras_segmentation", EVEN, "keras3-archive", False),
    ("fcn_8_vgg", "bbuf_2019", ODD, "hdf5-model", True),
    ("fcn_32", "keras_segmentation", ODD, "hdf5-model", True),
]


@pytest.mark.parametrize("model_class,flavour,size,fmt,fused", EXPORTS,
                         ids=[f"{c}-{f}-{'fused' if u else 'float'}" for c, f, _, _, u in EXPORTS])
def test_export_and_onnx_runtime_match_keras(tmp_path, model_class, flavour, size, fmt, fused):
    """export_model with the loaded ModelMeta; ONNX Runtime at the Keras size and at the other,
    fed as the runtime feeds it (uint8 BGR frames when preprocessing is fused)."""
    import onnxruntime as ort

    from fcn_edge.export import ExportConfig, export_model

    model = keras_model(model_class, flavour, size)
    loaded = load_keras_model(kr.save(model, tmp_path, fmt))
    report = export_model(loaded.model, loaded.meta, tmp_path / "keras.onnx",
                          ExportConfig(input_size=size, fuse_preprocess=fused), source_hash=loaded.sha256)
    assert report.parity.passed
    session = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    w, f = slim(model_class)
    pre = DEFAULT_PRE[flavour]
    for run_size in (size, ODD if size == EVEN else EVEN):
        reference = model if run_size == size else kr.at_size(model, model_class, N, run_size, flavour, w, f)
        frame = frame_for(run_size)
        k_out, k_logits = kr.run(reference, kr.keras_input(frame, pre, kr.data_format(flavour)))
        x = frame[None] if fused else Preprocessor(report.meta, run_size)([frame])[0]
        (logits,) = session.run(None, {"input": x})
        assert logits.shape[2:] == keras_output_size(loaded.model.spec.head, run_size)
        if flavour == "bbuf_2019":
            k_logits = kr.planar(k_logits)  # the graph gives the scores the head reads
        assert_parity(onnx_result(logits, k_out, k_logits))


def test_runtime_maps_the_whole_output_onto_the_frame(tmp_path):
    """The runtime's decode of a larger-than-input output: the whole (H_out, W_out) map is
    resized to the frame (crop_box covers it all), as keras_segmentation's predict resizes its
    whole prediction. Only the nearest-neighbour rounding differs: the runtime samples pixel
    centres (INTER_NEAREST_EXACT), predict ``floor(x * out / frame)`` (INTER_NEAREST), which
    moves class edges by half a frame pixel."""
    import cv2

    from fcn_edge.export import ExportConfig, export_model
    from fcn_edge.runtime import load_segmenter

    model = keras_model("fcn_8_vgg", "keras_segmentation", EVEN)
    loaded = load_keras_model(kr.save(model, tmp_path, "hdf5-model"))
    report = export_model(loaded.model, loaded.meta, tmp_path / "keras.onnx",
                          ExportConfig(input_size=EVEN, fuse_preprocess=True, check_parity=False))
    frame = frame_for((150, 230), seed=3)
    segmenter = load_segmenter(report.path)
    mask = segmenter.segment(frame).mask
    segmenter.close()
    # keras_segmentation.predict: resize to the input, predict, argmax over the whole output
    resized = cv2.resize(frame, (EVEN[1], EVEN[0]))
    k_out, _ = kr.run(model, kr.keras_input(resized, "sub_mean", "channels_last"))
    out_h, out_w = keras_output_size("fcn8", EVEN)
    full = k_out[0].reshape(out_h, out_w, N).argmax(-1).astype(np.uint8)
    assert mask.shape == (150, 230)
    assert (mask == cv2.resize(full, (230, 150), interpolation=cv2.INTER_NEAREST_EXACT)).mean() >= MIN_AGREEMENT
    # a crop to the input's share of the output (what an fcn-edge head does) would not match
    cropped = cv2.resize(full[: EVEN[0], : EVEN[1]], (230, 150), interpolation=cv2.INTER_NEAREST_EXACT)
    assert (mask == cropped).mean() < 0.9


# -- full size (slow) ------------------------------------------------------------------------
FULL = (416, 608)
FULL_ODD = (417, 609)


@pytest.mark.slow
@pytest.mark.parametrize("model_class", ["fcn_8_vgg", "fcn_32_vgg"])
def test_full_width_import_matches_keras_at_416x608(tmp_path, model_class, capsys):
    """The original widths (134 M parameters, 537 MB per file) at 416x608 and 417x609, every
    format and a keras_segmentation checkpoint; then export and ONNX Runtime. Prints the
    parity table (pytest -m slow -s)."""
    import onnxruntime as ort

    from fcn_edge.export import ExportConfig, export_model

    model = kr.build(model_class, 21, FULL)
    kr.perturb(model, 0, kr.INPUT_STD["sub_mean"])
    odd = kr.at_size(model, model_class, 21, FULL_ODD, "keras_segmentation")
    rows = []
    sources = [(fmt, lambda fmt=fmt: kr.save(model, tmp_path / fmt, fmt)) for fmt in FORMATS]
    sources.append(("keras_segmentation", lambda: kr.save_segmentation_checkpoint(
        {0: model}, tmp_path / "seg", model_class, 21, FULL)))
    loaded = None
    for name, save in sources:
        path = save()
        loaded = load_keras_model(path)
        for size, reference in ((FULL, model), (FULL_ODD, odd)):
            result = compare(reference, "keras_segmentation", loaded.model, loaded.meta, "sub_mean", size)
            rows.append((name, model_class, size, result))
            assert_parity(result)
        shutil.rmtree(path if path.is_dir() else path.parent)
    report = export_model(loaded.model, loaded.meta, tmp_path / "full.onnx", ExportConfig(input_size=FULL))
    session = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    for size, reference in ((FULL, model), (FULL_ODD, odd)):
        frame = frame_for(size)
        k_out, k_logits = kr.run(reference, kr.keras_input(frame, "sub_mean", "channels_last"))
        (logits,) = session.run(None, {"input": Preprocessor(report.meta, size)([frame])[0]})
        result = onnx_result(logits, k_out, k_logits)
        rows.append(("onnx (ORT)", model_class, size, result))
        assert_parity(result)
    with capsys.disabled():
        for name, cls, size, r in rows:
            print(f"| {name} | {cls} | {size[0]}x{size[1]} | {r['rel_logits']:.2e} | {r['rel_output']:.2e} | "
                  f"{r['agreement']:.5%} |")
