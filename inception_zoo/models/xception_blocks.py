"""The residual blocks of the Xception family and their layer specs (the layouts are in
:mod:`inception_zoo.models.xception`).

* :class:`XceptionBlock`: Chollet's block (arXiv 1610.02357, Figure 5): separable convolutions, a reducing
  max pool, a 1×1 convolution shortcut.
* :class:`AlignedXceptionBlock`: DeepLabv3+'s "modified aligned Xception" block (arXiv 1802.02611,
  Section 3.2, Figure 4): three separable convolutions with BatchNorm after the depthwise ones, the
  max pool replaced by the third convolution's stride; optionally pre-activation (timm's ``xception41p``,
  ``xception65p``; He et al., arXiv 1603.05027).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace
from functools import partial
from typing import Literal

import torch
from torch import nn

from ..layers import Conv, ConvLayer, Pool, PreActivation, ResidualParts, bn_eps_of, same_padding

__all__ = ["AlignedXceptionBlock", "AlignedXceptionSpec", "PlainConv", "XceptionBlock", "XceptionBlockSpec"]


def _dilated(dilation: int) -> dict:
    """The ``dilation`` keyword for the conv block, only where there is one (a layout at output stride 32
    builds exactly the modules it always did)."""
    return {"dilation": dilation} if dilation != 1 else {}


class XceptionBlock(nn.Module):
    """A residual block of Figure 5: [ReLU, SeparableConv 3×3, BN] × reps, a 3×3/2 max pool when
    reducing, plus a shortcut (identity, or 1×1 conv + BN when the width or the grid changes).

    Args:
        in_channels, out_channels: channels in and out.
        reps: separable convolutions in the block (2 in the entry/exit flows, 3 in the middle flow).
        stride: 1, or 2 for a reducing block (max pool at the end, strided shortcut).
        start_with_relu: False for the first block, which follows a ReLU already.
        grow_first: widen at the first separable convolution (True) or at the last (the exit block).
        pool_padding: the reducing max pool's padding: 1 (PyTorch's ports) or ``"same"`` (TensorFlow's
            "same", asymmetric on even sizes: Keras' Xception).
        pool: end in the 3×3 max pool (of stride ``stride``) and take the 1×1 convolution shortcut; None:
            exactly when ``stride != 1``. True at stride 1 is a reducing block run for dense prediction.
        dilation: the separable convolutions' dilation (padded to keep the grid); the pool is not dilated.
        conv_layer: the family's conv block.

    Shapes: (B, in_channels, H, W) -> (B, out_channels, ceil(H / stride), ceil(W / stride)).

    Raises:
        ValueError: ``stride != 1`` with ``pool=False`` (the shortcut would not match the block's grid).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        reps: int,
        stride: int = 1,
        *,
        start_with_relu: bool = True,
        grow_first: bool = True,
        pool_padding: int | Literal["same"] = 1,
        pool: bool | None = None,
        dilation: int = 1,
        conv_layer: ConvLayer,
    ) -> None:
        super().__init__()
        pool = stride != 1 if pool is None else pool
        if stride != 1 and not pool:
            raise ValueError("an XceptionBlock reduces the grid with its max pool: stride != 1 needs pool=True")
        widths = [out_channels] * reps if grow_first else [in_channels] * (reps - 1) + [out_channels]
        layers: list[nn.Module] = [nn.ReLU(inplace=False)] if start_with_relu else []  # input feeds the shortcut
        ch = in_channels
        for i, width in enumerate(widths):
            # The ReLU that opens the next separable step is this block's activation.
            layers.append(conv_layer(ch, width, 3, 1, same_padding(3, dilation)[0], separable=True,
                                     act=i < reps - 1, **_dilated(dilation)))
            ch = width
        if pool:
            layers.append(Pool("max", 3, stride, padding=pool_padding).build(ch, conv_layer)[0])
        if in_channels != out_channels or pool:
            self.shortcut: nn.Module = conv_layer(in_channels, out_channels, 1, stride, 0, act=False)
        else:
            self.shortcut = nn.Identity()
        self.rep = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rep(x) + self.shortcut(x)

    def residual_parts(self) -> ResidualParts:
        """For fusion: the sum goes into the 1×1 shortcut convolution, or, with an identity shortcut, into
        the last separable convolution of ``rep``."""
        if isinstance(self.shortcut, nn.Identity):
            return ResidualParts(self.rep[:-1], self.rep[-1], on_shortcut=False, scale=1.0, act=False)
        return ResidualParts(self.rep, self.shortcut, on_shortcut=True, scale=1.0, act=False)


@dataclass(frozen=True)
class XceptionBlockSpec:
    """Layer spec for an :class:`XceptionBlock` (see :mod:`inception_zoo.layers.blocks`)."""

    out: int
    reps: int
    stride: int = 1
    start_with_relu: bool = True
    grow_first: bool = True
    pool_padding: int | Literal["same"] = 1
    pool: bool | None = None
    dilation: int = 1

    def build(self, in_channels: int, conv_layer: ConvLayer) -> tuple[nn.Module, int, int]:
        block = XceptionBlock(
            in_channels, self.out, self.reps, self.stride,
            start_with_relu=self.start_with_relu, grow_first=self.grow_first, pool_padding=self.pool_padding,
            pool=self.pool, dilation=self.dilation, conv_layer=conv_layer,
        )
        return block, self.out, self.stride

    def dense(self, dilation: int, keep_stride: bool) -> XceptionBlockSpec:
        """See :class:`~inception_zoo.layers.LayerSpec`. The separable convolutions are dilated (they are
        "same"-padded already, as are the 1×1 shortcut and the max pool, padding 1 or "same"); without
        ``keep_stride`` a reducing block keeps its max pool and its 1×1 shortcut, both at stride 1."""
        if keep_stride or self.stride == 1:
            return replace(self, dilation=dilation)
        return replace(self, dilation=dilation, stride=1, pool=True)


class AlignedXceptionBlock(nn.Module):
    """A block of DeepLabv3+'s modified aligned Xception (arXiv 1802.02611, Section 3.2, Figure 4), as
    TensorFlow's DeepLab code and timm's ``xception_aligned`` build it: three 3×3 separable convolutions,
    the third strided (in place of Xception's max pool), and a shortcut added to their output.

    Each separable convolution has a BatchNorm between its depthwise and pointwise convolutions and one
    after the pointwise one. ``start_with_relu=True``: a ReLU before each separable convolution (the first
    on the block's input, which the shortcut takes unactivated), none inside them. ``start_with_relu=False``
    (the exit flow's last three convolutions): a ReLU after both BatchNorms of each. The shortcut is the
    identity, or a 1×1 convolution + BatchNorm where the width or the grid changes.

    ``preact=True`` (timm's pre-activation variant, after He et al., arXiv 1603.05027): the block opens with
    BatchNorm + ReLU (``norm``), whose output feeds both the separable convolutions and the shortcut (a
    plain 1×1 convolution, no BatchNorm); no BatchNorm between depthwise and pointwise. timm normalizes
    again (BatchNorm + ReLU) before the second and the third convolution; the same BatchNorm and ReLU are
    written here as the first and second convolutions' own (the same function and parameters, in timm's
    order), so that deploy mode folds them into those convolutions. The third convolution is linear.

    Args:
        in_channels: input channels.
        widths: the three separable convolutions' output channels.
        stride: the third separable convolution's stride (and the shortcut's).
        start_with_relu: where the ReLUs are, without ``preact`` (see above).
        skip: add the shortcut (False: the exit flow's last three convolutions, no shortcut).
        preact: the pre-activation variant (see above).
        act: a ReLU on the block's output (the one timm's pre-activation models apply after their last block).
        projection: a 1×1 convolution shortcut even where the shapes agree (a reducing block run at stride 1
            for dense prediction); None: where the width or the stride changes.
        dilation: the separable convolutions' dilation (padded to keep the grid).
        conv_layer: the family's conv block.

    Children, in timm's order (which the key maps pair by): ``shortcut`` (None without ``skip``),
    ``norm`` (a :class:`~inception_zoo.layers.PreActivation` with ``preact``, else None), ``stack``
    (``act``, the leading ReLU where there is one, then ``conv1`` to ``conv3``).

    Shapes: (B, in_channels, H, W) -> (B, widths[-1], ceil(H / stride), ceil(W / stride)).

    Raises:
        ValueError: not three widths, or an identity shortcut (``projection=False``) where the width or the
            stride changes.
    """

    def __init__(
        self,
        in_channels: int,
        widths: tuple[int, ...],
        stride: int = 1,
        *,
        start_with_relu: bool = True,
        skip: bool = True,
        preact: bool = False,
        act: bool = False,
        projection: bool | None = None,
        dilation: int = 1,
        conv_layer: ConvLayer,
    ) -> None:
        super().__init__()
        if len(widths) != 3:
            raise ValueError(f"an aligned Xception block has three separable convolutions, got widths {widths}")
        reshapes = widths[-1] != in_channels or stride != 1
        projection = reshapes if projection is None else projection
        if skip and reshapes and not projection:
            raise ValueError("an identity shortcut needs the block to keep its width and grid")
        self.shortcut: nn.Module | None = None
        if skip and projection:
            plain = {"bn": False, "bias": False} if preact else {}
            self.shortcut = conv_layer(in_channels, widths[-1], 1, stride, 0, act=False, **plain)
        elif skip:
            self.shortcut = nn.Identity()
        self.norm: nn.Module | None = PreActivation(in_channels, bn_eps=bn_eps_of(conv_layer)) if preact else None
        layers: list[tuple[str, nn.Module]] = []
        if start_with_relu and not preact:
            layers.append(("act", nn.ReLU()))  # not in place: the input also feeds the shortcut
        ch, pad = in_channels, same_padding(3, dilation)[0]
        for i, width in enumerate(widths):
            last = i == len(widths) - 1
            if preact:  # BN + ReLU after the first two (timm's before the next), the third linear
                opts = {"bn": False, "bias": False, "act": act and not skip} if last else {}
            elif start_with_relu:  # the ReLU that opens the next separable convolution is this one's act
                opts = {"depthwise_bn": True, "act": not last}
            else:
                opts = {"depthwise_bn": True, "depthwise_act": True}
            layers.append((f"conv{i + 1}", conv_layer(ch, width, 3, stride if last else 1, pad, separable=True,
                                                      **opts, **_dilated(dilation))))
            ch = width
        self.stack = nn.Sequential(OrderedDict(layers))
        self.act = bool(act) and skip  # without a shortcut, the last convolution's own ReLU

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm is not None:
            x = self.norm(x)
        y = self.stack(x)
        if self.shortcut is not None:
            y = y + self.shortcut(x)
        return torch.relu(y) if self.act else y

    def residual_parts(self) -> ResidualParts | None:
        """For fusion (deploy mode): the sum goes into the 1×1 shortcut convolution, or, with an identity
        shortcut, into the last separable convolution. None where it cannot: a block without shortcut, or
        a pre-activation block (its sum adds the normalized input, not the block's input)."""
        if self.shortcut is None or self.norm is not None:
            return None
        if isinstance(self.shortcut, nn.Identity):
            return ResidualParts(self.stack[:-1], self.stack[-1], on_shortcut=False, scale=1.0, act=self.act)
        return ResidualParts(self.stack, self.shortcut, on_shortcut=True, scale=1.0, act=self.act)


@dataclass(frozen=True)
class AlignedXceptionSpec:
    """Layer spec for an :class:`AlignedXceptionBlock` (see :mod:`inception_zoo.layers.blocks`): ``out`` is
    the three separable convolutions' widths, or one width for all three; the other fields are the block's
    options.

    Raises:
        ValueError: ``out`` not one or three positive ints.
    """

    out: int | tuple[int, int, int]
    stride: int = 1
    start_with_relu: bool = True
    skip: bool = True
    preact: bool = False
    act: bool = False
    projection: bool | None = None
    dilation: int = 1

    def __post_init__(self) -> None:
        widths = (self.out,) if isinstance(self.out, int) else self.out
        if not (isinstance(widths, tuple) and len(widths) in (1, 3)
                and all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in widths)):
            raise ValueError(f"AlignedXceptionSpec.out must be a width or three widths, got {self.out!r}")

    @property
    def widths(self) -> tuple[int, int, int]:
        return (self.out,) * 3 if isinstance(self.out, int) else self.out

    def build(self, in_channels: int, conv_layer: ConvLayer) -> tuple[nn.Module, int, int]:
        block = AlignedXceptionBlock(
            in_channels, self.widths, self.stride, start_with_relu=self.start_with_relu, skip=self.skip,
            preact=self.preact, act=self.act, projection=self.projection, dilation=self.dilation,
            conv_layer=conv_layer,
        )
        return block, self.widths[-1], self.stride

    def dense(self, dilation: int, keep_stride: bool) -> AlignedXceptionSpec:
        """See :class:`~inception_zoo.layers.LayerSpec`: every convolution is "same"-padded already; the
        separable ones are dilated; without ``keep_stride`` a strided block runs at stride 1 and keeps its
        1×1 convolution shortcut (and so its weights)."""
        if keep_stride or self.stride == 1:
            return replace(self, dilation=dilation)
        return replace(self, dilation=dilation, stride=1, projection=True)


@dataclass(frozen=True)
class PlainConv(Conv):
    """A :class:`~inception_zoo.layers.Conv` with no BatchNorm, no ReLU and no bias, whatever the family's
    conv options: the last stem convolution of the pre-activation Xceptions, whose output the first block
    normalizes (timm's ``xception41p`` / ``xception65p``)."""

    act: bool = False

    def build(self, in_channels: int, conv_layer: ConvLayer) -> tuple[nn.Module, int, int]:
        return super().build(in_channels, partial(conv_layer, bn=False, bias=False))
