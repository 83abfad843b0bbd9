"""Exact parameter counts, the peers' counts and multiply-adds, the forward contract, bad input."""

import pytest
import torch

from inception_zoo import InceptionOutputs, create_model, get_record, list_models, list_records
from inception_zoo.analysis import count_params
from inception_zoo.weights.sources import build_peer, peer_model

# The counts are the records' (ModelRecord.params / params_aux): written there as literals, counted here.
MODELS = list_models()
AUX_MODELS = [r.name for r in list_records() if r.aux_heads]


def test_shipped_counts():
    """The README's figures, independent of the records."""
    assert {r.name: (r.params, r.params_aux) for r in list_records()}.items() >= {
        "inception_v1": (6_998_552, 13_378_280),
        "inception_v1_bn": (6_624_904, 13_004_888),
        "bn_inception": (11_295_240, None),
        "inception_v3": (23_834_568, 27_161_264),
        "inception_v4": (42_679_816, 46_039_280),
        "inception_resnet_v1": (22_756_328, None),
        "inception_resnet_v1_facenet": (27_910_327, None),  # facenet-pytorch's, 8631 classes
        "inception_resnet_v2": (55_843_464, 59_211_120),
        "xception": (22_855_952, None),
        # CIFAR layouts (32×32), at their default 10 / 100 classes; no paper gives their counts
        "inception_v1_cifar": (6_158_346, None),
        "inception_v1_cifar_naive": (65_953_514, None),
        "xception_cifar": (21_011_852, None),
    }.items()


@pytest.mark.parametrize("name", MODELS)
def test_param_count(name, built):
    assert count_params(built(name)) == get_record(name).params


@pytest.mark.parametrize("name", AUX_MODELS)
def test_param_count_with_aux(name, built):
    assert count_params(built(name, aux_logits=True)) == get_record(name).params_aux


def test_num_classes_changes_only_the_classifiers():
    base = count_params(create_model("inception_v1", aux_logits=True))
    ten = count_params(create_model("inception_v1", aux_logits=True, num_classes=10))
    assert base - ten == 3 * (1024 + 1) * 990  # main head (1024 -> n) and two aux heads (1024 -> n)


# Peers built from the dependencies' own code at random init (meta device where only shapes matter).
PEERS = {f"{p.source} {p.model}": (r.name, p) for r in list_records() for p in r.peers}


@pytest.mark.parametrize("key", PEERS)
def test_peer_params(key):
    """Every peer has our parameter count (its multiply-adds equal ours too: tests/test_docs.py counts the
    first peer of each model with fvcore, and tests/test_weights.py proves every peer computes our
    function, logit for logit)."""
    name, peer = PEERS[key]
    count = peer_model(peer).params or count_params
    with torch.device("meta"):
        assert count(build_peer(peer)) == get_record(name).params


@pytest.mark.parametrize("key", [k for k, (_, peer) in PEERS.items() if peer_model(peer).aux])
def test_peer_params_with_aux(key):
    name, peer = PEERS[key]
    with torch.device("meta"):
        assert count_params(build_peer(peer, aux=True)) == get_record(name).params_aux


