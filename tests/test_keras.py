"""Keras weights: keras.applications' InceptionV3, InceptionResNetV2 and Xception (torch backend, random
weights, random BatchNorm statistics) saved in every format Keras writes, loaded with
``load_pretrained(..., source="keras")`` and compared with Keras' own logits on real images."""

import copy
import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is imported anywhere in this process

import h5py
import keras
import numpy as np
import pytest
import torch
from keras.src.legacy.saving import legacy_h5_format

from inception_zoo import CheckpointError, create_model, load_pretrained
from inception_zoo.weights.keras import keras_layers

SIZE = 128  # even maps at two of Xception's reducing pools (where TF's "same" pads one side only)
RTOL = 1e-4

# keras application -> (our TF-exact model, the PyTorch-convention layout with the same weights or None)
APPS = {
    "InceptionV3": ("inception_v3_tf", "inception_v3"),
    "InceptionResNetV2": ("inception_resnet_v2", None),  # ours is TF-exact already (as timm's)
    "Xception": ("xception_tf", "xception"),
}
# Keras 3's weights file, and the legacy one keras.applications downloads are; model.save's .h5 and .keras
# are read through the same code (test_each_batchnorm_keeps_the_files_epsilon loads both)
FORMATS = ("weights.h5", "legacy.h5")


def _images() -> np.ndarray:
    """Two photos from scikit-image, RGB 0-255, SIZE × SIZE (channels last, as Keras takes them)."""
    from PIL import Image
    from skimage import data

    photos = [data.astronaut(), data.chelsea()]
    return np.stack([np.asarray(Image.fromarray(p).resize((SIZE, SIZE), Image.BILINEAR)) for p in photos])


def _randomize_norms(model, images: np.ndarray, seed: int, epsilon: float | None = None) -> None:
    """Random BatchNorm betas (positive, so that most ReLUs pass) and gammas where the layer has them, and
    running statistics measured on ``images`` (one training-mode forward with momentum 0, as
    ``tests/helpers.calibrated`` does for ours): the logits then differ from image to image, as a trained
    network's do, where a random network's fade into constants. ``epsilon`` set on every BatchNorm if given."""
    rng = np.random.default_rng(seed)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        n = layer.moving_mean.shape[0]
        values = {"gamma": rng.uniform(0.5, 1.5, n), "beta": rng.uniform(0.5, 1.5, n),
                  "moving_mean": np.zeros(n), "moving_variance": np.ones(n)}
        layer.set_weights([values[w.name].astype("float32") for w in layer.weights])
        layer.momentum = 0.0
        if epsilon is not None:
            layer.epsilon = epsilon
    model(images / 127.5 - 1.0, training=True)
    for layer in norms:
        layer.momentum = 0.99


def _save(model, folder, fmt: str):
    path = folder / f"model.{fmt}" if fmt != "legacy.h5" else folder / "legacy.h5"
    if fmt == "weights.h5":  # Keras 3's weights file
        model.save_weights(path)
    elif fmt == "legacy.h5":  # the legacy weights-only file (Keras 2 / tf.keras save_weights, keras.applications' downloads)
        with h5py.File(path, "w") as f:
            legacy_h5_format.save_weights_to_hdf5_group(f, model)
    else:  # model.save: the legacy whole-model .h5 (weights under model_weights/) or the .keras zip
        with _quiet():
            model.save(path)
    return path


class _quiet:
    def __enter__(self):
        import logging

        self.level = logging.getLogger("absl").level
        logging.getLogger("absl").setLevel(logging.ERROR)

    def __exit__(self, *exc):
        import logging

        logging.getLogger("absl").setLevel(self.level)


_CASES: dict = {}


def _case(app: str, tmp_path_factory):
    """One Keras application at random init with calibrated BatchNorm statistics, saved in FORMATS, and its
    logits on the photos with Keras' preprocessing (x / 127.5 - 1); built once per test process."""
    if app not in _CASES:
        folder = tmp_path_factory.mktemp(app)
        keras.utils.set_random_seed(0)
        model = getattr(keras.applications, app)(weights=None, classifier_activation=None,
                                                 input_shape=(SIZE, SIZE, 3))
        images = _images().astype("float32")
        _randomize_norms(model, images, seed=1)
        logits = np.asarray(model(images / 127.5 - 1.0, training=False).detach().cpu())
        files = {fmt: _save(model, folder, fmt) for fmt in FORMATS}
        _CASES[app] = (app, files, images, torch.from_numpy(logits))
    return _CASES[app]


