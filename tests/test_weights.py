"""Peer checkpoints load with identical logits; bad files fail cleanly and change nothing."""

import pickle
import subprocess
import sys

import pytest
import timm
import torch
import torchvision
from torch import nn

from inception_zoo import CheckpointError, CheckpointNotFoundError, create_model, load_pretrained, save_weights
from inception_zoo.records import IMAGENET_DEFAULT_MEAN, IMAGENET_INCEPTION_MEAN

from helpers import Exploit
from helpers import realistic as _realistic


def _bninception():
    from pytorchcv.models.bninception import bninception

    return bninception()


GOOGLENET_AUX = (("inception4a", "aux1"), ("inception4d", "aux2"))
V3_AUX = (("Mixed_6e", "AuxLogits"),)

# id: (our model, peer builder, the peer's aux heads as (module they tap, aux module))
MAPPINGS = {
    "torchvision googlenet": (
        "inception_v1_bn",
        lambda: torchvision.models.googlenet(aux_logits=False, init_weights=True, transform_input=True), (),
    ),
    "torchvision googlenet aux": (
        "inception_v1_bn",
        lambda: torchvision.models.googlenet(aux_logits=True, init_weights=True, transform_input=True),
        GOOGLENET_AUX,
    ),
    "torchvision inception_v3 aux": (
        "inception_v3",
        lambda: torchvision.models.inception_v3(aux_logits=True, init_weights=False, transform_input=False), V3_AUX,
    ),
    "timm inception_v3 aux": ("inception_v3", lambda: timm.create_model("inception_v3", aux_logits=True), V3_AUX),
    "timm inception_v4": ("inception_v4", lambda: timm.create_model("inception_v4"), ()),
    "timm inception_resnet_v2": ("inception_resnet_v2", lambda: timm.create_model("inception_resnet_v2"), ()),
    "timm legacy_xception": ("xception", lambda: timm.create_model("legacy_xception"), ()),
    "pytorchcv bninception": ("bn_inception", _bninception, ()),
    **{f"pytorchcv {cv}": (ours, lambda cv=cv: getattr(__import__(f"pytorchcv.models.{cv}", fromlist=[cv]), cv)(), ())
       for ours, cv in (("inception_v3", "inceptionv3"), ("inception_v4", "inceptionv4"),
                        ("inception_resnet_v2", "inceptionresnetv2"), ("xception", "xception"))},
}


def _logits(out):
    return out[0] if isinstance(out, tuple) else out


