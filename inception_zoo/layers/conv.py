"""Convolution primitives shared by every family.

* :class:`BasicConv2d`: convolution, optional BatchNorm, optional ReLU; the one conv block of the zoo.
* :class:`FactorizedConv2d`: an n×n convolution factorized into a 1×n and an n×1 convolution
  (Inception v3, arXiv 1512.00567, Section 3.2 and Figures 6/7; reused by Inception v4 and Inception-ResNet).
* :class:`SeparableConv2d`: depthwise k×k followed by pointwise 1×1, nothing in between
  (Xception, arXiv 1610.02357, Section 3), or a BatchNorm (and a ReLU) in between (DeepLabv3+'s modified
  aligned Xception, arXiv 1802.02611, Section 3.2).
* :class:`PreActivation`: BatchNorm then ReLU with no convolution, the opening of a pre-activation block
  whose two paths share it (He et al., arXiv 1603.05027).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

__all__ = ["BasicConv2d", "FactorizedConv2d", "PreActivation", "SeparableConv2d", "bn_eps_of", "same_padding"]

Size2 = int | tuple[int, int]


def _pair(v: Size2) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def same_padding(kernel_size: Size2, dilation: int = 1) -> tuple[int, int]:
    """Padding that keeps the spatial size of a stride-1 convolution with an odd kernel (dilated by
    ``dilation``); at stride s it gives ceil(H / s) outputs, padded symmetrically (PyTorch's convention)."""
    kh, kw = _pair(kernel_size)
    return dilation * (kh // 2), dilation * (kw // 2)


class SeparableConv2d(nn.Module):
    """Depthwise k×k convolution followed by a pointwise 1×1 convolution, by default with nothing in between.

    Xception (Chollet, arXiv 1610.02357) applies no non-linearity between the two, unlike MobileNet.
    DeepLabv3+'s modified aligned Xception (arXiv 1802.02611, Section 3.2) normalizes the depthwise output
    (``depthwise_bn``, a BatchNorm2d with eps ``bn_eps``) and, in its exit flow, applies a ReLU to it
    (``depthwise_act``). Those two are registered only when asked for (otherwise the attributes are None),
    so a plain separable convolution has exactly the children and weight keys ``depthwise`` and ``pointwise``.

    Shapes: (B, in_channels, H, W) -> (B, out_channels, H', W') with H', W' set by kernel/stride/padding
    (and ``dilation``, the depthwise convolution's). The depthwise convolution has no bias.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Size2 = 3,
        stride: Size2 = 1,
        padding: Size2 = 0,
        *,
        bias: bool = False,
        dilation: int = 1,
        depthwise_bn: bool = False,
        depthwise_act: bool = False,
        bn_eps: float = 1e-3,
    ) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(
            in_channels, in_channels, kernel_size, stride, padding, dilation, groups=in_channels, bias=False
        )
        # registered in forward order, between the two convolutions (checkpoints list them so)
        self.depthwise_bn = nn.BatchNorm2d(in_channels, eps=bn_eps) if depthwise_bn else None
        self.depthwise_act = nn.ReLU() if depthwise_act else None
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.depthwise(x)
        if self.depthwise_bn is not None:
            x = self.depthwise_bn(x)
        if self.depthwise_act is not None:
            x = self.depthwise_act(x)
        return self.pointwise(x)


class BasicConv2d(nn.Module):
    """Convolution, optional BatchNorm, optional ReLU: the conv block every family is built from.

    Args:
        in_channels, out_channels: input and output channels.
        kernel_size, stride, padding: as in :class:`torch.nn.Conv2d` (int or (h, w)).
        bn: add a BatchNorm2d after the convolution (False for GoogLeNet as published, which
            predates BatchNorm, and for the linear up-projections of Inception-ResNet).
        bn_eps: BatchNorm epsilon; 1e-3 as in the TensorFlow checkpoints of v3/v4/Inception-ResNet.
        bias: the convolution's bias; by default present exactly when ``bn=False`` (a bias before a
            BatchNorm is cancelled by it). BN-Inception passes ``bias=True`` to match the released
            Caffe model, whose convolutions kept their biases.
        act: apply ReLU at the end (False for linear projections and Xception's last conv of a block).
        separable: make the convolution a :class:`SeparableConv2d` (Xception).
        depthwise_bn, depthwise_act: with ``separable``, a BatchNorm (eps ``bn_eps``) and a ReLU between its
            depthwise and pointwise convolutions (DeepLabv3+'s aligned Xception, arXiv 1802.02611).
        dilation: the convolution's dilation (atrous rate; the depthwise one's when separable), > 1 only in
            the stages a smaller ``output_stride`` dilates (DeepLab, arXiv 1706.05587, Section 3.1).

    Shapes: (B, in_channels, H, W) -> (B, out_channels, H', W').

    Raises:
        ValueError: ``depthwise_bn`` or ``depthwise_act`` without ``separable``.

    Nothing is computed in place: the ReLU (``act``, an ``nn.ReLU``) writes a new tensor, so a forward hook
    on ``conv`` or ``bn`` keeps that module's own output and a full backward hook on them works
    (Grad-CAM, feature visualization). An in-place ReLU would overwrite the BatchNorm's output.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Size2,
        stride: Size2 = 1,
        padding: Size2 = 0,
        *,
        bn: bool = True,
        bn_eps: float = 1e-3,
        bias: bool | None = None,
        act: bool = True,
        separable: bool = False,
        dilation: int = 1,
        depthwise_bn: bool = False,
        depthwise_act: bool = False,
    ) -> None:
        super().__init__()
        bias = (not bn) if bias is None else bias
        if separable:
            self.conv: nn.Module = SeparableConv2d(
                in_channels, out_channels, kernel_size, stride, padding, bias=bias, dilation=dilation,
                depthwise_bn=depthwise_bn, depthwise_act=depthwise_act, bn_eps=bn_eps,
            )
        elif depthwise_bn or depthwise_act:
            raise ValueError("depthwise_bn and depthwise_act belong to a separable convolution (separable=True)")
        else:
            self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, bias=bias)
        self.bn = nn.BatchNorm2d(out_channels, eps=bn_eps) if bn else nn.Identity()
        self.act = nn.ReLU() if act else nn.Identity()
        self.in_channels, self.out_channels = in_channels, out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


