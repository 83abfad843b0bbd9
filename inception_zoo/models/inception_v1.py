"""GoogLeNet (Inception v1): Szegedy et al., "Going Deeper with Convolutions", arXiv 1409.4842.

Two builders share one table (the paper's Table 1):

* ``inception_v1``: the network as published: convolutions with biases and no BatchNorm, real 5×5
  convolutions, local response normalization in the stem (Figure 3), dropout 0.4, and auxiliary heads on
  inception (4a) and (4d) (Section 5).
* ``inception_v1_bn``: torchvision's ``googlenet`` layout, so its checkpoints map one to one: BatchNorm
  (eps 1e-3) after every convolution, no LRN, a 2×2 max pool before (5a), and **a 3×3 kernel in the
  branch the paper gives as 5×5** (torchvision kept the kernel of the checkpoint it ported).
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from ..layers import LRN, AuxHead, AuxPool, BasicConv2d, Conv, Mixed, Pool
from ..registry import register_alias, register_model
from .base import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, AuxSpec, InceptionNet, Paper, model_cfg

__all__ = [
    "GOOGLENET_TABLE",
    "googlenet_module",
    "inception_v1",
    "inception_v1_bn",
    "inception_v1_cifar",
    "inception_v1_cifar_naive",
]

# Table 1 of the paper: #1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj.
GOOGLENET_TABLE: dict[str, tuple[int, int, int, int, int, int]] = {
    "inception_3a": (64, 96, 128, 16, 32, 32),
    "inception_3b": (128, 128, 192, 32, 96, 64),
    "inception_4a": (192, 96, 208, 16, 48, 64),
    "inception_4b": (160, 112, 224, 24, 64, 64),
    "inception_4c": (128, 128, 256, 24, 64, 64),
    "inception_4d": (112, 144, 288, 32, 64, 64),
    "inception_4e": (256, 160, 320, 32, 128, 128),
    "inception_5a": (256, 160, 320, 32, 128, 128),
    "inception_5b": (384, 192, 384, 48, 128, 128),
}

PAPER = Paper(
    title="Going Deeper with Convolutions",
    arxiv="1409.4842",
    params=6_797_700,
    macs=1_500_000_000,
    note="params: the sum of Table 1's per-layer column (given in thousands); multiply-adds: Section 1 "
    "and Table 1 (1.5 billion)",
    top1_note="the paper reports top-5 only (Table 3: 10.07% top-5 error, one model, one crop)",
)


def googlenet_module(
    c1: int, c3r: int, c3: int, c5r: int, c5: int, pool_proj: int, *,
    k5: int = 5, double_3x3: bool = False, naive: bool = False,
) -> Mixed:
    """An Inception module with dimension reductions (Figure 2b): 1×1 | 1×1 -> 3×3 | 1×1 -> 5×5 |
    3×3 max pool -> 1×1.

    ``k5`` is the kernel of the "5×5" branch (3 in torchvision's layout); ``double_3x3`` makes that branch
    two stacked 3×3 convolutions (BN-Inception's factorization, used by the CIFAR layout). ``naive=True``
    gives the naive module of Figure 2(a): no 1×1 reductions and no pool projection: the 3×3 and 5×5
    convolutions read the input directly and the max-pooled input is concatenated as it is, so the width
    grows by the input's width at every module (``c3r``, ``c5r`` and ``pool_proj`` are then unused).
    """
    five = (Conv(c5, 3), Conv(c5, 3)) if double_3x3 else (Conv(c5, k5),)
    pool = Pool("max", 3, 1, ceil_mode=True)
    if naive:
        return Mixed(((Conv(c1),), (Conv(c3, 3),), five, (pool,)))
    return Mixed((
        (Conv(c1),),
        (Conv(c3r), Conv(c3, 3)),
        (Conv(c5r), *five),
        (pool, Conv(pool_proj)),
    ))


def _layout(*, paper: bool) -> list:
    """Table 1 row by row. ``paper=False`` gives torchvision's googlenet layout."""
    maxpool = Pool("max", 3, 2, ceil_mode=True)
    k5 = 5 if paper else 3
    stem = [
        ("conv1_7x7_s2", Conv(64, 7, 2, padding=3)),
        ("pool1_3x3_s2", maxpool),
        ("norm1", LRN()),
        ("conv2_3x3_reduce", Conv(64)),
        ("conv2_3x3", Conv(192, 3)),
        ("norm2", LRN()),
        ("pool2_3x3_s2", maxpool),
    ]
    if not paper:
        stem = [(n, s) for n, s in stem if not isinstance(s, LRN)]
    modules = {name: googlenet_module(*row, k5=k5) for name, row in GOOGLENET_TABLE.items()}
    return [
        *stem,
        ("inception_3a", modules["inception_3a"]),
        ("inception_3b", modules["inception_3b"]),
        ("pool3_3x3_s2", maxpool),
        *[(f"inception_4{c}", modules[f"inception_4{c}"]) for c in "abcde"],
        ("pool4_3x3_s2", maxpool if paper else Pool("max", 2, 2, ceil_mode=True)),
        ("inception_5a", modules["inception_5a"]),
        ("inception_5b", modules["inception_5b"]),
    ]


def _aux_heads(conv_layer, pool: AuxPool) -> list[AuxSpec]:
    """Section 5: 5×5/3 average pool, 1×1 conv 128 + ReLU, FC 1024 + ReLU, dropout 0.7, FC; on 4a and 4d."""

    def build(in_ch: int, num_classes: int) -> AuxHead:
        return AuxHead(
            in_ch, num_classes, pool=pool, convs=[Conv(128)], conv_layer=conv_layer,
            flatten=True, hidden_features=1024, drop_rate=0.7,
        )

    return [AuxSpec("inception_4a", build), AuxSpec("inception_4d", build)]


@register_model
def inception_v1(
    *, num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = False, drop_rate: float = 0.4,
    global_pool: str = "avg",
) -> InceptionNet:
    """GoogLeNet as published (arXiv 1409.4842, Table 1): no BatchNorm, biased convolutions, 5×5 branches,
    LRN in the stem, dropout 0.4. 6,998,552 parameters; 13,378,280 with the two auxiliary heads.

    Input (B, in_chans, H, W), 224×224 by default; output (B, num_classes) logits, or
    :class:`~inception_zoo.InceptionOutputs` with two auxiliary logits in train mode with ``aux_logits``.
    """
    conv_layer = partial(BasicConv2d, bn=False)
    return InceptionNet(
        _layout(paper=True),
        conv_layer=conv_layer,
        name="inception_v1",
        default_cfg=model_cfg(
            paper=PAPER, input_size=(3, 224, 224), min_input_size=(3, 31, 31),
            mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD, interpolation="bilinear", crop_pct=0.875,
        ),
        num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate,
        aux_heads=_aux_heads(conv_layer, AuxPool(5, 3, 4)), aux_logits=aux_logits, global_pool=global_pool,
    )


@register_model
def inception_v1_bn(
    *, num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = False, drop_rate: float = 0.2,
    global_pool: str = "avg",
) -> InceptionNet:
    """GoogLeNet in torchvision's layout (``torchvision.models.googlenet``), so its weights map one to one.

    Departs from the paper (arXiv 1409.4842) where torchvision does: BatchNorm (eps 1e-3) after every
    convolution and no conv biases, no LRN, a **3×3 kernel in the branch Table 1 gives as 5×5**, a 2×2
    max pool before (5a), adaptive 4×4 pooling in the auxiliary heads, dropout 0.2.
    6,624,904 parameters; 13,004,888 with the two auxiliary heads.
    """
    conv_layer = partial(BasicConv2d, bn=True, bn_eps=1e-3)
    return InceptionNet(
        _layout(paper=False),
        conv_layer=conv_layer,
        name="inception_v1_bn",
        default_cfg=model_cfg(
            paper=PAPER, input_size=(3, 224, 224), min_input_size=(3, 15, 15),
            mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD, interpolation="bilinear", crop_pct=0.875,
        ),
        num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate,
        aux_heads=_aux_heads(conv_layer, AuxPool(None, None, 4)), aux_logits=aux_logits, global_pool=global_pool,
    )


def _cifar_layout(*, naive: bool) -> list:
    """GoogLeNet for 32×32 input: one 3×3 conv stem (192 channels), Table 1's modules with the 5×5 branch
    as two 3×3, 3×3/2 max pools after (3b) and (4e), so the grids are 32, 16 and 8."""
    maxpool = Pool("max", 3, 2, padding=1)
    modules = {name: googlenet_module(*row, double_3x3=True, naive=naive) for name, row in GOOGLENET_TABLE.items()}
    return [
        ("stem", Conv(192, 3)),
        ("inception_3a", modules["inception_3a"]),
        ("inception_3b", modules["inception_3b"]),
        ("pool3_3x3_s2", maxpool),
        *[(f"inception_4{c}", modules[f"inception_4{c}"]) for c in "abcde"],
        ("pool4_3x3_s2", maxpool),
        ("inception_5a", modules["inception_5a"]),
        ("inception_5b", modules["inception_5b"]),
    ]


CIFAR_PAPER = replace(PAPER, params=None, macs=None, note="CIFAR layout: the paper's figures are for ImageNet", top1_note="")
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def _cifar(name: str, *, naive: bool, num_classes: int, in_chans: int, aux_logits: bool, drop_rate: float,
           global_pool: str) -> InceptionNet:
    return InceptionNet(
        _cifar_layout(naive=naive),
        conv_layer=partial(BasicConv2d, bn=True, bn_eps=1e-5),
        name=name,
        default_cfg=model_cfg(
            paper=CIFAR_PAPER, input_size=(3, 32, 32), min_input_size=(3, 1, 1),
            mean=CIFAR_MEAN, std=CIFAR_STD, interpolation="bilinear", crop_pct=1.0,
        ),
        num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate, aux_logits=aux_logits,
        global_pool=global_pool,
    )


@register_model
def inception_v1_cifar(
    *, num_classes: int = 10, in_chans: int = 3, aux_logits: bool = False, drop_rate: float = 0.4,
    global_pool: str = "avg",
) -> InceptionNet:
    """GoogLeNet for CIFAR-size (32×32) input, the layout most tutorials use: a single 3×3 conv stem with
    192 channels, BatchNorm (eps 1e-5) + ReLU after every convolution, Table 1's Inception modules with the
    5×5 branch as two stacked 3×3 convolutions, 3×3/2 max pools after (3b) and (4e), global average pool,
    dropout 0.4, linear. 10 classes by default; no auxiliary heads."""
    return _cifar("inception_v1_cifar", naive=False, num_classes=num_classes, in_chans=in_chans,
                  aux_logits=aux_logits, drop_rate=drop_rate, global_pool=global_pool)


@register_model
def inception_v1_cifar_naive(
    *, num_classes: int = 10, in_chans: int = 3, aux_logits: bool = False, drop_rate: float = 0.4,
    global_pool: str = "avg",
) -> InceptionNet:
    """:func:`inception_v1_cifar` built from naive Inception modules (Figure 2a: no 1×1 reductions, the
    pooled input concatenated as it is), for the paper's argument: the width, and with it the cost,
    grows with every module (compare the two in ``inception-zoo table --models 'inception_v1_cifar*'``)."""
    return _cifar("inception_v1_cifar_naive", naive=True, num_classes=num_classes, in_chans=in_chans,
                  aux_logits=aux_logits, drop_rate=drop_rate, global_pool=global_pool)


register_alias("googlenet", "inception_v1")