def _sizes(name):
    cfg = get_record(name)
    _, h, w = cfg.input_size
    _, mh, mw = cfg.min_input_size
    return {"default": (h, w), "non-square": (h, w * 4 // 3), "min": (mh, mw), "min non-square": (mh, 2 * mw)}


@pytest.mark.parametrize("name", MODELS)
def test_eval_shapes(name, built):
    model = built(name, num_classes=7)
    with torch.no_grad():
        for label, (h, w) in _sizes(name).items():
            out = model(torch.randn(1, 3, h, w))
            assert isinstance(out, torch.Tensor) and out.shape == (1, 7), label


@pytest.mark.parametrize("name", AUX_MODELS)
def test_train_shapes_with_aux(name, fresh):
    model = fresh(name, num_classes=7, aux_logits=True).train()
    for label, (h, w) in _sizes(name).items():
        with torch.no_grad():  # train mode's outputs; no autograd graph needed for their shapes
            out = model(torch.randn(2, 3, h, w))
        assert isinstance(out, InceptionOutputs), label
        assert out.logits.shape == (2, 7), label
        assert len(out.aux) == len(get_record(name).aux_heads) and all(a.shape == (2, 7) for a in out.aux), label
    model.eval()
    assert isinstance(model(torch.randn(1, 3, *_sizes(name)["min"])), torch.Tensor)


@pytest.mark.parametrize("name", ["inception_v1_bn", "xception"])
def test_train_without_aux_returns_a_tensor(name):
    model = create_model(name, num_classes=4).train()
    out = model(torch.randn(2, 3, 64, 64))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 4)


def test_aux_heads_order_shallow_to_deep(built):
    model = built("inception_v1", aux_logits=True)
    names = [s.name for s in model.stage_info]
    assert [names[i] for i in model.aux_taps] == ["inception_4a", "inception_4d"]


@pytest.mark.parametrize("name", MODELS)
def test_bad_input(name, built):
    model = built(name)
    _, mh, mw = model.default_cfg["min_input_size"]
    cases = {
        "3-D": torch.randn(3, mh, mw),
        "5-D": torch.randn(1, 1, 3, mh, mw),
        "channels": torch.randn(1, 1, mh, mw),
        "height": torch.randn(1, 3, mh - 1, mw),
        "width": torch.randn(1, 3, mh, mw - 1),
    }
    for label, x in cases.items():
        with pytest.raises(ValueError) as info:
            model(x)
        message = str(info.value)
        assert name in message, label
        assert f"(B, 3, H, W) tensor with H >= {mh} and W >= {mw}" in message, label
    with pytest.raises(ValueError, match="got list"):
        model([1, 2, 3])


def test_in_chans():
    model = create_model("inception_v1_bn", in_chans=1, num_classes=3).eval()
    assert model(torch.randn(1, 1, 64, 64)).shape == (1, 3)
    with pytest.raises(ValueError, match=r"expects a \(B, 1, H, W\) tensor .* got a tensor of shape \(1, 3, 64, 64\)"):
        model(torch.randn(1, 3, 64, 64))
    cfg = model.default_cfg
    assert cfg["input_size"] == (1, 224, 224) and cfg["min_input_size"] == (1, 15, 15)
    assert cfg["mean"] == pytest.approx((sum((0.485, 0.456, 0.406)) / 3,))
    assert create_model("xception", in_chans=4).default_cfg["std"] == (0.5,) * 4


def test_num_classes_zero_returns_pooled_features(built):
    model = built("inception_v3", num_classes=0)
    assert model(torch.randn(1, 3, 75, 75)).shape == (1, 2048)


def test_paper_layout_choices(built):
    def kernels(model, stage):
        branch = model.features.get_submodule(stage)["branch5x5"]
        return [m.kernel_size for m in branch.modules() if isinstance(m, torch.nn.Conv2d)]

    assert kernels(built("inception_v1"), "inception_3a") == [(1, 1), (5, 5)]
    assert kernels(built("inception_v1_bn"), "inception_3a") == [(1, 1), (3, 3)]
    v1 = built("inception_v1")
    assert any(isinstance(m, torch.nn.LocalResponseNorm) for m in v1.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in v1.modules())
    assert v1.head.drop.p == 0.4
    irv2 = built("inception_resnet_v2")
    scales = [m.scale for m in irv2.modules() if hasattr(m, "scale") and isinstance(m.scale, float)]
    assert scales == [0.17] * 10 + [0.10] * 20 + [0.20] * 9 + [1.0]
    assert irv2.features.Block8.act is False and irv2.features.block8_9.act is True


def test_weight_keys_are_named_and_stable(built):
    """Branch names in the keys, no positional stutter (timm's and torchvision's names where they have them)."""
    keys = list(built("inception_v3").state_dict())
    assert "features.Mixed_6e.branch7x7dbl.2.conv_nx1.conv.weight" in keys
    assert "features.Mixed_7b.branch3x3.1.branch1x3.0.conv.weight" in keys
    irv2 = list(built("inception_resnet_v2").state_dict())
    assert "features.block35_1.branch0.0.conv.weight" in irv2 and "features.block35_1.up.conv.weight" in irv2
    assert not any("branches" in k for name in MODELS for k in built(name).state_dict())



def test_wrong_dtype_input(built):
    model = built("inception_v1_bn")
    with pytest.raises(ValueError, match="expects a floating-point tensor .* got torch.uint8"):
        model(torch.randint(0, 255, (1, 3, 64, 64), dtype=torch.uint8))
    with pytest.raises(ValueError, match="has torch.float32 weights and got a torch.float64 input"):
        model(torch.randn(1, 3, 64, 64, dtype=torch.float64))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast casts inside the convolutions
        assert model(torch.randn(1, 3, 64, 64)).dtype == torch.bfloat16
        with pytest.raises(ValueError, match="has torch.float32 weights and got a torch.float64 input"):
            model(torch.randn(1, 3, 64, 64, dtype=torch.float64))  # which autocast leaves as it is


def test_batch_of_one_in_train_mode():
    with pytest.raises(ValueError, match=r"train mode needs a batch of at least 2 .* got 1"):
        create_model("inception_v3", aux_logits=True).train()(torch.randn(1, 3, 299, 299))
    plain = create_model("inception_v1").train()  # no BatchNorm: a single image trains
    assert plain(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_aux_logits_must_be_bool():
    with pytest.raises(ValueError, match="aux_logits must be True or False, got 'no'"):
        create_model("inception_v1", aux_logits="no")


@pytest.mark.parametrize("name", MODELS)
def test_fresh_model_starts_well_scaled(name, fresh):
    """Train-mode logits of a fresh model are O(1): neither exploding (no-BN GoogLeNet) nor vanishing."""
    torch.manual_seed(0)
    model = fresh(name).train()
    size = min(96, model.default_cfg["input_size"][1])
    with torch.no_grad():
        std = model(torch.randn(4, 3, size, size)).std().item()
    assert 0.01 < std < 10


def test_paper_googlenet_trains_from_scratch():
    torch.manual_seed(0)
    model = create_model("inception_v1", aux_logits=True, num_classes=10).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    from inception_zoo import InceptionLoss

    loss_fn, x, y = InceptionLoss(aux_weight=0.3), torch.randn(8, 3, 96, 96), torch.arange(8) % 10
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]