def bn_eps_of(conv_layer: Callable[..., nn.Module]) -> float:
    """The BatchNorm epsilon a family's conv block uses: the ``bn_eps`` its ``functools.partial`` binds
    (:meth:`~inception_zoo.records.ModelRecord.conv_layer`), else :class:`BasicConv2d`'s default."""
    keywords = getattr(conv_layer, "keywords", None) or {}
    return float(keywords.get("bn_eps", 1e-3))


class PreActivation(nn.Module):
    """BatchNorm then ReLU, with no convolution: the pre-activation that opens a block whose residual path
    and shortcut both start from it (the pre-activation residual unit of He et al., "Identity Mappings in
    Deep Residual Networks", arXiv 1603.05027, Figure 4e; timm's ``xception41p`` / ``xception65p``).

    Args:
        channels: the channels normalized.
        bn_eps: the BatchNorm epsilon.

    Shapes: (B, channels, H, W) -> (B, channels, H, W). The ReLU (``act``) is not in place.
    """

    def __init__(self, channels: int, *, bn_eps: float = 1e-3) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, eps=bn_eps)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(x))


class FactorizedConv2d(nn.Module):
    """An n×n receptive field from a 1×n and an n×1 convolution in sequence (each a :class:`BasicConv2d`).

    Inception v3 (arXiv 1512.00567) Section 3.2, Figure 6 (n=7 on the 17×17 grid) and Figure 3 (n=3);
    Inception v4 / Inception-ResNet (arXiv 1602.07261) Figures 6, 11, 13, 17, 19.

    Args:
        in_channels: input channels.
        mid_channels: channels after the first of the two convolutions.
        out_channels: channels after the second.
        n: the kernel length (3 or 7 in the papers).
        first: ``"1xn"`` (the 1×n convolution first) or ``"nx1"``; the papers use both orders and
            the released checkpoints depend on it.
        conv_layer: the conv block for both convolutions (a :class:`BasicConv2d` with the family's
            options bound by ``functools.partial``).
        dilation: both convolutions' dilation (see :class:`BasicConv2d`).

    Both convolutions are stride 1 with "same" padding: (B, in_channels, H, W) -> (B, out_channels, H, W).
    """

    def __init__(
        self,
        in_channels: int,
        mid_channels: int,
        out_channels: int,
        n: int,
        *,
        first: Literal["1xn", "nx1"] = "1xn",
        conv_layer: Callable[..., nn.Module] | None = None,
        dilation: int = 1,
    ) -> None:
        if first not in ("1xn", "nx1"):
            raise ValueError(f"first must be '1xn' or 'nx1', got {first!r}")
        kernels = [(1, n), (n, 1)] if first == "1xn" else [(n, 1), (1, n)]
        names = ["conv_" + ("1xn" if k[0] == 1 else "nx1") for k in kernels]
        conv_layer = conv_layer or BasicConv2d
        dilated = {"dilation": dilation} if dilation != 1 else {}
        super().__init__()
        # Registered in forward order (checkpoints list them so); named by shape, not by position.
        for name, inc, outc, k in ((names[0], in_channels, mid_channels, kernels[0]),
                                   (names[1], mid_channels, out_channels, kernels[1])):
            self.add_module(name, conv_layer(inc, outc, k, 1, same_padding(k, dilation), **dilated))
        self.one_by_n_first = first == "1xn"
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Explicit order: TorchScript may compile one forward for two instances whose children differ
        # only in registration order.
        if self.one_by_n_first:
            return self.conv_nx1(self.conv_1xn(x))
        return self.conv_1xn(self.conv_nx1(x))
