"""timm's forward_intermediates / prune_intermediate_layers on every model: the same tensors as features_only
and forward_features, timm's index conventions, pruning that keeps the outputs and drops the rest."""

import pytest
import torch

from inception_zoo import InceptionOutputs, create_model, list_models
from inception_zoo.analysis import count_params
from inception_zoo.models import FeatureExtractor
from inception_zoo.models.intermediates import take_indices

MODELS = list_models()


def _x(model, batch=1, seed=0):
    """The smallest cheap input: the minimum size, at least 32 (16 for the 32×32 CIFAR layouts, whose
    minimum is 1×1 and whose modules run at full resolution)."""
    _, min_h, _ = model.default_cfg["min_input_size"]
    size = max(min_h, 32 if model.default_cfg["input_size"][1] > 32 else 16)
    return torch.randn(batch, model.in_chans, size, size, generator=torch.Generator().manual_seed(seed))


def _same(ours, reference):
    return len(ours) == len(reference) and all(torch.equal(a, b) for a, b in zip(ours, reference))


@pytest.mark.parametrize("name", MODELS)
def test_intermediates_are_the_features_only_maps(name, built):
    model = built(name)
    x = _x(model)
    taps = model.feature_taps()
    with torch.no_grad():
        final, maps = model.forward_intermediates(x)
        assert torch.equal(final, model.forward_features(x))
        assert _same(maps, FeatureExtractor(model)(x))  # the model's own stages, shared
        assert [m.shape[1] for m in maps] == [model.stage_info[t].channels for t in taps]
        # negative indices count from the end; the maps come shallowest first, as timm's (the int form:
        # test_index_conventions)
        assert _same(
            model.forward_intermediates(x, indices=[-1, 0], intermediates_only=True), [maps[0], maps[-1]]
        )
        # stop_early: the same maps, the last one also as the final features
        final, early = model.forward_intermediates(x, indices=(0, 1), stop_early=True, norm=True)
        assert _same(early, maps[:2]) and torch.equal(final, maps[1])


@pytest.mark.parametrize("name", MODELS)
def test_pruning_keeps_the_outputs_and_drops_the_rest(name, built, fresh):
    reference = built(name)
    x = _x(reference)
    taps = reference.feature_taps()
    with torch.no_grad():
        maps = reference.forward_intermediates(x, indices=(0, 2), stop_early=True, intermediates_only=True)
    model = fresh(name)
    assert model.prune_intermediate_layers((0, 2)) == [0, 2]
    assert count_params(model) < count_params(reference)
    kept = taps[2] + 1
    assert list(model.features._modules) == list(reference.features._modules)[:kept]
    assert model.feature_taps() == taps[:3]  # the remaining taps, indices into the remaining stages
    assert model.num_features == model.head_hidden_size == reference.stage_info[taps[2]].channels
    assert model.num_classes == 0 and isinstance(model.get_classifier(), torch.nn.Identity)
    with torch.no_grad():
        final, again = model.forward_intermediates(x, indices=[0, 2])
        assert _same(again, maps) and torch.equal(final, maps[1])
        assert torch.equal(model(x), maps[1])  # no head: forward returns the last kept map
        assert _same(FeatureExtractor(model, out_indices=(0, -1))(x), maps)
    with pytest.raises(ValueError, match=r"integers in 0\.\.2 \(or -3\.\.-1\)"):
        model.forward_intermediates(x, indices=(3,))


def test_index_conventions():
    """timm's: None, all; an int n, the last n; a sequence, those (negative from the end), shallowest first."""
    reductions = (2, 4, 8, 16, 32)
    assert take_indices("m", reductions, None) == [0, 1, 2, 3, 4]
    assert take_indices("m", reductions, 2) == [3, 4] and take_indices("m", reductions, 5) == [0, 1, 2, 3, 4]
    assert take_indices("m", reductions, (-1, 0, 2, 2)) == [0, 2, 4]
    assert take_indices("m", reductions, range(3)) == [0, 1, 2]
    model = create_model("inception_v1_cifar").eval()
    x = _x(model)
    with torch.no_grad():
        maps = model.forward_intermediates(x, intermediates_only=True)
        assert _same(model.forward_intermediates(x, indices=2, intermediates_only=True), maps[-2:])
        # features_only reads an int out_indices as timm does too: the last n maps
        last_two = FeatureExtractor(model, out_indices=2)  # as create_model(..., features_only=True) builds it
        every = [info["reduction"] for info in model.feature_info]  # timm's list form on the model
        assert last_two.feature_info.reduction() == every[-2:]
        assert _same(last_two(x), maps[-2:])
    import numpy as np

    numpy_ints = create_model("inception_v1_cifar", features_only=True, out_indices=(np.int64(0), -1))
    assert numpy_ints.feature_info.reduction() == [every[0], every[-1]]
    with pytest.raises(ValueError, match=r"out_indices=0 takes the last n .* n must be in 1\.\.3"):
        create_model("inception_v1_cifar", features_only=True, out_indices=0)


def test_pruning_without_removing_stages():
    model = create_model("inception_v1", aux_logits=True).eval()
    stages, params = len(model.features), count_params(model)
    assert model.prune_intermediate_layers(prune_head=False) == [4]  # the last tap: nothing to remove
    assert count_params(model) == params and model.aux_logits and model.num_classes == 1000
    assert model.prune_intermediate_layers(indices=[-1, 1]) == [1, 4]  # the head (and the aux heads) only
    assert len(model.features) == stages and model.num_classes == 0 and not model.aux_logits
    assert len(model.aux_heads) == 0 and model.head_hidden_size == model.num_features == 1024


