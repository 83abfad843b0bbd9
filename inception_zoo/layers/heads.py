"""Classifier heads: the main head (a classifier, or a face embedding) and the auxiliary heads, built from the
same parts."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ConvLayer, LayerSpec, build_sequence

__all__ = [
    "POOL_TYPES", "GlobalPool", "ClassifierHead", "EmbeddingHead", "EmbeddingSpec", "AuxPool", "AuxHead",
    "AuxSpec",
]


POOL_TYPES = ("avg", "max", "avgmax", "catavgmax", "")


class GlobalPool(nn.Module):
    """Global pooling that adapts to any spatial size (never a fixed kernel), then flattening.

    ``pool_type``: ``"avg"``, ``"max"``, ``"avgmax"`` (the mean of both), ``"catavgmax"`` (both,
    concatenated: twice the channels), ``"flatten"`` (no pooling: the map flattened as it is, GoogLeNet's
    auxiliary heads) or ``""`` (no pooling, no flattening: the map passes through).

    Shapes: (B, C, H, W) -> (B, C · feat_mult), (B, C·H·W) for "flatten", (B, C, H, W) for "".

    Raises:
        ValueError: an unknown pool type, naming the allowed ones.
    """

    def __init__(self, pool_type: str = "avg") -> None:
        super().__init__()
        if pool_type not in POOL_TYPES + ("flatten",):
            raise ValueError(f"global_pool must be one of {POOL_TYPES}, got {pool_type!r}")
        self.pool_type = pool_type
        self.feat_mult = 2 if pool_type == "catavgmax" else 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool_type == "":
            return x
        if self.pool_type == "flatten":
            return x.flatten(1)
        if self.pool_type == "avg":
            return F.adaptive_avg_pool2d(x, 1).flatten(1)
        if self.pool_type == "max":
            return F.adaptive_max_pool2d(x, 1).flatten(1)
        avg, mx = F.adaptive_avg_pool2d(x, 1).flatten(1), F.adaptive_max_pool2d(x, 1).flatten(1)
        if self.pool_type == "avgmax":
            return 0.5 * (avg + mx)
        return torch.cat([avg, mx], dim=1)

    def extra_repr(self) -> str:
        return f"pool_type={self.pool_type!r}"


class ClassifierHead(nn.Module):
    """Global pooling, optional hidden layer, dropout, linear classifier.

    Args:
        in_features: channels of the incoming feature map.
        num_classes: classifier outputs; 0 replaces the final linear layer by the identity (the head then
            returns the pooled, or hidden, features).
        pool: a :class:`GlobalPool` type: ``"avg"`` (default), ``"max"``, ``"avgmax"``, ``"catavgmax"``,
            ``"flatten"`` (GoogLeNet's auxiliary heads), or ``""`` (no pooling; needs ``num_classes=0``).
        hidden_features: width of a hidden linear layer + ReLU before the dropout (GoogLeNet's auxiliary
            heads: 1024), or None.
        drop_rate: dropout probability before the final linear layer.

    Shapes: (B, in_features, H, W) -> (B, num_classes); for ``pool="flatten"`` in_features must equal
    C·H·W of the incoming map. The hidden ReLU is not in place (a hook on the hidden ``nn.Linear`` keeps
    its output).

    Raises:
        ValueError: an unknown pool type, or ``pool=""`` with ``num_classes > 0``.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        pool: str = "avg",
        hidden_features: int | None = None,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.global_pool = GlobalPool(pool)
        if pool == "" and (num_classes > 0 or hidden_features):
            raise ValueError("global_pool='' keeps the unpooled feature map; it needs num_classes=0")
        self.pool_type = pool
        in_features *= self.global_pool.feat_mult
        if hidden_features:
            self.hidden: nn.Module = nn.Sequential(nn.Linear(in_features, hidden_features), nn.ReLU())
            in_features = hidden_features
        else:
            self.hidden = nn.Identity()
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(in_features, num_classes) if num_classes > 0 else nn.Identity()
        self.num_features = in_features

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.drop(self.hidden(self.global_pool(x)))
        return x if pre_logits else self.fc(x)


class EmbeddingHead(nn.Module):
    """A face-recognition head: an L2-normalized embedding, and an optional identity classifier.

    FaceNet (Schroff et al., arXiv 1503.03832, Section 3) maps a face to a point on the unit hypersphere,
    where distances compare identities. The layout is that of David Sandberg's facenet models and their
    facenet-pytorch port (``last_linear``, ``last_bn``, ``logits``): global pooling, dropout, a bias-free
    linear projection to ``embed_dim`` (TF-slim's "Bottleneck"), BatchNorm1d; then either the classifier
    ``fc`` = Linear(embed_dim, num_classes) on the BatchNorm's output, not normalized (the softmax over
    training identities those models were trained with), or the embedding divided by its L2 norm.

    Args:
        in_features: channels of the incoming feature map.
        num_classes: classifier outputs (training identities: 8631 for VGGFace2, 10575 for CASIA-WebFace);
            0: no classifier, ``fc`` is the identity and forward returns the normalized embedding.
        embed_dim: width of the embedding (512 in the 2018 facenet models).
        pool: a :class:`GlobalPool` type but ``""`` (the embedding needs a pooled vector).
        drop_rate: dropout probability before the projection (facenet: 0.6, i.e. keep 0.4).
        bn_eps: the BatchNorm1d epsilon (1e-3, TensorFlow's, as in the facenet checkpoints).

    Shapes: (B, in_features, H, W) -> (B, num_classes) logits; with ``pre_logits=True``, or when
    ``num_classes == 0``, (B, embed_dim) unit-length embeddings (each divided by max(its L2 norm, 1e-12)).

    Raises:
        ValueError: an unknown pool type, or ``pool=""``.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        embed_dim: int = 512,
        pool: str = "avg",
        drop_rate: float = 0.0,
        bn_eps: float = 1e-3,
    ) -> None:
        super().__init__()
        if pool == "":
            raise ValueError("global_pool='' keeps the unpooled feature map, which the embedding head cannot "
                             f"project; use one of {POOL_TYPES[:-1]}")
        self.global_pool = GlobalPool(pool)
        self.pool_type = pool
        self.drop = nn.Dropout(drop_rate)
        self.embed = nn.Linear(in_features * self.global_pool.feat_mult, embed_dim, bias=False)
        self.bn = nn.BatchNorm1d(embed_dim, eps=bn_eps)
        self.fc = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self.num_classes = num_classes
        self.num_features = embed_dim

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.bn(self.embed(self.drop(self.global_pool(x))))
        if pre_logits or self.num_classes == 0:
            return F.normalize(x, p=2.0, dim=1)
        return self.fc(x)


@dataclass(frozen=True)
class EmbeddingSpec:
    """An :class:`EmbeddingHead` as data, for a record whose main head is a face embedding:
    ``embed_dim`` (the embedding's width) and ``bn_eps`` (its BatchNorm1d epsilon).

    Raises:
        ValueError: ``embed_dim`` not an int >= 1, or ``bn_eps`` not a number > 0.
    """

    embed_dim: int = 512
    bn_eps: float = 1e-3

    def __post_init__(self) -> None:
        if not isinstance(self.embed_dim, int) or isinstance(self.embed_dim, bool) or self.embed_dim < 1:
            raise ValueError(f"EmbeddingSpec.embed_dim must be an int >= 1, got {self.embed_dim!r}")
        if not isinstance(self.bn_eps, (int, float)) or isinstance(self.bn_eps, bool) or not self.bn_eps > 0:
            raise ValueError(f"EmbeddingSpec.bn_eps must be a number > 0, got {self.bn_eps!r}")

    def build(
        self, in_features: int, num_classes: int, *, pool: str = "avg", drop_rate: float = 0.0
    ) -> EmbeddingHead:
        return EmbeddingHead(
            in_features, num_classes, embed_dim=self.embed_dim, pool=pool, drop_rate=drop_rate,
            bn_eps=self.bn_eps,
        )


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
        self.kernel_size = int(kernel_size or 0)  # 0: adaptive pooling only
        self.stride = int(stride or kernel_size or 1)
        size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
        self.out_h, self.out_w = int(size[0]), int(size[1])
        self.output_size = (self.out_h, self.out_w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size
        if k > 0 and x.shape[-2] >= k and x.shape[-1] >= k:
            x = F.avg_pool2d(x, k, self.stride)
        if x.shape[-2] != self.out_h or x.shape[-1] != self.out_w:
            x = F.adaptive_avg_pool2d(x, [self.out_h, self.out_w])
        return x

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, output_size={self.output_size}"


class AuxHead(nn.Sequential):
    """Auxiliary classifier: :class:`AuxPool`, a few conv blocks, a :class:`ClassifierHead`.

    GoogLeNet (arXiv 1409.4842, Section 5): 5×5/3 average pool, 1×1 conv 128, FC 1024 + ReLU, dropout 0.7,
    FC. Inception v3 (arXiv 1512.00567, Figure 8 and Section 4): 5×5/3 average pool, 1×1 conv 128, 5×5
    conv 768 (both with BatchNorm), global pool, FC.

    Args:
        in_channels: channels of the feature map the head taps.
        num_classes: classifier outputs.
        pool: the head's :class:`AuxPool`.
        convs: layer specs of the conv blocks after the pool.
        conv_layer: the family's conv block.
        flatten: feed the flattened pooled map to the classifier (GoogLeNet: 128×4×4 = 2048 inputs)
            instead of its global average (Inception v3).
        hidden_features, drop_rate: as in :class:`ClassifierHead`.

    Shapes: (B, in_channels, H, W) -> (B, num_classes).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        pool: AuxPool,
        convs: Sequence[LayerSpec],
        conv_layer: ConvLayer,
        flatten: bool = False,
        hidden_features: int | None = None,
        drop_rate: float = 0.0,
    ) -> None:
        conv_seq, channels, _ = build_sequence(in_channels, convs, conv_layer)
        if flatten:
            channels *= pool.output_size[0] * pool.output_size[1]
        head = ClassifierHead(
            channels, num_classes, pool="flatten" if flatten else "avg",
            hidden_features=hidden_features, drop_rate=drop_rate,
        )
        super().__init__(OrderedDict(pool=pool, convs=conv_seq, head=head))


@dataclass(frozen=True)
class AuxSpec:
    """An auxiliary head as data: the stage it taps and the parts of its :class:`AuxHead`.

    ``pool`` is ``(kernel_size, stride, output_size)`` of its :class:`AuxPool` (kernel None: adaptive
    pooling only); ``convs`` the layer specs after the pool; ``flatten``, ``hidden_features`` and
    ``drop_rate`` as in :class:`AuxHead`."""

    tap: str
    pool: tuple[int | None, int | None, int]
    convs: tuple[LayerSpec, ...]
    flatten: bool = False
    hidden_features: int | None = None
    drop_rate: float = 0.0

    def build(self, in_channels: int, num_classes: int, conv_layer: ConvLayer) -> AuxHead:
        return AuxHead(
            in_channels, num_classes, pool=AuxPool(*self.pool), convs=self.convs, conv_layer=conv_layer,
            flatten=self.flatten, hidden_features=self.hidden_features, drop_rate=self.drop_rate,
        )