def assert_same_logits(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    err = (ours - theirs).abs().max().item()
    assert err <= 1e-4 * theirs.abs().max().item(), f"max |dlogits| {err}"
    assert torch.equal(ours.topk(5).indices, theirs.topk(5).indices)


def _our_aux_eval(model, x):
    """Our auxiliary logits in eval mode (running statistics, no dropout), shallowest first."""
    out = []
    for i, stage in enumerate(model.features):
        x = stage(x)
        out += [head(x) for tap, head in zip(model.aux_taps, model.aux_heads) if tap == i]
    return out


def _peer_aux_eval(peer, x, taps):
    """The peer's auxiliary heads applied, in eval mode, to the maps they tap (caught by hooks)."""
    out, handles = [], []
    for tap, aux in taps:
        head = peer.get_submodule(aux)
        handles.append(peer.get_submodule(tap).register_forward_hook(lambda m, i, o, h=head: out.append(h(o))))
    try:
        peer(x)
    finally:
        for h in handles:
            h.remove()
    return out


@pytest.mark.parametrize("key", MAPPINGS)
def test_peer_checkpoint_gives_identical_logits(key, tmp_path):
    name, build, taps = MAPPINGS[key]
    torch.manual_seed(0)
    peer = _realistic(build())
    path = tmp_path / "peer.pth"
    torch.save(peer.state_dict(), path)
    ours = create_model(name, aux_logits=bool(taps), pretrained=path).eval()
    x = torch.randn(2, *ours.default_cfg["input_size"])
    with torch.no_grad():
        assert_same_logits(ours(x), _logits(peer(x)))
        if taps:
            mine, theirs = _our_aux_eval(ours, x), _peer_aux_eval(peer, x, taps)
            assert len(mine) == len(theirs) == len(taps)
            for a, b in zip(mine, theirs):
                assert_same_logits(a, b)


def test_train_mode_outputs_match_the_peer(tmp_path):
    """Train mode, dropout off (BatchNorm on batch statistics): logits and aux logits as the peer's."""
    torch.manual_seed(8)
    peer = _realistic(torchvision.models.inception_v3(aux_logits=True, init_weights=False, transform_input=False))
    torch.save(peer.state_dict(), tmp_path / "tv.pth")
    ours = create_model("inception_v3", aux_logits=True, pretrained=tmp_path / "tv.pth")
    for model in (ours, peer):
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.p = 0.0
        model.train()
    x = torch.randn(2, 3, 299, 299)
    with torch.no_grad():
        a, b = ours(x), peer(x)
    assert_same_logits(a.logits, b.logits)
    assert len(a.aux) == 1
    assert_same_logits(a.aux[0], b.aux_logits)


def test_transform_input_is_folded_for_torchvision_inception_v3(tmp_path):
    torch.manual_seed(1)
    peer = _realistic(torchvision.models.inception_v3(aux_logits=False, init_weights=False, transform_input=True))
    torch.save(peer.state_dict(), tmp_path / "tv.pth")
    folded = create_model("inception_v3", pretrained=tmp_path / "tv.pth", pretrained_source="torchvision").eval()
    assert folded.default_cfg["mean"] == IMAGENET_DEFAULT_MEAN
    x = torch.randn(2, 3, 299, 299)  # ImageNet-normalized input
    with torch.no_grad():
        assert_same_logits(folded(x), peer(x))
    # auto-detection takes the shared key layout as timm's: no fold, input normalized with 0.5 / 0.5
    plain = create_model("inception_v3", pretrained=tmp_path / "tv.pth").eval()
    assert plain.default_cfg["mean"] == IMAGENET_INCEPTION_MEAN
    assert plain.default_cfg["weights_source"] == "timm"
    peer.transform_input = False
    with torch.no_grad():
        assert_same_logits(plain(x), peer(x))


def test_googlenet_fold_changes_cfg_and_matches_transform_input(tmp_path):
    torch.manual_seed(2)
    peer = _realistic(torchvision.models.googlenet(aux_logits=False, init_weights=True, transform_input=True))
    torch.save(peer.state_dict(), tmp_path / "g.pth")
    ours = create_model("inception_v1_bn", pretrained=tmp_path / "g.pth").eval()
    assert ours.default_cfg["mean"] == IMAGENET_DEFAULT_MEAN and ours.default_cfg["weights_source"] == "torchvision"
    x = torch.randn(3, 3, 224, 224)
    with torch.no_grad():
        assert_same_logits(ours(x), peer(x))
    # no fold on request: the first conv then holds torchvision's weights as they are
    raw = create_model("inception_v1_bn")
    load_pretrained(raw, tmp_path / "g.pth", transform_input=False)
    assert torch.equal(raw.features.conv1_7x7_s2.conv.weight, peer.conv1.conv.weight)


def test_safetensors_and_containers(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(3)
    peer = _realistic(torchvision.models.googlenet(aux_logits=False, init_weights=True, transform_input=True))
    state = peer.state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "g.safetensors")  # keys sorted by name
    torch.save({"epoch": 3, "state_dict": {"module." + k: v for k, v in state.items()}}, tmp_path / "ddp.pt")
    torch.save({"model": state}, tmp_path / "wrapped.bin")
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = peer(x)
        for f in ("g.safetensors", "ddp.pt", "wrapped.bin"):
            assert_same_logits(create_model("inception_v1_bn", pretrained=tmp_path / f).eval()(x), expected)
        assert_same_logits(create_model("inception_v1_bn", pretrained=state).eval()(x), expected)


def test_head_mismatch_loads_the_rest_and_warns(tmp_path):
    torch.manual_seed(4)
    peer = _realistic(torchvision.models.googlenet(aux_logits=True, init_weights=True, num_classes=10))
    torch.save(peer.state_dict(), tmp_path / "g10.pth")
    with pytest.warns(UserWarning, match=r"re-initialized aux_heads\.0\.head\.fc, aux_heads\.1\.head\.fc, head\.fc"):
        ours = create_model("inception_v1_bn", aux_logits=True, pretrained=tmp_path / "g10.pth")
    assert ours.head.fc.out_features == 1000
    assert torch.equal(ours.features.inception_5b.branch1x1[0].conv.weight, peer.inception5b.branch1.conv.weight)
    assert torch.equal(ours.aux_heads[1].head.hidden[0].weight, peer.aux2.fc1.weight)
    assert torch.equal(ours.head.fc.bias, torch.zeros(1000))  # freshly initialized
    # the same number of classes: no warning, the classifier is the checkpoint's
    same = create_model("inception_v1_bn", num_classes=10, aux_logits=True, pretrained=tmp_path / "g10.pth")
    assert torch.equal(same.head.fc.weight, peer.fc.weight)


def test_missing_aux_heads_are_reinitialized_with_a_warning(tmp_path):
    peer = torchvision.models.googlenet(aux_logits=False, init_weights=False)
    torch.save(peer.state_dict(), tmp_path / "g.pth")
    with pytest.warns(UserWarning, match=r"re-initialized aux_heads\.0, aux_heads\.1 "):
        create_model("inception_v1_bn", aux_logits=True, pretrained=tmp_path / "g.pth")


def test_in_chans_adaptation(tmp_path):
    torch.manual_seed(5)
    peer = _realistic(timm.create_model("legacy_xception"))
    torch.save(peer.state_dict(), tmp_path / "x.pth")
    rgb = peer.conv1.weight
    gray = create_model("xception", in_chans=1, pretrained=tmp_path / "x.pth").eval()
    torch.testing.assert_close(gray.features.entry_conv1.conv.weight, rgb.sum(1, keepdim=True))
    x = torch.randn(1, 1, 96, 96)
    with torch.no_grad():  # a gray image: the same logits as the RGB model on its three copies
        assert_same_logits(gray(x), peer(x.repeat(1, 3, 1, 1)))
    four = create_model("xception", in_chans=4, pretrained=tmp_path / "x.pth")
    w = four.features.entry_conv1.conv.weight
    torch.testing.assert_close(w[:, :3], rgb * 3 / 4)
    torch.testing.assert_close(w[:, 3], rgb[:, 0] * 3 / 4)


def test_save_restore_round_trip_is_bit_exact(tmp_path):
    torch.manual_seed(6)
    peer = _realistic(torchvision.models.inception_v3(aux_logits=True, init_weights=False, transform_input=True))
    torch.save(peer.state_dict(), tmp_path / "tv.pth")
    model = create_model("inception_v3", aux_logits=True, pretrained=tmp_path / "tv.pth",
                         pretrained_source="torchvision")
    path = save_weights(model, tmp_path / "ours.safetensors")
    restored = create_model("inception_v3", aux_logits=True, pretrained=path)
    a, b = model.state_dict(), restored.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)
    assert restored.default_cfg["mean"] == IMAGENET_DEFAULT_MEAN  # the folded weights' normalization
    # without aux heads the saved aux weights are simply not needed
    plain = create_model("inception_v3", pretrained=path)
    assert torch.equal(plain.head.fc.weight, model.head.fc.weight)
    with pytest.raises(ValueError, match="ending in .safetensors"):
        save_weights(model, tmp_path / "ours.pth")


