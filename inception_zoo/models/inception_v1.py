"""GoogLeNet (Inception v1): Szegedy et al., "Going Deeper with Convolutions", arXiv 1409.4842.

Four records share one table (the paper's Table 1); the two ImageNet ones:

* ``inception_v1``: the network as published: convolutions with biases and no BatchNorm, real 5×5
  convolutions, local response normalization in the stem (Figure 3), dropout 0.4, and auxiliary heads on
  inception (4a) and (4d) (Section 5).
* ``inception_v1_bn``: torchvision's ``googlenet`` layout, so its checkpoints map one to one: BatchNorm
  (eps 1e-3) after every convolution, no LRN, a 2×2 max pool before (5a), and **a 3×3 kernel in the
  branch the paper gives as 5×5** (torchvision kept the kernel of the checkpoint it ported).
"""

from __future__ import annotations

from dataclasses import replace

from ..layers import LRN, AuxSpec, Conv, Mixed, Pool
from ..records import (
    IMAGENET_DEFAULT_MEAN,
    IMAGENET_DEFAULT_STD,
    ModelRecord,
    Paper,
    Peer,
    Pretrained,
    Recipe,
)
from ..registry import register_model

__all__ = [
    "GOOGLENET_TABLE",
    "PAPER_RECIPE",
    "googlenet_module",
    "INCEPTION_V1",
    "INCEPTION_V1_BN",
    "INCEPTION_V1_CIFAR",
    "INCEPTION_V1_CIFAR_NAIVE",
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


# Section 6: SGD with momentum 0.9, learning rate decreased by 4% every 8 epochs; auxiliary losses weighted
# 0.3 (Section 5). The paper gives no base rate; 0.01 here. BN-Inception is trained the same way.
PAPER_RECIPE = Recipe("sgd", 0.01, 0.96, 8, 0.0, 0.3, source="arXiv 1409.4842, Sections 5-6")


def googlenet_module(
    c1: int, c3r: int, c3: int, c5r: int, c5: int, pool_proj: int, *,
    k5: int = 5, double_3x3: bool = False, naive: bool = False,
) -> Mixed:
    """An Inception module with dimension reductions (Figure 2b): 1×1 | 1×1 -> 3×3 | 1×1 -> 5×5 |
    3×3 max pool -> 1×1, as branches ``branch1x1``, ``branch3x3``, ``branch5x5``, ``branch_pool``.

    ``k5`` is the kernel of the "5×5" branch (3 in torchvision's layout); ``double_3x3`` makes that branch
    two stacked 3×3 convolutions (BN-Inception's factorization, used by the CIFAR layout). ``naive=True``
    gives the naive module of Figure 2(a): no 1×1 reductions and no pool projection: the 3×3 and 5×5
    convolutions read the input directly and the max-pooled input is concatenated as it is, so the width
    grows by the input's width at every module (``c3r``, ``c5r`` and ``pool_proj`` are then unused).
    """
    five = (Conv(c5, 3), Conv(c5, 3)) if double_3x3 else (Conv(c5, k5),)
    pool = Pool("max", 3, 1, ceil_mode=True)
    if naive:
        return Mixed(branch1x1=(Conv(c1),), branch3x3=(Conv(c3, 3),), branch5x5=five, branch_pool=(pool,))
    return Mixed(
        branch1x1=(Conv(c1),),
        branch3x3=(Conv(c3r), Conv(c3, 3)),
        branch5x5=(Conv(c5r), *five),
        branch_pool=(pool, Conv(pool_proj)),
    )


def _layout(*, paper: bool) -> tuple:
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
    return (
        *stem,
        ("inception_3a", modules["inception_3a"]),
        ("inception_3b", modules["inception_3b"]),
        ("pool3_3x3_s2", maxpool),
        *[(f"inception_4{c}", modules[f"inception_4{c}"]) for c in "abcde"],
        ("pool4_3x3_s2", maxpool if paper else Pool("max", 2, 2, ceil_mode=True)),
        ("inception_5a", modules["inception_5a"]),
        ("inception_5b", modules["inception_5b"]),
    )


def _aux_heads(pool: tuple) -> tuple[AuxSpec, ...]:
    """Section 5: 5×5/3 average pool, 1×1 conv 128 + ReLU, FC 1024 + ReLU, dropout 0.7, FC; on 4a and 4d."""
    return tuple(
        AuxSpec(tap, pool=pool, convs=(Conv(128),), flatten=True, hidden_features=1024, drop_rate=0.7)
        for tap in ("inception_4a", "inception_4d")
    )


def _cifar_layout(*, naive: bool) -> tuple:
    """GoogLeNet for 32×32 input: one 3×3 conv stem (192 channels), Table 1's modules with the 5×5 branch
    as two 3×3, 3×3/2 max pools after (3b) and (4e), so the grids are 32, 16 and 8."""
    maxpool = Pool("max", 3, 2, padding=1)
    modules = {name: googlenet_module(*row, double_3x3=True, naive=naive) for name, row in GOOGLENET_TABLE.items()}
    return (
        ("stem", Conv(192, 3)),
        ("inception_3a", modules["inception_3a"]),
        ("inception_3b", modules["inception_3b"]),
        ("pool3_3x3_s2", maxpool),
        *[(f"inception_4{c}", modules[f"inception_4{c}"]) for c in "abcde"],
        ("pool4_3x3_s2", maxpool),
        ("inception_5a", modules["inception_5a"]),
        ("inception_5b", modules["inception_5b"]),
    )


IMAGENET_INPUT = dict(input_size=(3, 224, 224), mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD,
                      interpolation="bilinear", crop_pct=0.875)

INCEPTION_V1 = register_model(ModelRecord(
    name="inception_v1",
    summary="Going Deeper with Convolutions, arXiv 1409.4842, as published (no BN, LRN, 5×5 branches)",
    paper=PAPER,
    layout=_layout(paper=True),
    conv=dict(bn=False),
    min_input_size=(3, 31, 31), **IMAGENET_INPUT,
    drop_rate=0.4,
    aux_heads=_aux_heads((5, 3, 4)),
    params=6_998_552, params_aux=13_378_280,
    recipe=PAPER_RECIPE,
    aliases=("googlenet",),
    doc="GoogLeNet as published (arXiv 1409.4842, Table 1): no BatchNorm, biased convolutions, 5×5 "
    "branches, LRN in the stem, dropout 0.4, auxiliary heads on (4a) and (4d).",
))

INCEPTION_V1_BN = register_model(ModelRecord(
    name="inception_v1_bn",
    summary="GoogLeNet in torchvision's `googlenet` layout (BN, a 3×3 where the paper has 5×5)",
    paper=PAPER,
    layout=_layout(paper=False),
    conv=dict(bn=True, bn_eps=1e-3),
    min_input_size=(3, 15, 15), **IMAGENET_INPUT,
    drop_rate=0.2,
    aux_heads=_aux_heads((None, None, 4)),
    params=6_624_904, params_aux=13_004_888,
    recipe=PAPER_RECIPE,
    peers=(Peer("torchvision", "googlenet", transform_input=True),),
    pretrained=(
        Pretrained(
            "tv_in1k", "torchvision", url="https://download.pytorch.org/models/googlenet-1378be20.pth",
            sha256="1378be20", license="BSD-3-Clause (torchvision); weights trained on ImageNet-1k",
            top1=69.778, top5=89.530,
            accuracy_source="torchvision, GoogLeNet_Weights.IMAGENET1K_V1 (resize 256, crop 224)",
            input_size=(3, 224, 224), mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD,
            interpolation="bilinear", crop_pct=0.875, transform_input=True,
            notes="torchvision's transform_input is folded into the first convolution",
        ),
    ),
    doc="GoogLeNet in torchvision's layout (torchvision.models.googlenet), so its weights map one to one. "
    "Departs from the paper where torchvision does: BatchNorm (eps 1e-3) after every convolution and no "
    "conv biases, no LRN, a 3×3 kernel in the branch Table 1 gives as 5×5, a 2×2 max pool before (5a), "
    "adaptive 4×4 pooling in the auxiliary heads, dropout 0.2.",
))

CIFAR_PAPER = replace(PAPER, params=None, macs=None, note="CIFAR layout: the paper's figures are for ImageNet",
                      top1_note="")
CIFAR_INPUT = dict(input_size=(3, 32, 32), min_input_size=(3, 1, 1), mean=(0.4914, 0.4822, 0.4465),
                   std=(0.2470, 0.2435, 0.2616), interpolation="bilinear", crop_pct=1.0, num_classes=10,
                   output_strides=(32,))

INCEPTION_V1_CIFAR = register_model(ModelRecord(
    name="inception_v1_cifar",
    summary="GoogLeNet for 32×32 input (the layout most CIFAR tutorials use)",
    paper=CIFAR_PAPER,
    layout=_cifar_layout(naive=False),
    conv=dict(bn=True, bn_eps=1e-5),
    **CIFAR_INPUT,
    drop_rate=0.4,
    params=6_158_346,
    recipe=PAPER_RECIPE,
    doc="GoogLeNet for CIFAR-size (32×32) input: a single 3×3 conv stem with 192 channels, BatchNorm "
    "(eps 1e-5) + ReLU after every convolution, Table 1's Inception modules with the 5×5 branch as two "
    "stacked 3×3 convolutions, 3×3/2 max pools after (3b) and (4e), global average pool, dropout 0.4, "
    "linear. 10 classes by default; no auxiliary heads.",
))

INCEPTION_V1_CIFAR_NAIVE = register_model(ModelRecord(
    name="inception_v1_cifar_naive",
    summary="`inception_v1_cifar` from the naive modules of Figure 2a (no 1×1 reductions)",
    paper=CIFAR_PAPER,
    layout=_cifar_layout(naive=True),
    conv=dict(bn=True, bn_eps=1e-5),
    **CIFAR_INPUT,
    drop_rate=0.4,
    params=65_953_514,
    recipe=PAPER_RECIPE,
    doc="inception_v1_cifar built from naive Inception modules (Figure 2a: no 1×1 reductions, the pooled "
    "input concatenated as it is), for the paper's argument: the width, and with it the cost, grows with "
    "every module (compare the two in `inception-zoo table --models 'inception_v1_cifar*'`).",
))
