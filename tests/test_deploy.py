"""optimize_for_inference: the same function, less work, eval only."""

import copy

import pytest
import torch
from torch import nn

from inception_zoo import create_model, get_record, list_models, optimize_for_inference
from inception_zoo.deploy import DeployConv2d, DeployedInceptionNet, FusedResidual, MergedInceptionModule
from inception_zoo.layers import ResidualInceptionBlock

from inception_zoo import _onednn

from helpers import close as _close
from helpers import realistic as _realistic


@pytest.mark.parametrize("name", list_models())
def test_deploy_mode_is_equivalent(name, fresh):
    torch.manual_seed(0)
    model = _realistic(fresh(name))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    deployed = optimize_for_inference(model, "torch")
    assert isinstance(deployed, DeployedInceptionNet) and deployed.default_cfg["architecture"] == name
    _, h, w = get_record(name).min_input_size
    x = torch.randn(2, 3, max(h, min(96, model.default_cfg["input_size"][1])), max(w, 80))
    with torch.no_grad():
        expected = model(x)
        assert _close(deployed(x), expected)
        assert _close(deployed(x.contiguous(memory_format=torch.channels_last)), expected)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in deployed.modules())
    assert all(not p.requires_grad for p in deployed.parameters())
    after = model.state_dict()  # the original is untouched
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_what_gets_merged(built):
    deployed = optimize_for_inference(built("inception_v3"), "torch")
    merged = {n: m for n, m in deployed.features.named_children() if isinstance(m, MergedInceptionModule)}
    assert sorted(merged) == [f"Mixed_{s}" for s in ("5b", "5c", "5d", "6b", "6c", "6d", "6e", "7a", "7b", "7c")]
    m5b = merged["Mixed_5b"]
    assert m5b.direct_widths == [64, 48, 64]  # the 1×1 branch and the two reductions, as one convolution
    assert m5b.pooled_widths == [32]  # the pool branch projects 192 -> 32 channels before pooling
    assert [k for k, _ in m5b.slots] == ["direct", "direct", "direct", "pooled"]
    merged_7a = merged["Mixed_7a"]
    assert [k for k, _ in merged_7a.slots] == ["direct", "direct", "other"]  # the max pool stays


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_fused_and_plain_convolution_paths_agree(layout):
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 16, 3, padding=1, groups=2)
    fused = DeployConv2d(conv, relu=True)
    x = torch.randn(2, 8, 9, 9).contiguous(memory_format=layout)
    residual = torch.randn(2, 16, 9, 9)
    with torch.no_grad():
        expected = torch.relu(conv(x))
        with_residual = torch.relu(conv(x) + residual)
        torch.testing.assert_close(fused(x), expected)  # oneDNN path on a CPU that has it
        torch.testing.assert_close(fused(x, residual=residual), with_residual)  # the sum as a post-op
        double = copy.deepcopy(fused).double()  # the plain path (oneDNN is used for float32/bfloat16 only)
        assert double._onednn_dtype(x.double()) is None
        torch.testing.assert_close(double(x.double()), expected.double(), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(double(x.double(), residual.double()), with_residual.double(), rtol=1e-4, atol=1e-5)


def test_bf16_autocast_runs_bf16_convolutions():
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 16, 3, padding=1)
    fused = DeployConv2d(conv, relu=False)
    x = torch.randn(2, 8, 9, 9)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        expected = conv(x)
        out = fused(x)
        if _onednn.bf16_available():
            assert fused._onednn_dtype(x) == torch.bfloat16
    assert out.dtype == expected.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), expected.float(), rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("name", ["inception_resnet_v1", "xception"])
def test_deploy_under_bf16_autocast_matches_the_plain_model(name, fresh):
    torch.manual_seed(0)
    model = _realistic(fresh(name))
    deployed = optimize_for_inference(model, "torch")
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        reference = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            plain, fast = model(x), deployed(x)
    assert fast.dtype == plain.dtype == torch.bfloat16
    # bfloat16 keeps 8 bits of mantissa: both land within 2% of the float32 logits, and as close as each other
    def error(y):
        return ((y.float() - reference).norm() / reference.norm()).item()

    assert error(fast) < 0.02 and error(fast) < 2 * error(plain) + 1e-3


@pytest.mark.parametrize(("name", "blocks"), [("inception_resnet_v1", 20), ("inception_resnet_v2", 40), ("xception", 12)])
def test_residual_sums_are_fused(name, blocks, built):
    deployed = optimize_for_inference(built(name), "torch")
    fused = [m for m in deployed.modules() if isinstance(m, FusedResidual)]
    assert len(fused) == blocks  # every residual block of the network (paper: 5+10+5, 10+20+10, 3+8+1)
    assert not any(isinstance(m, ResidualInceptionBlock) for m in deployed.modules())


def test_deployed_model_is_eval_only_and_copies(built):
    deployed = optimize_for_inference(built("inception_v1_bn", aux_logits=True), "torch")
    with pytest.raises(RuntimeError, match="optimized for inference .* cannot be trained"):
        deployed.train()
    assert not deployed.training and not hasattr(deployed, "aux_heads")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        deployed(x)
        torch.testing.assert_close(copy.deepcopy(deployed)(x), deployed(x))
    with pytest.raises(TypeError, match="expects an inception_zoo model"):
        optimize_for_inference(nn.Conv2d(3, 3, 1))


def test_new_weights_take_effect():
    torch.manual_seed(0)
    first, second = (optimize_for_inference(create_model("inception_v1_bn"), "torch") for _ in range(2))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        first(x)
        first.load_state_dict(second.state_dict())
        torch.testing.assert_close(first(x), second(x))
        first.load_state_dict(second.state_dict(), assign=True)
        torch.testing.assert_close(first(x), second(x))
        before = first(x)
        conv = next(m for m in first.modules() if isinstance(m, DeployConv2d))
        conv.weight.zero_()  # an in-place edit
        assert not torch.allclose(first(x), before)


def test_input_gradients_flow_through_a_deployed_model(fresh):
    torch.manual_seed(0)
    model = _realistic(fresh("inception_resnet_v1"))
    deployed = optimize_for_inference(model, "torch")
    x = torch.randn(1, 3, 75, 75, requires_grad=True)
    reference = x.detach().clone().requires_grad_(True)
    deployed(x)[0, 3].backward()  # the plain convolutions run while autograd records
    model(reference)[0, 3].backward()
    torch.testing.assert_close(x.grad, reference.grad, rtol=1e-3, atol=1e-6)


def test_features_only_extractors_are_refused_clearly():
    with pytest.raises(TypeError, match="features_only extractors are not supported"):
        optimize_for_inference(create_model("inception_v1_bn", features_only=True))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_models_deploy(dtype, fresh):
    """A model already in bfloat16 / float16 folds in float64 and keeps its dtype: as close to the float32
    logits as the model itself in that dtype."""
    torch.manual_seed(0)
    model = _realistic(fresh("inception_resnet_v1"))
    x = torch.randn(1, 3, 75, 75)
    with torch.no_grad():
        reference = model(x)
        low = model.to(dtype)
        deployed = optimize_for_inference(low, "torch")
        assert all(p.dtype == dtype for p in deployed.parameters())
        fast, plain = deployed(x.to(dtype)), low(x.to(dtype))

    def error(y):
        return ((y.float() - reference).norm() / reference.norm()).item()

    assert fast.dtype == dtype and error(fast) < 2 * error(plain) + 1e-3
