"""Frozen BatchNorm, as detection and segmentation code trains a backbone: a train-mode model whose
BatchNorm layers are in eval mode, or replaced by ``FrozenBatchNorm2d`` (timm's ``freeze_batch_norm_2d``,
torchvision's pattern), takes a batch of one; the batch-of-one error is left for a BatchNorm that really
normalizes over the batch at call time (one in train mode, or one without running statistics)."""

import copy

import pytest
import torch
from helpers import close, realistic
from timm.layers import freeze_batch_norm_2d
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

from inception_zoo import create_model, get_record, list_models
from inception_zoo.models.checks import normalizes_over_batch

MODELS_WITH_BN = [name for name in list_models() if get_record(name).conv.get("bn")]


def _x(name: str, batch: int = 1) -> torch.Tensor:
    _, h, w = get_record(name).min_input_size
    return torch.randn(batch, 3, h, w, generator=torch.Generator().manual_seed(0))


def _train_with_dropout_off(model: nn.Module) -> nn.Module:
    """Train mode, dropout off: what is left of train mode is BatchNorm, so outputs compare to eval's. The
    BatchNorm1d of a face-embedding head (which 2-D freezing helpers leave alone) is put in eval mode too,
    as a user freezing a backbone does with ``model.head.bn.eval()``."""
    model.train()
    for m in model.modules():
        if isinstance(m, (nn.Dropout, nn.BatchNorm1d)):
            m.eval()
    return model


def _freeze_each(model: nn.Module) -> nn.Module:
    """(a): every BatchNorm put in eval mode inside the train-mode model."""
    for m in _train_with_dropout_off(model).modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
    return model


def _torchvision_frozen(model: nn.Module) -> nn.Module:
    """(c): torchvision's pattern, a ``FrozenBatchNorm2d`` loaded from each BatchNorm's state dict."""
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
                frozen.load_state_dict(child.state_dict())  # drops num_batches_tracked, as torchvision does
                setattr(parent, child_name, frozen)
    return model


@pytest.mark.parametrize("name", MODELS_WITH_BN)
def test_frozen_batchnorm_takes_a_batch_of_one(name, fresh):
    x = _x(name)
    model = realistic(fresh(name))  # eval mode, non-trivial BatchNorm statistics
    with torch.no_grad():
        reference = model(x)

    frozen = _freeze_each(model)  # (a)
    assert frozen.training and not normalizes_over_batch(frozen)
    out = frozen(x)  # with gradients, as a training step runs it
    assert torch.equal(out, reference)
    out.sum().backward()
    assert frozen.get_classifier().weight.grad is not None

    timm_frozen = _train_with_dropout_off(freeze_batch_norm_2d(realistic(fresh(name))))  # (b)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in timm_frozen.modules())
    with torch.no_grad():
        assert close(timm_frozen(x), reference)
    tv_frozen = _train_with_dropout_off(_torchvision_frozen(realistic(fresh(name))))  # (c)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in tv_frozen.modules())
    with torch.no_grad():
        assert close(tv_frozen(x), reference)

    bn = next(m for m in frozen.modules() if isinstance(m, nn.BatchNorm2d))
    bn.train()  # one BatchNorm normalizing over the batch again
    with pytest.raises(ValueError, match=rf"{name} in train mode needs a batch of at least 2 .* got 1"):
        frozen(x)
    assert frozen(_x(name, batch=2)).shape == (2, frozen.num_classes)  # a batch of two trains it
    bn.eval()
    bn.track_running_stats, bn.running_mean, bn.running_var = (
        False,
        None,
        None,
    )  # batch statistics in eval too
    assert normalizes_over_batch(frozen)
    with pytest.raises(ValueError, match="needs a batch of at least 2"):
        frozen(x)


def test_frozen_backbone_and_aux_heads_take_a_batch_of_one():
    """A features_only backbone frozen with timm's helper, and a model with auxiliary heads (train mode
    returns logits and aux outputs), each with a batch of one."""
    backbone = freeze_batch_norm_2d(create_model("inception_v3", features_only=True, out_indices=(2, 3, 4)))
    maps = backbone.train()(_x("inception_v3"))
    assert [m.shape[:2] for m in maps] == [(1, 288), (1, 768), (1, 2048)]

    model = _freeze_each(create_model("inception_v1_bn", aux_logits=True))
    out = model(torch.randn(1, 3, 96, 96))
    assert out.logits.shape == (1, 1000) and [a.shape for a in out.aux] == [(1, 1000)] * 2
    model.aux_heads[0].convs[0].bn.train()  # a BatchNorm in an auxiliary head counts as well
    with pytest.raises(ValueError, match="inception_v1_bn in train mode needs a batch of at least 2"):
        model(torch.randn(1, 3, 96, 96))


def test_batch_of_one_without_batchnorm_and_in_eval_mode(built):
    """No BatchNorm (GoogLeNet as published) or eval mode: a single image always runs."""
    plain = create_model("inception_v1").train()
    assert not normalizes_over_batch(plain) and plain(_x("inception_v1")).shape == (1, 1000)
    with torch.no_grad():
        assert built("inception_v3")(_x("inception_v3")).shape == (1, 1000)


# plain convs; separable with a mid BN; pre-activation BatchNorms with no conv before them
@pytest.mark.parametrize("name", ["inception_v1_bn", "xception41", "xception41p"])
def test_deploy_folds_frozen_batchnorms(name):
    """timm's and torchvision's FrozenBatchNorm2d fold like BatchNorm2d (they were silently dropped)."""
    from inception_zoo.deploy import optimize_for_inference

    model = realistic(create_model(name)).eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(x)
        for freeze in (freeze_batch_norm_2d, _torchvision_frozen):
            frozen = freeze(copy.deepcopy(model))
            assert not any(isinstance(m, nn.BatchNorm2d) for m in frozen.modules())
            assert close(optimize_for_inference(frozen, "torch")(x), expected), freeze.__name__


def test_deploy_refuses_a_norm_it_cannot_fold():
    from inception_zoo.deploy import optimize_for_inference

    model = create_model("inception_v1_bn").eval()
    model.features.conv1_7x7_s2.bn = nn.GroupNorm(1, 64)
    with pytest.raises(TypeError, match="cannot fold a GroupNorm"):
        optimize_for_inference(model, "torch")
    preact = create_model("xception41p").eval()  # a pre-activation BatchNorm, no convolution before it
    norm = next(m for m in preact.modules() if type(m).__name__ == "PreActivation")
    norm.bn = nn.GroupNorm(1, norm.bn.num_features)
    with pytest.raises(TypeError, match="cannot fold a GroupNorm"):
        optimize_for_inference(preact, "torch")
