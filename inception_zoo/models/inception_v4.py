"""Inception v4: Szegedy et al., "Inception-v4, Inception-ResNet and the Impact of Residual Connections on
Learning", arXiv 1602.07261, Figure 9 (overall), Figures 3-8 (blocks).

Stem (Figure 3), 4 × Inception-A (Figure 4), Reduction-A (Figure 7, k, l, m, n = 192, 224, 256, 384),
7 × Inception-B (Figure 5), Reduction-B (Figure 8), 3 × Inception-C (Figure 6), average pool, dropout
(keep 0.8), FC. Stage names are the released TensorFlow checkpoint's (TF-slim), which timm's weights
follow; where the checkpoint orders a factorized pair differently from a figure (the stem's 7×1/1×7),
the checkpoint's order is kept. Average pools exclude the padding (TensorFlow's "SAME" pooling).

The paper draws no auxiliary head for Inception v4; TF-slim's definition (tensorflow/models,
research/slim/nets/inception_v4.py, ``inception_v4(create_aux_logits=True)``, scope 'AuxLogits') has one on
end point Mixed_6h (17×17×1024 at 299 px): 5×5/3 VALID average pool (-> 5×5), 1×1 conv 128, conv 768
with the pooled map's size as kernel (5×5) VALID (-> 1×1), flatten, fully connected. It is Inception v3's
head (:data:`~inception_zoo.models.inception_v3.AUX_HEAD`) with another tap, built with ``aux_logits=True``.
"""

from __future__ import annotations

from dataclasses import replace

from ..layers import Conv, Factorized, Mixed
from ..records import (
    IMAGENET_INCEPTION_MEAN,
    IMAGENET_INCEPTION_STD,
    ModelRecord,
    Paper,
    Peer,
)
from ..registry import register_model
from ._published import CADENE_HOST, cadene, pytorchcv, timm_hub
from .inception_v3 import AUX_HEAD as V3_AUX_HEAD
from .inception_v3 import MAX_S2, PAPER_RECIPE, TF_AVG, filter_bank

__all__ = ["TF_AVG", "reduction_a", "INCEPTION_A", "INCEPTION_B", "INCEPTION_C", "REDUCTION_B", "AUX_HEAD",
           "INCEPTION_V4"]

PAPER = Paper(
    title="Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning",
    arxiv="1602.07261",
    note="the paper reports no parameter or multiply-add counts",
    top1=80.0,
    top1_note="Table 2, 20.0% top-1 error, single model, single crop",
)

# Branches are positional, as TF-slim's Branch_0 ... Branch_3: weight keys branch0 ... branch3.


def reduction_a(k: int, l: int, m: int, n: int) -> Mixed:  # noqa: E741  (the paper's letters)
    """Reduction-A (Figure 7), 35×35 -> 17×17: 3×3/2 n | 1×1 k -> 3×3 l -> 3×3/2 m | max 3×3/2.
    Table 1 gives k, l, m, n per network; shared by Inception v4 and Inception-ResNet v1/v2."""
    return Mixed(
        (Conv(n, 3, 2),),
        (Conv(k), Conv(l, 3), Conv(m, 3, 2)),
        (MAX_S2,),
    )


# Figure 3, with the checkpoint's order of the 7×1/1×7 pair.
STEM = (
    ("Conv2d_1a_3x3", Conv(32, 3, 2)),
    ("Conv2d_2a_3x3", Conv(32, 3, padding=0)),
    ("Conv2d_2b_3x3", Conv(64, 3)),
    ("Mixed_3a", Mixed((MAX_S2,), (Conv(96, 3, 2),))),
    ("Mixed_4a", Mixed(
        (Conv(64), Conv(96, 3, padding=0)),
        (Conv(64), Factorized(64, 64, 7, first="1xn"), Conv(96, 3, padding=0)),
    )),
    ("Mixed_5a", Mixed((Conv(192, 3, 2),), (MAX_S2,))),
)

INCEPTION_A = Mixed(  # Figure 4
    (Conv(96),),
    (Conv(64), Conv(96, 3)),
    (Conv(64), Conv(96, 3), Conv(96, 3)),
    (TF_AVG, Conv(96)),
)

INCEPTION_B = Mixed(  # Figure 5
    (Conv(384),),
    (Conv(192), Factorized(224, 256, 7, first="1xn")),
    (Conv(192), Factorized(192, 224, 7, first="nx1"), Factorized(224, 256, 7, first="nx1")),
    (TF_AVG, Conv(128)),
)

