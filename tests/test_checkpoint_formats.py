"""The checkpoints real training runs write load with identical logits; pickled code is refused, never run.

Each container is built as its tool writes it (timm's ``train.py`` CheckpointSaver, torchvision's
``references/classification/train.py``, PyTorch Lightning's checkpoint connector, DDP and torch.compile
wrappers), with a real optimizer, scheduler and ``argparse.Namespace`` of arguments.
"""

import argparse
import dataclasses
import os
import pickle
import re
import warnings

import pytest
import torch
from helpers import Exploit, realistic
from torch import nn
from torch.optim.swa_utils import AveragedModel

from inception_zoo import CheckpointError, create_model, load_pretrained

NAME = "inception_v1_cifar"  # the cheapest model to build and run
X = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))  # small: the test is the weights


@pytest.fixture(scope="module")
def trained():
    """A source model with non-trivial weights, and the optimizer / scheduler states of a training run."""
    torch.manual_seed(1)
    model = realistic(create_model(NAME), seed=1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()  # momentum buffers, as after a real step (a zero gradient leaves the weights as they are)
    warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.01, total_iters=5)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=95)
    scheduler = torch.optim.lr_scheduler.SequentialLR(optimizer, [warmup, cosine], milestones=[5])
    with torch.no_grad():
        logits = model(X)
    return model, optimizer.state_dict(), scheduler.state_dict(), logits


@pytest.fixture(scope="module")
def ema():
    """EMA weights different from the trained model's, and their logits."""
    torch.manual_seed(2)
    model = realistic(create_model(NAME), seed=2)
    with torch.no_grad():
        return model, model(X)


@pytest.fixture
def target(built, fresh):
    """A model to load into, and the weights it has (a shared model's, never changed: to check that a refused
    load changed nothing)."""
    return fresh(NAME).eval(), built(NAME).state_dict()


def _unchanged(model, before):
    return all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def _logits(model):
    with torch.no_grad():
        return model.eval()(X)


def _timm(state, optimizer, ema_state=None, **extra):
    """timm ``train.py`` (timm.utils.CheckpointSaver._save)."""
    args = argparse.Namespace(
        model=NAME,
        lr=0.1,
        epochs=100,
        sched="cosine",
        batch_size=128,
        model_ema=False,
        mean=None,
        input_size=None,
        amp=True,
        device="cuda:0",
        opt="sgd",
        momentum=0.9,
    )
    checkpoint = {
        "epoch": 3,
        "arch": NAME,
        "optimizer": optimizer,
        "version": 2,
        "args": args,
        "amp_scaler": {
            "scale": 65536.0,
            "growth_factor": 2.0,
            "backoff_factor": 0.5,
            "growth_interval": 2000,
            "_growth_tracker": 12,
        },
        "state_dict": state,
    }
    if ema_state is not None:
        checkpoint["state_dict_ema"] = ema_state
    checkpoint["metric"] = 71.25
    checkpoint["saver"] = {
        "checkpoint_files": [("checkpoint-2.pth.tar", 70.5)],
        "best_epoch": 2,
        "best_metric": 70.5,
        "pending": (3, 71.25),
    }
    return checkpoint | extra


def _torchvision(state, optimizer, scheduler, ema_model=None):
    """torchvision ``references/classification/train.py`` (model_ema: its ExponentialMovingAverage, an
    ``AveragedModel`` with buffers)."""
    args = argparse.Namespace(
        model="googlenet",
        lr=0.1,
        epochs=90,
        lr_scheduler="cosineannealinglr",
        lr_warmup_epochs=5,
        amp=True,
        model_ema=ema_model is not None,
        output_dir="/runs",
        resume="",
        weights=None,
        distributed=True,
        gpu=0,
        world_size=8,
    )
    checkpoint = {
        "model": state,
        "optimizer": optimizer,
        "lr_scheduler": scheduler,
        "epoch": 89,
        "args": args,
    }
    if ema_model is not None:
        checkpoint["model_ema"] = AveragedModel(ema_model, use_buffers=True).state_dict()
    checkpoint["scaler"] = {
        "scale": 32768.0,
        "growth_factor": 2.0,
        "backoff_factor": 0.5,
        "growth_interval": 2000,
        "_growth_tracker": 0,
    }
    return checkpoint


