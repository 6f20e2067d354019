"""fcn_edge.models: registry, parameter counts, geometry (output size == input size)."""

from __future__ import annotations

import pytest
import torch

from fcn_edge.errors import UsageError
from fcn_edge.models import UnknownModelError, build_model, list_models
from fcn_edge.models.heads import bilinear_kernel

pytestmark = pytest.mark.usefixtures("torch_single_thread")

HEADS = ("fcn32s", "fcn16s", "fcn8s")
ODD_SIZES = [(333, 500), (500, 375), (1, 1), (31, 17), (257, 321)]  # PASCAL sizes and worse


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def on_meta(name: str, num_classes: int = 21) -> torch.nn.Module:
    with torch.device("meta"):
        return build_model(name, num_classes).eval()


def paper_vgg16_fcn8s_params(n: int) -> int:
    """FCN-8s VGG16 counted layer by layer from the paper's description."""
    cfg = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    convs, c_in = 0, 3
    for c_out in cfg:
        convs += c_out * c_in * 9 + c_out
        c_in = c_out
    fc6 = 4096 * 512 * 7 * 7 + 4096
    fc7 = 4096 * 4096 + 4096
    scores = (4096 + 512 + 256) * n + 3 * n  # score_fr, score_pool4, score_pool3 with biases
    upsampling = n * n * (4 * 4 + 4 * 4 + 16 * 16)  # upscore2, upscore_pool4, upscore8; no bias
    return convs + fc6 + fc7 + scores + upsampling


def test_registry_names():
    names = list_models()
    for head in HEADS:
        for backbone in ("vgg16", "vgg16_caffe", "resnet18", "resnet34", "resnet50", "mobilenetv3"):
            assert f"{head}_{backbone}" in names
    assert {"fcn_resnet50", "fcn_resnet101"} <= set(names)


def test_unknown_model_lists_known_names():
    with pytest.raises(UnknownModelError, match="unknown architecture 'fcn8s_vgg19'; known ones are: .*fcn8s_vgg16"):
        build_model("fcn8s_vgg19", 21)
    with pytest.raises(UnknownModelError, match="num_classes must be a positive integer, got 0"):
        build_model("fcn8s_tiny", 0)


def test_registry_and_backbone_refuse_bad_names():
    from fcn_edge.models.registry import DuplicateModelError, register
    from fcn_edge.models.resnet import ResNetBackbone

    with pytest.raises(DuplicateModelError, match="'fcn8s_tiny' is registered twice"):
        register("fcn8s_tiny", "another", lambda n: None)
    with pytest.raises(UsageError, match=r"ResNet depth 19 is not one of \[18, 34, 50, 101\]"):
        ResNetBackbone(19)


def test_fcn8s_vgg16_has_the_papers_134m_parameters():
    for name in ("fcn8s_vgg16", "fcn8s_vgg16_caffe", "fcn8s_vgg16_caffe_atonce"):
        n = count(on_meta(name, 21))
        assert n == paper_vgg16_fcn8s_params(21) == 134_489_759, name


def test_vgg16_is_the_papers_layout():
    backbone = on_meta("fcn8s_vgg16").backbone
    fc6, fc7 = backbone.classifier[0], backbone.classifier[3]
    assert (fc6.out_channels, fc6.in_channels, fc6.kernel_size) == (4096, 512, (7, 7))
    assert (fc7.out_channels, fc7.kernel_size) == (4096, (1, 1))
    assert isinstance(backbone.classifier[2], torch.nn.Dropout)
    assert isinstance(backbone.classifier[5], torch.nn.Dropout)
    caffe = on_meta("fcn8s_vgg16_caffe").backbone
    assert caffe.features[0].padding == (100, 100) and caffe.classifier[0].padding == (0, 0)


