"""Published weights by name, with the network off: each source's file, made here from the source library's
own model at random init (non-trivial BatchNorm statistics), is placed exactly where its download function
caches it ($TORCH_HOME/hub/checkpoints, the $HF_HOME/hub snapshot tree); create_model(tag, pretrained=True)
then gives the source model's logits. Failures are one clear error and leave no partial file."""

import dataclasses
import hashlib
import zipfile
from pathlib import Path
from urllib.parse import urlparse

import pytest
import timm
import torch
import torchvision

from inception_zoo import CheckpointError, CheckpointNotFoundError, create_model, get_pretrained, list_pretrained
from inception_zoo.weights import hub

from helpers import realistic

EXPECTED_TAGS = [
    "bn_inception.cadene_in1k", "bn_inception.cv_in1k", "inception_resnet_v1_facenet.casia_webface",
    "inception_resnet_v1_facenet.vggface2", "inception_resnet_v2.cadene_in1k", "inception_resnet_v2.cv_in1k", "inception_resnet_v2.keras_in1k", "inception_resnet_v2.tf_ens_adv_in1k",
    "inception_resnet_v2.tf_in1k", "inception_v1_bn.tv_in1k", "inception_v3.cadene_in1k", "inception_v3.cv_in1k", "inception_v3.gluon_in1k",
    "inception_v3.tf_adv_in1k", "inception_v3.tf_in1k", "inception_v3.tv_in1k",
    "inception_v3_fid.fid", "inception_v3_fid.fidelity", "inception_v3_tf.keras_in1k", "inception_v4.cadene_in1k", "inception_v4.cv_in1k", "inception_v4.tf_in1k",
    "xception.cadene_in1k", "xception.cv_in1k", "xception.tf_in1k", "xception41.tf_in1k", "xception41p.ra3_in1k",
    "xception65.ra3_in1k", "xception65.tf_in1k", "xception65p.ra3_in1k", "xception71.tf_in1k", "xception_tf.keras_in1k",
]
NO_ACCURACY = {"inception_v3_fid.fid", "inception_v3_fid.fidelity",  # the FID's network: features, not classes
               "inception_resnet_v1_facenet.casia_webface", "inception_resnet_v1_facenet.vggface2"}  # faces


def _pytorchcv(name):
    import importlib

    return lambda: getattr(importlib.import_module(f"pytorchcv.models.{name}"), name)()


# tag -> the source library's model, as its published weights use it
SOURCE_MODELS = {
    "inception_v1_bn.tv_in1k": lambda: torchvision.models.googlenet(aux_logits=True, init_weights=True, transform_input=True),
    "inception_v3.tv_in1k": lambda: torchvision.models.inception_v3(aux_logits=True, init_weights=False, transform_input=True),
    "inception_v3.tf_in1k": lambda: timm.create_model("inception_v3"),
    "inception_v3.tf_adv_in1k": lambda: timm.create_model("inception_v3"),
    "inception_v3.gluon_in1k": lambda: timm.create_model("inception_v3"),
    "inception_v4.tf_in1k": lambda: timm.create_model("inception_v4"),
    "inception_resnet_v2.tf_in1k": lambda: timm.create_model("inception_resnet_v2"),
    "inception_resnet_v2.tf_ens_adv_in1k": lambda: timm.create_model("inception_resnet_v2"),
    "xception.tf_in1k": lambda: timm.create_model("legacy_xception"),
    "bn_inception.cv_in1k": _pytorchcv("bninception"),
    "inception_v3.cv_in1k": _pytorchcv("inceptionv3"),
    "inception_v4.cv_in1k": _pytorchcv("inceptionv4"),
    "inception_resnet_v2.cv_in1k": _pytorchcv("inceptionresnetv2"),
    "xception.cv_in1k": _pytorchcv("xception"),
}