def _lightning(state, optimizer, scheduler, attribute="model.", hyper_parameters=None):
    """PyTorch Lightning (``_CheckpointConnector.dump_checkpoint``): the LightningModule's state dict, its
    keys under the attribute that holds the network."""
    score = torch.tensor(0.7125)
    return {
        "epoch": 9,
        "global_step": 3910,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": {attribute + k: v for k, v in state.items()},
        "loops": {
            "fit_loop": {
                "state_dict": {},
                "epoch_progress": {"total": {"ready": 10, "completed": 9}},
                "epoch_loop.batch_progress": {"total": {"ready": 3910, "completed": 3910}},
            }
        },
        "callbacks": {
            "ModelCheckpoint{'monitor': 'val_acc', 'mode': 'max', 'every_n_train_steps': 0, 'every_n_epochs': 1, "
            "'train_time_interval': None}": {
                "monitor": "val_acc",
                "best_model_score": score,
                "best_model_path": "/runs/epoch=9.ckpt",
                "current_score": score,
                "dirpath": "/runs",
                "best_k_models": {"/runs/epoch=9.ckpt": score},
                "kth_best_model_path": "/runs/epoch=9.ckpt",
                "kth_value": score,
                "last_model_path": "",
            },
            "EarlyStopping{'monitor': 'val_acc', 'mode': 'max'}": {
                "wait_count": 0,
                "stopped_epoch": 0,
                "best_score": score,
                "patience": 5,
            },
        },
        "optimizer_states": [optimizer],
        "lr_schedulers": [scheduler],
        "native_amp_scaling_state": {
            "scale": 1024.0,
            "growth_factor": 2.0,
            "backoff_factor": 0.5,
            "growth_interval": 2000,
            "_growth_tracker": 7,
        },
        "hparams_name": "kwargs",
        "hyper_parameters": hyper_parameters
        or {
            "model_name": NAME,
            "lr": 0.1,
            "betas": (0.9, 0.999),
            "milestones": [30, 60],
            "label_smoothing": None,
        },
    }


def _prefixed(state, prefix):
    return {prefix + k: v for k, v in state.items()}


CONTAINERS = {
    "plain state dict": lambda s, o, sch: s,
    "timm train.py": lambda s, o, sch: _timm(s, o),
    "timm train.py, DDP and torch.compile": lambda s, o, sch: _timm(_prefixed(s, "module._orig_mod."), o),
    "torchvision train.py": lambda s, o, sch: _torchvision(s, o, sch),
    "torchvision train.py, DDP": lambda s, o, sch: _torchvision(_prefixed(s, "module."), o, sch),
    "lightning model.": lambda s, o, sch: _lightning(s, o, sch),
    "lightning net. compiled": lambda s, o, sch: _lightning(s, o, sch, attribute="net._orig_mod."),
    "lightning backbone. DDP": lambda s, o, sch: _lightning(s, o, sch, attribute="backbone.module."),
    "DDP": lambda s, o, sch: _prefixed(s, "module."),
    "torch.compile": lambda s, o, sch: _prefixed(s, "_orig_mod."),
    "torch.compile of DDP": lambda s, o, sch: _prefixed(s, "_orig_mod.module."),
    "DDP of torch.compile": lambda s, o, sch: _prefixed(s, "module._orig_mod."),
}


@pytest.mark.parametrize("kind", CONTAINERS)
def test_training_checkpoint_loads_with_identical_logits(kind, trained, target, tmp_path):
    source, optimizer, scheduler, expected = trained
    checkpoint = CONTAINERS[kind](source.state_dict(), optimizer, scheduler)
    path = tmp_path / ("last.ckpt" if kind.startswith("lightning") else "checkpoint.pth.tar")
    torch.save(checkpoint, path)
    model, _ = target
    assert torch.equal(_logits(load_pretrained(model, path)), expected)


def test_create_model_and_a_loaded_checkpoint(trained, target, tmp_path):
    source, optimizer, _, expected = trained
    checkpoint = _timm(_prefixed(source.state_dict(), "module."), optimizer)
    torch.save(checkpoint, tmp_path / "model_best.pth.tar")
    assert torch.equal(_logits(create_model(NAME, pretrained=tmp_path / "model_best.pth.tar")), expected)
    model, _ = target
    assert torch.equal(_logits(load_pretrained(model, checkpoint)), expected)  # a checkpoint loaded already


