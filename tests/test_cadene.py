"""Cadene's pretrainedmodels: its checkpoints load with its logits (source="cadene" and "auto"), each model fed
its own input convention (BN-Inception: BGR 0-255 minus the Caffe mean; ours: RGB normalized as default_cfg
says after loading); its 1001-class files lose their background row; its published files load by tag with the
network off; a file of another architecture fails with one clear error and changes nothing."""

import warnings
from functools import cache
from pathlib import Path
from urllib.parse import urlparse

import pytest
import torch
import torch.nn.functional as F

from inception_zoo import CheckpointError, create_model, get_pretrained, load_pretrained
from inception_zoo.models.bn_inception import CAFFE_BGR_INPUT
from inception_zoo.records import IMAGENET_INCEPTION_MEAN, IMAGENET_INCEPTION_STD, InputConvention
from inception_zoo.weights import hub

from helpers import calibrated, close

# our model: (pretrainedmodels' name, input size). Cadene's heads pool with a fixed window (7×7 for
# bninception, 8×8 for the Inceptions), which needs the published input size; Xception's pool is global, and
# inceptionv4's and inceptionresnetv2's pooling modules are made global here (_GLOBAL_POOL: the same at 299),
# so that they run at a quarter of the multiply-adds.
CASES = {
    "bn_inception": ("bninception", 224),
    "inception_v3": ("inceptionv3", 299),
    "inception_v4": ("inceptionv4", 160),
    "inception_resnet_v2": ("inceptionresnetv2", 160),
    "xception": ("xception", 160),
}
_GLOBAL_POOL = {"inceptionv4": "avg_pool", "inceptionresnetv2": "avgpool_1a"}


def _cadene(name: str, num_classes: int = 1000):
    """pretrainedmodels' model at random init (its import also loads torchvision's models: imported here),
    its fixed final pool made global where _GLOBAL_POOL names it (no parameters: the state dict is the same)."""
    import pretrainedmodels

    with warnings.catch_warnings():  # torchvision's deprecation notices on pretrainedmodels' arguments
        warnings.simplefilter("ignore")
        model = getattr(pretrainedmodels, name)(num_classes=num_classes, pretrained=None)
    if name in _GLOBAL_POOL:  # its 8×8 average pool (no padding: at 299 the whole 8×8 map) at any size
        setattr(model, _GLOBAL_POOL[name], torch.nn.AdaptiveAvgPool2d(1))
    return model


def _images(size: int) -> torch.Tensor:
    """Two photographs (scikit-image's chelsea and coffee), RGB in [0, 1], (2, 3, size, size)."""
    from skimage import data

    return torch.cat([
        F.interpolate(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255, size=(size, size),
                      mode="bilinear", antialias=True).clamp(0, 1)
        for image in (data.chelsea(), data.coffee())
    ])


def _cadene_input(name: str, rgb: torch.Tensor) -> torch.Tensor:
    """What pretrainedmodels' TransformImage makes of ``rgb`` for ``name``: its own steps (BGR reorder, x255,
    normalize) with its published 'imagenet' settings, image by image."""
    import pretrainedmodels
    from pretrainedmodels.utils import ToRange255, ToSpaceBGR
    from torchvision.transforms import Normalize

    settings = pretrainedmodels.pretrained_settings[name]["imagenet"]
    steps = (ToSpaceBGR(settings["input_space"] == "BGR"), ToRange255(max(settings["input_range"]) == 255),
             Normalize(settings["mean"], settings["std"]))
    out = []
    for image in rgb:
        image = image.clone()
        for step in steps:
            image = step(image)
        out.append(image)
    return torch.stack(out)


def _ours_input(model, rgb: torch.Tensor) -> torch.Tensor:
    mean, std = (torch.tensor(model.default_cfg[k]).view(1, 3, 1, 1) for k in ("mean", "std"))
    return (rgb - mean) / std


@cache  # the bn_inception tag test reuses it where it runs in the same process
def _reference(name: str):
    """Cadene's ``name`` at random init with BatchNorm statistics measured on two photographs in its own input
    convention: (its state dict, the photographs RGB in [0, 1], its logits on them)."""
    cadene_name, size = CASES[name]
    torch.manual_seed(0)
    rgb = _images(size)
    x = _cadene_input(cadene_name, rgb)
    peer = calibrated(_cadene(cadene_name), x)
    with torch.no_grad():
        logits = peer(x)
    return peer.state_dict(), rgb, logits