def _place(tag: str, state: dict) -> Path:
    """Save ``state`` as the tag's source publishes it, where its download function caches it."""
    _, row = get_pretrained(tag)
    if row.url:
        name = Path(urlparse(row.url).path).name
        folder = Path(torch.hub.get_dir()) / "checkpoints"
        folder.mkdir(parents=True, exist_ok=True)
        if name.endswith(".zip"):  # pytorchcv: a zip holding the .pth
            torch.save(state, folder / name[:-4])
            with zipfile.ZipFile(folder / name, "w") as z:
                z.write(folder / name[:-4], arcname=name[:-4])
            (folder / name[:-4]).unlink()
        else:
            torch.save(state, folder / name)
        return folder / name
    from huggingface_hub import constants
    from safetensors.torch import save_file

    repo, filename = row.hf_hub
    revision = hashlib.sha1(repo.encode()).hexdigest()
    root = Path(constants.HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}"
    (root / "snapshots" / revision).mkdir(parents=True)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(revision)
    save_file({k: v.contiguous() for k, v in state.items()}, root / "snapshots" / revision / filename)
    return root / "snapshots" / revision / filename


def test_every_tag_is_listed_with_its_metadata():
    assert list_pretrained() == EXPECTED_TAGS
    assert list_pretrained("inception_v3*") == [t for t in EXPECTED_TAGS if t.startswith("inception_v3")]
    for tag in EXPECTED_TAGS:
        record, row = get_pretrained(tag)
        assert (row.url is None) != (row.hf_hub is None) and row.license and row.accuracy_source
        assert len(row.mean) == len(row.std) == row.input_size[0] == 3
        if tag in NO_ACCURACY:
            assert row.top1 is row.top5 is None and row.accuracy_source.startswith("none published")
        else:
            assert 60 < row.top1 < row.top5 < 100
    assert get_pretrained("inception_v3")[1].tag == "tv_in1k"  # the default tag: the first


# One tag per way of publishing: torchvision's URL (aux heads, transform_input folded), timm's Hugging Face
# repos, timm's GitHub release, pytorchcv's zip; every other tag shares one of these paths and a key map
# whose identity tests/test_weights.py proves for every peer.
FAMILIES = ["inception_v1_bn.tv_in1k", "inception_v3.gluon_in1k", "xception.tf_in1k", "bn_inception.cv_in1k"]


@pytest.mark.parametrize("tag", FAMILIES)
def test_published_weights_give_the_source_models_logits(tag, caches):
    _, attempts = caches
    torch.manual_seed(0)
    source = realistic(SOURCE_MODELS[tag]())
    _place(tag, source.state_dict())
    model = create_model(tag, pretrained=True).eval()
    _, row = get_pretrained(tag)
    cfg = model.default_cfg
    assert (cfg["tag"], cfg["mean"], cfg["std"], cfg["crop_pct"], cfg["interpolation"]) == (
        row.tag, row.mean, row.std, row.crop_pct, row.interpolation)
    small = row.input_size[1] == 299 and row.source != "pytorchcv"  # pytorchcv pools with a fixed window
    x = torch.randn(2, 3, 75, 75) if small else torch.randn(2, *row.input_size)
    with torch.no_grad():
        ours, theirs = model(x), source(x)
        theirs = theirs[0] if isinstance(theirs, tuple) else theirs
    assert (ours - theirs).abs().max() <= 1e-4 * theirs.abs().max()
    assert torch.equal(ours.topk(5).indices, theirs.topk(5).indices)
    assert not attempts, "the network was asked although the file was in the cache"
    assert hub.cached_file(*get_pretrained(tag)).is_file()