def _unchanged(model, before):
    after = model.state_dict()
    return all(torch.equal(before[k], after[k]) for k in before)


@pytest.fixture
def v3():
    model = create_model("inception_v3")
    return model, {k: v.clone() for k, v in model.state_dict().items()}


def test_missing_path(v3, tmp_path):
    model, before = v3
    with pytest.raises(CheckpointNotFoundError, match=r"inception_v3: checkpoint '.*nope\.pth' does not exist") as e:
        load_pretrained(model, tmp_path / "nope.pth")
    assert isinstance(e.value, FileNotFoundError) and _unchanged(model, before)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_truncated_file(v3, tmp_path, suffix):
    model, before = v3
    good = tmp_path / f"good{suffix}"
    if suffix == ".pth":
        torch.save(model.state_dict(), good)
    else:
        save_weights(model, good)
    data = good.read_bytes()
    bad = tmp_path / f"bad{suffix}"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"inception_v3: .*bad.* \(truncated or corrupt\?\)"):
        load_pretrained(model, bad)
    bad.write_bytes(bytes(range(256)) * 16)
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_pretrained(model, bad)
    assert _unchanged(model, before)


def test_checkpoint_of_another_architecture(v3, tmp_path):
    model, before = v3
    torch.save(timm.create_model("inception_v4").state_dict(), tmp_path / "v4.pth")
    with pytest.raises(CheckpointError) as e:
        load_pretrained(model, tmp_path / "v4.pth")
    msg = str(e.value)
    assert msg.startswith("inception_v3: the checkpoint does not fit (keys taken as the ")
    assert "missing: features.Conv2d_1a_3x3" in msg and "unexpected: features.0.conv.weight" in msg
    assert "The keys fit inception_v4 (timm layout)." in msg
    assert _unchanged(model, before)


