import pytest
import torch

import inception_zoo
from inception_zoo import InceptionOutputs, UnknownModelError, create_model, list_models, register_model
from inception_zoo.registry import _MODELS

ALL = [
    "bn_inception",
    "inception_resnet_v1",
    "inception_resnet_v2",
    "inception_v1",
    "inception_v1_bn",
    "inception_v1_cifar",
    "inception_v1_cifar_naive",
    "inception_v3",
    "inception_v4",
    "xception",
    "xception_cifar",
]


def test_public_api_at_top_level():
    for name in ("create_model", "list_models", "register_model", "InceptionOutputs", "InceptionLoss"):
        assert hasattr(inception_zoo, name)


def test_list_models_sorted_and_complete():
    assert list_models() == ALL


def test_list_models_fnmatch():
    assert list_models("*resnet*") == ["inception_resnet_v1", "inception_resnet_v2"]
    assert list_models("*cifar*") == ["inception_v1_cifar", "inception_v1_cifar_naive", "xception_cifar"]
    assert list_models("inception_v?") == ["bn_inception", "inception_v1", "inception_v3", "inception_v4"]  # v2: an alias
    assert list_models("nothing*") == []


def test_aliases_resolve_but_are_not_listed():
    assert "googlenet" not in list_models() and "inception_v2" not in list_models()
    assert list_models("googlenet") == ["inception_v1"] and list_models("inception_v?") == [
        "bn_inception", "inception_v1", "inception_v3", "inception_v4"
    ]
    assert inception_zoo.registry.list_aliases() == {"googlenet": "inception_v1", "inception_v2": "bn_inception"}
    assert create_model("googlenet").name == "inception_v1"
    assert create_model("inception_v2").name == "bn_inception"


def test_register_twice_raises():
    def inception_v1():  # same name as a registered model
        raise AssertionError("never called")

    with pytest.raises(ValueError, match="inception_v1.*already registered"):
        register_model(inception_v1)


def test_register_new_model_then_create():
    def _tiny_test_model(*, num_classes=1000, in_chans=3, aux_logits=False, drop_rate=0.0):
        return torch.nn.Linear(in_chans, num_classes)

    try:
        register_model(_tiny_test_model)
        assert "_tiny_test_model" in list_models("_tiny*")
        assert create_model("_tiny_test_model", num_classes=5).out_features == 5
    finally:
        _MODELS.pop("_tiny_test_model", None)


def test_unknown_name_is_keyerror_listing_closest():
    with pytest.raises(KeyError) as info:
        create_model("inception_v5")
    assert isinstance(info.value, UnknownModelError)
    message = str(info.value)
    assert "inception_v5" in message and "inception_v4" in message and "inception_v3" in message


def test_name_must_be_a_string():
    with pytest.raises(TypeError, match="a model name must be a string"):
        create_model(None)
    with pytest.raises(TypeError, match="pattern must be a string"):
        list_models(3)


def test_unknown_name_suggestions_ignore_case():
    with pytest.raises(UnknownModelError, match="closest: inception_v3"):
        create_model("INCEPTION_V3")
    with pytest.raises(UnknownModelError, match="registered: bn_inception, inception_resnet_v1"):
        create_model("resnet50")


def test_unknown_keyword_is_typeerror_naming_it():
    with pytest.raises(TypeError, match="'colour'"):
        create_model("inception_v1", colour="red")


@pytest.mark.parametrize("name", ["bn_inception", "inception_v4", "inception_resnet_v1", "inception_resnet_v2", "xception"])
def test_aux_logits_on_model_without_aux_heads(name):
    with pytest.raises(ValueError, match="no auxiliary classifiers"):
        create_model(name, aux_logits=True)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_classes=-1), "num_classes must be an integer >= 0"),
        (dict(num_classes=2.5), "num_classes must be an integer >= 0"),
        (dict(in_chans=0), "in_chans must be an integer >= 1"),
        (dict(drop_rate=1.0), r"drop_rate must be a number in \[0, 1\)"),
        (dict(drop_rate=-0.1), r"drop_rate must be a number in \[0, 1\)"),
        (dict(aux_logits=True, num_classes=0), "aux_logits=True needs num_classes > 0"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        create_model("inception_v1_bn", **kwargs)


CFG_KEYS = {
    "input_size", "min_input_size", "mean", "std", "interpolation", "crop_pct", "num_classes",
    "first_conv", "classifier", "paper", "paper_params", "paper_macs",
}


@pytest.mark.parametrize("name", ALL)
def test_default_cfg(name):
    model = create_model(name, num_classes=10)
    cfg = model.default_cfg
    assert CFG_KEYS <= set(cfg) and model.pretrained_cfg is cfg  # timm reads pretrained_cfg
    assert cfg["num_classes"] == 10
    assert set(cfg["paper"]) == {"title", "arxiv"} and cfg["paper"]["arxiv"][:4].isdigit()
    modules = dict(model.named_modules())
    first = modules[cfg["first_conv"]]
    assert isinstance(first, torch.nn.Conv2d) and first.in_channels == 3
    assert isinstance(modules[cfg["classifier"]], torch.nn.Linear)
    assert modules[cfg["classifier"]].out_features == 10
    c, h, w = cfg["min_input_size"]
    assert c == 3 and h <= cfg["input_size"][1] and w <= cfg["input_size"][2]


def test_paper_figures():
    assert create_model("xception").default_cfg["paper_params"] == 22_855_952  # Table 3 of 1610.02357
    assert create_model("inception_v1").default_cfg["paper_macs"] == 1_500_000_000
    assert create_model("bn_inception").default_cfg["paper_params"] is None


def test_outputs_namedtuple():
    out = InceptionOutputs(torch.zeros(1), (torch.ones(1),))
    assert out.logits is out[0] and out.aux is out[1]
