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
and :func:`build_stages` chain specs while tracking channels and the total stride, and
:func:`dense_layout` turns a layout into its dilated, "same"-padded form for a smaller output stride
(``create_model(name, output_stride=16)``). The modules (in :mod:`inception_zoo.layers.modules`) are:

* :class:`InceptionModule`: parallel branches concatenated on channels (GoogLeNet, arXiv 1409.4842,
  Figure 2). A branch may itself end in an :class:`InceptionModule`, which is how the "expanded filter
  bank" of Inception v3 Figure 7 (1×3 and 3×1 side by side) is written.
* :class:`ResidualInceptionBlock`: branches, a linear 1×1 up-projection, the residual scaled before the
  sum, then an optional ReLU (Inception-ResNet, arXiv 1602.07261, Figures 10-13, 16-19 and Section 3.3).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from torch import nn

from .conv import FactorizedConv2d, Size2, _pair, same_padding
from .modules import (
    Branch,
    ConvLayer,
    InceptionModule,
    LayerSpec,
    ResidualInceptionBlock,
    ResidualParts,
    SameMaxPool2d,
    build_sequence,
)
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
    "dense_layout",
    "spec_stride",
]


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
    here with ``padding=0``). ``dilation``: the atrous rate (set by :meth:`dense`)."""

    out: int
    kernel: Size2 = 1
    stride: Size2 = 1
    padding: Size2 | None = None
    act: bool = True
    separable: bool = False
    dilation: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.out, int) or isinstance(self.out, bool) or self.out < 1:
            raise ValueError(f"Conv needs a positive number of output channels, got {self.out!r}")

    def build(self, in_channels: int, conv_layer: ConvLayer) -> tuple[nn.Module, int, int]:
        stride = _stride_of(self.stride)
        padding = self.padding
        if padding is None:
            padding = same_padding(self.kernel, self.dilation) if stride == 1 else 0
        kwargs = {}
        if not self.act:
            kwargs["act"] = False
        if self.separable:
            kwargs["separable"] = True
        if self.dilation != 1:
            kwargs["dilation"] = self.dilation
        module = conv_layer(in_channels, self.out, self.kernel, self.stride, padding, **kwargs)
        return module, self.out, stride

    def dense(self, dilation: int, keep_stride: bool) -> Conv:
        """See :class:`LayerSpec`; a 1×1 kernel keeps dilation 1 (dilating it changes nothing)."""
        rate = 1 if _pair(self.kernel) == (1, 1) else dilation
        stride = self.stride if keep_stride else 1
        return replace(self, stride=stride, padding=same_padding(self.kernel, rate), dilation=rate)


@dataclass(frozen=True)
class Factorized:
    """A :class:`FactorizedConv2d`: 1×n then n×1 (``first="1xn"``) or the reverse, both "same"."""

    mid: int
    out: int
    n: int
    first: Literal["1xn", "nx1"] = "1xn"
    dilation: int = 1

    def build(self, in_channels: int, conv_layer: ConvLayer) -> tuple[nn.Module, int, int]:
        module = FactorizedConv2d(
            in_channels, self.mid, self.out, self.n, first=self.first, conv_layer=conv_layer, dilation=self.dilation
        )
        return module, self.out, 1

    def dense(self, dilation: int, keep_stride: bool) -> Factorized:
        """See :class:`LayerSpec` (already "same" and stride 1: only the rate changes)."""
        return replace(self, dilation=dilation)


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

    def dense(self, dilation: int, keep_stride: bool) -> Pool:
        """See :class:`LayerSpec`; not dilated. An odd kernel is padded k // 2 on each side without ceil
        mode; an even one (GoogLeNet's 2×2/2 max pool) gets TensorFlow's "same" padding (the extra row
        and column at the bottom and right), which is also kept where the layout has it.

        Raises:
            ValueError: an average pool with an even kernel (no layout has one; its padding would be
                ambiguous)."""
        stride = self.stride if keep_stride else 1
        if self.padding == "same" or self.kernel % 2 == 0:
            if self.kind != "max":
                raise ValueError(f"an average pool with an even kernel ({self.kernel}) cannot be padded 'same'")
            return replace(self, stride=stride, padding="same", ceil_mode=False)
        return replace(self, stride=stride, padding=self.kernel // 2, ceil_mode=False)


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

    def dense(self, dilation: int, keep_stride: bool) -> LRN:
        return self




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

    @property
    def stride(self) -> int:
        """The module's stride (its first branch's: :class:`InceptionModule` checks that they agree)."""
        stride = 1
        for spec in self.branches[0][1]:
            stride *= spec_stride(spec)
        return stride

    def dense(self, dilation: int, keep_stride: bool) -> Mixed:
        """See :class:`LayerSpec`: every layer of every branch."""
        new = copy.copy(self)
        new.branches = tuple(
            (name, tuple(_dense(spec, dilation, keep_stride) for spec in specs)) for name, specs in self.branches
        )
        return new

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


@dataclass(frozen=True)
class StageInfo:
    """One named stage of a network: its output channels, its reduction (total stride) from the input, and
    the dilation (atrous rate) the stages after it run at. ``reduction * dilation`` is the stage's reduction
    in the network at output stride 32 (see :func:`dense_layout`)."""

    name: str
    channels: int
    reduction: int
    dilation: int = 1

    @property
    def nominal_reduction(self) -> int:
        """The reduction this stage has at output stride 32."""
        return self.reduction * self.dilation


def spec_stride(spec: LayerSpec) -> int:
    """A layer spec's stride, before building it (1 for specs without a ``stride``)."""
    return _stride_of(getattr(spec, "stride", 1))


