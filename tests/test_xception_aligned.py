"""DeepLabv3+'s modified aligned Xceptions (xception41, 65, 71) and timm's pre-activation ones (41p, 65p):
timm's parameter and fvcore multiply-add counts, timm's checkpoints giving timm's logits (also dilated, at
output stride 16 and 8), the published tags offline, the blocks' primitives, dense specs and deploy form."""

from dataclasses import replace
from functools import partial

import pytest
import timm
import torch
from torch import nn

from inception_zoo import InceptionNet, create_model, get_pretrained, list_pretrained, optimize_for_inference
from inception_zoo.analysis import count_macs, count_params
from inception_zoo.deploy import DeployConv2d, FusedResidual
from inception_zoo.layers import BasicConv2d, Conv, PreActivation, SeparableConv2d
from inception_zoo.models.xception_blocks import (
    AlignedXceptionBlock,
    AlignedXceptionSpec,
    PlainConv,
    XceptionBlockSpec,
)
from inception_zoo.registry import get_record

from helpers import calibrated, close, realistic

ALIGNED = ["xception41", "xception65", "xception71", "xception41p", "xception65p"]
# timm 1.0.31's counts (timm.create_model(name), count_params / fvcore at 299×299), as the records state them
TIMM_PARAMS = {"xception41": 26_969_560, "xception65": 39_916_312, "xception71": 42_338_736,
               "xception41p": 26_907_752, "xception65p": 39_819_560}


def _peer(name, **kwargs):
    """timm's model at random init, eval mode, with random BatchNorm affine parameters and running statistics
    measured on random images (:func:`helpers.calibrated`: with :func:`helpers.realistic`'s random statistics
    these 40-70 layer networks give every image the same logits, which would hide a mis-mapped early layer)."""
    torch.manual_seed(0)
    return calibrated(timm.create_model(name, **kwargs), torch.randn(4, 3, 64, 64))


