"""The timm-grade model surface: heads, features, checkpointing, channels, determinism, export paths and
timm's data pipeline. What depends on the layout (feature maps, heads per width) runs for every model;
what does not runs for one model per block type."""

import warnings

import pytest
import torch
from torch import nn

from inception_zoo import create_model, get_record, list_models
from inception_zoo.layers import POOL_TYPES
from inception_zoo.models import FeatureExtractor

from helpers import close as _close

MODELS = list_models()
AUX = {name: len(get_record(name).aux_heads) for name in MODELS if get_record(name).aux_heads}
SMALL = 96  # at or above every model's minimum input size
# One model per block type, for the properties that do not depend on the layout: LRN and aux heads
# without BN (v1), "same" max pooling (BN-Inception), factorized convolutions in both orders and nested
# modules (v3), residual Inception blocks (Inception-ResNet), separable convolutions and Xception blocks.
REPRESENTATIVES = ["inception_v1", "bn_inception", "inception_v3", "inception_resnet_v1", "xception"]


def _x(model, batch=2, size=SMALL):
    size = min(size, model.default_cfg["input_size"][1])  # the CIFAR layouts at their 32×32
    return torch.randn(batch, model.in_chans, size, size)


@pytest.mark.parametrize("name", MODELS)
def test_forward_features_and_head(name, built):
    model = built(name)
    x = _x(model)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.dim() == 4 and feats.shape[:2] == (2, model.num_features)
        assert model.forward_head(feats, pre_logits=True).shape == (2, model.head_hidden_size)
        assert model.head_hidden_size == (512 if get_record(name).embedding else model.num_features)
        torch.testing.assert_close(model.forward_head(feats), model(x))
    assert model.get_classifier() is model.head.fc and model.get_classifier().out_features == model.num_classes


@pytest.mark.parametrize("name", ["inception_v3", "xception_cifar"])
def test_global_pool_variants_and_reset_classifier(name, fresh):
    model = fresh(name, aux_logits=name in AUX).eval()
    x = _x(model)
    for pool in ("avg", "max", "avgmax", "catavgmax"):
        model.reset_classifier(7, global_pool=pool)
        mult = 2 if pool == "catavgmax" else 1
        assert model.get_classifier().in_features == model.num_features * mult
        with torch.no_grad():
            assert model(x).shape == (2, 7)
            assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (2, model.num_features * mult)
    assert create_model("inception_v1_bn", global_pool="max").head.global_pool.pool_type == "max"
    if name in AUX:  # the auxiliary heads follow the new number of classes
        model.train()
        out = model(_x(model))
        assert [a.shape for a in out.aux] == [(2, 7)] * AUX[name] and out.logits.shape == (2, 7)
        model.eval()
    model.reset_classifier(0)
    with torch.no_grad():
        assert model(x).shape == (2, model.num_features)
    assert len(model.aux_heads) == 0 and not model.aux_logits
    model.reset_classifier(0, global_pool="")
    with torch.no_grad():
        assert model(x).shape == model.forward_features(x).shape


def test_head_bad_input():
    model = create_model("inception_v1_bn")
    with pytest.raises(ValueError, match=r"global_pool must be one of \('avg', 'max', 'avgmax', 'catavgmax', ''\), got 'mean'"):
        model.reset_classifier(10, global_pool="mean")
    with pytest.raises(ValueError, match="num_classes must be an integer >= 0, got -1"):
        model.reset_classifier(-1)
    with pytest.raises(ValueError, match="global_pool='' keeps the unpooled feature map; it needs num_classes=0"):
        model.reset_classifier(10, global_pool="")
    with pytest.raises(ValueError, match="global_pool must be one of"):
        create_model("xception", global_pool="sum")
    with pytest.raises(ValueError, match="num_classes must be an integer >= 0"):
        create_model("xception", num_classes=-3)
    assert POOL_TYPES == ("avg", "max", "avgmax", "catavgmax", "")


@pytest.mark.parametrize("name", MODELS)
def test_features_only(name, built):
    model = FeatureExtractor(built(name)).eval()
    info = model.feature_info
    expected = {"inception_v1_cifar": [1, 2, 4], "inception_v1_cifar_naive": [1, 2, 4],
                "inception_v3_fid": [4, 8, 16, 32]}.get(name, [2, 4, 8, 16, 32])  # the FID's four taps
    assert info.reduction() == expected
    x = _x(model, size=128)
    size = x.shape[-1]
    with torch.no_grad():
        maps = model(x)
    assert [m.shape[1] for m in maps] == info.channels()
    for m, r in zip(maps, info.reduction()):  # each map is about input / reduction
        assert abs(m.shape[-1] - size / r) <= size / r / 2 + 3
    assert not hasattr(model, "head")
    full = built(name).state_dict()
    assert set(model.state_dict()) <= set(full)  # same parameter names as the full model
    sub = FeatureExtractor(built(name), out_indices=(1, -1)).eval()
    assert sub.feature_info.reduction() == [expected[1], expected[-1]]
    with torch.no_grad():
        assert [m.shape[1] for m in sub(x)] == [info.channels()[1], info.channels()[-1]]


