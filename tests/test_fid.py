"""The FID Inception and the FID: the same features as pytorch-fid and torch-fidelity on real photos, with
the published weights file placed where torch.hub caches it (random weights, non-trivial BatchNorm
statistics, network off); the same FID as pytorch-fid's own command; statistics files both ways; and one
clear error per kind of bad input."""

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import torch
from PIL import Image

from inception_zoo import create_model, get_pretrained
from inception_zoo.cli import main
from inception_zoo.fid import (
    activations,
    fid,
    fid_model,
    frechet_distance,
    load_statistics,
    preprocess,
    save_statistics,
    statistics,
)
from inception_zoo.weights.sources import build_peer

from helpers import calibrated

pytest.importorskip("pytorch_fid")
from pytorch_fid import fid_score  # noqa: E402
from pytorch_fid.inception import InceptionV3  # noqa: E402


def _photos() -> list[np.ndarray]:
    from skimage import data

    return [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]


def _crops(flip: bool, offset: int, size: int = 72) -> list[np.ndarray]:
    """Five crops of each photo (20 images), mirrored with ``flip``, shifted by ``offset`` pixels."""
    out = []
    for photo in _photos():
        h, w, _ = photo.shape
        for i in range(5):
            y, x = offset + (i % 2) * (h - size - 2 * offset), offset + (i // 2) * (w - size - 2 * offset) // 2
            crop = photo[y:y + size, x:x + size]
            out.append(crop[:, ::-1].copy() if flip else crop)
    return out


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """TORCH_HOME holding the FID weights file (pytorch-fid's network at random init, BatchNorm with random
    affine parameters and statistics measured on real photos) under its published name, our cache empty, no
    network; two folders of 20 real photo crops each."""
    root = tmp_path_factory.mktemp("fid")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(root / "torch"))
        mp.setenv("INCEPTION_ZOO_CACHE", str(root / "ours"))
        mp.setenv("HF_HUB_OFFLINE", "1")
        _, row = get_pretrained("inception_v3_fid.fid")
        weights = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(row.url).path).name
        weights.parent.mkdir(parents=True)
        folders = []
        for name, flip, offset in (("a", False, 0), ("b", True, 9)):
            folder = root / name
            folder.mkdir()
            for i, crop in enumerate(_crops(flip, offset)):
                Image.fromarray(crop).save(folder / f"{i:02d}.png")
            folders.append(folder)
        torch.manual_seed(0)
        source = build_peer(get_pretrained("inception_v3_fid")[0].peers[0])
        torch.save(calibrated(source, preprocess(_uint8(folders[0], 10))).state_dict(), weights)
        yield {"weights": weights, "a": folders[0], "b": folders[1], "root": root}


def _rel(ours, theirs) -> float:
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


def _uint8(folder: Path, n: int) -> torch.Tensor:
    files = sorted(folder.glob("*.png"))[:n]
    return torch.stack([torch.from_numpy(np.array(Image.open(f).convert("RGB"))).permute(2, 0, 1) for f in files])


def test_taps_and_pool3_equal_pytorch_fid(env):
    """features_only gives pytorch-fid's four blocks' maps, forward_head(pre_logits=True) its pool3
    vector, on real photos, within 1e-5 relative (fp32)."""
    x = preprocess(_uint8(env["a"], 4))
    theirs = InceptionV3([0, 1, 2, 3]).eval()
    ours = create_model("inception_v3_fid", pretrained=True).eval()
    taps = create_model("inception_v3_fid", pretrained=True, features_only=True).eval()
    assert [i["num_chs"] for i in taps.feature_info.get_dicts()] == [64, 192, 768, 2048]
    with torch.no_grad():
        t0, t1, t2, t3 = theirs((x + 1) / 2)  # pytorch-fid takes [0, 1] and scales it itself
        maps = taps(x)
        pool3 = ours.forward_head(ours.forward_features(x), pre_logits=True)
    for mine, ref in zip(maps[:3], (t0, t1, t2)):
        assert mine.shape == ref.shape and _rel(mine, ref) <= 1e-5
    assert pool3.shape == (4, 2048) and _rel(pool3, t3.flatten(1)) <= 1e-5
    assert ours.default_cfg["weights_source"] == "pytorch_fid" and ours.num_classes == 1008


