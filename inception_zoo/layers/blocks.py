"""Inception modules as data.

Every family describes its network as a table of *layer specs* (small immutable objects) that read like
the papers' tables and figures, e.g. Inception v4's Inception-A (arXiv 1602.07261, Figure 4), whose
branches TF-slim names Branch_0 to Branch_3::

    Mixed(
        (Conv(96),),
        (Conv(64), Conv(96, 3)),
        (Conv(64), Conv(96, 3), Conv(96, 3)),
        (Pool("avg"), Conv(96)),
    )

Branches may be named instead (``Mixed(branch1x1=(Conv(64),), ...)``); the names are the weight keys.
A spec's ``build(in_channels, conv_layer)`` returns ``(module, out_channels, stride)``; :func:`build_sequence`
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
from typing import Literal, NamedTuple, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from .conv import FactorizedConv2d, Size2, same_padding
from .norm import LocalResponseNorm

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
    "ResidualParts",
    "SameMaxPool2d",
    "StageInfo",
    "build_sequence",
    "build_stages",
]

ConvLayer = Callable[..., nn.Module]
"""A :class:`~inception_zoo.layers.BasicConv2d` with the family's options bound (``functools.partial``)."""


class LayerSpec(Protocol):
    """Anything with ``build(in_channels, conv_layer) -> (module, out_channels, stride)``."""

    def build(self, in_channels: int, conv_layer: ConvLayer) -> tuple[nn.Module, int, int]: ...


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

    def __post_init__(self) -> None:
        if not isinstance(self.out, int) or isinstance(self.out, bool) or self.out < 1:
            raise ValueError(f"Conv needs a positive number of output channels, got {self.out!r}")

    def build(self, in_channels: int, conv_layer: ConvLayer) -> tuple[nn.Module, int, int]:
        stride = _stride_of(self.stride)
        padding = self.padding
        if padding is None:
            padding = same_padding(self.kernel) if stride == 1 else 0
        kwargs = {}
        if not self.act:
            kwargs["act"] = False
        if self.separable:
            kwargs["separable"] = True
        module = conv_layer(in_channels, self.out, self.kernel, self.stride, padding, **kwargs)
        return module, self.out, stride


@dataclass(frozen=True)
class Factorized:
    """A :class:`FactorizedConv2d`: 1×n then n×1 (``first="1xn"``) or the reverse, both "same"."""

    mid: int
    out: int
    n: int
    first: Literal["1xn", "nx1"] = "1xn"

    def build(self, in_channels: int, conv_layer: ConvLayer) -> tuple[nn.Module, int, int]:
        module = FactorizedConv2d(in_channels, self.mid, self.out, self.n, first=self.first, conv_layer=conv_layer)
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

    def build(self, in_channels: int, conv_layer: ConvLayer) -> tuple[nn.Module, int, int]:
        if self.padding == "same":
            if self.kind != "max":
                raise ValueError("padding='same' is implemented for max pooling only")
            return SameMaxPool2d(self.kernel, self.stride), in_channels, self.stride
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
        return module, in_channels, self.stride


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
    Caffe's parameters: size 5, alpha 1e-4, beta 0.75, k 1): a :class:`LocalResponseNorm` (half-safe)."""

    size: int = 5
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 1.0

    def build(self, in_channels: int, conv_layer: ConvLayer) -> tuple[nn.Module, int, int]:
        return LocalResponseNorm(self.size, self.alpha, self.beta, self.k), in_channels, 1


Branch = Sequence[LayerSpec]


# Attributes the modules set on themselves, which a branch (a child module) must not be named after.
_RESERVED = ("stride", "branch_channels", "out_channels", "branch_names", "scale", "act", "up")


