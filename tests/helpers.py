"""Helpers shared by the tests."""

import os

import torch
from torch import nn


def realistic(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BatchNorm statistics and affine parameters (a fresh BatchNorm is the identity in eval
    mode, which would hide a mis-mapped or mis-folded one); returns the model in eval mode."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) - 0.5)
    return model.eval()


def calibrated(model: nn.Module, x: torch.Tensor, seed: int = 0) -> nn.Module:
    """Random BatchNorm affine parameters, and running statistics measured on ``x`` (one train-mode forward,
    cumulative averages): every layer's output then has about unit scale on images like ``x``, so a deep
    network at random init still gives features that differ from image to image (with :func:`realistic`'s
    statistics they fade into constants after a few dozen layers). Returns the model in eval mode.

    The BatchNorm biases are positive (0.5-1.5), so that most ReLUs pass: with zero-mean biases a random
    Inception v3 is chaotic, float32 rounding grows about 1.7× per Inception module (measured), and two
    correct float32 implementations (channels-first against channels_last convolutions, say) differ by
    1e-4 at pool3, which would hide a real error behind the tolerance. Here eager float32 is within 5e-6
    of float64 at pool3, like a trained network."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.reset_running_stats()
            m.momentum = None
    with torch.no_grad():
        model.train()(x)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 0.1
    return model.eval()


def close(ours: torch.Tensor, reference: torch.Tensor, rel: float = 1e-4) -> bool:
    """max |ours - reference| <= rel x max |reference|."""
    return (ours - reference).abs().max().item() <= rel * reference.abs().max().item()


class Exploit:
    """A pickled object that would run ``touch marker`` when unpickled: what a malicious checkpoint holds.
    A loader that never runs pickled code leaves ``marker`` absent."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# Models whose every module type another model's tests already cover in the expensive per-model tests
# (ONNX export into both runtimes, scripting in a fresh process, deployed serving), with the model that
# covers them: inception_v3_fid (inception_v3's layout with inception_v4's average pools and one of
# bn_inception's max-pool branches), inception_v3_tf (inception_v3 with inception_v4's average pools),
# xception_tf (xception with bn_inception's "same" max pools), xception_cifar (xception with padded stem
# convolutions), inception_v1_cifar_naive (inception_v1_cifar's modules without the 1×1 reductions),
# inception_resnet_v1 (inception_resnet_v1_facenet's layout less its last block, with the classifier head
# every other model has), xception65 and xception71 (xception41's blocks and stem, more of them: 16 middle
# blocks, and xception71's two extra entry blocks are its entry blocks at stride 1) and xception65p
# (xception41p's, 16 middle blocks). The cheap per-model tests, deploy equivalence included, still take them all.
LAYOUT_TWINS = ("inception_v3_fid", "inception_v3_tf", "xception_tf", "xception_cifar", "inception_v1_cifar_naive",
                "inception_resnet_v1", "xception65", "xception71", "xception65p")


def models_without_twins() -> list[str]:
    """Every registered model but :data:`LAYOUT_TWINS`."""
    from inception_zoo import list_models

    return [name for name in list_models() if name not in LAYOUT_TWINS]


def twins_marked_heavy(names: list[str]) -> list:
    """``names`` for ``pytest.mark.parametrize``, the :data:`LAYOUT_TWINS` among them marked ``heavy``:
    for the costly per-model checks (docs recount, half precision, dilated shapes), which their twins run in
    the default suite; ``pytest -m heavy`` runs them for the twins too."""
    import pytest

    return [pytest.param(n, marks=pytest.mark.heavy) if n in LAYOUT_TWINS else n for n in names]