@pytest.fixture(params=list(APPS))
def keras_case(request, tmp_path_factory):
    return _case(request.param, tmp_path_factory)


def _ours(name: str, images: np.ndarray, model=None) -> torch.Tensor:
    """Our logits on the photos, normalized with the model's default_cfg mean / std."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2) / 255.0
    mean = torch.tensor(model.default_cfg["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(model.default_cfg["std"]).view(1, 3, 1, 1)
    with torch.no_grad():
        return model.eval()((x - mean) / std)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def test_keras_files_give_keras_logits(keras_case):
    app, files, images, reference = keras_case
    name = APPS[app][0]
    built = create_model(name)
    for fmt in FORMATS:
        model = copy.deepcopy(built)
        load_pretrained(model, files[fmt], source="keras" if fmt == "legacy.h5" else "auto")
        assert model.default_cfg["weights_source"] == "keras"
        assert model.default_cfg["mean"] == model.default_cfg["std"] == (0.5, 0.5, 0.5)
        logits = _ours(name, images, model)
        assert _rel(logits, reference) <= RTOL, (fmt, _rel(logits, reference))
        assert torch.equal(logits.topk(5).indices, reference.topk(5).indices)
    assert reference.std(0).mean() > 0.1 * reference.abs().mean()  # the photos give different logits


@pytest.mark.parametrize("app", [app for app, (_, plain) in APPS.items() if plain])
def test_the_tf_options_are_needed(app, tmp_path_factory):
    """The same weights in the PyTorch-convention layout (average pools counting the padding; Xception's
    symmetric max-pool padding and eps 1e-5) miss Keras' logits by far more than the tolerance."""
    app, files, images, reference = _case(app, tmp_path_factory)
    exact, plain = APPS[app]
    model = load_pretrained(create_model(exact), files["weights.h5"])
    other = create_model(plain)
    other.load_state_dict(model.state_dict())
    other.set_input_cfg(mean=model.default_cfg["mean"], std=model.default_cfg["std"])
    gap = _rel(_ours(plain, images, other), reference)
    assert gap > 10 * RTOL, gap


def test_convert_cli_writes_the_keras_weights(tmp_path_factory, tmp_path):
    from inception_zoo.cli import main

    app, files, images, reference = _case("Xception", tmp_path_factory)
    name = APPS[app][0]
    out = tmp_path / "converted.safetensors"
    assert main(["convert", str(files["legacy.h5"]), str(out), "--model", name, "--source", "keras"]) == 0
    model = create_model(name, pretrained=str(out))
    assert model.default_cfg["mean"] == (0.5, 0.5, 0.5)
    assert _rel(_ours(name, images, model), reference) <= RTOL


def test_each_batchnorm_keeps_the_files_epsilon(tmp_path):
    """A .keras (or model.save .h5) file carries its configuration: each BatchNorm's epsilon is taken from
    it (here 1e-5, not Keras' default 1e-3) and the logits match."""
    keras.utils.set_random_seed(0)
    model = keras.applications.Xception(weights=None, classifier_activation=None, input_shape=(96, 96, 3))
    images = np.random.default_rng(0).uniform(0, 255, (2, 96, 96, 3)).astype("float32")
    _randomize_norms(model, images, seed=2, epsilon=1e-5)
    reference = torch.from_numpy(np.asarray(model(images / 127.5 - 1.0, training=False).detach().cpu()))
    for fmt in ("keras", "model.h5"):
        ours = load_pretrained(create_model("xception_tf"), _save(model, tmp_path, fmt))
        eps = {m.eps for m in ours.modules() if isinstance(m, torch.nn.BatchNorm2d)}
        assert eps == {1e-5}
        assert _rel(_ours("xception_tf", images, ours), reference) <= RTOL


# ------------------------------------------------------------------------------------------ bad files
def _unchanged(model, before) -> bool:
    return all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_a_keras_file_of_another_architecture_names_the_first_layer_that_differs(tmp_path_factory):
    app, files, _, _ = _case("Xception", tmp_path_factory)
    model = create_model("inception_v3_tf")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"inception_v3_tf: Keras layer conv2d_1 \(conv2d named 'block1_conv2' "
                       r"in the file: kernel \(3, 3, 32, 64\)\) does not fit.*weights were not changed"):
        load_pretrained(model, files["legacy.h5"], source="keras")
    assert _unchanged(model, before)


