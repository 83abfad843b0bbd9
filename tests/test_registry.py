import dataclasses

import pytest
import torch

import inception_zoo
from inception_zoo import InceptionOutputs, UnknownModelError, create_model, get_record, list_models, list_records, register_model

SHIPPED = [
    "bn_inception",
    "inception_resnet_v1",
    "inception_resnet_v1_facenet",
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
    assert list_models() == sorted(r.name for r in list_records())
    assert set(SHIPPED) <= set(list_models())


def test_list_models_fnmatch():
    assert list_models("*resnet*") == ["inception_resnet_v1", "inception_resnet_v1_facenet", "inception_resnet_v2"]
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
    with pytest.raises(ValueError, match="inception_v1.*already registered"):
        register_model(get_record("inception_v1"))
    with pytest.raises(ValueError, match="'googlenet' is already registered"):
        register_model(dataclasses.replace(get_record("inception_v1"), name="other_v1"))
    with pytest.raises(TypeError, match="register_model takes a ModelRecord, got function"):
        register_model(lambda: None)


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


@pytest.mark.parametrize("name", ["bn_inception", "inception_resnet_v1", "inception_resnet_v1_facenet", "xception"])
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


@pytest.mark.parametrize("name", list_models())
def test_default_cfg(name):
    with torch.device("meta"):  # the config and the module names: no weights needed
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


def test_paper_figures(built):
    assert built("xception").default_cfg["paper_params"] == 22_855_952  # Table 3 of 1610.02357
    assert built("inception_v1").default_cfg["paper_macs"] == 1_500_000_000
    assert built("bn_inception").default_cfg["paper_params"] is None


def test_records_hold_the_model_facts():
    v3 = get_record("inception_v3")
    assert (v3.params, v3.params_aux, v3.drop_rate, v3.input_size) == (23_834_568, 27_161_264, 0.5, (3, 299, 299))
    assert [(p.source, p.model, p.transform_input) for p in v3.peers] == [
        ("timm", "inception_v3", False), ("torchvision", "inception_v3", True), ("pytorchcv", "inceptionv3", False),
        ("cadene", "inceptionv3", False)]
    assert (v3.recipe.optimizer, v3.recipe.lr, v3.recipe.label_smoothing, v3.recipe.aux_weight) == ("rmsprop", 0.045, 0.1, 0.4)
    assert get_record("googlenet") is get_record("inception_v1")
    assert [a.tap for a in get_record("inception_v1").aux_heads] == ["inception_4a", "inception_4d"]


def test_outputs_namedtuple():
    out = InceptionOutputs(torch.zeros(1), (torch.ones(1),))
    assert out.logits is out[0] and out.aux is out[1]


@pytest.mark.parametrize(("change", "error", "match"), [
    (dict(name="my.net"), ValueError, "name must be a Python identifier"),
    (dict(name=3), ValueError, "name must be a Python identifier"),
    (dict(aliases="xyz"), TypeError, "aliases must be a tuple of identifiers"),
    (dict(params=...), TypeError, "params must be the exact parameter count"),
    (dict(params_aux=None), ValueError, "give it exactly when the record has aux_heads"),
    (dict(input_size=(299, 299)), ValueError, r"input_size must be \(C, H, W\)"),
    (dict(mean=(0.5, 0.5)), ValueError, "mean needs one value per input channel"),
    (dict(layout=()), ValueError, "the layout needs at least one stage"),
    (dict(aux_heads=(dataclasses.replace(get_record("inception_v3").aux_heads[0], tap="Mixed_9z"),)), ValueError,
     "taps 'Mixed_9z', which is not a stage"),
])
def test_bad_records_are_refused_where_they_are_written(change, error, match):
    with pytest.raises(error, match=match):
        dataclasses.replace(get_record("inception_v3"), **change)


def test_error_message_has_no_bare_numbers_or_quotes():
    from inception_zoo.registry import error_message

    assert error_message(KeyError("unknown model 'x'")) == "unknown model 'x'"  # no quotes around it
    assert error_message(KeyError(105)) == "missing key 105"  # never a bare ': 105'
    assert error_message(ValueError("bad")) == "bad"