def _assert_same_logits(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    assert (theirs[0] - theirs[1]).abs().max() > 0.01 * theirs.abs().max()  # the images' logits differ
    assert close(ours, theirs, rel=1e-4), (ours - theirs).abs().max().item()
    assert torch.equal(ours.topk(5).indices, theirs.topk(5).indices)


@pytest.mark.parametrize("name", ALIGNED)
def test_parameters_equal_timms(name):
    with torch.device("meta"):
        ours, theirs = create_model(name), timm.create_model(name)
    assert count_params(ours) == count_params(theirs) == get_record(name).params == TIMM_PARAMS[name]


@pytest.mark.parametrize("name", ALIGNED)
def test_timm_weights_give_timms_logits_and_multiply_adds(name):
    """timm's model at random init, its checkpoint loaded through the committed key map: the same logits,
    and fvcore's multiply-add count (which counts the BatchNorms too, so the pre-activation variants'
    regrouped BatchNorms must be as many and as wide as timm's) traced at 64×64, where every layer runs
    as at 299×299 (the docs count both at 299: tests/test_docs.py)."""
    peer = _peer(name)
    ours = create_model(name, pretrained=peer.state_dict()).eval()
    assert ours.default_cfg["weights_source"] == "timm"
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        _assert_same_logits(ours(x), peer(x))
    assert count_macs(ours, (3, 64, 64)) == count_macs(peer, (3, 64, 64))


@pytest.mark.parametrize(("name", "output_stride"), [("xception41", 8), ("xception41p", 16)])
def test_dilated_network_gives_timms_dilated_logits(name, output_stride):
    """timm's own output_stride (its dilation rule, its padding) and ours compute the same function."""
    peer = _peer(name, output_stride=output_stride)
    ours = create_model(name, output_stride=output_stride, pretrained=peer.state_dict()).eval()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        _assert_same_logits(ours(x), peer(x))


@pytest.mark.parametrize("output_stride", [32, 16, 8])
def test_feature_reductions_and_last_map_equal_timms(output_stride):
    """Needs ``create_model(..., output_stride=)``. The reductions are timm's (2, 4, 8, 16, 32 capped at
    output_stride); the maps are taken at the stage outputs, so their channels differ from timm's, which
    taps inside each strided block."""
    with torch.device("meta"):  # shapes only
        ours = create_model("xception41", features_only=True, output_stride=output_stride).eval()
        theirs = timm.create_model("xception41", features_only=True, output_stride=output_stride).eval()
        assert ours.feature_info.reduction() == theirs.feature_info.reduction()
        x = torch.empty(1, 3, 128, 128)
        assert ours(x)[-1].shape[-2:] == theirs(x)[-1].shape[-2:] == (128 // output_stride,) * 2


def test_published_tags_and_their_accuracy():
    assert list_pretrained("xception[4-7]*") == [
        "xception41.tf_in1k", "xception41p.ra3_in1k", "xception65.ra3_in1k", "xception65.tf_in1k",
        "xception65p.ra3_in1k", "xception71.tf_in1k"]
    assert get_pretrained("xception65")[1].tag == "ra3_in1k"  # timm's default tag, first in its default cfgs
    for tag in list_pretrained("xception[4-7]*"):
        _, row = get_pretrained(tag)
        assert row.hf_hub == (f"timm/{tag}", "model.safetensors") and row.interpolation == "bicubic"
        assert row.crop_pct == (0.94 if tag.endswith("ra3_in1k") else 0.903)
        assert row.accuracy_source.startswith(f"timm results-imagenet.csv, {tag} (299")
        assert 78 < row.top1 < row.top5 < 97
    assert get_pretrained("xception65p.ra3_in1k")[1].top1 == 83.136


def test_a_published_tag_loads_offline_with_the_source_models_logits(caches):
    from test_pretrained import _place

    _, attempts = caches
    source = _peer("xception41p")
    _place("xception41p.ra3_in1k", source.state_dict())
    model = create_model("xception41p.ra3_in1k", pretrained=True).eval()
    assert model.default_cfg["tag"] == "ra3_in1k" and model.default_cfg["crop_pct"] == 0.94
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        _assert_same_logits(model(x), source(x))
    assert not attempts


def test_separable_conv_with_batchnorm_and_relu_between():
    torch.manual_seed(0)
    plain = SeparableConv2d(6, 10, 3, padding=1)
    assert [n for n, _ in plain.named_children()] == ["depthwise", "pointwise"]
    assert plain.depthwise_bn is None and plain.depthwise_act is None
    sep = realistic(SeparableConv2d(6, 10, 3, padding=2, dilation=2, depthwise_bn=True, depthwise_act=True,
                                    bn_eps=1e-5))
    assert [n for n, _ in sep.named_children()] == ["depthwise", "depthwise_bn", "depthwise_act", "pointwise"]
    x = torch.randn(2, 6, 7, 7)
    mid = torch.relu(sep.depthwise_bn(nn.functional.conv2d(x, sep.depthwise.weight, padding=2, dilation=2, groups=6)))
    torch.testing.assert_close(sep(x), nn.functional.conv2d(mid, sep.pointwise.weight))
    assert sep.depthwise_bn.eps == 1e-5
    with pytest.raises(ValueError, match="separable convolution"):
        BasicConv2d(6, 10, 3, depthwise_bn=True)


def test_pre_activation_block_computes_timms_function():
    """The block's BatchNorm + ReLU before its second and third convolutions are the first and second
    convolutions' own: the function of timm's PreXceptionModule, shortcut from the normalized input."""
    from timm.models.xception_aligned import PreXceptionModule

    torch.manual_seed(0)
    theirs = realistic(PreXceptionModule(16, (24, 24, 32), stride=2, norm_layer=nn.BatchNorm2d))
    ours = realistic(AlignedXceptionSpec((24, 24, 32), 2, preact=True).build(
        16, get_record("xception41p").conv_layer())[0])
    ours.load_state_dict(dict(zip(ours.state_dict(), theirs.state_dict().values(), strict=True)))  # both in timm's order
    assert isinstance(ours.norm, PreActivation) and ours.residual_parts() is None
    x = torch.randn(2, 16, 9, 9)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))


