"""TF-slim's auxiliary heads on inception_v4 and inception_resnet_v2 (aux_logits=True).

TF-slim (tensorflow/models, research/slim/nets/inception_v4.py and inception_resnet_v2.py, scope 'AuxLogits')
taps end point Mixed_6h of Inception v4 and PreAuxLogits (after the 20 block17 repeats: our block17_20) of
Inception-ResNet-v2, both 17×17 at 299 px: 5×5/3 VALID average pool (-> 5×5), 1×1 conv 128, conv 768 with
the pooled map's size as kernel, VALID (-> 1×1), flatten, fully connected. The published checkpoints of
these models (timm, Cadene, pytorchcv, Keras) carry no auxiliary head."""

import pytest
import timm
import torch

from inception_zoo import (
    InceptionLoss,
    create_model,
    get_record,
    load_pretrained,
    optimize_for_inference,
    save_weights,
)
from inception_zoo.analysis import count_params

from helpers import realistic

# model: (the stage TF-slim's head taps, its channels)
TAPS = {"inception_v4": ("Mixed_6h", 1024), "inception_resnet_v2": ("block17_20", 1088)}
NAMES = list(TAPS)


def _tfslim_aux_params(in_channels: int, num_classes: int) -> int:
    """TF-slim's head counted by hand: 1×1 conv 128 (no bias) + BatchNorm, 5×5 conv 768 (no bias) +
    BatchNorm, fully connected 768 -> num_classes with bias (BatchNorm as PyTorch's: weight and bias)."""
    return (in_channels * 128 + 2 * 128) + (128 * 768 * 5 * 5 + 2 * 768) + (768 * num_classes + num_classes)


def _small_batch(name: str, batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, *get_record(name).min_input_size)


def test_heads_are_inception_v3s_with_tf_slims_taps():
    v3 = get_record("inception_v3").aux_heads[0]
    for name, (tap, _) in TAPS.items():
        (spec,) = get_record(name).aux_heads
        assert spec.tap == tap
        assert (spec.pool, spec.convs, spec.flatten, spec.hidden_features, spec.drop_rate) == (
            v3.pool, v3.convs, v3.flatten, v3.hidden_features, v3.drop_rate
        )


def test_derived_records_have_no_aux_head():
    """Inception-ResNet-v1 (paper's and facenet's): TF-slim defines none, facenet builds none."""
    for name in ("inception_resnet_v1", "inception_resnet_v1_facenet"):
        record = get_record(name)
        assert record.aux_heads == () and record.params_aux is None
        with pytest.raises(ValueError, match="no auxiliary classifiers"):
            create_model(name, aux_logits=True)


@pytest.mark.parametrize("name", NAMES)
def test_tap_and_shapes_at_299_are_tf_slims(name, fresh):
    """At 299 px: the head reads the 17×17 map of TF-slim's end point, pools it to 5×5, and the 768 conv
    (5×5, VALID) leaves 1×1, which the classifier reads as TF-slim's flatten does."""
    tap, channels = TAPS[name]
    model = fresh(name, aux_logits=True).train()
    head = model.aux_heads[0]
    assert model.stage_info[model.aux_taps[0]].name == tap
    seen = {}
    handles = [
        head.pool.register_forward_hook(lambda m, i, o: seen.update(pool_in=i[0].shape, pool_out=o.shape)),
        head.convs[1].conv.register_forward_hook(lambda m, i, o: seen.update(conv_in=i[0].shape, conv_out=o.shape)),
    ]
    try:
        with torch.no_grad():
            out = model(torch.randn(2, 3, 299, 299))
    finally:
        for h in handles:
            h.remove()
    assert seen["pool_in"] == (2, channels, 17, 17)
    assert seen["pool_out"] == (2, channels, 5, 5)
    assert seen["conv_in"] == (2, 128, 5, 5)
    assert head.convs[1].conv.kernel_size == (5, 5) and head.convs[1].conv.padding == (0, 0)
    assert seen["conv_out"] == (2, 768, 1, 1)
    assert out.aux[0].shape == (2, 1000)


