"""inception_resnet_v1_facenet against facenet-pytorch's InceptionResnetV1 (David Sandberg's facenet layout):
the same parameter count, its checkpoints loading with its logits and L2-normalized embeddings on real face
crops, its published weights by tag with the network off, the embedding head's model surface, and bad files
refused with the model unchanged.

The reference is facenet-pytorch's own model at random init (built with ``classify=True``, nothing
downloaded), with non-trivial BatchNorm statistics measured on the faces (``calibrated``), its
``last_bn`` included."""

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from inception_zoo import CheckpointError, create_model, get_pretrained, get_record, load_pretrained
from inception_zoo.analysis import count_params
from inception_zoo.layers import EmbeddingHead, EmbeddingSpec
from inception_zoo.weights import hub

from helpers import calibrated, close
from test_pretrained import _place

facenet = pytest.importorskip("facenet_pytorch.models.inception_resnet_v1")

NAME = "inception_resnet_v1_facenet"


def _faces() -> list[Image.Image]:
    """Real faces: Eileen Collins in scikit-image's astronaut photograph (a 200×200 crop with margin,
    as MTCNN crops) and three Labeled Faces in the Wild faces (scikit-image's 25×25 grey subset), each
    resized to 160×160 bilinearly as facenet-pytorch's MTCNN resizes a PIL crop."""
    from skimage.data import astronaut, lfw_subset

    crops = [Image.fromarray(astronaut()[20:220, 140:340])]
    for face in lfw_subset()[[0, 21, 66]]:  # the first 100 images are faces
        crops.append(Image.fromarray((face * 255).round().astype(np.uint8)).convert("RGB"))
    return [c.resize((160, 160), Image.BILINEAR) for c in crops]


def _standardized(images: list[Image.Image]) -> torch.Tensor:
    """facenet-pytorch's fixed_image_standardization: (x - 127.5) / 128 on RGB in [0, 255]."""
    x = torch.from_numpy(np.stack([np.asarray(i, dtype=np.float32) for i in images])).permute(0, 3, 1, 2)
    return (x - 127.5) / 128.0


def _reference(x: torch.Tensor, num_classes: int = 8631, seed: int = 0) -> nn.Module:
    """facenet-pytorch's model at random init, BatchNorm statistics (2-D and last_bn) measured on ``x``."""
    torch.manual_seed(seed)
    net = facenet.InceptionResnetV1(classify=True, num_classes=num_classes)
    bn = net.last_bn
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    bn.reset_running_stats()
    bn.momentum = None  # the statistics of the one calibration batch
    calibrated(net, x, seed=seed)
    bn.momentum = 0.1
    return net.eval()