def _named_branches(positional: Sequence[Branch], named: dict[str, Branch]) -> tuple[tuple[str, tuple], ...]:
    """Branches as ``((name, specs), ...)`` in concatenation order: positional ones named ``branch0``,
    ``branch1``, ... (TF-slim's Branch_0, ...), then the named ones in the order given."""
    branches = [(f"branch{i}", tuple(b)) for i, b in enumerate(positional)]
    branches += [(name, tuple(b)) for name, b in named.items()]
    names = [n for n, _ in branches]
    if len(set(names)) != len(names):
        raise ValueError(f"branch names must be unique, got {names}")
    if not branches:
        raise ValueError("an Inception module needs at least one branch")
    for name, specs in branches:
        if not name.isidentifier() or name in _RESERVED or hasattr(ResidualInceptionBlock, name):
            raise ValueError(f"branch name {name!r} is not an identifier or names an attribute of the module; "
                             "use names such as 'branch3x3'")
        if not specs:
            raise ValueError(f"branch {name!r} is empty; a branch needs at least one layer")
    return tuple(branches)


class Mixed:
    """An :class:`InceptionModule`: named branches (each a sequence of specs) concatenated on channels,
    in the order given. The names become the weight keys (``Mixed_5b.branch5x5.1.conv.weight``);
    positional branches are named ``branch0``, ``branch1``, ... (TF-slim's ``Branch_0``, ...)::

        Mixed(branch1x1=(Conv(64),), branch_pool=(Pool("avg"), Conv(32)))
    """

    def __init__(self, *branches: Branch, **named: Branch) -> None:
        self.branches = _named_branches(branches, named)

    def build(self, in_channels: int, conv_layer: ConvLayer) -> tuple[nn.Module, int, int]:
        """The :class:`InceptionModule`, its output channels and its stride (see :class:`LayerSpec`)."""
        module = InceptionModule(in_channels, self.branches, conv_layer)
        return module, module.out_channels, module.stride

    def __repr__(self) -> str:
        return f"Mixed({', '.join(f'{n}={b}' for n, b in self.branches)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mixed) and self.branches == other.branches

    __hash__ = None  # type: ignore[assignment]


class Residual(Mixed):
    """A :class:`ResidualInceptionBlock` around named branches (as :class:`Mixed`), with the residual
    ``scale`` and the final ReLU (``act``)."""

    def __init__(self, *branches: Branch, scale: float = 1.0, act: bool = True, **named: Branch) -> None:
        super().__init__(*branches, **named)
        self.scale = float(scale)
        self.act = bool(act)

    def build(self, in_channels: int, conv_layer: ConvLayer) -> tuple[nn.Module, int, int]:
        module = ResidualInceptionBlock(in_channels, self.branches, conv_layer, scale=self.scale, act=self.act)
        return module, in_channels, 1

    def __repr__(self) -> str:
        return f"Residual({super().__repr__()}, scale={self.scale}, act={self.act})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Residual) and (self.branches, self.scale, self.act) == (
            other.branches, other.scale, other.act)


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


@dataclass(frozen=True)
class StageInfo:
    """One named stage of a network: its output channels and its reduction (total stride) from the input."""

    name: str
    channels: int
    reduction: int


def build_stages(
    in_channels: int, layout: Sequence[tuple[str, LayerSpec]], conv_layer: ConvLayer
) -> tuple[nn.Sequential, list[StageInfo]]:
    """Build a named layout ``[(stage_name, spec), ...]`` into an ``nn.Sequential`` whose children carry
    the stage names, and the :class:`StageInfo` of every stage.

    Raises:
        ValueError: an empty layout, or a stage name used twice.
    """
    if not layout:
        raise ValueError("a layout needs at least one stage")
    modules, info, reduction = OrderedDict(), [], 1
    for name, spec in layout:
        if name in modules:
            raise ValueError(f"stage name {name!r} appears twice in the layout")
        module, in_channels, stride = spec.build(in_channels, conv_layer)
        reduction *= stride
        modules[name] = module
        info.append(StageInfo(name, in_channels, reduction))
    return nn.Sequential(modules), info


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