def test_a_missing_layer_is_named(tmp_path_factory, tmp_path):
    app, files, _, _ = _case("InceptionV3", tmp_path_factory)
    broken = tmp_path / "missing.h5"
    broken.write_bytes(files["legacy.h5"].read_bytes())
    layers = keras_layers(broken)
    victim = next(layer for layer in layers if layer.kind == "conv2d" and layer.canonical == "conv2d_5")
    with h5py.File(broken, "a") as f:  # the layer's group and its entry in the layer list
        del f[victim.name]
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in f.attrs["layer_names"]]
        f.attrs["layer_names"] = [n for n in names if n != victim.name]
    model = create_model("inception_v3_tf")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"inception_v3_tf: Keras layer conv2d_5 \(conv2d named .* does not "
                       r"fit: kernel has shape"):
        load_pretrained(model, broken)
    assert _unchanged(model, before)


def test_a_truncated_keras_file_is_refused(tmp_path_factory, tmp_path):
    app, files, _, _ = _case("InceptionV3", tmp_path_factory)
    for fmt in FORMATS:
        data = files[fmt].read_bytes()
        cut = tmp_path / files[fmt].name
        cut.write_bytes(data[: len(data) // 2])
        model = create_model("inception_v3_tf")
        before = {k: v.clone() for k, v in model.state_dict().items()}
        with pytest.raises(CheckpointError, match="not a readable Keras file .truncated or corrupt"):
            load_pretrained(model, cut)
        assert _unchanged(model, before)


def test_keras_weights_point_to_the_tf_exact_layout(tmp_path_factory):
    app, files, _, _ = _case("InceptionV3", tmp_path_factory)
    with pytest.raises(CheckpointError, match="no Keras layout is known for inception_v3; Keras weights load "
                       "into .*inception_v3_tf"):
        load_pretrained(create_model("inception_v3"), files["weights.h5"])


def test_source_keras_needs_a_keras_file(tmp_path):
    path = tmp_path / "w.pth"
    torch.save(create_model("xception_tf").state_dict(), path)
    with pytest.raises(CheckpointError, match="source='keras' needs a Keras file"):
        load_pretrained(create_model("xception_tf"), path, source="keras")


def test_tf_variants_have_their_base_layouts_parameter_counts():
    for exact, plain in (v for v in APPS.values() if v[1]):
        count = lambda name: sum(p.numel() for p in create_model(name).parameters())  # noqa: E731
        assert count(exact) == count(plain)


# ------------------------------------------------------------------------------------------ published
def test_keras_in1k_is_read_from_keras_own_cache(caches, tmp_path_factory):
    offline, _ = caches
    """``xception_tf.keras_in1k``: the legacy .h5 keras.applications downloads, found where Keras caches it
    ($KERAS_HOME/models), converted once; the logits are Keras'."""
    from urllib.parse import urlparse

    from inception_zoo import get_pretrained

    _, files, images, reference = _case("Xception", tmp_path_factory)
    _, row = get_pretrained("xception_tf.keras_in1k")
    assert (row.source, row.md5, row.top1) == ("keras", "0a58e3b7378bc2990ea3b43d5981f1f6", 79.0)
    cached = offline / "keras" / "models" / Path(urlparse(row.url).path).name
    cached.parent.mkdir(parents=True)
    cached.write_bytes(files["legacy.h5"].read_bytes())
    model = create_model("xception_tf.keras_in1k", pretrained=True)
    assert (model.default_cfg["tag"], model.default_cfg["weights_source"]) == ("keras_in1k", "keras")
    assert _rel(_ours("xception_tf", images, model), reference) <= RTOL
    cached.unlink()  # converted once: the second build reads our cache only
    again = create_model("xception_tf.keras_in1k", pretrained=True)
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), model.state_dict().values()))


def test_keras_in1k_offline_says_how_to_fetch_it(caches):
    offline, _ = caches
    from inception_zoo import CheckpointNotFoundError

    with pytest.raises(CheckpointNotFoundError, match=r"inception_v3_tf.keras_in1k: the weights https://storage"
                       r".googleapis.com/tensorflow/keras-applications/inception_v3/.*\.h5 are not in the cache .*"
                       r"keras.models.*download_url_to_file"):
        create_model("inception_v3_tf.keras_in1k", pretrained=True)
    assert not list((offline / "keras").rglob("*.part"))