@pytest.mark.parametrize("dims", [64, 2048])
def test_activations_equal_pytorch_fid(env, dims):
    """Our activations of a folder (deploy form, the default) against pytorch-fid's get_activations."""
    files = sorted(env["a"].glob("*.png"))[:6]
    theirs = fid_score.get_activations(files, InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[dims]]), batch_size=4,
                                       dims=dims, num_workers=0)
    ours = activations(files, dims=dims, batch_size=4, num_workers=0, progress=False)
    assert ours.dtype == np.float64 and ours.shape == (6, dims) and _rel(ours, theirs) <= 1e-5
    eager = activations(files, fid_model(dims, deploy=False), batch_size=4, num_workers=0, progress=False)
    assert _rel(eager, theirs) <= 1e-5


def test_deploy_features_are_as_exact_as_the_eager_network(env):
    """The deploy form (BatchNorm folded, fused and merged convolutions), the default, is as close to exact
    arithmetic (the network in float64) as the eager float32 network pytorch-fid runs."""
    import copy

    from inception_zoo.fid import FIDModel

    x = preprocess(_uint8(env["b"], 4))
    net = create_model("inception_v3_fid", pretrained=True).eval()
    with torch.inference_mode():
        exact = FIDModel(copy.deepcopy(net).double())(x.double())
        eager, deploy = FIDModel(net)(x), fid_model()(x)
    assert _rel(deploy, exact) <= max(2 * _rel(eager, exact), 1e-6) and _rel(deploy, eager) <= 1e-5


# The FID's matrix square root of a 2048×2048 product takes 24 s on this project's 2-core CPU, in each
# tool: the suite compares the 192-d FID (the same reading, resizing, statistics and square root, the
# network up to MaxPool_5a; pool3's features are compared above), `-m heavy` the 2048-d one.
@pytest.mark.parametrize("dims", [192, pytest.param(2048, marks=pytest.mark.heavy)])
def test_fid_equals_pytorch_fid_command(env, capsys, dims):
    """``inception-zoo fid A B`` prints the FID that ``python -m pytorch_fid A B`` prints, within 1e-6."""
    done = subprocess.run([sys.executable, "-m", "pytorch_fid", str(env["a"]), str(env["b"]), "--device", "cpu",
                           "--num-workers", "0", "--dims", str(dims)], capture_output=True, text=True,
                          env=dict(os.environ), check=True)
    theirs = float(re.search(r"FID:\s+(\S+)", done.stdout).group(1))
    stats = env["root"] / f"a{dims}.npz"
    argv = ["fid", str(env["a"]), str(env["b"]), "--num-workers", "0", "--save-stats", str(stats), "--dims", str(dims)]
    assert main(argv) == 0
    ours = float(re.search(r"FID: (\S+)", capsys.readouterr().out).group(1))
    assert theirs > 1 and abs(ours - theirs) <= 1e-6 * theirs
    # the statistics written on the way are pytorch-fid's format: its own reader takes them
    m1, s1 = fid_score.compute_statistics_of_path(str(stats), None, 50, dims, "cpu")
    m2, s2 = load_statistics(stats)
    assert np.array_equal(m1, m2) and np.array_equal(s1, s2) and s2.shape == (dims, dims)


def test_folders_and_statistics_files_mix(env, tmp_path, capsys):
    """A folder against a .npz gives the FID of the two folders (64-d taps here: cheap)."""
    both = fid(env["a"], env["b"], dims=64, num_workers=0, progress=False, save_stats=tmp_path / "a.npz")
    assert main(["fid", str(tmp_path / "a.npz"), str(env["b"]), "--dims", "64", "--num-workers", "0"]) == 0
    assert float(re.search(r"FID: (\S+)", capsys.readouterr().out).group(1)) == pytest.approx(both, rel=1e-12)
    assert main(["fid", str(env["b"]), "--save-stats", str(tmp_path / "b.npz"), "--dims", "64"]) == 0
    assert fid(tmp_path / "a.npz", tmp_path / "b.npz") == pytest.approx(both, rel=1e-12)


