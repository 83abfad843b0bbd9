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
