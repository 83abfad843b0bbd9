"""Inception v3: Szegedy et al., "Rethinking the Inception Architecture for Computer Vision", arXiv 1512.00567.

Table 1 of the paper, in the layout of the released TensorFlow checkpoint that torchvision and timm share
(stage names are TF-slim's): a stem of plain convolutions, three Inception modules on the 35×35 grid
(Figure 5, the 5×5 kept as one 5×5 in the first branch as the checkpoint has it), a grid-size reduction
(Figure 10), four modules on the 17×17 grid with 7×7 convolutions factorized into 1×7 and 7×1 (Figure 6),
a second reduction, and two modules with the expanded filter bank on the 8×8 grid (Figure 7).
The auxiliary head (Figure 8) taps the 17×17 grid after Mixed_6e and has BatchNorm (Section 7's
"BN-auxiliary").
"""

from __future__ import annotations

from functools import partial

from ..layers import AuxHead, AuxPool, BasicConv2d, Conv, Factorized, Mixed, Pool
from ..registry import register_model
from .base import IMAGENET_INCEPTION_MEAN, IMAGENET_INCEPTION_STD, AuxSpec, InceptionNet, Paper, model_cfg

__all__ = ["STEM", "MAX_S2", "filter_bank", "inception_a", "inception_b", "inception_c", "inception_d", "inception_e", "inception_v3"]

PAPER = Paper(
    title="Rethinking the Inception Architecture for Computer Vision",
    arxiv="1512.00567",
    params=25_000_000,
    macs=5_000_000_000,
    note="Section 1: 'a computational cost of 5 billion multiply-adds per inference and ... less than 25 "
    "million parameters' (upper bound and rounded figure, not exact counts)",
    top1=78.8,
    top1_note="Table 3 (Inception-v3: BN-auxiliary), 21.2% top-1 error, single model, single crop",
)

AVG = Pool("avg", 3, 1)
MAX_S2 = Pool("max", 3, 2)


def inception_a(pool_proj: int) -> Mixed:
    """35×35 module (Figure 5): 1×1 64 | 1×1 48 -> 5×5 64 | 1×1 64 -> 3×3 96 -> 3×3 96 | avg -> 1×1."""
    return Mixed((
        (Conv(64),),
        (Conv(48), Conv(64, 5)),
        (Conv(64), Conv(96, 3), Conv(96, 3)),
        (AVG, Conv(pool_proj)),
    ))


def inception_b() -> Mixed:
    """35×35 -> 17×17 grid reduction (Figure 10): 3×3/2 384 | 1×1 64 -> 3×3 96 -> 3×3/2 96 | max 3×3/2."""
    return Mixed((
        (Conv(384, 3, 2),),
        (Conv(64), Conv(96, 3), Conv(96, 3, 2)),
        (MAX_S2,),
    ))


def inception_c(c7: int) -> Mixed:
    """17×17 module with factorized 7×7 (Figure 6); ``c7`` is the width inside the 7×7 branches."""
    return Mixed((
        (Conv(192),),
        (Conv(c7), Factorized(c7, 192, 7, first="1xn")),
        (Conv(c7), Factorized(c7, c7, 7, first="nx1"), Factorized(c7, 192, 7, first="nx1")),
        (AVG, Conv(192)),
    ))


def inception_d() -> Mixed:
    """17×17 -> 8×8 grid reduction: 1×1 192 -> 3×3/2 320 | 1×1 192 -> 1×7 -> 7×1 -> 3×3/2 192 | max."""
    return Mixed((
        (Conv(192), Conv(320, 3, 2)),
        (Conv(192), Factorized(192, 192, 7, first="1xn"), Conv(192, 3, 2)),
        (MAX_S2,),
    ))


def filter_bank(width: int) -> Mixed:
    """The expanded filter bank of Figure 7: 1×3 and 3×1 convolutions side by side, concatenated
    (2 × ``width`` channels). Inception v4's Inception-C (arXiv 1602.07261, Figure 6) reuses it."""
    return Mixed(((Conv(width, (1, 3)),), (Conv(width, (3, 1)),)))


def inception_e() -> Mixed:
    """8×8 module with expanded filter bank (Figure 7): 1×1 320 | 1×1 384 -> [1×3, 3×1] 384 each |
    1×1 448 -> 3×3 384 -> [1×3, 3×1] 384 each | avg -> 1×1 192. 2048 channels out."""
    return Mixed((
        (Conv(320),),
        (Conv(384), filter_bank(384)),
        (Conv(448), Conv(384, 3), filter_bank(384)),
        (AVG, Conv(192)),
    ))


# The stem up to the 71×71 grid (Table 1's first six rows); the Inception-ResNets share it.
STEM = [
    ("Conv2d_1a_3x3", Conv(32, 3, 2)),
    ("Conv2d_2a_3x3", Conv(32, 3, padding=0)),
    ("Conv2d_2b_3x3", Conv(64, 3)),
    ("MaxPool_3a_3x3", MAX_S2),
    ("Conv2d_3b_1x1", Conv(80)),
    ("Conv2d_4a_3x3", Conv(192, 3, padding=0)),
]


def _layout() -> list:
    return [
        *STEM,
        ("MaxPool_5a_3x3", MAX_S2),
        ("Mixed_5b", inception_a(32)),
        ("Mixed_5c", inception_a(64)),
        ("Mixed_5d", inception_a(64)),
        ("Mixed_6a", inception_b()),
        ("Mixed_6b", inception_c(128)),
        ("Mixed_6c", inception_c(160)),
        ("Mixed_6d", inception_c(160)),
        ("Mixed_6e", inception_c(192)),
        ("Mixed_7a", inception_d()),
        ("Mixed_7b", inception_e()),
        ("Mixed_7c", inception_e()),
    ]


def _aux_head(conv_layer) -> AuxSpec:
    """Figure 8: 5×5/3 average pool (17×17 -> 5×5), 1×1 conv 128, 5×5 conv 768, FC; BatchNorm throughout."""

    def build(in_ch: int, num_classes: int) -> AuxHead:
        return AuxHead(
            in_ch, num_classes, pool=AuxPool(5, 3, 5), convs=[Conv(128), Conv(768, 5, padding=0)],
            conv_layer=conv_layer,
        )

    return AuxSpec("Mixed_6e", build)


@register_model
def inception_v3(
    *, num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = False, drop_rate: float = 0.5,
    global_pool: str = "avg",
) -> InceptionNet:
    """Inception v3 (arXiv 1512.00567, Table 1), 299×299 input, BatchNorm eps 1e-3, dropout 0.5.

    23,834,568 parameters; 27,161,264 with the auxiliary head. Output (B, num_classes) logits, or
    :class:`~inception_zoo.InceptionOutputs` with one auxiliary logit tensor in train mode with ``aux_logits``.
    The paper trains with label smoothing 0.1 and auxiliary weight 0.4 (see :class:`~inception_zoo.InceptionLoss`).
    """
    conv_layer = partial(BasicConv2d, bn=True, bn_eps=1e-3)
    return InceptionNet(
        _layout(),
        conv_layer=conv_layer,
        name="inception_v3",
        default_cfg=model_cfg(
            paper=PAPER, input_size=(3, 299, 299), min_input_size=(3, 75, 75),
            mean=IMAGENET_INCEPTION_MEAN, std=IMAGENET_INCEPTION_STD, interpolation="bicubic", crop_pct=0.875,
        ),
        num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate,
        aux_heads=[_aux_head(conv_layer)], aux_logits=aux_logits, global_pool=global_pool,
    )