def test_statistics_written_by_pytorch_fid_are_read(env):
    out = env["root"] / "theirs64.npz"
    fid_score.save_fid_stats([str(env["a"]), str(out)], 50, "cpu", 64, num_workers=0)
    mu, sigma = load_statistics(out)
    ours = statistics(activations(env["a"], dims=64, num_workers=0, progress=False))
    assert _rel(mu, ours[0]) <= 1e-5 and _rel(sigma, ours[1]) <= 1e-5


def test_frechet_distance_has_pytorch_fid_numerics():
    """The same value as pytorch-fid's calculate_frechet_distance, for full-rank and for rank-deficient
    covariances (fewer samples than dims: the product is singular)."""
    rng = np.random.default_rng(0)
    for n, d in ((200, 16), (10, 32)):
        a, b = rng.normal(size=(n, d)), rng.normal(0.3, 1.2, size=(n, d))
        s1, s2 = statistics(a), statistics(b)
        assert frechet_distance(*s1, *s2) == pytest.approx(fid_score.calculate_frechet_distance(*s1, *s2), rel=1e-12)
    assert frechet_distance(*s1, *s1) == pytest.approx(0, abs=1e-6)


def test_torch_fidelity_features_with_its_resize(env):
    """torch-fidelity's Inception extractor, pointed at the same weights file, on uint8 photos: the same
    2048 features as ours with resize="torch-fidelity", and its resize equal to ours bit for bit."""
    pytest.importorskip("torch_fidelity")
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    images = _uint8(env["b"], 5)
    extractor = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(env["weights"]))
    with torch.no_grad():
        (theirs,) = extractor(images)
    ours = activations(images, batch_size=5, resize="torch-fidelity", progress=False)
    assert _rel(ours, theirs) <= 1e-5
    x = images.float()
    expected = (interpolate_bilinear_2d_like_tensorflow1x(x, size=(299, 299), align_corners=False) - 128) / 128
    assert torch.equal(preprocess(images, "torch-fidelity"), expected)


def test_grey_rgba_and_16_bit_images_are_read_as_pytorch_fid_reads_them(tmp_path):
    from inception_zoo.fid.features import _decode

    photo = _photos()[1][:40, :50]
    cases = {
        "grey.png": Image.fromarray(photo[..., 0]),
        "rgba.png": Image.fromarray(np.dstack([photo, np.full(photo.shape[:2], 128, np.uint8)])),
        "deep.png": Image.fromarray(photo[..., 0].astype(np.uint16) * 200),  # 16-bit grey
    }
    for name, image in cases.items():
        image.save(tmp_path / name)
    files = sorted(tmp_path.iterdir())
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    for file in files:
        rgb = torch.from_numpy(np.array(Image.open(file).convert("RGB"))).permute(2, 0, 1)
        x, error = _decode(file)
        assert not error and torch.equal(x, rgb), file.name


# ------------------------------------------------------------------------------------------ bad input
def _error(argv, capsys) -> str:
    """The one line the command leaves on stderr (a progress bar it had started is erased: carriage returns
    and blanks before the message, on the same line)."""
    assert main(["fid", *argv, "--num-workers", "0"]) == 1
    err = capsys.readouterr().err
    *bar, message = err.split("\r")
    assert all(part.strip() == "" or part.startswith("FID features") for part in bar), err
    assert message.startswith("inception-zoo fid: ") and message.count("\n") == 1 and message.endswith("\n"), err
    return message


