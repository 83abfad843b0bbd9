"""Inception modules as data.

Every family describes its network as a table of *layer specs* (small frozen dataclasses) that read like
the papers' tables and figures, e.g. Inception v4's Inception-A (arXiv 1602.07261, Figure 4)::

    Mixed((
        (Conv(96),),
        (Conv(64), Conv(96, 3)),
        (Conv(64), Conv(96, 3), Conv(96, 3)),
        (Pool("avg"), Conv(96)),
    ))

A spec's ``build(in_ch, conv_layer)`` returns ``(module, out_channels, stride)``; :func:`build_sequence`
and :func:`build_stages` chain specs while tracking channels and the total stride. The modules are:

* :class:`InceptionModule`: parallel branches concatenated on channels (GoogLeNet, arXiv 1409.4842,
  Figure 2). A branch may itself end in an :class:`InceptionModule`, which is how the "expanded filter
  bank" of Inception v3 Figure 7 (1×3 and 3×1 side by side) is written.
* :class:`ResidualInceptionBlock`: branches, a linear 1×1 up-projection, the residual scaled before the
  sum, then an optional ReLU (Inception-ResNet, arXiv 1602.07261, Figures 10-13, 16-19 and Section 3.3).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from .conv import FactorizedConv2d, Size2, same_padding

__all__ = [
    "LayerSpec",
    "Conv",
    "Factorized",
    "Pool",
    "LRN",
    "Mixed",
    "Residual",
    "InceptionModule",
    "ResidualInceptionBlock",
    "SameMaxPool2d",
    "StageInfo",
    "build_sequence",
    "build_stages",
]

ConvLayer = Callable[..., nn.Module]
"""A :class:`~inception_zoo.layers.BasicConv2d` with the family's options bound (``functools.partial``)."""


class LayerSpec(Protocol):
    """Anything with ``build(in_ch, conv_layer) -> (module, out_channels, stride)``."""

    def build(self, in_ch: int, conv_layer: ConvLayer) -> tuple[nn.Module, int, int]: ...


def _stride_of(stride: Size2) -> int:
    if isinstance(stride, int):
        return stride
    if stride[0] != stride[1]:
        raise ValueError(f"only square strides are supported, got {stride}")
    return int(stride[0])


@dataclass(frozen=True)
class Conv:
    """A :class:`BasicConv2d`. ``padding=None`` means "same" at stride 1 and "valid" (0) otherwise,
    the convention of the papers' figures (their "V" marks the valid stride-1 convolutions, written
    here with ``padding=0``)."""

    out: int
    kernel: Size2 = 1
    stride: Size2 = 1
    padding: Size2 | None = None
    act: bool = True
    separable: bool = False

    def build(self, in_ch: int, conv_layer: ConvLayer) -> tuple[nn.Module, int, int]:
        stride = _stride_of(self.stride)
        padding = self.padding
        if padding is None:
            padding = same_padding(self.kernel) if stride == 1 else 0
        kwargs = {}
        if not self.act:
            kwargs["act"] = False
        if self.separable:
            kwargs["separable"] = True
        module = conv_layer(in_ch, self.out, self.kernel, self.stride, padding, **kwargs)
        return module, self.out, stride


@dataclass(frozen=True)
class Factorized:
    """A :class:`FactorizedConv2d`: 1×n then n×1 (``first="1xn"``) or the reverse, both "same"."""

    mid: int
    out: int
    n: int
    first: Literal["1xn", "nx1"] = "1xn"

    def build(self, in_ch: int, conv_layer: ConvLayer) -> tuple[nn.Module, int, int]:
        module = FactorizedConv2d(in_ch, self.mid, self.out, self.n, first=self.first, conv_layer=conv_layer)
        return module, self.out, 1