def _dense(spec: LayerSpec, dilation: int, keep_stride: bool) -> LayerSpec:
    if not hasattr(spec, "dense"):
        raise ValueError(f"{type(spec).__name__} layers cannot be dilated (no dense())")
    return spec.dense(dilation, keep_stride)


def dense_layout(
    layout: Sequence[tuple[str, LayerSpec]], output_stride: int
) -> tuple[tuple[tuple[str, LayerSpec], ...], list[int]]:
    """A layout for dense prediction at ``output_stride`` (DeepLab's atrous backbones: Chen et al.,
    arXiv 1706.05587, Section 3.1; arXiv 1802.02611, Section 3.1).

    Stages run in order; a stage whose stride would take the reduction past ``output_stride`` runs at
    stride 1 with the dilation in effect before it, and the stages after it run with the dilation
    multiplied by that stride (the rule of DeepLab's and timm's dilated backbones). Every convolution and
    pooling is padded "same" (TF-slim's ``align_feature_maps``, which the TensorFlow Object Detection API
    sets with ``output_stride`` for Inception-ResNet-v2), so a stage at reduction r maps H to ceil(H / r)
    whatever H is, and the last stage to ceil(H / output_stride). Valid-padded layouts (Inception v3, v4,
    Inception-ResNet) therefore pad their stems and reduction modules; the weights are the same.

    Returns the new layout and each stage's dilation after it.

    Raises:
        ValueError: a stage whose spec cannot be dilated (no ``dense``), a stride that is not a power of 2
            where a stage is converted, or a layout whose total reduction never reaches ``output_stride``.
    """
    reduction, dilation, out, dilations = 1, 1, [], []
    for name, spec in layout:
        stride = spec_stride(spec)
        try:
            if stride > 1 and reduction * stride > output_stride:
                spec = _dense(spec, dilation, keep_stride=False)
                dilation *= stride
            else:
                spec = _dense(spec, dilation, keep_stride=True)
                reduction *= stride
        except ValueError as e:
            raise ValueError(f"stage {name!r}: {e}") from None
        out.append((name, spec))
        dilations.append(dilation)
    if reduction != output_stride:
        raise ValueError(f"the layout reaches reduction {reduction}, not output_stride {output_stride}")
    return tuple(out), dilations


def build_stages(
    in_channels: int,
    layout: Sequence[tuple[str, LayerSpec]],
    conv_layer: ConvLayer,
    *,
    output_stride: int | None = None,
) -> tuple[nn.Sequential, list[StageInfo]]:
    """Build a named layout ``[(stage_name, spec), ...]`` into an ``nn.Sequential`` whose children carry
    the stage names, and the :class:`StageInfo` of every stage. ``output_stride``: build the layout as
    :func:`dense_layout` transforms it; None: as it is.

    Raises:
        ValueError: an empty layout, a stage name used twice, or a layout :func:`dense_layout` refuses.
    """
    if not layout:
        raise ValueError("a layout needs at least one stage")
    dilations = [1] * len(layout)
    if output_stride is not None:
        layout, dilations = dense_layout(layout, output_stride)
    modules, info, reduction = OrderedDict(), [], 1
    for (name, spec), dilation in zip(layout, dilations):
        if name in modules:
            raise ValueError(f"stage name {name!r} appears twice in the layout")
        module, in_channels, stride = spec.build(in_channels, conv_layer)
        reduction *= stride
        modules[name] = module
        info.append(StageInfo(name, in_channels, reduction, dilation))
    return nn.Sequential(modules), info


