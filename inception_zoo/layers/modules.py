"""The modules Inception layouts are built from: parallel branches (:class:`InceptionModule`), residual
Inception blocks (:class:`ResidualInceptionBlock`), TensorFlow's "same" max pooling, and the types of the
layer specs that build them (see :mod:`inception_zoo.layers.blocks`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ConvLayer", "LayerSpec", "Branch", "build_sequence", "InceptionModule", "ResidualParts",
    "ResidualInceptionBlock", "SameMaxPool2d",
]

ConvLayer = Callable[..., nn.Module]
"""A :class:`~inception_zoo.layers.BasicConv2d` with the family's options bound (``functools.partial``)."""


class LayerSpec(Protocol):
    """Anything with ``build(in_channels, conv_layer) -> (module, out_channels, stride)``.

    A spec that can run in a network with a smaller ``output_stride`` also has
    ``dense(dilation, keep_stride) -> spec``: the same layer for dense prediction, with every convolution
    and pooling padded "same" (ceil(H / stride) outputs), every convolution's kernel dilated by
    ``dilation`` (pools are not dilated, as in TF-slim's atrous Inception-ResNet-v2) and, with
    ``keep_stride=False``, every stride 1 (see :func:`dense_layout`)."""

    def build(self, in_channels: int, conv_layer: ConvLayer) -> tuple[nn.Module, int, int]: ...


Branch = Sequence[LayerSpec]


def build_sequence(
    in_channels: int, specs: Sequence[LayerSpec], conv_layer: ConvLayer
) -> tuple[nn.Sequential, int, int]:
    """Chain specs into an ``nn.Sequential``; returns ``(module, out_channels, total_stride)``."""
    layers, stride = [], 1
    for spec in specs:
        module, in_channels, s = spec.build(in_channels, conv_layer)
        layers.append(module)
        stride *= s
    return nn.Sequential(*layers), in_channels, stride


class SameMaxPool2d(nn.Module):
    """Max pooling with TensorFlow's "SAME" padding: output ceil(H / stride) × ceil(W / stride) at every
    input size, padding with -inf, the extra row/column (if any) at the bottom/right.

    On even sizes this is exactly a Caffe/PyTorch ``ceil_mode`` pool without padding; on odd sizes it
    keeps the output the size of a padded stride-2 convolution beside it, so the branches of a reduction
    module (BN-Inception 3c/4e) can always be concatenated.

    Shapes: (B, C, H, W) -> (B, C, ceil(H / stride), ceil(W / stride)).
    """

    def __init__(self, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride

    def _pad(self, size: int) -> tuple[int, int]:
        out = (size + self.stride - 1) // self.stride
        total = max((out - 1) * self.stride + self.kernel_size - size, 0)
        return total // 2, total - total // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = self._pad(x.shape[-2])
        left, right = self._pad(x.shape[-1])
        x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
        return F.max_pool2d(x, self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding='same'"


class InceptionModule(nn.ModuleDict):
    """Parallel named branches over the same input, concatenated on channels in order (GoogLeNet,
    arXiv 1409.4842, Figure 2). The branches are the module's children, so the weight keys read
    ``<module>.<branch name>.<index in the branch>...``.

    Args:
        in_channels: input channels.
        branches: ``((name, specs), ...)`` in concatenation order (see :class:`Mixed`).
        conv_layer: the family's conv block.

    Shapes: (B, in_channels, H, W) -> (B, sum of branch outputs, H/s, W/s), s the branches' common stride.

    Raises:
        ValueError: no branch, or branches that do not share one stride (their outputs could not be
            concatenated).
    """

    def __init__(self, in_channels: int, branches: Sequence[tuple[str, Branch]], conv_layer: ConvLayer) -> None:
        if not branches:
            raise ValueError("an Inception module needs at least one branch")
        built = {name: build_sequence(in_channels, branch, conv_layer) for name, branch in branches}
        strides = {s for _, _, s in built.values()}
        if len(strides) != 1:
            raise ValueError(f"branches of an Inception module must share one stride, got {sorted(strides)}")
        super().__init__({name: m for name, (m, _, _) in built.items()})
        self.branch_channels = [c for _, c, _ in built.values()]
        self.out_channels = sum(self.branch_channels)
        self.stride = strides.pop()

    @classmethod
    def of(cls, branches: dict[str, nn.Module], branch_channels: list[int], stride: int) -> "InceptionModule":
        """An Inception module over already built branch modules (shared, not copied)."""
        module = cls.__new__(cls)
        nn.ModuleDict.__init__(module, branches)
        module.branch_channels = list(branch_channels)
        module.out_channels = sum(branch_channels)
        module.stride = stride
        return module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for branch in self.values():
            outs.append(branch(x))
        return torch.cat(outs, dim=1)


class ResidualParts(NamedTuple):
    """How a residual block's sum can be fused into one of its convolutions (the hook deploy mode uses).

    ``on_shortcut=False``: ``act(x + scale * conv(body(x)))``; ``on_shortcut=True``:
    ``act(body(x) + scale * conv(x))``. ``conv`` is a :class:`BasicConv2d` without ReLU.
    """

    body: nn.Module
    conv: nn.Module
    on_shortcut: bool
    scale: float
    act: bool


class ResidualInceptionBlock(InceptionModule):
    """Residual Inception block: ``act(x + scale * up(concat(branches(x))))``.

    Inception-ResNet (arXiv 1602.07261), Figures 10-13 (v1) and 16, 17, 19 (v2): the branches'
    concatenation is projected back to the input width by a linear 1×1 convolution ``up`` with a bias and
    no BatchNorm, scaled (Section 3.3: 0.1-0.3 stabilizes training; the released v2 uses 0.17 / 0.10 /
    0.20 for A / B / C) and added to the input. ``act=False`` drops the final ReLU (the last block of the
    released v2). Weight keys: ``<block>.<branch name>...`` and ``<block>.up...``.

    Shapes: (B, in_channels, H, W) -> (B, in_channels, H, W).

    Raises:
        ValueError: branches with a stride other than 1 (the sum needs the input's grid).
    """

    def __init__(
        self,
        in_channels: int,
        branches: Sequence[tuple[str, Branch]],
        conv_layer: ConvLayer,
        *,
        scale: float = 1.0,
        act: bool = True,
    ) -> None:
        if any(name == "up" for name, _ in branches):
            raise ValueError("'up' names the up-projection of a residual block; give the branch another name")
        super().__init__(in_channels, branches, conv_layer)
        if self.stride != 1:
            raise ValueError("the branches of a residual Inception block must keep the grid size (stride 1)")
        self.branch_names = [name for name, _ in branches]
        self.up = conv_layer(self.out_channels, in_channels, 1, bn=False, act=False)
        self.scale = float(scale)
        self.act = bool(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for name, branch in self.items():
            if name != "up":
                outs.append(branch(x))
        y = x + self.up(torch.cat(outs, dim=1)) * self.scale
        return torch.relu(y) if self.act else y

    def residual_parts(self) -> ResidualParts:
        """The branches (as one :class:`InceptionModule`) and the up-projection, for fusion."""
        body = InceptionModule.of({n: self[n] for n in self.branch_names}, self.branch_channels, 1)
        return ResidualParts(body, self.up, on_shortcut=False, scale=self.scale, act=self.act)

    def extra_repr(self) -> str:
        return f"scale={self.scale}, act={self.act}"