def test_saved_from_another_architecture(v3, tmp_path):
    model, before = v3
    path = save_weights(create_model("inception_v1_bn"), tmp_path / "v1.safetensors")
    with pytest.raises(CheckpointError, match="saved from 'inception_v1_bn', another architecture"):
        load_pretrained(model, path)
    assert _unchanged(model, before)


def test_shape_mismatch_outside_the_head(v3, tmp_path):
    model, before = v3
    state = timm.create_model("inception_v3").state_dict()
    state["Mixed_6b.branch7x7_2.conv.weight"] = torch.zeros(128, 128, 1, 5)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError) as e:
        load_pretrained(model, tmp_path / "bad.pth")
    msg = str(e.value)
    assert "inception_v3" in msg and "timm layout" in msg
    assert "mis-shaped: features.Mixed_6b.branch7x7.1.conv_1xn.conv.weight (128, 128, 1, 5) vs (128, 128, 1, 7)" in msg
    assert _unchanged(model, before)


def test_missing_keys_are_named(v3):
    model, before = v3
    state = {k: v.clone() for k, v in model.state_dict().items() if "Mixed_7c" not in k}
    with pytest.raises(CheckpointError, match=r"keys taken as the ours layout\); missing: features\.Mixed_7c\."):
        load_pretrained(model, state)
    assert _unchanged(model, before)


def test_pickle_that_runs_code_is_refused(v3, tmp_path):
    model, before = v3
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"state_dict": Exploit(marker)}, f)
    torch.save({"w": torch.zeros(1), "x": Exploit(marker)}, tmp_path / "evil_zip.pt")
    for p in (path, tmp_path / "evil_zip.pt"):
        with pytest.raises(CheckpointError, match=r"refused to load .*which is never run"):
            load_pretrained(model, p)
    with open(path, "wb") as f:
        pickle.dump({"state_dict": Exploit(marker)}, f, protocol=2)
    with pytest.raises(CheckpointError, match=r"needs arbitrary code to unpickle.*GLOBAL posix\.system"):
        load_pretrained(model, path)
    assert not marker.exists() and _unchanged(model, before)


def test_bad_source(v3):
    model, before = v3
    with pytest.raises(CheckpointError, match="source must be one of auto, ours, legacy, torchvision, timm, pytorchcv"):
        load_pretrained(model, model.state_dict(), source="caffe")
    xception = create_model("xception_cifar")
    with pytest.raises(CheckpointError, match="no timm layout is known for it; known: ours, legacy"):
        load_pretrained(xception, xception.state_dict(), source="timm")
    assert _unchanged(model, before)


def test_convert_command(tmp_path, capsys):
    from inception_zoo.cli import main

    torch.manual_seed(7)
    peer = _realistic(torchvision.models.googlenet(aux_logits=True, init_weights=True, num_classes=10))
    torch.save(peer.state_dict(), tmp_path / "g.pth")
    dst = tmp_path / "g.safetensors"
    argv = ["convert", str(tmp_path / "g.pth"), str(dst), "--model", "inception_v1_bn"]
    assert main(argv) == 0
    assert "inception_v1_bn from the torchvision layout, 10 classes" in capsys.readouterr().out
    ours = create_model("inception_v1_bn", num_classes=10, aux_logits=True, pretrained=dst).eval()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        assert_same_logits(ours(x), _logits(peer(x)))
    assert main(argv[:-1] + ["googlenet"]) == 1
    assert "The keys fit inception_v1_bn (torchvision layout)." in capsys.readouterr().err
    unwritable = str(tmp_path / "no" / "such" / "g.safetensors")
    assert main(["convert", str(tmp_path / "g.pth"), unwritable, "--model", "inception_v1_bn"]) == 1
    assert "does not exist or is not writable" in capsys.readouterr().err


