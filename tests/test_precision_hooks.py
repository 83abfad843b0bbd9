"""Half precision and hooks on the eager models (issue 13, cases 4 and 7).

Half precision: every registered model runs with float16 and with bfloat16 weights and input on CPU, and
under ``torch.autocast("cpu", dtype=torch.bfloat16)`` with float32 weights, at its minimum input size, and
gives logits close to float32's (the same on CUDA where a device is present). The one operator of the zoo
without CPU half kernels in torch 2.14 was ``avg_pool3d`` inside ``F.local_response_norm`` (GoogLeNet's
LRN); :class:`LocalResponseNorm` computes half input in float32 and returns the input's dtype.

The error measure is ``max |logits - logits_fp32| / max |logits_fp32|``. Measured on torch 2.14 CPU with the
weights below (seeded convolutions, fan-in init so the activations keep a trained network's scale,
non-trivial BatchNorm statistics), worst model inception_resnet_v2: 0.017 for bfloat16 weights, 0.014
under bfloat16 autocast, 0.0019 for float16 weights (bfloat16 keeps 8 significant bits, float16 11).
Asserted: ``BF16_TOL`` = 0.04 and ``FP16_TOL`` = 0.005, and the same top-1 class wherever float32's top-1
leads its runner-up by more than twice the tolerance (both logits may move by it).

Hooks: a forward hook on any module (every leaf, every BatchNorm, every BasicConv2d, every block) keeps
that module's own output: no later operation writes into it, in eval and in train mode, and a full
backward hook on the BatchNorm layers and conv blocks runs through a backward pass.
"""

import copy
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from helpers import realistic, twins_marked_heavy
from torch import nn

from inception_zoo import InceptionOutputs, get_record, list_models, optimize_for_inference
from inception_zoo.layers import BasicConv2d, LocalResponseNorm

MODELS = list_models()
AUX_MODELS = [n for n in MODELS if get_record(n).aux_heads]
BF16_TOL = 0.04  # measured worst: 0.017 (bfloat16 weights), 0.014 (bfloat16 autocast)
FP16_TOL = 0.005  # measured worst: 0.0019


def _half_ready(model: nn.Module) -> nn.Module:
    """Seeded fan-in weights (activations keep their scale through the depth, as a trained network's do;
    the fan-out init can grow them past float16's range of 65504) and non-trivial BatchNorm statistics."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu", generator=g)
    return realistic(model, seed=1)


def _rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    return ((ours.float() - ref).abs().max() / ref.abs().max()).item()


def _check_close(what: str, ours: torch.Tensor, ref: torch.Tensor, tol: float) -> None:
    assert torch.isfinite(ours).all(), f"{what}: non-finite logits"
    err = _rel_err(ours, ref)
    assert err <= tol, f"{what}: max |diff| / max |logit| = {err:.4f} > {tol}"
    top2 = ref.topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1]) > 2 * tol * ref.abs().max()
    same = ours.float().argmax(1) == ref.argmax(1)
    assert same[clear].all(), f"{what}: another top-1 class where float32's leads clearly"


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def _check_half_precisions(what: str, net: nn.Module, x: torch.Tensor, ref: torch.Tensor) -> None:
    """bfloat16 autocast, bfloat16 weights, float16 weights of ``net`` (converted in place at the end)."""
    with torch.no_grad():
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            auto = net(x)
        assert auto.dtype == torch.bfloat16
        _check_close(f"{what} autocast bfloat16", auto.cpu(), ref, BF16_TOL)
        bf16 = copy.deepcopy(net).to(torch.bfloat16)
        out = bf16(x.to(torch.bfloat16))
        assert out.dtype == torch.bfloat16
        _check_close(f"{what} bfloat16", out.cpu(), ref, BF16_TOL)
        del bf16
        out = net.to(torch.float16)(x.to(torch.float16))
        assert out.dtype == torch.float16
        _check_close(f"{what} float16", out.cpu(), ref, FP16_TOL)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
@pytest.mark.parametrize("name", twins_marked_heavy(MODELS))
def test_half_precision_and_autocast(name, device, fresh):
    """bfloat16 autocast, bfloat16 weights, float16 weights, of the model and of its deploy mode: finite
    logits within the tolerance of the float32 logits (computed on CPU, the reference for every device)."""
    model = _half_ready(fresh(name))
    x = torch.randn(2, *model.default_cfg["min_input_size"], generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = model(x)
    deployed = optimize_for_inference(model, "torch").to(device)
    _check_half_precisions(name, model.to(device), x.to(device), ref)
    _check_half_precisions(f"{name} deployed", deployed, x.to(device), ref)


# inception_v1: LRN, no BatchNorm; inception_v1_bn: BatchNorm in train mode. With BatchNorm's batch statistics
# at initialization the gradient is a small difference of large terms: bfloat16 weights and bfloat16
# autocast alike give a gradient far from float32's (cosine ~0.3 measured), so it is compared without BN only.
@pytest.mark.parametrize("name, min_cosine", [("inception_v1", 0.99), ("inception_v1_bn", None)])
def test_bfloat16_training_step(name, min_cosine, fresh):
    """Train mode (aux heads on) with bfloat16 weights: finite loss and gradients, the loss within 2% of
    float32's (measured: 0.02%) and, without BatchNorm, the gradient's cosine to float32's above 0.99
    (measured: 0.999)."""
    model = _half_ready(fresh(name, aux_logits=True)).train()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0  # the same function in both dtypes
    x = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    target = torch.tensor([0, 1, 2, 3])

    def step(net, dtype):
        out = net(x.to(dtype))
        assert isinstance(out, InceptionOutputs) and out.logits.dtype == dtype
        loss = sum(F.cross_entropy(o.float(), target) for o in (out.logits, *out.aux))
        loss.backward()
        return loss.detach(), torch.cat([p.grad.float().flatten() for p in net.parameters()])

    half = copy.deepcopy(model).to(torch.bfloat16)
    loss32, grad32 = step(model, torch.float32)
    loss16, grad16 = step(half, torch.bfloat16)
    assert torch.isfinite(loss16) and torch.isfinite(grad16).all() and grad16.abs().max() > 0
    assert abs(loss16 - loss32) <= 0.02 * loss32
    if min_cosine is not None:
        assert F.cosine_similarity(grad32, grad16, dim=0) > min_cosine


def test_local_response_norm_half_and_exact_float32():
    """float32: bit for bit torch's LRN; float16/bfloat16: computed in float32 (no overflow of x² in
    float16), returned in the input's dtype; scriptable."""
    lrn, torch_lrn = LocalResponseNorm(5, 1e-4, 0.75, 1.0), nn.LocalResponseNorm(5, 1e-4, 0.75, 1.0)
    x = torch.randn(2, 16, 7, 9, generator=torch.Generator().manual_seed(4)) * 50
    assert torch.equal(lrn(x), torch_lrn(x))
    for dtype in (torch.float16, torch.bfloat16):
        xh = (x * 10).to(dtype)  # up to ~2000: x² overflows float16
        out = lrn(xh)
        assert out.dtype == dtype and torch.isfinite(out).all()
        assert torch.equal(out, torch_lrn(xh.float()).to(dtype))
        xh.requires_grad_(True)
        lrn(xh).float().sum().backward()
        assert xh.grad.dtype == dtype and torch.isfinite(xh.grad).all()
    assert torch.equal(torch.jit.script(lrn)(x), lrn(x))


