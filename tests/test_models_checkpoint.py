"""Checkpoint save/load and import of torchvision and pytorch-fcn layouts.

The foreign layouts are rebuilt here from their documented key names and shapes, not
from our own model, so a renamed or reshaped module in fcn_edge.models fails the test.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Dict, Tuple

import pytest
import torch

from fcn_edge.artifacts import file_sha256, meta_for_classes
from fcn_edge.errors import CheckpointError
from fcn_edge.models import build_model
from fcn_edge.models.checkpoint import (
    CAFFE_MEAN_BGR,
    load_checkpoint,
    pytorch_fcn_to_fcn_edge,
    save_checkpoint,
    torchvision_architecture,
)

pytestmark = pytest.mark.usefixtures("torch_single_thread")
Shapes = Dict[str, Tuple[int, ...]]


# -- reference layouts, from the documentation of each project ---------------------------------
def bn(prefix: str, c: int) -> Shapes:
    return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
            f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()}


def torchvision_fcn_resnet_shapes(blocks=(3, 4, 6, 3), num_classes: int = 21, aux: bool = True) -> Shapes:
    """torchvision.models.segmentation.fcn_resnet50/101: IntermediateLayerGetter over a
    Bottleneck ResNet (no avgpool/fc), ``classifier`` = FCNHead(2048), ``aux_classifier`` =
    FCNHead(1024). FCNHead = Conv3x3(no bias), BN, ReLU, Dropout, Conv1x1."""
    s: Shapes = {"backbone.conv1.weight": (64, 3, 7, 7), **bn("backbone.bn1", 64)}
    in_ch = 64
    for layer, (planes, count) in enumerate(zip((64, 128, 256, 512), blocks), start=1):
        for b in range(count):
            p = f"backbone.layer{layer}.{b}"
            s[f"{p}.conv1.weight"] = (planes, in_ch, 1, 1)
            s.update(bn(f"{p}.bn1", planes))
            s[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
            s.update(bn(f"{p}.bn2", planes))
            s[f"{p}.conv3.weight"] = (planes * 4, planes, 1, 1)
            s.update(bn(f"{p}.bn3", planes * 4))
            if b == 0:
                s[f"{p}.downsample.0.weight"] = (planes * 4, in_ch, 1, 1)
                s.update(bn(f"{p}.downsample.1", planes * 4))
            in_ch = planes * 4
    heads = [("classifier", 2048)] + ([("aux_classifier", 1024)] if aux else [])
    for name, c in heads:
        s[f"{name}.0.weight"] = (c // 4, c, 3, 3)
        s.update(bn(f"{name}.1", c // 4))
        s[f"{name}.4.weight"] = (num_classes, c // 4, 1, 1)
        s[f"{name}.4.bias"] = (num_classes,)
    return s


def pytorch_fcn_shapes(head: str, n: int) -> Shapes:
    """pytorch-fcn's FCN32s/FCN16s/FCN8s: conv1_1..conv5_3, fc6 (7x7), fc7, score_fr,
    score_pool4/3, bias-free upscore* transposed convs."""
    s: Shapes = {}
    in_ch = 3
    for block, (c, count) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)], start=1):
        for i in range(1, count + 1):
            s[f"conv{block}_{i}.weight"] = (c, in_ch, 3, 3)
            s[f"conv{block}_{i}.bias"] = (c,)
            in_ch = c
    s.update({"fc6.weight": (4096, 512, 7, 7), "fc6.bias": (4096,), "fc7.weight": (4096, 4096, 1, 1),
              "fc7.bias": (4096,), "score_fr.weight": (n, 4096, 1, 1), "score_fr.bias": (n,)})
    if head == "fcn32s":
        s["upscore.weight"] = (n, n, 64, 64)
    if head in ("fcn16s", "fcn8s"):
        s.update({"score_pool4.weight": (n, 512, 1, 1), "score_pool4.bias": (n,), "upscore2.weight": (n, n, 4, 4)})
    if head == "fcn16s":
        s["upscore16.weight"] = (n, n, 32, 32)
    if head == "fcn8s":
        s.update({"score_pool3.weight": (n, 256, 1, 1), "score_pool3.bias": (n,),
                  "upscore_pool4.weight": (n, n, 4, 4), "upscore8.weight": (n, n, 16, 16)})
    return s


def random_state(shapes: Shapes, seed: int = 0) -> "OrderedDict[str, torch.Tensor]":
    gen = torch.Generator().manual_seed(seed)
    state = OrderedDict()
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            state[key] = torch.randn(shape, generator=gen) * 0.05
    return state


# -- fcn-edge's own format ----------------------------------------------------------------------
def test_own_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = build_model("fcn8s_mobilenetv3", 4).eval()
    meta = meta_for_classes("fcn8s_mobilenetv3", ["bg", "road", "car", "person"], input_size=(256, 320))
    path = save_checkpoint(tmp_path / "m.pt", model, meta, extra={"epoch": 12, "miou": 0.61})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]  # no temporary left behind
    loaded = load_checkpoint(path)
    assert loaded.source_format == "fcn-edge"
    assert loaded.meta == meta
    assert loaded.extra == {"epoch": 12, "miou": 0.61}
    assert loaded.sha256 == file_sha256(path)
    assert not loaded.model.training
    x = torch.randn(1, 3, 65, 81)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), model(x), rtol=0, atol=0)


def test_own_checkpoint_is_plain_weights(tmp_path):
    model = build_model("fcn8s_resnet18", 3)
    path = save_checkpoint(tmp_path / "r.pt", model, meta_for_classes("fcn8s_resnet18", "abc"))
    payload = torch.load(path, weights_only=True)  # loads without any allow-listed globals
    assert payload["format"] == "fcn-edge" and payload["architecture"] == "fcn8s_resnet18"
    assert payload["meta"]["class_names"] == ["a", "b", "c"]


def test_bare_state_dict_needs_its_architecture(tmp_path):
    model = build_model("fcn16s_resnet18", 3).eval()
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    with pytest.raises(CheckpointError, match="name its fcn-edge architecture"):
        load_checkpoint(tmp_path / "sd.pt")
    loaded = load_checkpoint(tmp_path / "sd.pt", architecture="fcn16s_resnet18")
    assert loaded.source_format == "state_dict" and loaded.meta.num_classes == 3


# -- torchvision --------------------------------------------------------------------------------
def test_torchvision_fcn_resnet50_loads_and_ignores_aux(tmp_path):
    state = random_state(torchvision_fcn_resnet_shapes())
    path = tmp_path / "fcn_resnet50_coco.pth"
    torch.save(state, path)
    loaded = load_checkpoint(path)
    assert loaded.source_format == "torchvision"
    assert loaded.meta.architecture == "fcn_resnet50"
    assert loaded.meta.dataset == "voc" and loaded.meta.num_classes == 21
    ours = loaded.model.state_dict()
    expected = {k: v for k, v in state.items() if not k.startswith("aux_classifier.")}
    assert set(ours) == set(expected)
    for key, value in expected.items():
        assert torch.equal(ours[key], value), key
    with torch.no_grad():
        out = loaded.model(torch.randn(1, 3, 37, 53))
    assert out.shape == (1, 21, 37, 53)


def test_torchvision_depth_is_detected_from_keys():
    assert torchvision_architecture(torchvision_fcn_resnet_shapes((3, 4, 23, 3))) == "fcn_resnet101"
    assert torchvision_architecture(torchvision_fcn_resnet_shapes((3, 4, 6, 3))) == "fcn_resnet50"
    with torch.device("meta"):
        ours = build_model("fcn_resnet101", 21).state_dict()
    reference = torchvision_fcn_resnet_shapes((3, 4, 23, 3), aux=False)
    assert {k: tuple(v.shape) for k, v in ours.items()} == reference


# -- pytorch-fcn --------------------------------------------------------------------------------
@pytest.mark.parametrize("head", ["fcn32s", "fcn16s", "fcn8s"])
def test_pytorch_fcn_layout_maps_onto_caffe_variant(head):
    reference = {k: torch.empty(s, device="meta") for k, s in pytorch_fcn_shapes(head, 21).items()}
    mapped = pytorch_fcn_to_fcn_edge(reference)
    with torch.device("meta"):
        ours = build_model(f"{head}_vgg16_caffe", 21).state_dict()
    assert {k: tuple(v.shape) for k, v in mapped.items()} == {k: tuple(v.shape) for k, v in ours.items()}


@pytest.mark.slow
def test_pytorch_fcn8s_checkpoint_matches_caffe_preprocessing(tmp_path):
    """A pytorch-fcn training checkpoint loads; fed RGB normalised with the imported meta it
    gives the logits the original net gives on Caffe input (BGR, 0..255, minus mean)."""
    n = 21
    raw = random_state(pytorch_fcn_shapes("fcn8s", n), seed=1)
    path = tmp_path / "fcn8s_pascal.pth"
    torch.save({"epoch": 3, "iteration": 100, "arch": "FCN8s", "model_state_dict": raw, "best_mean_iu": 0.5}, path)
    loaded = load_checkpoint(path)
    assert loaded.source_format == "pytorch-fcn" and loaded.meta.architecture == "fcn8s_vgg16_caffe"

    original = build_model("fcn8s_vgg16_caffe", n).eval()  # the same net, loaded without the RGB flip
    state = pytorch_fcn_to_fcn_edge(raw)
    state["backbone.features.0.weight"] = raw["conv1_1.weight"]
    original.load_state_dict(state)

    rgb = torch.randint(0, 256, (1, 3, 67, 91)).float()
    caffe = rgb.flip(1) - torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)
    mean = torch.tensor(loaded.meta.mean).view(1, 3, 1, 1)
    std = torch.tensor(loaded.meta.std).view(1, 3, 1, 1)
    with torch.no_grad():
        ours = loaded.model(((rgb / 255.0) - mean) / std)
        ref = original(caffe)
    assert ours.shape == (1, n, 67, 91)
    torch.testing.assert_close(ours, ref, atol=1e-3 * ref.abs().max().item(), rtol=1e-4)


def test_pytorch_fcn_at_once_is_recognised(tmp_path):
    # FCN8sAtOnce shares FCN8s's keys; its training checkpoint names it in "arch". A
    # (deliberately truncated) file must be read as that architecture, and the mismatch
    # reported against it rather than crash.
    raw = {k: torch.zeros(1) for k in ("conv1_1.weight", "score_fr.weight", "upscore8.weight")}
    torch.save({"arch": "FCN8sAtOnce", "model_state_dict": raw}, tmp_path / "a.pth")
    with pytest.raises(CheckpointError, match="does not match architecture 'fcn8s_vgg16_caffe_atonce'") as info:
        load_checkpoint(tmp_path / "a.pth")
    assert "backbone.features.0.weight: checkpoint (1,) vs model (64, 3, 3, 3)" in str(info.value)


def test_at_once_head_scales_pool4_and_pool3():
    from fcn_edge.models.heads import AT_ONCE_SKIP_SCALES, CAFFE_8S, LEAN, FCN8sHead

    channels = {"stride8": 4, "stride16": 6, "stride32": 8}
    torch.manual_seed(0)
    plain = FCN8sHead(channels, 3, LEAN)
    at_once = FCN8sHead(channels, 3, LEAN, AT_ONCE_SKIP_SCALES)
    at_once.load_state_dict(plain.state_dict())
    feats = {"stride8": torch.randn(1, 4, 8, 8), "stride16": torch.randn(1, 6, 4, 4), "stride32": torch.randn(1, 8, 2, 2)}
    image = torch.empty(1, 3, 64, 64)
    scaled = dict(feats, stride16=feats["stride16"] * 0.01, stride8=feats["stride8"] * 0.0001)
    with torch.no_grad():
        torch.testing.assert_close(at_once(feats, image), plain(scaled, image))
        assert not torch.allclose(at_once(feats, image), plain(feats, image))
    with torch.device("meta"):
        model = build_model("fcn8s_vgg16_caffe_atonce", 21)
    assert model.head.skip_scales == AT_ONCE_SKIP_SCALES and model.head.alignment == CAFFE_8S


# -- bad checkpoints ----------------------------------------------------------------------------
def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "absent.pt")


def test_garbage_file(tmp_path):
    path = tmp_path / "broken.pt"
    path.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="broken.pt: not a readable PyTorch checkpoint"):
        load_checkpoint(path)


class Pickled:
    def __init__(self):
        self.weights = torch.zeros(2)


def test_pickled_objects_are_not_unpickled(tmp_path):
    path = tmp_path / "pickled.pt"
    torch.save({"model": Pickled()}, path)
    with pytest.raises(CheckpointError, match="will not unpickle"):
        load_checkpoint(path)


def test_mismatch_lists_missing_unexpected_and_shapes(tmp_path):
    state = random_state(torchvision_fcn_resnet_shapes())
    del state["backbone.layer1.0.conv1.weight"]
    state["backbone.layer9.weight"] = torch.zeros(3)
    state["backbone.conv1.weight"] = torch.zeros(64, 4, 7, 7)
    path = tmp_path / "bad_tv.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    text = str(info.value)
    assert "bad_tv.pth" in text and "fcn_resnet50" in text
    assert "1 missing keys: backbone.layer1.0.conv1.weight" in text
    assert "1 unexpected keys: backbone.layer9.weight" in text
    assert "backbone.conv1.weight: checkpoint (64, 4, 7, 7) vs model (64, 3, 7, 7)" in text


def test_architecture_mismatch_is_named(tmp_path):
    model = build_model("fcn8s_mobilenetv3", 2)
    path = save_checkpoint(tmp_path / "m.pt", model, meta_for_classes("fcn8s_mobilenetv3", "ab"))
    with pytest.raises(CheckpointError, match="not of 'fcn8s_resnet18'"):
        load_checkpoint(path, architecture="fcn8s_resnet18")


def test_wrong_class_count_in_meta_is_refused(tmp_path):
    model = build_model("fcn8s_mobilenetv3", 21)
    with pytest.raises(CheckpointError, match="3 classes but the model has 21"):
        save_checkpoint(tmp_path / "m.pt", model, meta_for_classes("fcn8s_mobilenetv3", "abc"))
    assert not list(tmp_path.iterdir())