def _embeddings(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    net.classify = False
    try:
        return net(x)
    finally:
        net.classify = True


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The faces, facenet-pytorch's calibrated model, its checkpoint file, its logits and embeddings."""
    x = _standardized(_faces())
    net = _reference(x)
    path = tmp_path_factory.mktemp("facenet") / "facenet.pt"
    torch.save(net.state_dict(), path)
    with torch.no_grad():
        logits, embeddings = net(x), _embeddings(net, x)
    return {"x": x, "net": net, "path": path, "logits": logits, "embeddings": embeddings}


def test_parameter_counts_equal_facenet_pytorch():
    """27,910,327 with the 8631 VGGFace2 identities (the record's count, asserted exactly), 23,482,624
    for the embedding alone (facenet-pytorch's classify=False model, ours with num_classes=0)."""
    with torch.device("meta"):
        theirs = {n: count_params(facenet.InceptionResnetV1(classify=True, num_classes=n))
                  for n in (8631, 10575)}
        embedding_only = count_params(facenet.InceptionResnetV1())
        ours = {n: count_params(create_model(NAME, num_classes=n)) for n in (8631, 10575, 0)}
    assert get_record(NAME).params == ours[8631] == theirs[8631] == 27_910_327
    assert ours[10575] == theirs[10575] and ours[0] == embedding_only == 23_482_624


@pytest.mark.parametrize("source", ["facenet", "auto"])
def test_checkpoint_gives_facenets_logits_and_embeddings(reference, source):
    """Logits and embeddings within 1e-4 (of the largest), the file's layout named or detected."""
    x = reference["x"]
    ours = load_pretrained(create_model(NAME), reference["path"], source=source).eval()
    assert ours.default_cfg["weights_source"] == "facenet"
    with torch.no_grad():
        logits = ours(x)
        embeddings = ours.forward_head(ours.forward_features(x), pre_logits=True)
    assert close(logits, reference["logits"]) and close(embeddings, reference["embeddings"])
    assert torch.equal(logits.argmax(1), reference["logits"].argmax(1))
    torch.testing.assert_close(embeddings.norm(dim=1), torch.ones(len(x)))
    # the faces stay apart: a mis-mapped layer cannot hide behind embeddings that all coincide
    similarity = embeddings @ embeddings.T
    assert similarity[~torch.eye(len(x), dtype=torch.bool)].max() < 0.99
    if source == "facenet":  # built without the classifier, the model returns the embedding (logits left out)
        backbone = create_model(NAME, num_classes=0, pretrained=reference["path"]).eval()
        with torch.no_grad():
            torch.testing.assert_close(backbone(x), embeddings, rtol=0, atol=1e-6)


def test_published_weights_by_tag_with_the_network_off(reference, caches):  # noqa: F811
    """casia_webface's file, placed where torch.hub caches it, builds and loads its 10575 classes."""
    _, attempts = caches
    tag = f"{NAME}.casia_webface"
    faces, x = _faces(), reference["x"]
    torch.manual_seed(1)
    net = facenet.InceptionResnetV1(classify=True, num_classes=10575).eval()  # calibrated body, 10575 classes
    body = {k: v for k, v in reference["net"].state_dict().items() if not k.startswith("logits.")}
    assert set(net.load_state_dict(body, strict=False).missing_keys) == {"logits.weight", "logits.bias"}
    _place(tag, net.state_dict())
    model = create_model(tag, pretrained=True).eval()
    assert model.num_classes == 10575 and model.get_classifier().out_features == 10575
    cfg = model.default_cfg
    assert (cfg["tag"], cfg["input_size"], cfg["interpolation"], cfg["crop_pct"]) == (
        "casia_webface", (3, 160, 160), "bilinear", 1.0)
    # default_cfg's mean / std are facenet's (x - 127.5) / 128, through timm's own transform
    import timm.data

    transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))
    torch.testing.assert_close(torch.stack([transform(f) for f in faces]), x, rtol=0, atol=1e-6)
    with torch.no_grad():
        assert close(model(x), net(x))
        embeddings = create_model(tag, pretrained=True, num_classes=0).eval()(x)  # from our converted cache
    assert close(embeddings, reference["embeddings"])
    assert not attempts, "the network was asked although the file was in the cache"
    assert hub.cached_file(*get_pretrained(tag)).is_file()
    assert create_model(tag).num_classes == 10575  # the tag alone: its shape and preprocessing
    assert create_model(NAME, pretrained=False).num_classes == get_pretrained(NAME)[1].num_classes == 8631


def test_tags_and_their_metadata():
    record = get_record(NAME)
    assert [p.tag for p in record.pretrained] == ["vggface2", "casia_webface"]
    files = ("20180402-114759-vggface2.pt", "20180408-102900-casia-webface.pt")
    for row, file, classes in zip(record.pretrained, files, (8631, 10575)):
        assert row.url == f"https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/{file}"
        assert row.url in facenet.load_weights.__code__.co_consts  # the URLs facenet-pytorch downloads
        assert (row.source, row.num_classes, row.top1, row.top5) == ("facenet", classes, None, None)
        assert row.mean == (0.5,) * 3 and row.std == (128 / 255,) * 3 and row.input_size == (3, 160, 160)
    assert "LFW accuracy 0.9965" in record.pretrained[0].accuracy_source
    assert "LFW accuracy 0.9905" in record.pretrained[1].accuracy_source