def test_empty_folder(env, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("no images here")
    assert "no images under" in _error([str(tmp_path), str(env["b"])], capsys)


def test_fewer_than_two_images(env, tmp_path, capsys):
    Image.fromarray(_photos()[0][:64, :64]).save(tmp_path / "one.png")
    assert "at least 2 images" in _error([str(tmp_path), str(env["b"])], capsys)
    # also for the statistics of one folder, before any feature is computed (no progress bar)
    message = _error([str(tmp_path), "--save-stats", str(tmp_path / "one.npz")], capsys)
    assert message.startswith(f"inception-zoo fid: {tmp_path}: the FID needs at least 2 images")


def test_corrupt_image_is_named(env, tmp_path, capsys):
    for i, crop in enumerate(_crops(False, 0)[:3]):
        Image.fromarray(crop).save(tmp_path / f"{i}.png")
    data = (tmp_path / "1.png").read_bytes()
    (tmp_path / "1.png").write_bytes(data[: len(data) // 2])  # truncated
    (tmp_path / "x.jpg").write_bytes(b"not a jpeg")
    err = _error([str(tmp_path), str(env["b"])], capsys)
    assert f"cannot read image {tmp_path / '1.png'}" in err


def test_statistics_of_different_dims(env, tmp_path, capsys):
    rng = np.random.default_rng(0)
    save_statistics(tmp_path / "a.npz", *statistics(rng.normal(size=(10, 64))))
    save_statistics(tmp_path / "b.npz", *statistics(rng.normal(size=(10, 192))))
    assert "different dims" in _error([str(tmp_path / "a.npz"), str(tmp_path / "b.npz")], capsys)


def test_npz_with_values_that_are_not_statistics(tmp_path, capsys):
    with open(tmp_path / "good.NPZ", "wb") as f:  # any case of the suffix is a .npz (np.savez would add .npz)
        np.savez(f, mu=np.zeros(4), sigma=np.eye(4))
    np.savez(tmp_path / "nan.npz", mu=np.full(4, np.nan), sigma=np.eye(4))
    np.savez(tmp_path / "text.npz", mu=np.array(["a"] * 4), sigma=np.eye(4))
    good = str(tmp_path / "good.NPZ")
    assert "mu holds NaN or infinite values" in _error([str(tmp_path / "nan.npz"), good], capsys)
    assert "mu holds <U1 values, not real numbers" in _error([str(tmp_path / "text.npz"), good], capsys)
    assert main(["fid", good, good]) == 0 and capsys.readouterr().out == "FID: 0.0\n"


def test_device_errors_are_one_line(env, capsys):
    assert "device must be cpu, cuda" in _error([str(env["a"]), str(env["b"]), "--device", "foo"], capsys)
    if not torch.cuda.is_available():
        assert "no CUDA device is available" in _error([str(env["a"]), str(env["b"]), "--device", "cuda"], capsys)


def test_npz_without_mu_and_sigma(tmp_path, capsys):
    np.savez(tmp_path / "bad.npz", mean=np.zeros(4), cov=np.eye(4))
    np.savez(tmp_path / "good.npz", mu=np.zeros(4), sigma=np.eye(4))
    assert "no mu or sigma in it" in _error([str(tmp_path / "bad.npz"), str(tmp_path / "good.npz")], capsys)
    (tmp_path / "junk.npz").write_bytes(b"junk")
    assert "not a readable .npz" in _error([str(tmp_path / "junk.npz"), str(tmp_path / "good.npz")], capsys)


def test_bad_options(tmp_path, capsys):
    np.savez(tmp_path / "good.npz", mu=np.zeros(4), sigma=np.eye(4))
    good = str(tmp_path / "good.npz")
    assert "does not exist" in _error([good, str(tmp_path / "missing")], capsys)
    with pytest.raises(SystemExit):
        main(["fid", good, good, "--dims", "100"])
    with pytest.raises(ValueError, match=re.escape("images must be a (B, 3, H, W) or (B, 1, H, W) tensor, got (2, 4, 8, 8)")):
        activations(torch.zeros(2, 4, 8, 8), progress=False)
    with pytest.warns(UserWarning, match=re.escape("float images are taken in [0, 1] (pytorch-fid's convention); "
                                                    "these span [0, 255]")):
        preprocess(torch.linspace(0, 255, 3 * 8 * 8).reshape(1, 3, 8, 8))
    with pytest.raises(ValueError, match="uint8 in \\[0, 255\\] or float"):
        preprocess(torch.zeros(2, 3, 8, 8, dtype=torch.int32))
    with pytest.raises(ValueError, match="at least 2 images"):
        statistics(np.zeros((1, 8)))
