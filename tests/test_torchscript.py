"""TorchScript for deployment: every model, with and without auxiliary heads, and features_only extractors
are scripted, saved with ``torch.jit.save`` and loaded in a fresh process that imports torch only; there
``train()`` / ``eval()`` work, the eval-mode outputs equal the eager model's exactly (``torch.equal``, same
thread count), and the input check runs inside the scripted model with the eager error messages."""

import subprocess
import sys
import textwrap
import warnings

import pytest
import torch
from timm.layers import freeze_batch_norm_2d  # torchvision's FrozenBatchNorm2d in place of each BatchNorm2d
from torch import nn

from inception_zoo import get_record

from helpers import models_without_twins

MODELS = models_without_twins()
# Scripting costs about 8 ms of TorchScript's frontend per submodule (2-10 s per model on this project's
# CPU), so the extractors, whose forward is one generic loop over stages the models already cover, are
# scripted for three layouts: no BatchNorm with LRN, the CIFAR reductions (1, 2, 4), and a selection.
EXTRACTORS = {"inception_v1": {}, "inception_v1_cifar": {}, "xception": {"out_indices": (1, 3)}}
VARIANTS = (
    [(name, {}) for name in MODELS]
    + [(name, {"aux_logits": True}) for name in MODELS if get_record(name).aux_heads]
    + [(name, {"features_only": True, **options}) for name, options in EXTRACTORS.items()]
)

# Runs in a fresh interpreter: loads each saved model with torch only, switches it to train() and back to
# eval(), runs the eval-mode forward and each bad input; writes the outputs and the error messages.
LOADER = textwrap.dedent("""
    import sys
    import torch

    torch.set_num_threads(int(sys.argv[2]))
    cases = torch.load(sys.argv[1] + "/cases.pt", weights_only=True)
    results = []
    for case in cases:
        # Interpreted as saved; the optimizing executor (what C++ runs by default: a profiling call, then
        # optimized calls) only where asked, as it costs seconds per model.
        with torch.jit.optimized_execution(case["optimize"]):
            model = torch.jit.load(case["file"])
            model.train()
            trains = all(m.training for m in model.modules())
            model.eval()
            evals = not any(m.training for m in model.modules())
            with torch.no_grad():
                outs = [model(case["x"]) for _ in range(3 if case["optimize"] else 1)]
            errors = {}
            for label, bad in case["bad"].items():
                model.train(label == "batch of one in train mode")
                try:
                    model(bad)
                    errors[label] = "no error"
                except torch.jit.Error as e:
                    errors[label] = str(e)
        results.append({"outs": outs, "trains": trains, "evals": evals, "errors": errors})
    assert "inception_zoo" not in sys.modules
    torch.save(results, sys.argv[1] + "/results.pt")
""")


def _bad_inputs(x: torch.Tensor, has_bn: bool) -> dict[str, torch.Tensor]:
    bad = {
        "3-D": x[0],
        "channels": x[:, :1],
        "width": x[..., :-1],
        "integer": x.to(torch.uint8),
        "dtype": x.double(),
    }
    if has_bn:
        bad["batch of one in train mode"] = x[:1]
    return bad


def _eager_error(model: nn.Module, x: torch.Tensor, train: bool) -> str:
    model.train(train)  # the error is raised before any layer runs: the shared model is left as it was
    try:
        with pytest.raises(ValueError) as info:
            model(x)
    finally:
        model.eval()
    return str(info.value)


SHARDS = 3  # the variants in three tests, which pytest-xdist runs side by side (one fresh process each)


@pytest.mark.slow
@pytest.mark.parametrize("shard", range(SHARDS))
def test_script_save_load_in_a_fresh_process(shard, built, tmp_path):
    """Every registered model, its aux-head variant where it has one and three features_only extractors,
    at the model's minimum input size with a batch of 2 (every third variant per shard)."""
    cases, expected = [], []
    for i, (name, options) in list(enumerate(VARIANTS))[shard::SHARDS]:
        model = built(name, **options)
        _, h, w = get_record(name).min_input_size
        x = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(i))
        path = tmp_path / f"{i}.pt"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TorchScript's deprecation notices
            torch.jit.save(torch.jit.script(model), str(path))
        has_bn = any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
        bad = _bad_inputs(x, has_bn)
        with torch.no_grad():
            out = model(x)
        messages = {
            label: _eager_error(model, b, label == "batch of one in train mode") for label, b in bad.items()
        }
        optimize = name == "inception_v1_bn" and "features_only" not in options
        cases.append({"file": str(path), "x": x, "bad": bad, "optimize": optimize})
        expected.append((f"{name} {options}", out, messages))
    torch.save(cases, tmp_path / "cases.pt")
    script = tmp_path / "load.py"
    script.write_text(LOADER)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path), str(torch.get_num_threads())],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = torch.load(tmp_path / "results.pt", weights_only=True)
    assert len(results) == len(expected)
    for (what, out, messages), result in zip(expected, results):
        assert result["trains"] and result["evals"], what
        for loaded in result["outs"]:
            if isinstance(out, list):  # features_only: one map per reduction
                assert len(loaded) == len(out) and all(map(torch.equal, loaded, out)), what
            else:
                assert torch.equal(loaded, out), what
        for label, message in messages.items():
            # TorchScript wraps the message: "...builtins.ValueError: <the eager message>"
            assert f"builtins.ValueError: {message}" in result["errors"][label], (what, label)


def _scripted(model: nn.Module) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.script(model)


def test_scripted_batch_of_one_follows_the_batchnorm_modes(fresh):
    """Scripted, the batch-of-one check looks at the BatchNorm layers at call time, as eager mode does."""
    model = fresh("inception_v1_bn")
    x = torch.randn(1, 3, 32, 32)
    scripted = _scripted(model).train()
    with pytest.raises(torch.jit.Error, match="inception_v1_bn in train mode needs a batch of at least 2"):
        scripted(x)
    for m in scripted.modules():  # BatchNorm (and dropout) frozen inside the train-mode scripted model
        if m.original_name in ("BatchNorm2d", "Dropout"):
            m.eval()
    assert scripted.training
    with torch.no_grad():
        assert torch.equal(scripted(x), model.eval()(x))
    scripted.features.conv1_7x7_s2.bn.train()  # one BatchNorm normalizing over the batch again
    with pytest.raises(torch.jit.Error, match="needs a batch of at least 2"):
        scripted(x)

    frozen = _scripted(freeze_batch_norm_2d(fresh("inception_v1_bn"))).train()
    assert frozen(x).shape == (1, 1000)
    no_stats = fresh("inception_v1_bn").train()  # a BatchNorm without running statistics, in eval mode
    no_stats.features.conv1_7x7_s2.bn = nn.BatchNorm2d(64, track_running_stats=False).eval()
    for m in no_stats.modules():
        if isinstance(m, nn.BatchNorm2d) and m.track_running_stats:
            m.eval()
    with pytest.raises(torch.jit.Error, match="needs a batch of at least 2"):
        _scripted(no_stats)(x)