@pytest.mark.parametrize("name", CASES)
def test_cadene_checkpoint_gives_cadenes_logits(name, tmp_path):
    state, rgb, theirs = _reference(name)
    path = tmp_path / "cadene.pth"
    torch.save(state, path)
    ours = load_pretrained(create_model(name), path, source="cadene").eval()
    expected = ((CAFFE_BGR_INPUT.folded_mean, CAFFE_BGR_INPUT.folded_std) if name == "bn_inception"
                else (IMAGENET_INCEPTION_MEAN, IMAGENET_INCEPTION_STD))
    assert (ours.default_cfg["mean"], ours.default_cfg["std"]) == expected
    assert ours.default_cfg["weights_source"] == "cadene"
    with torch.no_grad():
        mine = ours(_ours_input(ours, rgb))
    err = ((mine - theirs).abs().max() / theirs.abs().max()).item()
    assert close(mine, theirs), f"max relative error {err:.2e}"
    assert torch.equal(mine.topk(5).indices, theirs.topk(5).indices)
    # detected from the keys, loaded again into the same model: the same tensors (the fold included) and
    # input configuration (inception_v4's keys are timm's too: the tie goes to timm, the record's first
    # peer, whose conventions are the same)
    loaded = {k: v.clone() for k, v in ours.state_dict().items()}
    load_pretrained(ours, path)
    assert ours.default_cfg["weights_source"] == ("timm" if name == "inception_v4" else "cadene")
    assert (ours.default_cfg["mean"], ours.default_cfg["std"]) == expected
    again = ours.state_dict()
    assert all(torch.equal(again[k], v) for k, v in loaded.items())


def test_background_row_of_a_1001_class_file_is_dropped(tmp_path):
    """Cadene's inceptionresnetv2 / inceptionv4 files have 1001 classes, background first."""
    torch.manual_seed(1)
    state = _cadene("inceptionresnetv2", num_classes=1001).state_dict()
    torch.save(state, tmp_path / "irv2.pth")
    weight, bias = state["last_linear.weight"], state["last_linear.bias"]
    model = create_model("inception_resnet_v2")
    with pytest.warns(UserWarning, match=r"inception_resnet_v2: dropped row 0 of the checkpoint's 1001-class "
                                         r"classifier, the background class of TF-slim's label map"):
        load_pretrained(model, tmp_path / "irv2.pth")  # detected: the cadene layout (source="cadene": by tag)
    assert torch.equal(model.head.fc.weight, weight[1:]) and torch.equal(model.head.fc.bias, bias[1:])
    assert torch.equal(model.features.Conv2d_1a_3x3.conv.weight, state["conv2d_1a.conv.weight"])
    assert model.default_cfg["weights_source"] == "cadene"
    with warnings.catch_warnings():  # a 1001-class model keeps the row, silently
        warnings.simplefilter("error")
        keep = create_model("inception_resnet_v2", num_classes=1001)
        load_pretrained(keep, tmp_path / "irv2.pth", source="cadene")
    assert torch.equal(keep.head.fc.weight, weight)


def _place(tag: str, state: dict) -> Path:
    """``state`` saved where torch.hub caches the tag's URL."""
    _, row = get_pretrained(tag)
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / Path(urlparse(row.url).path).name)
    return folder / Path(urlparse(row.url).path).name


def test_bn_inception_tag_gives_cadenes_logits_offline(caches):
    _, attempts = caches
    state, rgb, theirs = _reference("bn_inception")
    _place("bn_inception.cadene_in1k", state)
    model = create_model("bn_inception.cadene_in1k", pretrained=True).eval()
    _, row = get_pretrained("bn_inception.cadene_in1k")
    cfg = model.default_cfg
    assert (cfg["tag"], cfg["mean"], cfg["std"], cfg["input_size"], cfg["weights_source"]) == (
        "cadene_in1k", CAFFE_BGR_INPUT.folded_mean, CAFFE_BGR_INPUT.folded_std, (3, 224, 224), "cadene")
    assert (row.mean, row.std, row.sha256) == (cfg["mean"], cfg["std"], "52deb4733")
    with torch.no_grad():
        mine = model(_ours_input(model, rgb))
    assert close(mine, theirs) and torch.equal(mine.topk(5).indices, theirs.topk(5).indices)
    assert not attempts and hub.cached_file(*get_pretrained("bn_inception.cadene_in1k")).is_file()