@pytest.mark.parametrize("name", NAMES)
def test_params_with_aux_are_the_records_and_tf_slims(name, built):
    """Off by default (no head built); with aux_logits=True the head adds TF-slim's parameters. The train-mode
    outputs (InceptionOutputs with one aux tensor per head) are checked for every model with aux heads
    in test_models.py."""
    record = get_record(name)
    assert len(built(name).aux_heads) == 0 and count_params(built(name)) == record.params
    model = built(name, aux_logits=True)
    assert count_params(model) == record.params_aux
    aux = sum(p.numel() for p in model.aux_heads.parameters())
    assert aux == _tfslim_aux_params(TAPS[name][1], 1000) == record.params_aux - record.params
    assert {"inception_v4": 3_359_464, "inception_resnet_v2": 3_367_656}[name] == aux


@pytest.mark.parametrize("name", NAMES)
def test_reset_classifier_resizes_the_aux_head_and_inception_loss_trains_it(name, fresh):
    torch.manual_seed(0)
    model = fresh(name, aux_logits=True).train()
    body = {k: v.clone() for k, v in model.aux_heads[0].convs.state_dict().items()}
    model.reset_classifier(10)
    head = model.aux_heads[0]
    assert head.head.fc.out_features == 10 and model.head.fc.out_features == 10
    assert all(torch.equal(v, head.convs.state_dict()[k]) for k, v in body.items())  # only the classifier is new
    assert sum(p.numel() for p in model.aux_heads.parameters()) == _tfslim_aux_params(TAPS[name][1], 10)
    before = {n: p.detach().clone() for n, p in head.named_parameters()}
    loss_fn = InceptionLoss(label_smoothing=0.1, aux_weight=0.4)  # TF-slim's train_image_classifier: 0.4
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    out = model(_small_batch(name))
    assert out.logits.shape == (2, 10) and len(out.aux) == 1 and out.aux[0].shape == (2, 10)
    loss = loss_fn(out, torch.tensor([1, 7]))
    assert torch.isfinite(loss)
    opt.zero_grad()
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())
    opt.step()
    for n, p in head.named_parameters():
        assert not torch.equal(p, before[n]), f"aux_heads.0.{n} did not change"


@pytest.mark.parametrize("name", NAMES)
def test_timm_checkpoint_loads_with_the_aux_head_reinitialized(name, tmp_path):
    torch.manual_seed(0)
    peer = realistic(timm.create_model(name, pretrained=False))
    path = tmp_path / "timm.pth"
    torch.save(peer.state_dict(), path)
    with pytest.warns(UserWarning, match=r"re-initialized aux_heads\.0 \(not in the checkpoint"):
        ours = create_model(name, aux_logits=True, pretrained=path)
    bn = ours.aux_heads[0].convs[0].bn
    assert torch.equal(bn.running_mean, torch.zeros(128)) and torch.equal(bn.weight, torch.ones(128))
    x = _small_batch(name)
    with torch.no_grad():
        mine, theirs = ours.eval()(x), peer(x)
    err = (mine - theirs).abs().max().item()
    assert err <= 1e-4 * theirs.abs().max().item(), f"max |dlogits| {err}"
    assert ours.default_cfg["weights_source"] == "timm"


@pytest.mark.parametrize("name", NAMES)
def test_our_checkpoint_keeps_the_aux_head(name, fresh, tmp_path):
    model = realistic(fresh(name, aux_logits=True))
    with torch.no_grad():
        for p in model.aux_heads.parameters():
            p.add_(torch.randn_like(p))
    path = save_weights(model, tmp_path / "ours.safetensors")
    restored = create_model(name, aux_logits=True, pretrained=path)
    for (k, a), b in zip(model.state_dict().items(), restored.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    plain = create_model(name)  # the aux head in the file is not needed without aux_logits
    load_pretrained(plain, path)
    assert len(plain.aux_heads) == 0
    assert torch.equal(plain.head.fc.weight, model.head.fc.weight)


@pytest.mark.parametrize("name", NAMES)
def test_deploy_drops_the_aux_head(name, fresh):
    model = realistic(fresh(name, aux_logits=True))
    deployed = optimize_for_inference(model, "torch")
    assert not any("aux" in n for n, _ in deployed.named_modules())
    x = _small_batch(name)
    with torch.no_grad():
        want = model(x)
        got = deployed(x)
    assert isinstance(got, torch.Tensor)
    err = (got - want).abs().max().item()
    assert err <= 1e-4 * want.abs().max().item(), f"max |dlogits| {err}"
