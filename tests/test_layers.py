import pytest
import torch
import torch.nn.functional as F
from torch import nn

from inception_zoo.layers import (
    AuxPool,
    BasicConv2d,
    ClassifierHead,
    Conv,
    Factorized,
    FactorizedConv2d,
    InceptionModule,
    Mixed,
    Pool,
    Residual,
    ResidualInceptionBlock,
    SameMaxPool2d,
    SeparableConv2d,
    build_sequence,
)


def test_basic_conv_bias_only_without_bn():
    with_bn = BasicConv2d(3, 8, 3, bn=True)
    assert with_bn.conv.bias is None and isinstance(with_bn.bn, nn.BatchNorm2d)
    assert with_bn.bn.eps == 1e-3
    without_bn = BasicConv2d(3, 8, 3, bn=False)
    assert without_bn.conv.bias is not None and isinstance(without_bn.bn, nn.Identity)
    assert sum(p.numel() for p in without_bn.parameters()) == 3 * 8 * 9 + 8
    assert sum(p.numel() for p in with_bn.parameters()) == 3 * 8 * 9 + 2 * 8


def test_basic_conv_computes_conv_bn_relu():
    torch.manual_seed(0)
    block = BasicConv2d(3, 4, 3, padding=1, bn_eps=1e-5).eval()
    block.bn.running_mean.uniform_(-1, 1)
    block.bn.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 3, 5, 5)
    ref = F.relu(F.batch_norm(F.conv2d(x, block.conv.weight, padding=1), block.bn.running_mean,
                              block.bn.running_var, block.bn.weight, block.bn.bias, eps=1e-5))
    torch.testing.assert_close(block(x), ref)
    assert block(x).min() >= 0
    linear = BasicConv2d(3, 4, 1, act=False).eval()
    assert linear(x).min() < 0


@pytest.mark.parametrize("first, kernels", [("1xn", [(1, 7), (7, 1)]), ("nx1", [(7, 1), (1, 7)])])
def test_factorized_conv_order_and_shape(first, kernels):
    f = FactorizedConv2d(16, 8, 12, 7, first=first)
    convs = [m for m in f.modules() if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size for c in convs] == kernels
    assert [c.out_channels for c in convs] == [8, 12]
    assert f(torch.randn(1, 16, 9, 11)).shape == (1, 12, 9, 11)


def test_factorized_conv_bad_order():
    with pytest.raises(ValueError, match="'1xn' or 'nx1'"):
        FactorizedConv2d(4, 4, 4, 3, first="diagonal")


def test_separable_conv_is_depthwise_then_pointwise():
    torch.manual_seed(0)
    sep = SeparableConv2d(6, 10, 3, padding=1)
    assert sep.depthwise.groups == 6 and sep.depthwise.weight.shape == (6, 1, 3, 3)
    assert sep.pointwise.kernel_size == (1, 1) and sep.depthwise.bias is None and sep.pointwise.bias is None
    x = torch.randn(2, 6, 7, 7)
    ref = F.conv2d(F.conv2d(x, sep.depthwise.weight, padding=1, groups=6), sep.pointwise.weight)
    torch.testing.assert_close(sep(x), ref)


def test_inception_module_concatenates_named_branches():
    spec = Mixed(branch1x1=(Conv(4),), branch3x3=(Conv(2), Conv(6, 3)), branch_pool=(Pool("max", 3, 1), Conv(5)))
    module, channels, stride = spec.build(8, BasicConv2d)
    assert module.branch_channels == [4, 6, 5] and module.out_channels == channels == 15 and stride == 1
    assert list(module) == ["branch1x1", "branch3x3", "branch_pool"]
    assert "branch3x3.1.conv.weight" in module.state_dict()
    x = torch.randn(2, 8, 9, 9)
    out = module(x)
    assert out.shape == (2, 15, 9, 9)
    torch.testing.assert_close(out[:, 4:10], module["branch3x3"](x))


def test_positional_branches_are_numbered_as_tf_slim():
    assert [n for n, _ in Mixed((Conv(4),), (Conv(2),)).branches] == ["branch0", "branch1"]
    with pytest.raises(ValueError, match="branch names must be unique"):
        Mixed((Conv(4),), branch0=(Conv(2),))
    with pytest.raises(ValueError, match="at least one branch"):
        Mixed()