def test_published_files_load_by_tag_offline(caches):
    """The files as pretrainedmodels publishes them: inceptionv4 with 1001 classes (the row dropped once, on
    conversion), xception keyed ``fc`` (renamed ``last_linear`` only after loading), inceptionv3 torchvision's
    own file."""
    import torchvision

    torch.manual_seed(2)
    v4 = _cadene("inceptionv4", num_classes=1001).state_dict()
    _place("inception_v4.cadene_in1k", v4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = create_model("inception_v4.cadene_in1k", pretrained=True)
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert any("dropped row 0 of the checkpoint's 1001-class classifier" in m for m in messages)
    assert not any("re-initialized" in m for m in messages)
    assert model.num_classes == 1000 and torch.equal(model.head.fc.weight, v4["last_linear.weight"][1:])
    assert torch.equal(model.head.fc.bias, v4["last_linear.bias"][1:])

    xception = _cadene("xception").state_dict()
    published = {k.replace("last_linear.", "fc."): v for k, v in xception.items()}
    _place("xception.cadene_in1k", published)
    model = create_model("xception.cadene_in1k", pretrained=True)
    assert torch.equal(model.head.fc.weight, xception["last_linear.weight"])
    assert torch.equal(model.features.entry_conv1.conv.weight, xception["conv1.weight"])
    assert model.default_cfg["crop_pct"] == 0.8975 and model.default_cfg["mean"] == IMAGENET_INCEPTION_MEAN

    v3 = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict()
    _place("inception_v3.cadene_in1k", v3)
    model = create_model("inception_v3.cadene_in1k", pretrained=True, aux_logits=True)
    assert torch.equal(model.head.fc.weight, v3["fc.weight"])  # not folded: pretrainedmodels' 0.5 / 0.5 input
    assert torch.equal(model.features.Conv2d_1a_3x3.conv.weight, v3["Conv2d_1a_3x3.conv.weight"])
    assert torch.equal(model.aux_heads[0].head.fc.weight, v3["AuxLogits.fc.weight"])
    assert model.default_cfg["mean"] == IMAGENET_INCEPTION_MEAN
    assert not caches[1]


def test_a_cadene_file_of_another_architecture_changes_nothing(tmp_path):
    torch.save(_cadene("xception").state_dict(), tmp_path / "xception.pth")
    model = create_model("bn_inception")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for source in ("cadene", "auto"):
        with pytest.raises(CheckpointError) as e:
            load_pretrained(model, tmp_path / "xception.pth", source=source)
        message = str(e.value)
        assert message.startswith("bn_inception: the checkpoint does not fit (keys taken as the cadene layout)")
        assert "missing: features.conv1_7x7_s2.conv.weight" in message and "unexpected: conv1.weight" in message
        assert message.endswith("The model's weights were not changed. The keys fit xception (cadene layout).")
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.default_cfg["mean"] != CAFFE_BGR_INPUT.folded_mean  # nor its input configuration
    with pytest.raises(CheckpointError, match="inception_v1_bn: no cadene layout is known for it; known: ours"):
        load_pretrained(create_model("inception_v1_bn"), tmp_path / "xception.pth", source="cadene")


def test_input_convention_checks_its_fields():
    with pytest.raises(ValueError, match="input_space must be 'RGB' or 'BGR', got 'YUV'"):
        InputConvention(mean=(0, 0, 0), std=(1, 1, 1), folded_mean=(0, 0, 0), folded_std=(1, 1, 1), input_space="YUV")
    with pytest.raises(ValueError, match="need 3 values each"):
        InputConvention(mean=(0,), std=(1, 1, 1), folded_mean=(0, 0, 0), folded_std=(1, 1, 1))
