"""Deploy mode in a server: one deployed model shared by threads, and weights that change between calls.

Asserted: concurrent calls neither fail nor disturb each other, and every change of a weight, by any
route PyTorch offers (including those that bypass its version counters: ``.data``, NumPy and DLPack
views, storages, fused optimizers), is seen by the next forward. The reference is a deep copy made after
the change.
"""

import copy
import pickle
import threading

import numpy as np
import pytest
import torch

from inception_zoo import get_record, optimize_for_inference
from inception_zoo.deploy import DeployConv2d

from helpers import models_without_twins, realistic

SHAPES = [(1, 3, 80, 80), (2, 3, 80, 80), (1, 3, 96, 112)]


def _small_input(name: str, seed: int = 0) -> torch.Tensor:
    _, h, w = get_record(name).min_input_size
    return torch.randn(1, 3, max(h, 8), max(w, 8), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", ["inception_v1_bn", "xception"])
def test_one_deployed_model_serves_eight_threads(name, fresh):
    """8 threads × 3 input shapes × 24 calls each on one deployed model (merged Inception modules;
    separable convolutions and both kinds of fused residual sum): no exception, every output equal to the
    single-threaded one."""
    deployed = optimize_for_inference(realistic(fresh(name)), "torch")
    inputs = [torch.randn(s, generator=torch.Generator().manual_seed(i)) for i, s in enumerate(SHAPES)]
    threads_before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            expected = [deployed(x) for x in inputs]
        errors: list[BaseException] = []
        mismatches: list[tuple[int, int]] = []
        start = threading.Barrier(8)

        def serve(worker: int) -> None:
            try:
                start.wait()
                with torch.inference_mode():
                    for call in range(24):
                        k = (worker + call) % len(inputs)  # threads interleave the shapes differently
                        if not torch.equal(deployed(inputs[k]), expected[k]):
                            mismatches.append((worker, call))
            except BaseException as error:  # noqa: BLE001 (collected and reported by the test)
                errors.append(error)

        threads = [threading.Thread(target=serve, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        torch.set_num_threads(threads_before)
    assert errors == [] and mismatches == []


def _first_conv(deployed) -> DeployConv2d:
    return next(m for m in deployed.modules() if isinstance(m, DeployConv2d))


def _assert_observed(deployed, x, before):
    """The next forward sees the change: it differs from ``before`` and equals a fresh deploy's."""
    with torch.inference_mode():
        out = deployed(x)
        fresh_copy = copy.deepcopy(deployed)(x)
    assert not torch.equal(out, before), "the edit did not change the output: the test cannot fail"
    assert torch.equal(out, fresh_copy)
    return out


@pytest.mark.parametrize("name", models_without_twins())
def test_every_weight_change_is_seen_by_the_next_forward(name, fresh):
    deployed = optimize_for_inference(realistic(fresh(name)), "torch")
    x = _small_input(name)
    with torch.inference_mode():
        out = deployed(x)
        new_state = {k: v * 0.9 for k, v in deployed.state_dict().items()}
        deployed.load_state_dict(new_state)  # 1. load_state_dict inside inference_mode
    out = _assert_observed(deployed, x, out)

    conv = _first_conv(deployed)
    conv.weight.data.mul_(1.5)  # 2. an in-place edit through .data
    out = _assert_observed(deployed, x, out)

    with torch.no_grad():
        conv.weight.copy_(conv.weight.flip(0))  # 3. copy_ under no_grad (output channels reordered)
    out = _assert_observed(deployed, x, out)

    with torch.inference_mode():
        conv.bias.add_(0.5)  # 4. an in-place edit under inference_mode
    out = _assert_observed(deployed, x, out)

    key = next(k for k in deployed.state_dict() if k.endswith("weight"))
    deployed.state_dict()[key].numpy()[...] *= 2  # 5. through a NumPy view of a state_dict tensor
    _assert_observed(deployed, x, out)


def test_edits_that_bypass_the_version_counter_are_seen():
    from inception_zoo import create_model

    deployed = optimize_for_inference(realistic(create_model("inception_v1_bn")), "torch")
    x = _small_input("inception_v1_bn")
    conv = _first_conv(deployed)
    alias = conv.weight.data  # taken before the first forward, edited after it
    with torch.inference_mode():
        out = deployed(x)
    alias.mul_(-1)
    out = _assert_observed(deployed, x, out)
    conv.weight.data = conv.weight.detach() * 3  # .data assigned a new tensor
    out = _assert_observed(deployed, x, out)
    np.asarray(conv.weight.detach())[0] *= 0.5  # NumPy
    out = _assert_observed(deployed, x, out)
    torch.from_dlpack(conv.weight.detach()).mul_(1.5)  # DLPack
    out = _assert_observed(deployed, x, out)
    torch.empty(0).set_(conv.bias.untyped_storage()).add_(0.5)  # the storage
    out = _assert_observed(deployed, x, out)
    deployed.load_state_dict({k: v + 0.01 for k, v in deployed.state_dict().items()}, assign=True)
    out = _assert_observed(deployed, x, out)

    deployed.requires_grad_(True)  # fine-tuning a deployed model: a fused optimizer moves no version counter
    optimizer = torch.optim.Adam(deployed.parameters(), lr=1e-2, fused=True)
    deployed(x).square().mean().backward()
    optimizer.step()
    deployed.requires_grad_(False)
    _assert_observed(deployed, x, out)


def test_a_model_deployed_inside_inference_mode_is_made_of_ordinary_tensors():
    """Editable after inference_mode ends (an inference tensor refuses in-place changes outside it)."""
    from inception_zoo import create_model

    x = _small_input("inception_v1_bn")
    with torch.inference_mode():
        deployed = optimize_for_inference(realistic(create_model("inception_v1_bn")), "torch")
        out = deployed(x)
        deployed.to(torch.float64).to(torch.float32)  # converted inside inference_mode
    assert not any(t.is_inference() for t in [*deployed.parameters(), *deployed.buffers()])
    _first_conv(deployed).weight.data.mul_(-1)
    _assert_observed(deployed, x, out)


def test_pickled_and_copied_deployed_models_see_changes(tmp_path):
    from inception_zoo import create_model

    deployed = optimize_for_inference(realistic(create_model("inception_v1_bn")), "torch")
    x = _small_input("inception_v1_bn")
    with torch.inference_mode():
        reference = deployed(x)
    torch.save(deployed, tmp_path / "deployed.pt")
    loaded = torch.load(tmp_path / "deployed.pt", weights_only=False)
    for model in (pickle.loads(pickle.dumps(deployed)), loaded, copy.deepcopy(deployed)):
        with torch.inference_mode():
            before = model(x)
        assert torch.equal(before, reference)
        _first_conv(model).weight.data.mul_(-1)
        _assert_observed(model, x, before)