def test_bad_specs_are_refused_where_they_are_written():
    for name in ("stride", "forward", "up", "3x3"):
        with pytest.raises(ValueError, match=f"branch name '{name}' is not an identifier or names an attribute"):
            Mixed(**{name: (Conv(4),)})
    with pytest.raises(ValueError, match="branch 'a' is empty"):
        Mixed(a=())
    with pytest.raises(ValueError, match="Conv needs a positive number of output channels, got 0"):
        Conv(0)


def test_inception_module_rejects_mixed_strides():
    with pytest.raises(ValueError, match="share one stride"):
        InceptionModule(8, [("a", (Conv(4, 3, 2),)), ("b", (Conv(4),))], BasicConv2d)


def test_residual_block_scales_before_sum():
    torch.manual_seed(0)
    block, _, _ = Residual((Conv(4),), (Conv(4), Conv(4, 3)), scale=0.17).build(8, BasicConv2d)
    block.eval()
    assert block.up.conv.bias is not None and isinstance(block.up.bn, nn.Identity)
    assert list(block.state_dict())[0] == "branch0.0.conv.weight" and "up.conv.weight" in block.state_dict()
    x = torch.randn(2, 8, 5, 5)
    branches = torch.cat([block["branch0"](x), block["branch1"](x)], 1)
    torch.testing.assert_close(block(x), F.relu(x + 0.17 * block.up(branches)))
    linear = ResidualInceptionBlock(8, [("branch0", (Conv(4),))], BasicConv2d, scale=1.0, act=False).eval()
    torch.testing.assert_close(linear(x), x + linear.up(linear["branch0"](x)))
    assert linear(x).min() < 0
    parts = block.residual_parts()  # the hook deploy mode fuses through
    assert parts.conv is block.up and parts.scale == 0.17 and parts.act and not parts.on_shortcut
    torch.testing.assert_close(parts.body(x), branches)
    with pytest.raises(ValueError, match="branch name 'up' is not an identifier or names an attribute"):
        Residual(up=(Conv(4),)).build(8, BasicConv2d)


def test_classifier_head_adapts_to_any_size():
    head = ClassifierHead(16, 5, drop_rate=0.4)
    for h, w in [(1, 1), (7, 7), (3, 11)]:
        assert head(torch.randn(2, 16, h, w)).shape == (2, 5)
    features = ClassifierHead(16, 0)
    x = torch.randn(2, 16, 3, 4)
    torch.testing.assert_close(features(x), x.mean((2, 3)))


def test_aux_pool_is_exact_at_training_size_and_defined_elsewhere():
    pool = AuxPool(5, 3, 4)
    x = torch.randn(1, 2, 14, 14)  # GoogLeNet's 4a/4d grid at 224x224
    torch.testing.assert_close(pool(x), F.avg_pool2d(x, 5, 3))
    assert pool(torch.randn(1, 2, 19, 25)).shape == (1, 2, 4, 4)
    assert pool(torch.randn(1, 2, 2, 3)).shape == (1, 2, 4, 4)
    v3 = AuxPool(5, 3, 5)
    y = torch.randn(1, 2, 17, 17)
    torch.testing.assert_close(v3(y), F.avg_pool2d(y, 5, 3))
    adaptive = AuxPool(None, None, 4)
    torch.testing.assert_close(adaptive(x), F.adaptive_avg_pool2d(x, 4))


@pytest.mark.parametrize("size", [28, 14, 8])
def test_same_max_pool_equals_ceil_mode_on_even_sizes(size):
    x = torch.randn(1, 3, size, size)
    torch.testing.assert_close(SameMaxPool2d(3, 2)(x), F.max_pool2d(x, 3, 2, ceil_mode=True))


@pytest.mark.parametrize("size", [27, 13, 5, 2, 1])
def test_same_max_pool_matches_padded_conv_size(size):
    x = torch.randn(1, 3, size, size + 1)
    conv = nn.Conv2d(3, 3, 3, 2, 1)
    assert SameMaxPool2d(3, 2)(x).shape == conv(x).shape


def test_build_sequence_tracks_channels_and_stride():
    seq, ch, stride = build_sequence(3, [Conv(8, 3, 2), Factorized(4, 6, 7), Pool("max", 3, 2)], BasicConv2d)
    assert (ch, stride) == (6, 4)
    assert seq(torch.randn(1, 3, 33, 33)).shape == (1, 6, 7, 7)