# ---- hooks -------------------------------------------------------------------------------------------


def _tensors(out) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _tensors(o)]
    return []


def _keep_outputs(model: nn.Module) -> tuple[list, list]:
    """A forward hook on every module that keeps (name, output, its clone, its version) at hook time."""
    kept: list = []

    def hook(module, args, out, name):
        kept.extend((name, t, t.detach().clone(), t._version) for t in _tensors(out))

    handles = [m.register_forward_hook(partial(hook, name=n or "<model>")) for n, m in model.named_modules()]
    return kept, handles


def _assert_untouched(kept: list) -> None:
    changed = [name for name, t, clone, version in kept if t._version != version or not torch.equal(t, clone)]
    assert not changed, f"outputs written after their module returned them: {changed[:10]}"


@pytest.mark.parametrize("name", MODELS)
def test_no_module_is_in_place(name, built):
    """The audit as a rule: no module of the zoo computes in place (``inplace=True``); the conv blocks'
    activation stays an ``nn.ReLU`` (deploy mode fuses it by type)."""
    model = built(name)
    assert not [n for n, m in model.named_modules() if getattr(m, "inplace", False)]
    blocks = [m for m in model.modules() if isinstance(m, BasicConv2d)]
    assert any(isinstance(b.act, nn.ReLU) for b in blocks)


@pytest.mark.parametrize("name", MODELS)
def test_forward_hooks_keep_each_output_eval(name, built):
    model = built(name)
    kept, handles = _keep_outputs(model)
    try:
        with torch.no_grad():
            model(torch.randn(2, *model.default_cfg["min_input_size"]))
    finally:
        for h in handles:
            h.remove()
    assert {type(model.get_submodule(n)) for n, *_ in kept if n != "<model>"} >= {BasicConv2d}
    _assert_untouched(kept)


@pytest.mark.parametrize("name", MODELS)
def test_forward_hooks_keep_each_output_train(name, fresh):
    """Train mode with gradients, with the auxiliary heads where the model has them."""
    model = fresh(name, **({"aux_logits": True} if name in AUX_MODELS else {})).train()
    kept, _ = _keep_outputs(model)
    out = model(torch.randn(2, *model.default_cfg["min_input_size"]))
    _assert_untouched(kept)
    sum(t.sum() for t in _tensors(out)).backward()


# One model per block type: conv blocks without BatchNorm (+ LRN), Inception modules with BatchNorm and an
# aux head, residual Inception blocks, Xception's separable blocks.
BACKWARD_MODELS = ["inception_v1", "inception_v3", "inception_resnet_v1", "xception_cifar"]


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("name", BACKWARD_MODELS)
def test_full_backward_hooks(name, train, fresh):
    """``register_full_backward_hook`` on every BatchNorm, conv block and convolution (Grad-CAM's way in)
    runs through a backward pass and sees a gradient of each module's output shape."""
    model = fresh(name, **({"aux_logits": True} if train and name in AUX_MODELS else {})).train(train)
    seen: dict[str, tuple] = {}
    outputs: dict[str, tuple] = {}

    def forward_hook(module, args, out, name):
        outputs[name] = tuple(out.shape)

    def backward_hook(module, grad_input, grad_output, name):
        assert torch.isfinite(grad_output[0]).all()
        seen[name] = tuple(grad_output[0].shape)

    hooked = {
        n: m for n, m in model.named_modules() if isinstance(m, (nn.BatchNorm2d, BasicConv2d, nn.Conv2d))
    }
    for n, m in hooked.items():
        m.register_forward_hook(partial(forward_hook, name=n))
        m.register_full_backward_hook(partial(backward_hook, name=n))
    x = torch.randn(2, *model.default_cfg["min_input_size"], requires_grad=True)
    out = model(x)
    sum(t.sum() for t in _tensors(out)).backward()
    assert seen == outputs and set(seen) == set(hooked)