def test_loading_needs_no_peer_library(tmp_path):
    """In a fresh interpreter: our own checkpoint loads without importing timm, torchvision or pytorchcv
    (asserted via sys.modules); then, with those imports made to fail, a timm checkpoint still converts
    (through the committed key map) with the peer's logits."""
    torch.manual_seed(9)
    peer = _realistic(timm.create_model("inception_v3"))
    torch.save(peer.state_dict(), tmp_path / "timm_v3.pth")
    ours = save_weights(create_model("inception_v1_bn"), tmp_path / "ours.safetensors")
    x = torch.randn(1, 3, 75, 75)
    with torch.no_grad():
        torch.save({"x": x, "y": peer.eval()(x)}, tmp_path / "expected.pt")
    script = f"""
import sys
import torch, inception_zoo
inception_zoo.create_model("inception_v1_bn", pretrained={str(ours)!r})
print(sorted(n for n in ("timm", "torchvision", "pytorchcv") if n in sys.modules))
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("timm", "torchvision", "pytorchcv"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
e = torch.load({str(tmp_path / "expected.pt")!r})
m = inception_zoo.create_model("inception_v3", pretrained={str(tmp_path / "timm_v3.pth")!r}).eval()
with torch.no_grad():
    y = m(e["x"])
assert (y - e["y"]).abs().max() <= 1e-4 * e["y"].abs().max(), "logits differ"
print(m.default_cfg["weights_source"])
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines() == ["[]", "timm"]


@pytest.mark.parametrize("name", ["inception_v1_bn", "inception_resnet_v1"])  # named branches; residual blocks
def test_checkpoints_of_version_0_1_still_load(name):
    """inception_zoo 0.1 saved positional keys (``features.Mixed_6e.branches.2.2...``): the committed
    rename table maps them to today's names, and the logits are the same."""
    from inception_zoo.weights.keymaps import keymap

    torch.manual_seed(10)
    model = _realistic(create_model(name))
    table = keymap(name, "legacy")
    assert all(".branches." not in new for new in table.values())
    old = {old: model.state_dict()[new] for old, new in table.items() if not new.startswith("aux_heads.")}
    assert sum(".branches." in k for k in old) > len(old) / 2
    restored = create_model(name, pretrained=old).eval()
    assert restored.default_cfg["weights_source"] == "legacy"
    x = torch.randn(1, 3, 75, 75)
    with torch.no_grad():
        torch.testing.assert_close(restored(x), model(x), rtol=0, atol=0)


def test_committed_key_maps_match_the_installed_peers():
    """The key maps were generated from the peers' code; regenerating them gives the committed tables."""
    from inception_zoo.records import Peer
    from inception_zoo.registry import list_records
    from inception_zoo.weights.keymaps import keymap, layouts
    from inception_zoo.weights.keymaps.__main__ import generate_for

    added_after_0_1 = {"inception_v3_fid", "inception_v3_tf", "xception_tf", "inception_resnet_v1_facenet",  # no checkpoint
                       "xception41", "xception65", "xception71", "xception41p", "xception65p"}  # of inception_zoo 0.1 to load
    for record in list_records():
        legacy = set() if record.name in added_after_0_1 else {"legacy"}
        assert set(layouts(record.name)) == {p.source for p in record.peers} | legacy
        for peer in record.peers:
            assert isinstance(peer, Peer)
            assert generate_for(record, peer) == keymap(record.name, peer.source), (record.name, peer.source)


def test_a_classifier_over_other_features_is_refused_not_reset():
    """Another number of classes (or a wider pooling, catavgmax) re-initializes the classifier with a
    warning; a classifier over features this network does not have (a Flatten head's) is a mismatch."""
    state = create_model("inception_v1_bn", num_classes=5).state_dict()
    wide = dict(state, **{"head.fc.weight": torch.zeros(5, 999)})
    model = create_model("inception_v1_bn", num_classes=5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"mis-shaped: head.fc.weight \(5, 999\) vs \(5, 1024\)"):
        load_pretrained(model, wide)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    with pytest.warns(UserWarning, match="re-initialized head.fc"):
        load_pretrained(create_model("inception_v1_bn", num_classes=5, global_pool="catavgmax"), state)
