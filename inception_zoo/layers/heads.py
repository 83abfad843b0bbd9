"""Classifier heads: the main head and the auxiliary heads, built from the same parts."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ConvLayer, LayerSpec, build_sequence

__all__ = ["ClassifierHead", "AuxPool", "AuxHead"]


class ClassifierHead(nn.Module):
    """Pooling, optional hidden layer, dropout, linear classifier.

    Args:
        in_features: channels of the incoming feature map.
        num_classes: classifier outputs; 0 replaces the final linear layer by the identity (the head then
            returns the pooled, or hidden, features).
        pool: ``"avg"`` for global average pooling that adapts to any spatial size (never a fixed
            kernel), ``"flatten"`` to flatten the map as it is (GoogLeNet's auxiliary heads).
        hidden_features: width of a hidden linear layer + ReLU before the dropout (GoogLeNet's auxiliary
            heads: 1024), or None.
        drop_rate: dropout probability before the final linear layer.

    Shapes: (B, in_features, H, W) -> (B, num_classes); for ``pool="flatten"`` in_features must equal
    C·H·W of the incoming map.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        pool: Literal["avg", "flatten"] = "avg",
        hidden_features: int | None = None,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if pool == "avg":
            self.global_pool: nn.Module = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        elif pool == "flatten":
            self.global_pool = nn.Flatten(1)
        else:
            raise ValueError(f"pool must be 'avg' or 'flatten', got {pool!r}")
        self.pool_type = pool
        if hidden_features:
            self.hidden: nn.Module = nn.Sequential(nn.Linear(in_features, hidden_features), nn.ReLU(inplace=True))
            in_features = hidden_features
        else:
            self.hidden = nn.Identity()
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(in_features, num_classes) if num_classes > 0 else nn.Identity()
        self.num_features = in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(self.hidden(self.global_pool(x))))


class AuxPool(nn.Module):
    """The auxiliary heads' average pooling, exact at the training size and defined at every other size.

    The papers pool the auxiliary heads' input with a fixed 5×5 / stride 3 average pool (GoogLeNet 14×14 ->
    4×4; Inception v3 17×17 -> 5×5), which fails on smaller inputs and gives another shape on larger ones.
    Here the fixed pool is applied when the map is at least ``kernel_size`` in both dimensions, and the
    result is then pooled adaptively to ``output_size`` whenever it is not already that size. At the
    papers' input size this is exactly their pooling; ``kernel_size=None`` pools adaptively only
    (torchvision's GoogLeNet).

    Shapes: (B, C, H, W) -> (B, C, *output_size).
    """

    def __init__(self, kernel_size: int | None, stride: int | None, output_size: int | tuple[int, int]) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride or kernel_size
        self.output_size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size
        if k is not None and x.shape[-2] >= k and x.shape[-1] >= k:
            x = F.avg_pool2d(x, k, self.stride)
        if (x.shape[-2], x.shape[-1]) != self.output_size:
            x = F.adaptive_avg_pool2d(x, self.output_size)
        return x

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, output_size={self.output_size}"


class AuxHead(nn.Sequential):
    """Auxiliary classifier: :class:`AuxPool`, a few conv blocks, a :class:`ClassifierHead`.

    GoogLeNet (arXiv 1409.4842, Section 5): 5×5/3 average pool, 1×1 conv 128, FC 1024 + ReLU, dropout 0.7,
    FC. Inception v3 (arXiv 1512.00567, Figure 8 and Section 4): 5×5/3 average pool, 1×1 conv 128, 5×5
    conv 768 (both with BatchNorm), global pool, FC.

    Args:
        in_ch: channels of the feature map the head taps.
        num_classes: classifier outputs.
        pool: the head's :class:`AuxPool`.
        convs: layer specs of the conv blocks after the pool.
        conv_layer: the family's conv block.
        flatten: feed the flattened pooled map to the classifier (GoogLeNet: 128×4×4 = 2048 inputs)
            instead of its global average (Inception v3).
        hidden_features, drop_rate: as in :class:`ClassifierHead`.

    Shapes: (B, in_ch, H, W) -> (B, num_classes).
    """

    def __init__(
        self,
        in_ch: int,
        num_classes: int,
        *,
        pool: AuxPool,
        convs: Sequence[LayerSpec],
        conv_layer: ConvLayer,
        flatten: bool = False,
        hidden_features: int | None = None,
        drop_rate: float = 0.0,
    ) -> None:
        conv_seq, channels, _ = build_sequence(in_ch, convs, conv_layer)
        if flatten:
            channels *= pool.output_size[0] * pool.output_size[1]
        head = ClassifierHead(
            channels, num_classes, pool="flatten" if flatten else "avg",
            hidden_features=hidden_features, drop_rate=drop_rate,
        )
        super().__init__(OrderedDict(pool=pool, convs=conv_seq, head=head))