def test_dense_specs_keep_the_weights_and_the_grid():
    conv_layer = get_record("xception41").conv_layer()
    reducing = AlignedXceptionSpec(728, 2)
    assert reducing.dense(1, keep_stride=True) == reducing
    dense = reducing.dense(2, keep_stride=False)
    assert dense == AlignedXceptionSpec(728, 1, projection=True, dilation=2)
    block, _, stride = reducing.build(256, conv_layer)
    dilated, channels, dense_stride = dense.build(256, conv_layer)
    assert (channels, stride, dense_stride) == (728, 2, 1)
    assert {k: v.shape for k, v in block.state_dict().items()} == {k: v.shape for k, v in dilated.state_dict().items()}
    assert all(m.dilation == (2, 2) and m.padding == (2, 2) for m in dilated.modules()
               if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3))
    assert dilated.eval()(torch.randn(1, 256, 9, 9)).shape == (1, 728, 9, 9)
    assert AlignedXceptionSpec(728).dense(4, keep_stride=False) == AlignedXceptionSpec(728, dilation=4)
    # Chollet's block keeps its max pool (3×3/1) and its 1×1 shortcut at stride 1
    chollet = XceptionBlockSpec(728, 2, 2).dense(2, keep_stride=False)
    assert chollet == XceptionBlockSpec(728, 2, 1, pool=True, dilation=2)
    original, _, _ = XceptionBlockSpec(728, 2, 2).build(256, conv_layer)
    module, _, s = chollet.build(256, conv_layer)
    assert s == 1 and isinstance(module.rep[-1], nn.MaxPool2d) and module.rep[-1].stride == 1
    assert original.state_dict().keys() == module.state_dict().keys()
    assert module.eval()(torch.randn(1, 256, 9, 9)).shape == (1, 728, 9, 9)
    assert PlainConv(64, 3).dense(2, keep_stride=True) == PlainConv(64, 3, padding=(2, 2), dilation=2)


def test_bad_aligned_blocks_are_refused():
    conv_layer = get_record("xception41").conv_layer()
    with pytest.raises(ValueError, match="a width or three widths"):
        AlignedXceptionSpec((728, 1024))
    with pytest.raises(ValueError, match="identity shortcut"):
        AlignedXceptionBlock(256, (728,) * 3, 2, projection=False, conv_layer=conv_layer)


def test_plain_stem_conv_of_the_pre_activation_networks():
    stem = create_model("xception41p").features.entry_conv2
    assert isinstance(stem.bn, nn.Identity) and isinstance(stem.act, nn.Identity) and stem.conv.bias is None


def _small(preact: bool) -> InceptionNet:
    """The aligned layout at small widths: stem, a reducing block, an identity block, the reducing exit
    block and the exit convolutions without shortcut."""
    block = partial(AlignedXceptionSpec, preact=preact)
    convs = (block((40, 40, 48), skip=False, act=True) if preact
             else block((40, 40, 48), skip=False, start_with_relu=False))
    layout = (("stem1", Conv(8, 3, 2, padding=1)), ("stem2", PlainConv(16, 3) if preact else Conv(16, 3)),
              ("reduce", block(24, 2)), ("middle", block(24)), ("exit", block((24, 32, 32), 2)), ("convs", convs))
    record = replace(get_record("xception41p" if preact else "xception41"), layout=layout, num_classes=10)
    torch.manual_seed(0)
    return calibrated(InceptionNet(record), torch.randn(4, 3, 32, 40))


@pytest.mark.parametrize(("preact", "fused"), [(False, 3), (True, 0)])
def test_deploy_folds_every_batchnorm(preact, fused):
    """The BatchNorms between depthwise and pointwise fold into the depthwise convolutions; the
    pre-activation's BatchNorm + ReLU (its input a residual sum, its output two paths) becomes a 1×1
    depthwise convolution with the ReLU fused; the post-activation blocks' sums are fused, the
    pre-activation ones' stay sums. (tests/test_deploy.py checks every whole network.)"""
    model = _small(preact)
    deployed = optimize_for_inference(model, "torch")
    assert not any(isinstance(m, (nn.BatchNorm2d, PreActivation)) for m in deployed.modules())
    assert sum(isinstance(m, FusedResidual) for m in deployed.modules()) == fused
    depthwise = [m for m in deployed.modules() if isinstance(m, DeployConv2d) and m.groups > 1]
    separable = [m for m in depthwise if m.weight.shape[-1] == 3]
    assert len(separable) == 12 and all((m.bias is not None) != preact for m in separable)  # BatchNorm folded
    assert sum(m.relu for m in depthwise) == (4 if preact else 3)  # the 4 pre-activations; the exit's 3 inner ReLUs
    x = torch.randn(2, 3, 32, 40)
    with torch.no_grad():
        expected = model(x)
        assert (expected[0] - expected[1]).abs().max() > 0.01 * expected.abs().max()
        assert close(deployed(x), expected, rel=1e-5)
        assert close(deployed(x.contiguous(memory_format=torch.channels_last)), expected, rel=1e-5)