REDUCTION_B = Mixed(  # Figure 8
    (Conv(192), Conv(192, 3, 2)),
    (Conv(256), Factorized(256, 320, 7, first="1xn"), Conv(320, 3, 2)),
    (MAX_S2,),
)

INCEPTION_C = Mixed(  # Figure 6
    (Conv(256),),
    (Conv(384), filter_bank(256)),
    (Conv(384), Factorized(448, 512, 3, first="nx1"), filter_bank(256)),
    (TF_AVG, Conv(256)),
)

# TF-slim's 'AuxLogits' (research/slim/nets/inception_v4.py, function inception_v4): on end_points['Mixed_6h'],
# avg_pool2d 5×5 stride 3 VALID ('AvgPool_1a_5x5'), conv2d 128 1×1 ('Conv2d_1b_1x1'), conv2d 768 with kernel
# = the pooled map's size, 5×5 at 299 px, VALID ('Conv2d_2a'), flatten, fully_connected num_classes
# ('Aux_logits'); convolutions with BatchNorm (inception_arg_scope). Inception v3's head (the same layers;
# its classifier is a 1×1 conv on the 1×1 map, the same as a fully connected layer) tapping Mixed_6h
# (1024 channels): 1024·128 + 2·128 + 128·768·25 + 2·768 + 768·1000 + 1000 = 3,359,464 parameters.
AUX_HEAD = replace(V3_AUX_HEAD, tap="Mixed_6h")

INCEPTION_V4 = register_model(ModelRecord(
    name="inception_v4",
    summary="Inception-v4, Inception-ResNet and the Impact of Residual Connections, arXiv 1602.07261",
    paper=PAPER,
    layout=(  # Figure 9
        *STEM,
        *[(f"Mixed_5{c}", INCEPTION_A) for c in "bcde"],
        ("Mixed_6a", reduction_a(192, 224, 256, 384)),
        *[(f"Mixed_6{c}", INCEPTION_B) for c in "bcdefgh"],
        ("Mixed_7a", REDUCTION_B),
        *[(f"Mixed_7{c}", INCEPTION_C) for c in "bcd"],
    ),
    conv=dict(bn=True, bn_eps=1e-3),
    input_size=(3, 299, 299), min_input_size=(3, 75, 75),
    mean=IMAGENET_INCEPTION_MEAN, std=IMAGENET_INCEPTION_STD, interpolation="bicubic", crop_pct=0.875,
    drop_rate=0.2,
    aux_heads=(AUX_HEAD,),
    params=42_679_816, params_aux=46_039_280,
    recipe=PAPER_RECIPE,
    peers=(Peer("timm", "inception_v4", background_class=True), Peer("pytorchcv", "inceptionv4"),
           Peer("cadene", "inceptionv4", background_class=True)),
    pretrained=(
        timm_hub("inception_v4", "tf_in1k", 80.156, 94.968, crop_pct=0.875,
                 notes="the TF-slim checkpoint, via Cadene's port"),
        pytorchcv("inceptionv4", "v0.0.543", "4ae4f331a5ff649e39626fc49cd5c24b8159cd8c", 19.83, 4.88,
                  notes="pytorchcv's Inception v4, trained in Gluon"),
        cadene(f"{CADENE_HOST}/inceptionv4-8e4777a0.pth", "InceptionV4, Our porting", 80.062, 94.926,
               license="Apache-2.0 (TF-slim weights, ported by pretrainedmodels)",
               notes="Cadene's port of the TF-slim checkpoint (the origin of timm's tf_in1k); the file has 1001 "
               "classes, TF-slim's background class first: its row is dropped on conversion, as "
               "pretrainedmodels does for 'imagenet'"),
    ),
    doc="Inception v4 (arXiv 1602.07261, Figure 9), 299×299 input, BatchNorm eps 1e-3, dropout 0.2 "
    "(keep probability 0.8). The auxiliary head (aux_logits=True) is TF-slim's (research/slim/nets/"
    "inception_v4.py, 'AuxLogits' on Mixed_6h): 5×5/3 average pool, 1×1 conv 128, 5×5 conv 768, FC; the "
    "paper draws none, and the published checkpoints (timm, Cadene, pytorchcv) carry none.",
))