def test_ema_only(ema, target, tmp_path):
    ema_model, expected = ema
    torch.save({"state_dict_ema": ema_model.state_dict()}, tmp_path / "ema.pth")
    model, before = target
    with pytest.raises(
        CheckpointError, match=r"holds EMA weights only \('state_dict_ema'\); pass use_ema=True"
    ):
        load_pretrained(model, tmp_path / "ema.pth", use_ema=False)
    assert _unchanged(model, before)
    assert torch.equal(_logits(load_pretrained(model, tmp_path / "ema.pth")), expected)


@pytest.mark.parametrize("tool", ["timm", "torchvision"])
def test_ema_weights_are_taken_unless_use_ema_is_false(tool, trained, ema, target, tmp_path):
    """As timm's ``load_checkpoint``: EMA weights by default where a checkpoint has both."""
    source, optimizer, scheduler, raw_logits = trained
    ema_model, ema_logits = ema
    if tool == "timm":
        checkpoint = _timm(source.state_dict(), optimizer, ema_state=ema_model.state_dict())
    else:
        checkpoint = _torchvision(source.state_dict(), optimizer, scheduler, ema_model=ema_model)
    torch.save(checkpoint, tmp_path / "both.pth")
    model, _ = target
    assert torch.equal(_logits(load_pretrained(model, tmp_path / "both.pth")), ema_logits)
    assert torch.equal(_logits(load_pretrained(model, tmp_path / "both.pth", use_ema=False)), raw_logits)
    assert torch.equal(_logits(load_pretrained(model, tmp_path / "both.pth", use_ema=True)), ema_logits)


def test_lightning_prefix_on_a_peer_layout(tmp_path):
    """A LightningModule holding torchvision's googlenet as ``self.backbone``: prefix removed, then the
    torchvision key map applies."""
    import torchvision

    torch.manual_seed(3)
    peer = realistic(torchvision.models.googlenet(aux_logits=False, init_weights=True, transform_input=True))
    optimizer = torch.optim.SGD(peer.parameters(), lr=0.1).state_dict()
    torch.save(_lightning(peer.state_dict(), optimizer, {}, attribute="backbone."), tmp_path / "g.ckpt")
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        ours, theirs = create_model("inception_v1_bn", pretrained=tmp_path / "g.ckpt").eval()(x), peer(x)
    assert (ours - theirs).abs().max() <= 1e-4 * theirs.abs().max()
    assert torch.equal(ours.topk(5).indices, theirs.topk(5).indices)


def test_prefix_kept_where_removing_it_does_not_fit(trained, target, tmp_path):
    """Keys beside the network (a loss with class weights) stay: they are named, nothing is loaded."""
    source, optimizer, scheduler, _ = trained
    checkpoint = _lightning(source.state_dict(), optimizer, scheduler)
    checkpoint["state_dict"]["criterion.weight"] = torch.ones(10)
    torch.save(checkpoint, tmp_path / "extra.ckpt")
    model, before = target
    with pytest.raises(
        CheckpointError, match=r"after removing the prefix 'model\.'\); unexpected: criterion\.weight"
    ):
        load_pretrained(model, tmp_path / "extra.ckpt")
    assert _unchanged(model, before)


@pytest.mark.parametrize("how", ["ours", "in a dict", "legacy format", "protocol 1", "torch module"])
def test_whole_pickled_model_gets_its_own_message(how, trained, target, tmp_path):
    source, *_ = trained
    path, m, where, cls = (
        tmp_path / "whole.pth",
        "m",
        "",
        f"{type(source).__module__}.{type(source).__qualname__}",
    )
    if how == "in a dict":  # as YOLOv5 and others write
        torch.save({"epoch": 3, "model": source, "optimizer": None}, path)
        m, where = "ckpt", "['model']"
    elif how == "legacy format":
        torch.save(source, path, _use_new_zipfile_serialization=False)
    elif how == "protocol 1":
        torch.save(source, path, pickle_protocol=1)
    elif how == "torch module":
        torch.save(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()), path)
        cls = "torch.nn.modules.container.Sequential"
    else:
        torch.save(source, path)
    model, before = target
    with pytest.raises(CheckpointError) as e:
        load_pretrained(model, path)
    msg = str(e.value)
    place = f"holds, at ckpt{where}," if where else "is"
    assert (
        f"refused to load {str(path)!r}: it {place} a whole pickled nn.Module ({cls}), not a state dict"
        in msg
    )
    assert "unpickling it would run code named in the file (arbitrary code), which is never done here" in msg
    assert (
        f"in two lines: {m} = torch.load({str(path)!r}, weights_only=False); "
        f'torch.save({m}{where}.state_dict(), "weights.pth").'
    ) in msg
    assert msg.endswith("The model's weights were not changed.") and "truncated" not in msg
    assert _unchanged(model, before)