def test_a_keras_2_file_loads(tmp_path_factory, tmp_path):
    """The files keras.applications downloads were written by Keras 2: byte-string attributes, ``:0`` on
    every weight name, layer names from another session's counters. Only the order counts."""
    app, files, images, reference = _case("InceptionV3", tmp_path_factory)
    old = tmp_path / "keras2.h5"
    with h5py.File(files["legacy.h5"], "r") as src, h5py.File(old, "w") as dst:
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in src.attrs["layer_names"]]
        renamed = {n: f"{n}_{i + 7}" for i, n in enumerate(names)}  # counters of an earlier session
        dst.attrs["layer_names"] = np.array([renamed[n].encode() for n in names])
        dst.attrs["keras_version"] = b"2.2.4"
        for name in names:
            group = dst.create_group(renamed[name])
            weights = [w.decode() if isinstance(w, bytes) else str(w) for w in src[name].attrs["weight_names"]]
            new = [f"{renamed[name]}/{w.rsplit('/', 1)[1]}:0" for w in weights]
            group.attrs["weight_names"] = np.array([w.encode() for w in new])
            for w, n in zip(weights, new):
                group[n] = src[name][w][()]
    model = load_pretrained(create_model("inception_v3_tf"), old)
    assert model.default_cfg["weights_source"] == "keras"
    assert _rel(_ours("inception_v3_tf", images, model), reference) <= RTOL


def test_a_backbone_file_without_classifier(tmp_path):
    """include_top=False: loads into a model built with num_classes=0; a model with a classifier is told so."""
    keras.utils.set_random_seed(0)
    backbone = keras.applications.Xception(weights=None, include_top=False, input_shape=(96, 96, 3), pooling="avg")
    images = np.random.default_rng(0).uniform(0, 255, (2, 96, 96, 3)).astype("float32")
    _randomize_norms(backbone, images, seed=3)
    reference = torch.from_numpy(np.asarray(backbone(images / 127.5 - 1.0, training=False).detach().cpu()))
    path = _save(backbone, tmp_path, "weights.h5")
    model = load_pretrained(create_model("xception_tf", num_classes=0), path)
    assert _rel(_ours("xception_tf", images, model), reference) <= RTOL
    with pytest.raises(CheckpointError, match="no classifier .*include_top=False.*num_classes=0"):
        load_pretrained(create_model("xception_tf"), path)


def test_a_classifier_file_into_a_backbone_and_another_number_of_channels(tmp_path_factory):
    """As for any checkpoint: the file's classifier is skipped by a model built with num_classes=0 (the
    features are Keras' pooled features), and the RGB first convolution is adapted to in_chans=1 (summed)."""
    _, files, images, _ = _case("Xception", tmp_path_factory)
    full = load_pretrained(create_model("xception_tf"), files["legacy.h5"]).eval()
    backbone = load_pretrained(create_model("xception_tf", num_classes=0), files["legacy.h5"]).eval()
    x = torch.from_numpy(images).permute(0, 3, 1, 2) / 127.5 - 1.0
    with torch.no_grad():
        assert torch.equal(backbone(x), full.forward_head(full.forward_features(x), pre_logits=True))
    gray = load_pretrained(create_model("xception_tf", in_chans=1), files["weights.h5"])
    first = full.features.entry_conv1.conv.weight
    assert torch.allclose(gray.features.entry_conv1.conv.weight, first.sum(1, keepdim=True))


def test_files_are_told_apart_by_their_bytes_not_only_their_names(tmp_path_factory, tmp_path):
    """An HDF5 file without a suffix is read as Keras; a torch.save file named .h5 is named as such."""
    _, files, images, reference = _case("Xception", tmp_path_factory)
    bare = tmp_path / "weights"
    bare.write_bytes(files["legacy.h5"].read_bytes())
    model = load_pretrained(create_model("xception_tf"), bare)
    assert _rel(_ours("xception_tf", images, model), reference) <= RTOL
    torch.save(model.state_dict(), tmp_path / "torch.h5")
    with pytest.raises(CheckpointError, match="named like a Keras file but holds no HDF5 data: its bytes are a "
                       r"PyTorch checkpoint's \(torch.save\); rename it to .pth"):
        load_pretrained(create_model("xception_tf"), tmp_path / "torch.h5")