def test_second_load_reads_only_the_converted_cache(caches, monkeypatch):
    torch.manual_seed(1)
    source = realistic(torchvision.models.googlenet(aux_logits=True, init_weights=True, transform_input=True))
    placed = _place("inception_v1_bn.tv_in1k", source.state_dict())
    first = create_model("inception_v1_bn.tv_in1k", pretrained=True)
    placed.unlink()  # the source file is gone, and fetching it would fail loudly

    def no_fetch(*args, **kwargs):
        raise AssertionError("the source file was fetched again")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_fetch)
    second = create_model("inception_v1_bn", pretrained=True, num_classes=1000)
    a, b = first.state_dict(), second.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert second.default_cfg["tag"] == "tv_in1k" and second.default_cfg["weights_source"] == "torchvision"


def test_backbones_shared_caches_and_damaged_or_unwritable_caches(caches, monkeypatch):
    import os

    import timm.data

    tmp_path, _ = caches
    torch.manual_seed(3)
    source = realistic(torchvision.models.googlenet(aux_logits=True, init_weights=True, transform_input=True))
    _place("inception_v1_bn.tv_in1k", source.state_dict())
    tag = "inception_v1_bn.tv_in1k"
    reference = create_model(tag, pretrained=True).eval()
    cached = hub.cached_file(*get_pretrained(tag))
    umask = os.umask(0)
    os.umask(umask)
    assert cached.stat().st_mode & 0o777 == 0o666 & ~umask  # readable by a team sharing the cache
    # a backbone: no classifier, the rest of the weights
    backbone = create_model(tag, pretrained=True, num_classes=0).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(backbone(x), reference.forward_head(reference.forward_features(x), pre_logits=True))
    features = create_model(tag, pretrained=True, features_only=True)
    assert timm.data.resolve_data_config({}, model=features)["mean"] == (0.485, 0.456, 0.406)
    # a damaged cached file is converted again from the source file
    cached.write_bytes(cached.read_bytes()[:1000])
    with pytest.warns(UserWarning, match="is unreadable .* converting inception_v1_bn.tv_in1k again"):
        again = create_model(tag, pretrained=True).eval()
    assert torch.equal(again.head.fc.weight, reference.head.fc.weight) and cached.stat().st_size > 1000
    # a cache that cannot be written: a warning, and the conversion used from memory
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    monkeypatch.setenv(hub.CACHE_ENV, str(blocker))
    with pytest.warns(UserWarning, match="cannot cache the converted weights .* set INCEPTION_ZOO_CACHE"):
        unwritable = create_model(tag, pretrained=True).eval()
    assert torch.equal(unwritable.head.fc.weight, reference.head.fc.weight)
    assert unwritable.default_cfg["tag"] == "tv_in1k"


def test_offline_and_missing_is_one_clear_error(caches):
    tmp_path, attempts = caches
    with pytest.raises(CheckpointNotFoundError) as e:
        create_model("inception_v1_bn.tv_in1k", pretrained=True)
    message = str(e.value)
    assert message.startswith("inception_v1_bn.tv_in1k: the weights https://download.pytorch.org/models/googlenet-1378be20.pth")
    assert str(tmp_path / "torch" / "hub" / "checkpoints" / "googlenet-1378be20.pth") in message
    assert "torch.hub.load_state_dict_from_url('https://download.pytorch.org/models/googlenet-1378be20.pth')" in message
    assert len(attempts) == 1  # one refused connection, no retry loop
    with pytest.raises(CheckpointNotFoundError) as e:
        create_model("inception_v4.tf_in1k", pretrained=True)
    message = str(e.value)
    assert "hf-hub:timm/inception_v4.tf_in1k/model.safetensors" in message
    assert str(tmp_path / "hf" / "hub" / "models--timm--inception_v4.tf_in1k") in message
    assert "hf_hub_download('timm/inception_v4.tf_in1k', 'model.safetensors')" in message
    assert len(attempts) == 2  # the host lookup, refused at once: huggingface_hub's retries never start
    assert not any((tmp_path / "ours").glob("*")) if (tmp_path / "ours").exists() else True