@dataclasses.dataclass
class _Config:
    lr: float = 0.1


@pytest.mark.parametrize("thing", ["a function that runs code", "a class"])
def test_a_pickled_global_outside_the_allow_list_is_named_and_never_run(thing, trained, target, tmp_path):
    source, optimizer, scheduler, _ = trained
    marker = tmp_path / "pwned"
    value = Exploit(marker) if thing.startswith("a function") else _Config()
    named = f"{os.system.__module__}.system" if thing.startswith("a function") else f"{__name__}._Config"
    path = tmp_path / "hp.ckpt"
    torch.save(_lightning(source.state_dict(), optimizer, scheduler, hyper_parameters={"cfg": value}), path)
    model, before = target
    with pytest.raises(CheckpointError) as e:
        load_pretrained(model, path)
    msg = str(e.value)
    assert (
        f"it needs arbitrary code to unpickle (GLOBAL {named}, at ckpt['hyper_parameters']['cfg']; "
        "not allow-listed), which is never run"
    ) in msg
    assert f"ckpt = torch.load({str(path)!r}, weights_only=False); torch.save(ckpt['state_dict'], " in msg
    assert not marker.exists() and _unchanged(model, before)
    with open(path, "wb") as f:  # a plain pickle, the code where the state dict should be
        pickle.dump({"state_dict": Exploit(marker)}, f)
    with pytest.raises(
        CheckpointError, match=re.escape(f"GLOBAL {os.system.__module__}.system, at ckpt['state_dict']")
    ):
        load_pretrained(model, path)
    assert not marker.exists() and _unchanged(model, before)


def test_other_files_keep_their_messages(target, tmp_path):
    model, before = target
    messages = {}
    for kind, data in {
        "text": b"hello world\n" * 10,
        "empty": b"",
        "random": bytes(range(105, 256)) * 8,
    }.items():
        (tmp_path / f"{kind}.pth").write_bytes(data)
        with pytest.raises(CheckpointError) as e:
            load_pretrained(model, tmp_path / f"{kind}.pth")
        messages[kind] = str(e.value)
    assert messages["empty"].endswith(
        "(truncated or corrupt?): the file is empty. The model's weights were not changed."
    )
    for kind in ("text", "random"):
        assert "(truncated or corrupt?): its bytes are neither a zip archive nor a pickle" in messages[kind]
    assert not any(re.search(r": \d+\.", m) for m in messages.values()), messages  # no stray ": 105"
    with open(tmp_path / "plain.pth", "wb") as f:  # pickle.dump's protocol: no code, but no torch.save either
        pickle.dump({"w": 1.0}, f, protocol=4)
    torch.save({"w": torch.ones(1)}, tmp_path / "p4.pth", pickle_protocol=4)
    for file, written in {
        "plain.pth": "pickle.dump (pickle protocol 4), not torch.save",
        "p4.pth": "torch.save(..., pickle_protocol=4)",
    }.items():
        with pytest.raises(
            CheckpointError, match=re.escape(f"it was written by {written}, which torch.load(")
        ):
            load_pretrained(model, tmp_path / file)
    with warnings.catch_warnings():  # torch.jit is deprecated
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(nn.Linear(2, 2)), tmp_path / "scripted.pt")
    with pytest.raises(
        CheckpointError, match=r"it is a TorchScript archive \(torch\.jit\.save\), not a state dict"
    ):
        load_pretrained(model, tmp_path / "scripted.pt")
    assert _unchanged(model, before)


def test_namespace_is_allow_listed_only_while_reading(trained, target, tmp_path):
    source, optimizer, *_ = trained
    model, _ = target
    torch.save(_timm(source.state_dict(), optimizer), tmp_path / "t.pth")
    before = torch.serialization.get_safe_globals()  # a list made from a set: compare as sets
    load_pretrained(model, tmp_path / "t.pth")
    assert set(torch.serialization.get_safe_globals()) == set(before)
    torch.serialization.add_safe_globals([argparse.Namespace])  # a user's own allow-list stays as it was
    try:
        load_pretrained(model, tmp_path / "t.pth")
        assert argparse.Namespace in torch.serialization.get_safe_globals()
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(before)