def test_embedding_head_surface(fresh):
    model = fresh(NAME).eval()
    x = torch.randn(2, 3, 96, 96)
    assert isinstance(model.head, EmbeddingHead) and model.default_cfg["classifier"] == "head.fc"
    assert (model.num_features, model.head_hidden_size, model.num_classes) == (1792, 512, 8631)
    assert model.features.Block8.act is False and model.features.block8_5.act is True
    assert next(m.scale for m in model.features.Block8.modules() if hasattr(m, "scale")) == 1.0
    embed, bn = model.head.embed, model.head.bn
    model.reset_classifier(10)  # a new classifier on the learned embedding
    assert model.head.embed is embed and model.head.bn is bn and model.get_classifier().out_features == 10
    with torch.no_grad():
        assert model(x).shape == (2, 10)
        model.reset_classifier(0)
        out = model(x)
    assert out.shape == (2, 512) and isinstance(model.get_classifier(), nn.Identity)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(2))
    model.reset_classifier(5, global_pool="catavgmax")  # twice the features: a new projection
    assert model.head.embed.in_features == 2 * 1792 and model.head.embed is not embed
    with torch.no_grad():
        assert model(x).shape == (2, 5)
    with pytest.raises(ValueError, match="keeps the unpooled feature map, which the embedding head cannot"):
        model.reset_classifier(0, global_pool="")
    with pytest.raises(ValueError, match="embed_dim must be an int >= 1, got 0"):
        EmbeddingSpec(embed_dim=0)
    record = get_record(NAME)
    with pytest.raises(ValueError, match=r"casia_webface: num_classes must be None .* got 0"):
        dataclasses.replace(record, pretrained=(dataclasses.replace(record.pretrained[1], num_classes=0),))
    with pytest.raises(TypeError, match="embedding must be an EmbeddingSpec or None, got 512"):
        dataclasses.replace(record, embedding=512)


def test_scripted_embedding_equals_eager(built):
    import warnings

    model = built(NAME, num_classes=0)
    x = torch.randn(2, 3, 75, 75)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(model)
    with torch.no_grad(), torch.jit.optimized_execution(False):  # as saved: no profiling runs
        assert torch.equal(scripted(x), model(x))
        feats = model.forward_features(x)
        assert torch.equal(scripted.forward_head(feats, True), model.forward_head(feats, pre_logits=True))


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _unchanged(model: nn.Module, before: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_bad_files_are_one_clear_error_and_change_nothing(reference, tmp_path):
    model = create_model(NAME)
    before = _weights(model)
    # a facenet checkpoint of the 2017 models' width: a 128-d embedding
    state = dict(reference["net"].state_dict())
    state["last_linear.weight"] = torch.randn(128, 1792)
    for key in ("weight", "bias", "running_mean", "running_var"):
        state[f"last_bn.{key}"] = torch.rand(128)
    state["logits.weight"] = torch.randn(8631, 128)
    with pytest.raises(CheckpointError, match=r"mis-shaped: head\.embed\.weight \(128, 1792\) vs "
                                              r"\(512, 1792\).*The model's weights were not changed"):
        load_pretrained(model, state, source="facenet")
    assert _unchanged(model, before)
    # another architecture's checkpoint taken as facenet's
    import timm

    with torch.device("meta"):
        other = timm.create_model("inception_resnet_v2").state_dict()
    with pytest.raises(CheckpointError, match=r"does not fit \(keys taken as the facenet layout\); missing: "
                                              r".*unexpected: mixed_5b\..*mis-shaped: .*not changed"):
        load_pretrained(model, other, source="facenet")
    assert _unchanged(model, before)
    # a truncated file
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(reference["path"].read_bytes()[:100_000])
    with pytest.raises(CheckpointError, match="The model's weights were not changed"):
        load_pretrained(model, truncated, source="facenet")
    assert _unchanged(model, before)
    # facenet's file into the paper's layout, which has no facenet key map
    paper = create_model("inception_resnet_v1")
    with pytest.raises(CheckpointError, match="inception_resnet_v1: no facenet layout is known for it; "
                                              "known: ours, legacy"):
        load_pretrained(paper, reference["path"], source="facenet")
    with pytest.raises(CheckpointError, match=r"The keys fit inception_resnet_v1_facenet \(facenet layout\)"):
        load_pretrained(paper, reference["path"])