def test_hf_hub_offline_mode_asks_no_network(caches, monkeypatch):
    from huggingface_hub import constants

    _, attempts = caches
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    for tag in ("inception_v3.tf_in1k", "xception.tf_in1k"):
        with pytest.raises(CheckpointNotFoundError, match="HF_HUB_OFFLINE is set"):
            create_model(tag, pretrained=True)
    assert not attempts


def _with_url(tag: str, url: str):
    record, row = get_pretrained(tag)
    row = dataclasses.replace(row, url=url)
    return dataclasses.replace(record, pretrained=(row,)), row


def test_hash_mismatch_keeps_nothing(caches):
    tmp_path, _ = caches
    served = tmp_path / "server" / "googlenet-1378be20.pth"  # the published name, other bytes
    served.parent.mkdir()
    torch.save(torchvision.models.googlenet(aux_logits=True, init_weights=False).state_dict(), served)
    record, row = _with_url("inception_v1_bn.tv_in1k", served.as_uri())
    with pytest.raises(CheckpointError, match="does not match its published sha256 prefix 1378be20.*nothing was kept"):
        hub.load_published(create_model("inception_v1_bn"), record, row, progress=False)
    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    assert not any(checkpoints.glob("*")) and not any((tmp_path / "ours").glob("*"))


def test_truncated_download_is_refused_and_keeps_nothing_of_ours(caches):
    tmp_path, _ = caches
    served = tmp_path / "server" / "xception-43020ad28.pth"  # timm's file publishes no sha256
    served.parent.mkdir()
    torch.save(timm.create_model("legacy_xception").state_dict(), served)
    served.write_bytes(served.read_bytes()[: served.stat().st_size // 2])
    record, row = _with_url("xception.tf_in1k", served.as_uri())
    with pytest.raises(CheckpointError, match=r"xception.tf_in1k: .*xception-43020ad28.pth is not a readable "
                                              r"checkpoint \(truncated or corrupt\?\).*Delete it"):
        hub.load_published(create_model("xception"), record, row, progress=False)
    assert not (tmp_path / "ours").exists() or not any((tmp_path / "ours").glob("*"))


def test_unknown_tag_lists_the_closest():
    with pytest.raises(KeyError) as e:
        create_model("inception_v3.tf_inlk", pretrained=True)
    assert "unknown pretrained tag 'inception_v3.tf_inlk'; closest: inception_v3.tf_in1k" in str(e.value)
    with pytest.raises(KeyError, match="unknown pretrained tag 'inception_v3.'"):
        create_model("inception_v3.", pretrained=True)
    with pytest.raises(ValueError, match="inception_v1 has no published weights .* same paper: inception_v1_bn"):
        create_model("googlenet.tv_in1k", pretrained=True)


def test_a_tag_without_weights_sets_its_preprocessing():
    model = create_model("inception_v3.gluon_in1k")
    assert model.default_cfg["mean"] == (0.485, 0.456, 0.406) and model.default_cfg["tag"] == "gluon_in1k"


def test_predict_prints_imagenet_classes(caches, capsys):
    import timm.data
    from PIL import Image
    from skimage.data import chelsea

    from inception_zoo.cli import main

    tmp_path, _ = caches
    torch.manual_seed(2)
    _place("inception_v1_bn.tv_in1k",
           realistic(torchvision.models.googlenet(aux_logits=True, init_weights=True, transform_input=True)).state_dict())
    image = tmp_path / "chelsea.jpg"
    Image.fromarray(chelsea()).save(image)
    assert main(["predict", str(image), "--model", "inception_v1_bn.tv_in1k", "--top", "5"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 5
    info = timm.data.ImageNetInfo()  # one instance: each reads timm's class lists anew
    names = {info.index_to_description(i) for i in range(1000)}
    probabilities = []
    for line in lines:
        probability, label = line.split("  ", 1)
        assert label in names
        probabilities.append(float(probability))
    assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1 + 1e-6
    assert main(["predict", str(tmp_path / "missing.jpg"), "--model", "inception_v1_bn"]) == 1
    assert "cannot read image" in capsys.readouterr().err
