"""Merged 1×1 convolutions: the parallel 1×1 convolutions of an Inception module as one convolution."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import BasicConv2d, InceptionModule
from .convs import DeployConv2d

__all__ = ["MergedInceptionModule"]


def _is_pointwise(module: nn.Module) -> bool:
    conv = getattr(module, "conv", None)
    return (
        isinstance(module, BasicConv2d) and isinstance(conv, nn.Conv2d) and isinstance(module.bn, nn.Identity)
        and conv.kernel_size == (1, 1) and conv.stride == (1, 1) and conv.padding == (0, 0) and conv.groups == 1
        and isinstance(module.act, nn.ReLU)
    )


def _branch_kind(branch: nn.Sequential) -> str:
    layers = list(branch)
    if layers and _is_pointwise(layers[0]):
        return "direct"
    if (
        len(layers) >= 2 and isinstance(layers[0], nn.AvgPool2d) and layers[0].stride in (1, (1, 1))
        and _is_pointwise(layers[1])
    ):
        return "pooled"
    return "other"


class MergedInceptionModule(nn.Module):
    """An :class:`~inception_zoo.layers.InceptionModule` (BatchNorms folded) whose leading 1×1
    convolutions run as one convolution, split afterwards. A 1×1 convolution commutes with average
    pooling (both linear; zero padding maps to zero), so a pool branch's projection runs before its pool,
    on the projected channels. Branch kinds:

    * ``direct``: starts with a 1×1 conv + ReLU; all of these run as one convolution (ReLU fused), and
      each slice of its output continues through the rest of its branch.
    * ``pooled``: average pool then 1×1 conv + ReLU; projected first (without bias), then pooled, then
      the bias added and the ReLU applied.
    * ``other``: run as in the original module (max-pool branches, branches starting with a k×k conv).

    Shapes: as the original module.
    """

    def __init__(self, module: InceptionModule) -> None:
        super().__init__()
        branches = list(module.values())
        kinds = [_branch_kind(b) for b in branches]
        direct = [b for b, k in zip(branches, kinds) if k == "direct"]
        pooled = [b for b, k in zip(branches, kinds) if k == "pooled"]
        self.direct = self._merge([b[0] for b in direct], relu=True)
        self.pooled = self._merge([b[1] for b in pooled], relu=False, bias=False) if pooled else None
        self.direct_widths = [b[0].conv.out_channels for b in direct]
        self.pooled_widths = [b[1].conv.out_channels for b in pooled]
        self.pools = nn.ModuleList(b[0] for b in pooled)
        self.pool_biases = nn.ParameterList(
            nn.Parameter(b[1].conv.bias.detach().reshape(1, -1, 1, 1).clone(), requires_grad=False) for b in pooled
        )
        self.slots: list[tuple[str, int]] = []
        self.rests = nn.ModuleList()
        counters = {"direct": 0, "pooled": 0, "other": 0}
        for branch, kind in zip(branches, kinds):
            self.slots.append((kind, counters[kind]))
            counters[kind] += 1
            skip = {"direct": 1, "pooled": 2, "other": 0}[kind]
            self.rests.append(nn.Sequential(*list(branch)[skip:]))
        self.out_channels = module.out_channels

    @staticmethod
    def _merge(heads: list[BasicConv2d], *, relu: bool, bias: bool = True) -> DeployConv2d:
        """One 1×1 convolution computing the given 1×1 convolutions side by side."""
        weight = heads[0].conv.weight
        merged = nn.Conv2d(heads[0].conv.in_channels, sum(h.conv.out_channels for h in heads), 1, bias=bias,
                           device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            merged.weight.copy_(torch.cat([h.conv.weight for h in heads]))
            if bias:
                merged.bias.copy_(torch.cat([h.conv.bias for h in heads]))
        return DeployConv2d(merged, relu)

    @staticmethod
    def can_merge(module: InceptionModule) -> bool:
        """True when at least two branches start with a 1×1 convolution of the input (BN folded)."""
        kinds = [_branch_kind(b) for b in module.values()]
        return kinds.count("direct") >= 2 or (kinds.count("direct") >= 1 and kinds.count("pooled") >= 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        direct = torch.split(self.direct(x), self.direct_widths, dim=1)
        pooled = torch.split(self.pooled(x), self.pooled_widths, dim=1) if self.pooled is not None else ()
        outs = []
        for (kind, j), rest in zip(self.slots, self.rests):
            if kind == "direct":
                outs.append(rest(direct[j]))
            elif kind == "pooled":
                pooled_j = self.pools[j](pooled[j])
                outs.append(rest(F.relu(pooled_j + self.pool_biases[j].to(pooled_j.dtype))))
            else:
                outs.append(rest(x))
        return torch.cat(outs, dim=1)