def test_features_only_bad_input():
    for bad in [(5,), (0, 0), (-6,), ("1",), ()]:
        with pytest.raises(ValueError, match=r"out_indices must"):
            create_model("inception_v3", features_only=True, out_indices=bad)
    with pytest.raises(ValueError, match=r"integers in 0..2 \(or -3..-1\), one per reduction \(1, 2, 4\), got \(3,\)"):
        create_model("inception_v1_cifar", features_only=True, out_indices=(3,))
    with pytest.raises(ValueError, match="out_indices selects feature maps; it needs features_only=True"):
        create_model("inception_v3", out_indices=(1, 2))
    model = create_model("inception_v3", features_only=True, out_indices=(0,)).eval()
    assert model.feature_info.reduction() == [2]
    with pytest.raises(ValueError, match=r"inception_v3 expects a \(B, 3, H, W\) tensor"):
        model(torch.randn(1, 1, 96, 96))


@pytest.mark.parametrize("name", ["inception_v3", "inception_resnet_v1"])
def test_grad_checkpointing_gives_the_same_gradients(name, fresh):
    torch.manual_seed(0)
    model = fresh(name, num_classes=5, drop_rate=0.0).train()
    x, y = _x(model), torch.tensor([1, 3])
    grads = []
    for enable in (False, True):
        model.set_grad_checkpointing(enable)
        model.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    assert model.grad_checkpointing
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["inception_v1_bn", "xception_cifar"])
@pytest.mark.parametrize("in_chans", [1, 4])
def test_other_input_channels(name, in_chans):
    model = create_model(name, in_chans=in_chans, num_classes=3).eval()
    with torch.no_grad():
        assert model(_x(model, batch=1)).shape == (1, 3)
    assert model.default_cfg["input_size"][0] == in_chans and len(model.default_cfg["mean"]) == in_chans


@pytest.mark.parametrize("name", ["inception_v1_bn"])
def test_deterministic_construction(name):
    torch.manual_seed(11)
    a = create_model(name).state_dict()
    torch.manual_seed(11)
    b = create_model(name).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name", REPRESENTATIVES)
def test_torch_export(name, built):
    model = built(name)
    x = _x(model)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        assert _close(exported.module()(x), model(x))


@pytest.mark.parametrize("name", REPRESENTATIVES)
def test_onnx_dynamic_batch_in_onnxruntime(name, tmp_path, built):
    ort = pytest.importorskip("onnxruntime")
    model = built(name)
    path = tmp_path / f"{name}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (_x(model),), str(path), input_names=["images"], output_names=["logits"],
            dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False,
        )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 3):  # another batch size than the one exported with
        x = _x(model, batch=batch)
        (out,) = session.run(None, {"images": x.numpy()})
        with torch.no_grad():
            assert _close(torch.from_numpy(out), model(x))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["inception_v3", "inception_resnet_v1"])  # dynamo captures each block type once
def test_torch_compile(name, built):
    torch._dynamo.reset()  # every model shares InceptionNet.forward: start each from dynamo's clean slate
    model = built(name)
    compiled = torch.compile(model, fullgraph=True, backend="eager")  # dynamo capture, no graph break
    x = _x(model)
    with torch.no_grad():
        assert _close(compiled(x), model(x))


@pytest.mark.parametrize("name", MODELS)
def test_timm_data_config(name, built):
    import timm.data

    config = timm.data.resolve_data_config({}, model=built(name))
    record = get_record(name)
    assert config["input_size"] == record.input_size and config["crop_pct"] == record.crop_pct
    assert config["mean"] == record.mean and config["std"] == record.std
    assert config["interpolation"] == record.interpolation


@pytest.mark.parametrize("name", ["inception_v1_bn", "xception_cifar"])
def test_timm_transform_on_a_real_image(name, built):
    import timm.data
    from PIL import Image
    from sklearn.datasets import load_sample_image

    model = built(name)
    cfg = model.default_cfg
    transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))
    image = Image.fromarray(load_sample_image("china.jpg"))  # a real photograph shipped with scikit-learn
    x = transform(image).unsqueeze(0)
    assert tuple(x.shape[1:]) == cfg["input_size"]
    with torch.no_grad():
        logits = model(x)
    assert logits.shape == (1, model.num_classes) and torch.isfinite(logits).all()
