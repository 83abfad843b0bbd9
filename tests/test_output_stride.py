"""output_stride 16 and 8: dilated last stages for dense prediction, "same" padding everywhere, the same
parameters (and checkpoints) as the published network."""

import functools
import math

import pytest
import torch

from helpers import twins_marked_heavy

from inception_zoo import create_model, list_models
from inception_zoo.layers import Conv, dense_layout
from inception_zoo.registry import get_record

DENSE = [n for n in list_models() if get_record(n).output_strides != (32,)]
ACCEPTANCE = ["inception_v3", "inception_resnet_v2"] + [n for n in ("xception41",) if n in DENSE]


def _meta_model(name, **kwargs):
    with torch.device("meta"):
        return create_model(name, **kwargs).eval()


@functools.cache
def _published_reductions(name):
    return _meta_model(name, features_only=True).feature_info.reduction()


@pytest.mark.parametrize("name", twins_marked_heavy(DENSE))
@pytest.mark.parametrize("output_stride", [16, 8])
def test_every_map_is_the_input_over_its_reduction_rounded_up(name, output_stride):
    """On the meta device (shapes only, no compute): at 512 px the last map is exactly 512 / output_stride,
    and at an odd size every features_only map at reduction r is ceil(H / r); the reductions are those of
    the published network, capped at output_stride."""
    model = _meta_model(name, output_stride=output_stride)
    extractor = _meta_model(name, output_stride=output_stride, features_only=True)
    with torch.device("meta"):
        features = model.forward_features(torch.empty(1, 3, 512, 512))
        assert features.shape[-2:] == (512 // output_stride,) * 2
        assert model.forward_head(features).shape == (1, model.num_classes)
        maps = extractor(torch.empty(1, 3, 97, 131))
    reductions = extractor.feature_info.reduction()
    assert reductions == [min(r, output_stride) for r in _published_reductions(name)]
    assert [tuple(m.shape[-2:]) for m in maps] == [(math.ceil(97 / r), math.ceil(131 / r)) for r in reductions]


@pytest.mark.parametrize("name", ACCEPTANCE)
@pytest.mark.parametrize("output_stride", [16, 8])
def test_dilated_models_at_512_px_compute_finite_logits_with_the_published_parameters(name, output_stride):
    """The issue's acceptance, for real at 512×512: the last map is 512 / output_stride, the logits are
    finite, and the parameters are the published network's, name for name and shape for shape (so every
    checkpoint of the network loads strictly)."""
    torch.manual_seed(0)
    model = create_model(name, output_stride=output_stride).eval()
    assert sum(p.numel() for p in model.parameters()) == get_record(name).params
    published = {k: v.shape for k, v in _meta_model(name).state_dict().items()}
    assert {k: v.shape for k, v in model.state_dict().items()} == published
    with torch.no_grad():
        features = model.forward_features(torch.randn(1, 3, 512, 512))
        logits = model.forward_head(features)
    assert features.shape[-2:] == (512 // output_stride,) * 2
    assert logits.shape == (1, 1000) and torch.isfinite(logits).all()


def test_the_converted_stage_keeps_its_dilation_and_the_next_ones_double_it():
    """DeepLab's rule, as in timm: the stage whose stride is removed runs at the rate before it."""
    model = _meta_model("inception_v3", output_stride=8)
    info = {s.name: s for s in model.stage_info}
    assert (info["MaxPool_5a_3x3"].reduction, info["MaxPool_5a_3x3"].dilation) == (8, 1)
    assert (info["Mixed_6a"].reduction, info["Mixed_6a"].dilation) == (8, 2)
    assert (info["Mixed_7c"].reduction, info["Mixed_7c"].dilation) == (8, 4)
    strided = model.features.Mixed_6a.branch3x3[0].conv  # Figure 5's 3×3/2, now stride 1 at rate 1
    assert (strided.stride, strided.dilation, strided.padding) == ((1, 1), (1, 1), (1, 1))
    conv_7a = model.features.Mixed_7a.branch3x3[1].conv  # the 17×17 -> 8×8 3×3/2, now stride 1 at rate 2
    assert (conv_7a.stride, conv_7a.dilation, conv_7a.padding) == ((1, 1), (2, 2), (2, 2))
    one_by_three = model.features.Mixed_7b.branch3x3[1].branch1x3[0].conv  # the filter bank's 1×3, rate 4
    assert (one_by_three.dilation, one_by_three.padding) == ((4, 4), (0, 4))
    assert model.features.Mixed_7b.branch1x1[0].conv.dilation == (1, 1)  # a 1×1 is never dilated


@pytest.mark.parametrize("name", ["bn_inception", "xception"])  # merged 1×1s; fused residuals, separable
def test_deploy_keeps_the_dilations(name):
    from inception_zoo.deploy import optimize_for_inference

    torch.manual_seed(0)
    model = create_model(name, output_stride=8).eval()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        expected = model(x)
        deployed = optimize_for_inference(model, "torch")(x)
    assert torch.allclose(deployed, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())


def test_torchscript_keeps_the_dilations():
    model = create_model("bn_inception", output_stride=16).eval()
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        assert torch.equal(torch.jit.script(model)(x), model(x))


def test_bad_output_strides_are_refused_naming_the_allowed_ones():
    for bad in (4, 24, 64, True, "16", None, 16.0):
        with pytest.raises(ValueError, match=r"output_stride must be one of \(32, 16, 8\)"):
            create_model("inception_v3", output_stride=bad)
    with pytest.raises(ValueError, match=r"output_stride must be one of \(32,\)"):
        create_model("inception_v1_cifar", output_stride=16)
    with pytest.raises(ValueError, match=r"output_stride must be one of \(32,\)"):
        create_model("inception_v3_fid", output_stride=8)
    with pytest.raises(ValueError, match="aux_logits=True cannot be combined with output_stride=16"):
        create_model("inception_v3", aux_logits=True, output_stride=16)


def test_a_layer_that_cannot_be_dilated_is_named():
    class Opaque:  # a spec without dense()
        stride = 2

        def build(self, in_channels, conv_layer):
            raise AssertionError("not built")

    layout = (("stem", Conv(8, 3, 2)), ("odd_one", Opaque()), ("last", Conv(8, 3, 2)))
    with pytest.raises(ValueError, match="stage 'odd_one': Opaque layers cannot be dilated"):
        dense_layout(layout, 16)
    with pytest.raises(ValueError, match="reaches reduction 4, not output_stride 8"):
        dense_layout((("a", Conv(8, 3, 2)), ("b", Conv(8, 3, 2))), 8)