def test_edge_parameter_counts():
    # torchvision documents 35,322,218 / 54,314,346 parameters with the aux head
    # (2,365,205 for 21 classes: 1024*256*9 + 2*256 + 256*21 + 21); it is not part of ours.
    assert count(on_meta("fcn_resnet50")) == 35_322_218 - 2_365_205
    assert count(on_meta("fcn_resnet101")) == 54_314_346 - 2_365_205
    assert 11.2e6 < count(on_meta("fcn8s_resnet18")) < 11.4e6
    assert 2.5e6 < count(on_meta("fcn8s_mobilenetv3")) < 3.5e6


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("variant", ["vgg16", "vgg16_caffe"])
def test_vgg_output_size_equals_input_size(head, variant):
    # Shapes propagate on the meta device exactly as on CPU, without 134M-parameter compute.
    model = on_meta(f"{head}_{variant}", 21)
    for h, w in ODD_SIZES:
        with torch.no_grad():
            out = model(torch.empty(2, 3, h, w, device="meta"))
        assert tuple(out.shape) == (2, 21, h, w), (head, variant, h, w)


EDGE = [f"{h}_{b}" for h in HEADS for b in ("resnet18", "resnet50", "mobilenetv3")] + ["fcn_resnet50"]


@pytest.mark.parametrize("name", EDGE)
def test_edge_output_size_equals_input_size(name):
    model = on_meta(name, 5)
    for h, w in ODD_SIZES:
        with torch.no_grad():
            out = model(torch.empty(1, 3, h, w, device="meta"))
        assert tuple(out.shape) == (1, 5, h, w), (name, h, w)


@pytest.mark.parametrize("name", ["fcn32s_resnet18", "fcn16s_resnet18", "fcn8s_mobilenetv3", "fcn_resnet50"])
def test_edge_real_forward_on_odd_sizes(name):
    torch.manual_seed(0)
    model = build_model(name, 5).eval()
    for h, w in [(31, 17), (1, 1)] + ([(45, 61)] if name != "fcn_resnet50" else []):
        with torch.no_grad():
            out = model(torch.randn(1, 3, h, w))
        assert out.shape == (1, 5, h, w), (name, h, w)
        assert torch.isfinite(out).all()


def test_vgg_real_forward_on_odd_size():
    # One real (CPU) forward of the pad-100 geometry (the lean one is covered on meta),
    # small enough to stay fast; constant weights because drawing 134M random numbers
    # costs more than the forward.
    for name in ("fcn8s_vgg16_caffe",):
        model = on_meta(name, 3).to_empty(device="cpu")
        for p in model.parameters():
            p.data.fill_(1e-3)
        with torch.no_grad():
            out = model.eval()(torch.randn(1, 3, 45, 61))
        assert out.shape == (1, 3, 45, 61)
        assert torch.isfinite(out).all()


def test_bilinear_kernel_upsamples_like_interpolate():
    # A padded 2x transposed conv with the bilinear kernel equals bilinear interpolation
    # (align_corners=False) away from the border.
    x = torch.randn(1, 3, 9, 11)
    up = torch.nn.functional.conv_transpose2d(x, bilinear_kernel(3, 4), stride=2, padding=1)
    ref = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    assert up.shape == ref.shape
    torch.testing.assert_close(up[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], atol=1e-5, rtol=1e-5)
    k = bilinear_kernel(4, 16)
    assert torch.count_nonzero(k[0, 1]) == 0 and k[2, 2].sum() == pytest.approx(64.0)


def test_heads_start_as_bilinear_upsampling():
    model = build_model("fcn8s_resnet18", 4)
    for layer in (model.head.upscore2, model.head.upscore_pool4, model.head.upscore8):
        assert layer.bias is None
        torch.testing.assert_close(layer.weight, bilinear_kernel(4, layer.kernel_size[0]))


def test_skip_fusion_uses_pool4_and_pool3():
    # Changing only the stride-8 features must change an FCN-8s output but not an FCN-16s one.
    for name, expect_change in (("fcn8s_mobilenetv3", True), ("fcn16s_mobilenetv3", False)):
        torch.manual_seed(0)
        model = build_model(name, 3).eval()
        x = torch.randn(1, 3, 64, 64)
        feats = model.backbone(x)
        with torch.no_grad():
            base = model.head(feats, x)
            feats["stride8"] = feats["stride8"] + 1.0
            moved = model.head(feats, x)
        assert (not torch.equal(base, moved)) == expect_change, name


def test_mobilenetv3_trains_one_step():
    torch.manual_seed(0)
    model = build_model("fcn8s_mobilenetv3", 3).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(2, 3, 48, 64), torch.randint(0, 3, (2, 48, 64))
    losses = []
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]