@dataclass(frozen=True)
class Pool:
    """Max or average pooling. ``padding=None`` means k//2 at stride 1 (a pooling branch that keeps the
    grid) and 0 otherwise; ``padding="same"`` gives a :class:`SameMaxPool2d`. ``count_include_pad`` matters at the borders: the TensorFlow-trained v4 and
    Inception-ResNet checkpoints exclude the padding, torchvision's v3 and Caffe's models include it."""

    kind: Literal["max", "avg"] = "max"
    kernel: int = 3
    stride: int = 1
    padding: int | Literal["same"] | None = None
    ceil_mode: bool = False
    count_include_pad: bool = True

    def build(self, in_ch: int, conv_layer: ConvLayer) -> tuple[nn.Module, int, int]:
        if self.padding == "same":
            if self.kind != "max":
                raise ValueError("padding='same' is implemented for max pooling only")
            return SameMaxPool2d(self.kernel, self.stride), in_ch, self.stride
        padding = self.padding if self.padding is not None else (self.kernel // 2 if self.stride == 1 else 0)
        if self.kind == "max":
            module: nn.Module = nn.MaxPool2d(self.kernel, self.stride, padding, ceil_mode=self.ceil_mode)
        elif self.kind == "avg":
            module = nn.AvgPool2d(
                self.kernel, self.stride, padding, ceil_mode=self.ceil_mode,
                count_include_pad=self.count_include_pad,
            )
        else:
            raise ValueError(f"Pool kind must be 'max' or 'avg', got {self.kind!r}")
        return module, in_ch, self.stride


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


@dataclass(frozen=True)
class LRN:
    """Local response normalization across channels, as in GoogLeNet's stem (arXiv 1409.4842, Figure 3;
    Caffe's parameters: size 5, alpha 1e-4, beta 0.75, k 1)."""

    size: int = 5
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 1.0

    def build(self, in_ch: int, conv_layer: ConvLayer) -> tuple[nn.Module, int, int]:
        return nn.LocalResponseNorm(self.size, self.alpha, self.beta, self.k), in_ch, 1


Branch = Sequence[LayerSpec]


@dataclass(frozen=True)
class Mixed:
    """An :class:`InceptionModule`: branches (each a sequence of specs) concatenated on channels."""

    branches: Sequence[Branch]

    def build(self, in_ch: int, conv_layer: ConvLayer) -> tuple[nn.Module, int, int]:
        module = InceptionModule(in_ch, self.branches, conv_layer)
        return module, module.out_channels, module.stride


@dataclass(frozen=True)
class Residual:
    """A :class:`ResidualInceptionBlock` around the given branches."""

    branches: Sequence[Branch]
    scale: float = 1.0
    activate: bool = True

    def build(self, in_ch: int, conv_layer: ConvLayer) -> tuple[nn.Module, int, int]:
        module = ResidualInceptionBlock(in_ch, self.branches, conv_layer, scale=self.scale, activate=self.activate)
        return module, in_ch, 1


def build_sequence(in_ch: int, specs: Sequence[LayerSpec], conv_layer: ConvLayer) -> tuple[nn.Sequential, int, int]:
    """Chain specs into an ``nn.Sequential``; returns ``(module, out_channels, total_stride)``."""
    layers, stride = [], 1
    for spec in specs:
        module, in_ch, s = spec.build(in_ch, conv_layer)
        layers.append(module)
        stride *= s
    return nn.Sequential(*layers), in_ch, stride


@dataclass(frozen=True)
class StageInfo:
    """One named stage of a network: its output channels and its reduction (total stride) from the input."""

    name: str
    channels: int
    reduction: int


def build_stages(
    in_ch: int, layout: Sequence[tuple[str, LayerSpec]], conv_layer: ConvLayer
) -> tuple[nn.Sequential, list[StageInfo]]:
    """Build a named layout ``[(stage_name, spec), ...]`` into an ``nn.Sequential`` whose children carry
    the stage names, and the :class:`StageInfo` of every stage."""
    modules, info, reduction = OrderedDict(), [], 1
    for name, spec in layout:
        if name in modules:
            raise ValueError(f"stage name {name!r} appears twice in the layout")
        module, in_ch, stride = spec.build(in_ch, conv_layer)
        reduction *= stride
        modules[name] = module
        info.append(StageInfo(name, in_ch, reduction))
    return nn.Sequential(modules), info


class InceptionModule(nn.Module):
    """Parallel branches over the same input, concatenated on channels (GoogLeNet, arXiv 1409.4842, Fig. 2).

    Args:
        in_ch: input channels.
        branches: one sequence of layer specs per branch, in concatenation order.
        conv_layer: the family's conv block.

    Shapes: (B, in_ch, H, W) -> (B, sum of branch outputs, H/s, W/s), s the common stride of the branches.

    Raises:
        ValueError: if the branches do not share one stride (their outputs could not be concatenated).
    """

    def __init__(self, in_ch: int, branches: Sequence[Branch], conv_layer: ConvLayer) -> None:
        super().__init__()
        if not branches:
            raise ValueError("an Inception module needs at least one branch")
        built = [build_sequence(in_ch, branch, conv_layer) for branch in branches]
        strides = {s for _, _, s in built}
        if len(strides) != 1:
            raise ValueError(f"branches of an Inception module must share one stride, got {sorted(strides)}")
        self.branches = nn.ModuleList(m for m, _, _ in built)
        self.branch_channels = [c for _, c, _ in built]
        self.out_channels = sum(self.branch_channels)
        self.stride = strides.pop()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


class ResidualInceptionBlock(nn.Module):
    """Residual Inception block: ``act(x + scale * up(concat(branches(x))))``.

    Inception-ResNet (arXiv 1602.07261), Figures 10-13 (v1) and 16, 17, 19 (v2): the branches' concatenation
    is projected back to the input width by a linear 1×1 convolution with a bias and no BatchNorm, scaled
    (Section 3.3: 0.1-0.3 stabilizes training; the released v2 uses 0.17 / 0.10 / 0.20 for A / B / C) and
    added to the input. ``activate=False`` drops the final ReLU (the last block of the released v2).

    Shapes: (B, in_ch, H, W) -> (B, in_ch, H, W).
    """

    def __init__(
        self,
        in_ch: int,
        branches: Sequence[Branch],
        conv_layer: ConvLayer,
        *,
        scale: float = 1.0,
        activate: bool = True,
    ) -> None:
        super().__init__()
        self.branches = InceptionModule(in_ch, branches, conv_layer)
        if self.branches.stride != 1:
            raise ValueError("the branches of a residual Inception block must keep the grid size (stride 1)")
        self.up = conv_layer(self.branches.out_channels, in_ch, 1, bn=False, act=False)
        self.scale = float(scale)
        self.act = nn.ReLU(inplace=True) if activate else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.up(self.branches(x)) * self.scale)

    def extra_repr(self) -> str:
        return f"scale={self.scale}"