def test_removing_stages_removes_the_heads_as_timm_does():
    """prune_head=False still drops a classifier sized for removed stages, and the auxiliary heads with it
    (inception_v3's reads Mixed_6e, which stays); train mode then returns a tensor."""
    model = create_model("inception_v3", aux_logits=True)
    assert model.prune_intermediate_layers(indices=(1, 3), prune_head=False) == [1, 3]
    assert list(model.features._modules)[-1] == "Mixed_6e" and model.num_features == 768
    assert not model.aux_logits and len(model.aux_heads) == 0 and model.num_classes == 0
    out = model.train()(torch.randn(2, 3, 75, 75))
    assert not isinstance(out, InceptionOutputs) and out.shape[1] == 768
    # pruned again, from the remaining taps (0..3)
    assert model.prune_intermediate_layers(indices=2) == [2, 3] and model.feature_taps()[-1] == 14


@pytest.mark.parametrize(("name", "output_stride"), [("inception_v3", 16), ("xception", 8)])
def test_dense_backbones(name, output_stride):
    """At output_stride 16 / 8 the maps are still features_only's, and pruning keeps them."""
    model = create_model(name, output_stride=output_stride).eval()
    x = torch.randn(1, 3, 75, 75)
    taps = model.feature_taps()
    with torch.no_grad():
        final, maps = model.forward_intermediates(x)
        assert torch.equal(final, model.forward_features(x)) and _same(maps, FeatureExtractor(model)(x))
        assert model.prune_intermediate_layers((0, 3)) == [0, 3] and model.feature_taps() == taps[:4]
        assert _same(
            model.forward_intermediates(x, indices=(0, 3), intermediates_only=True), [maps[0], maps[3]]
        )


def test_named_taps_after_pruning():
    model = create_model("inception_v3_fid").eval()  # the record's four FID taps
    assert model.prune_intermediate_layers(indices=[1]) == [1]
    assert [model.stage_info[t].name for t in model.feature_taps()] == ["MaxPool_3a_3x3", "MaxPool_5a_3x3"]
    assert FeatureExtractor(model).feature_info.channels() == [64, 192]


def test_bad_arguments_raise_value_errors():
    model = create_model("inception_v1_bn").eval()
    x = _x(model)
    allowed = r"integers in 0\.\.4 \(or -5\.\.-1\), one per feature map at reductions \(2, 4, 8, 16, 32\)"
    for bad in [(5,), (-6,), (), ("1",), (True,), 1.5, "0", {0: 1}]:
        with pytest.raises(ValueError, match=allowed):
            model.forward_intermediates(x, indices=bad)
        with pytest.raises(ValueError, match=allowed):
            model.prune_intermediate_layers(indices=bad)
    for bad in [0, 6, -1]:
        with pytest.raises(
            ValueError, match=r"takes the last n of its 5 feature maps .* n must be in 1\.\.5"
        ):
            model.forward_intermediates(x, indices=bad)
    with pytest.raises(ValueError, match="output_fmt must be 'NCHW'"):
        model.forward_intermediates(x, output_fmt="NHWC")
    with pytest.raises(ValueError, match=r"inception_v1_bn expects a \(B, 3, H, W\) tensor"):
        model.forward_intermediates(x[:, :1])
    assert model.num_classes == 1000 and len(model.feature_taps()) == 5  # refused prunes changed nothing


def test_grad_checkpointing_and_train_mode():
    torch.manual_seed(0)
    model = create_model("bn_inception").train()
    x = _x(model, batch=2)
    grads = []
    for enable in (False, True):
        model.set_grad_checkpointing(enable)
        model.zero_grad()
        _, maps = model.forward_intermediates(x, indices=(1, 3), stop_early=True)
        sum(m.sum() for m in maps).backward()
        grads.append(model.features.conv1_7x7_s2.conv.weight.grad.clone())
    assert torch.allclose(grads[0], grads[1], rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="needs a batch of at least 2"):
        model.forward_intermediates(x[:1])


def test_pruned_model_scripts():
    model = create_model("bn_inception").eval()
    model.prune_intermediate_layers(indices=(0, 1))
    scripted = torch.jit.script(model)
    with pytest.raises(TypeError, match="forward_intermediates is eager-only"):
        scripted.forward_intermediates(_x(model))
    x = _x(model)
    with torch.no_grad():
        assert torch.equal(
            scripted(x), model.forward_intermediates(x, indices=[1], intermediates_only=True)[0]
        )


def test_timm_feature_getter_wraps_our_models():
    """timm's FeatureGetterNet prunes, reads model.feature_info and calls forward_intermediates."""
    from timm.models._features import FeatureGetterNet

    model = create_model("inception_v3", output_stride=16).eval()
    reference = create_model("inception_v3", output_stride=16, features_only=True, out_indices=(1, 3)).eval()
    reference.load_state_dict(model.state_dict(), strict=False)
    assert [d["reduction"] for d in model.feature_info] == [2, 4, 8, 16, 16]
    getter = FeatureGetterNet(model, out_indices=(1, 3))
    assert getter.feature_info.reduction() == [4, 16] and getter.feature_info.channels() == [192, 768]
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        for got, expected in zip(getter(x), reference(x), strict=True):
            assert torch.equal(got, expected)
