"""Inception v3: Szegedy et al., "Rethinking the Inception Architecture for Computer Vision", arXiv 1512.00567.

Table 1 of the paper, in the layout of the released TensorFlow checkpoint that torchvision and timm share
(stage names are TF-slim's): a stem of plain convolutions, three Inception-A modules on the 35×35 grid
(Figure 5, the 5×5 kept as one 5×5 in the first branch as the checkpoint has it), Reduction-A (the
grid-size reduction of Figure 10), four Inception-B modules on the 17×17 grid with 7×7 convolutions
factorized into 1×7 and 7×1 (Figure 6), Reduction-B, and two Inception-C modules with the expanded filter
bank on the 8×8 grid (Figure 7). Block names follow the Inception-v4 paper (arXiv 1602.07261), which
names the same roles Inception-A/B/C and Reduction-A/B; branch names are torchvision's and timm's.
The auxiliary head (Figure 8) taps the 17×17 grid after Mixed_6e and has BatchNorm (Section 7's
"BN-auxiliary").
"""

from __future__ import annotations

from dataclasses import replace

from ..layers import AuxSpec, Conv, Factorized, Mixed, Pool
from ..records import (
    IMAGENET_DEFAULT_MEAN,
    IMAGENET_DEFAULT_STD,
    IMAGENET_INCEPTION_MEAN,
    IMAGENET_INCEPTION_STD,
    ModelRecord,
    Paper,
    Peer,
    Pretrained,
    Recipe,
)
from ..registry import register_model
from ._published import cadene, keras_applications, pytorchcv, timm_hub

__all__ = ["STEM", "AVG", "TF_AVG", "MAX_S2", "layout", "PAPER_RECIPE", "filter_bank", "inception_a", "reduction_a", "inception_b",
           "reduction_b", "inception_c", "INCEPTION_V3", "INCEPTION_V3_TF", "INCEPTION_V3_FID"]

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

# Section 8: RMSProp decay 0.9, eps 1.0, lr 0.045 decayed every two epochs by 0.94, gradient clipping at
# 2.0, label smoothing 0.1; auxiliary weight 0.4 (the TF-slim recipe). Inception v4 and the
# Inception-ResNets were trained the same way (arXiv 1602.07261, Section 4).
PAPER_RECIPE = Recipe("rmsprop", 0.045, 0.94, 2, 0.1, 0.4, clip_grad=2.0, source="arXiv 1512.00567, Section 8")

AVG = Pool("avg", 3, 1)
# TensorFlow's "SAME" average pool: the padding is not counted in the average (the TF-trained v4 and
# Inception-ResNet checkpoints, and the FID Inception below).
TF_AVG = Pool("avg", 3, 1, count_include_pad=False)
MAX_S2 = Pool("max", 3, 2)


def inception_a(pool_proj: int, pool: Pool = AVG) -> Mixed:
    """Inception-A, 35×35 (Figure 5): 1×1 64 | 1×1 48 -> 5×5 64 | 1×1 64 -> 3×3 96 -> 3×3 96 | pool -> 1×1."""
    return Mixed(
        branch1x1=(Conv(64),),
        branch5x5=(Conv(48), Conv(64, 5)),
        branch3x3dbl=(Conv(64), Conv(96, 3), Conv(96, 3)),
        branch_pool=(pool, Conv(pool_proj)),
    )


def reduction_a() -> Mixed:
    """Reduction-A, 35×35 -> 17×17 (Figure 10): 3×3/2 384 | 1×1 64 -> 3×3 96 -> 3×3/2 96 | max 3×3/2."""
    return Mixed(
        branch3x3=(Conv(384, 3, 2),),
        branch3x3dbl=(Conv(64), Conv(96, 3), Conv(96, 3, 2)),
        branch_pool=(MAX_S2,),
    )


def inception_b(c7: int, pool: Pool = AVG) -> Mixed:
    """Inception-B, 17×17, with factorized 7×7 (Figure 6); ``c7`` is the width inside the 7×7 branches."""
    return Mixed(
        branch1x1=(Conv(192),),
        branch7x7=(Conv(c7), Factorized(c7, 192, 7, first="1xn")),
        branch7x7dbl=(Conv(c7), Factorized(c7, c7, 7, first="nx1"), Factorized(c7, 192, 7, first="nx1")),
        branch_pool=(pool, Conv(192)),
    )


def reduction_b() -> Mixed:
    """Reduction-B, 17×17 -> 8×8: 1×1 192 -> 3×3/2 320 | 1×1 192 -> 1×7 -> 7×1 -> 3×3/2 192 | max."""
    return Mixed(
        branch3x3=(Conv(192), Conv(320, 3, 2)),
        branch7x7x3=(Conv(192), Factorized(192, 192, 7, first="1xn"), Conv(192, 3, 2)),
        branch_pool=(MAX_S2,),
    )


def filter_bank(width: int) -> Mixed:
    """The expanded filter bank of Figure 7: 1×3 and 3×1 convolutions side by side, concatenated
    (2 × ``width`` channels). Inception v4's Inception-C (arXiv 1602.07261, Figure 6) reuses it."""
    return Mixed(branch1x3=(Conv(width, (1, 3)),), branch3x1=(Conv(width, (3, 1)),))


def inception_c(pool: Pool = AVG) -> Mixed:
    """Inception-C, 8×8, with the expanded filter bank (Figure 7): 1×1 320 | 1×1 384 -> [1×3, 3×1] 384
    each | 1×1 448 -> 3×3 384 -> [1×3, 3×1] 384 each | pool -> 1×1 192. 2048 channels out."""
    return Mixed(
        branch1x1=(Conv(320),),
        branch3x3=(Conv(384), filter_bank(384)),
        branch3x3dbl=(Conv(448), Conv(384, 3), filter_bank(384)),
        branch_pool=(pool, Conv(192)),
    )


# The stem up to the 71×71 grid (Table 1's first six rows); the Inception-ResNets share it.
STEM = (
    ("Conv2d_1a_3x3", Conv(32, 3, 2)),
    ("Conv2d_2a_3x3", Conv(32, 3, padding=0)),
    ("Conv2d_2b_3x3", Conv(64, 3)),
    ("MaxPool_3a_3x3", MAX_S2),
    ("Conv2d_3b_1x1", Conv(80)),
    ("Conv2d_4a_3x3", Conv(192, 3, padding=0)),
)

def layout(pool: Pool = AVG, last_pool: Pool = AVG) -> tuple:
    """Table 1, with TF-slim's stage names; ``pool`` is the pooling branch of every Inception module but
    the last (Mixed_7c), whose pooling branch is ``last_pool``."""
    return (
        *STEM,
        ("MaxPool_5a_3x3", MAX_S2),
        ("Mixed_5b", inception_a(32, pool)),
        ("Mixed_5c", inception_a(64, pool)),
        ("Mixed_5d", inception_a(64, pool)),
        ("Mixed_6a", reduction_a()),
        ("Mixed_6b", inception_b(128, pool)),
        ("Mixed_6c", inception_b(160, pool)),
        ("Mixed_6d", inception_b(160, pool)),
        ("Mixed_6e", inception_b(192, pool)),
        ("Mixed_7a", reduction_b()),
        ("Mixed_7b", inception_c(pool)),
        ("Mixed_7c", inception_c(last_pool)),
    )


LAYOUT = layout()

# Figure 8: 5×5/3 average pool (17×17 -> 5×5), 1×1 conv 128, 5×5 conv 768, FC; BatchNorm throughout.
# TF-slim's 'AuxLogits' of Inception v4 and Inception-ResNet-v2 are the same head on another tap
# (inception_v4.AUX_HEAD, inception_resnet.V2_AUX_HEAD: dataclasses.replace(AUX_HEAD, tap=...)).
AUX_HEAD = AuxSpec("Mixed_6e", pool=(5, 3, 5), convs=(Conv(128), Conv(768, 5, padding=0)))

INCEPTION_V3 = register_model(ModelRecord(
    name="inception_v3",
    summary="Rethinking the Inception Architecture, arXiv 1512.00567",
    paper=PAPER,
    layout=LAYOUT,
    conv=dict(bn=True, bn_eps=1e-3),
    input_size=(3, 299, 299), min_input_size=(3, 75, 75),
    mean=IMAGENET_INCEPTION_MEAN, std=IMAGENET_INCEPTION_STD, interpolation="bicubic", crop_pct=0.875,
    drop_rate=0.5,
    aux_heads=(AUX_HEAD,),
    params=23_834_568, params_aux=27_161_264,
    recipe=PAPER_RECIPE,
    peers=(Peer("timm", "inception_v3"), Peer("torchvision", "inception_v3", transform_input=True),
           Peer("pytorchcv", "inceptionv3"), Peer("cadene", "inceptionv3")),
    pretrained=(
        Pretrained(
            "tv_in1k", "torchvision", url="https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth",
            sha256="0cc3c7bd", license="BSD-3-Clause (torchvision); weights trained on ImageNet-1k",
            top1=77.294, top5=93.450,
            accuracy_source="torchvision, Inception_V3_Weights.IMAGENET1K_V1 (resize 342, crop 299)",
            mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD, interpolation="bilinear", crop_pct=0.875,
            transform_input=True,
            notes="torchvision's port of the TF checkpoint, auxiliary head included; transform_input folded",
        ),
        timm_hub("inception_v3", "tf_in1k", 77.862, 93.644, crop_pct=0.875,
                 notes="timm's port of the TF-slim checkpoint"),
        timm_hub("inception_v3", "tf_adv_in1k", 77.592, 93.730, crop_pct=0.875,
                 notes="adversarially trained (TF adv_inception_v3)"),
        timm_hub("inception_v3", "gluon_in1k", 78.806, 94.374, crop_pct=0.875, imagenet_stats=True,
                 notes="GluonCV's weights"),
        pytorchcv("inceptionv3", "v0.0.552", "025fb71c673f8e325f4c24f25cbd4185540cca72", 20.44, 5.33,
                  notes="pytorchcv's Inception v3, trained in Gluon; no auxiliary head"),
        cadene("https://download.pytorch.org/models/inception_v3_google-1a9a5a14.pth", "InceptionV3, Pytorch",
               77.294, 93.454, license="BSD-3-Clause (torchvision's file); weights trained on ImageNet-1k",
               notes="the file pretrainedmodels' inceptionv3 loads: torchvision's earlier file of the TF port "
               "(torchvision's keys, auxiliary head included), used as pretrainedmodels uses it: without "
               "torchvision's transform_input, mean = std = 0.5 (tv_in1k, torchvision's current file, folds "
               "the transform instead)"),
    ),
    doc="Inception v3 (arXiv 1512.00567, Table 1), 299×299 input, BatchNorm eps 1e-3, dropout 0.5, in the "
    "layout of the released TensorFlow checkpoint that torchvision and timm share. The auxiliary head taps "
    "Mixed_6e. The paper trains with label smoothing 0.1 and auxiliary weight 0.4.",
))


# TensorFlow's Inception v3 as Keras builds it (keras.applications.InceptionV3): every Inception module's
# average pool has "same" padding that TensorFlow leaves out of the average (TF_AVG), where the PyTorch
# ports (torchvision, timm) count it; everything else (valid stride-2 convolutions and pools, BatchNorm eps
# 1e-3) is already Table 1 as above. Keras' BatchNorm has no gamma (scale=False): filled with ones on import.
INCEPTION_V3_TF = register_model(replace(
    INCEPTION_V3,
    name="inception_v3_tf",
    summary="Inception v3 as TensorFlow/Keras compute it (average pools without the padding), for Keras weights",
    layout=layout(pool=TF_AVG, last_pool=TF_AVG),
    # Keras' preprocess_input for InceptionV3 ("tf" mode): x / 127.5 - 1
    interpolation="bilinear",
    peers=(Peer("keras", "InceptionV3"),),
    pretrained=(
        keras_applications("inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
                           "9a0d58056eeedaa3f26cb7ebd46da564", 77.9, 93.7,
                           notes="keras.applications.InceptionV3(weights='imagenet'); no auxiliary head"),
    ),
    doc="Inception v3 (arXiv 1512.00567, Table 1) exactly as TensorFlow and keras.applications.InceptionV3 "
    "compute it: the Inception modules' 3×3 average pools leave the zero padding out of the average "
    "(TensorFlow's 'same' pooling), where torchvision's and timm's inception_v3 count it. Same weights and "
    "parameter count as inception_v3 (auxiliary head included); load Keras files (.h5, .weights.h5, .keras) "
    "with load_pretrained(model, path, source='keras').",
))

# The FID Inception: TensorFlow's Inception v3 graph of 2015-12-05 (inception-2015-12-05.tgz), which the
# Fréchet Inception Distance is defined on (Heusel et al., arXiv 1706.08500) and pytorch-fid and
# torch-fidelity port. Table 1's layout with the graph's own pooling: every Inception module's average
# pool leaves the padding out of the average (TF_AVG), the last module's pooling branch is a 3×3/1 max
# pool, and the classifier has 1008 outputs (TF's 2015 label map). No auxiliary head in the graph.
FID_TAPS = ("MaxPool_3a_3x3", "MaxPool_5a_3x3", "Mixed_6e", "Mixed_7c")  # pytorch-fid's blocks 0-3

def _fid_weights(tag: str, release: str, porter: str, *, notes: str) -> Pretrained:
    """The FID Inception's weights as ``porter`` publishes them on GitHub (``release``: the URL's path up to
    the file name's ``-2015-12-05-6726825d.pth``, whose sha256 prefix torch.hub checks): pytorch-fid's
    input configuration, no ImageNet accuracy (the graph's 1008 classes are not ImageNet-1k's)."""
    return Pretrained(
        tag, "pytorch_fid", url=f"https://github.com/{release}-2015-12-05-6726825d.pth", sha256="6726825d",
        license=f"Apache-2.0 (TensorFlow models; ported by {porter})", top1=None, top5=None,
        accuracy_source="none published: the FID's feature network (TF's 2015-12-05 graph, 1008 classes)",
        mean=IMAGENET_INCEPTION_MEAN, std=IMAGENET_INCEPTION_STD, interpolation="bilinear", crop_pct=1.0,
        notes=notes,
    )


INCEPTION_V3_FID = register_model(ModelRecord(
    name="inception_v3_fid",
    summary="the FID Inception: TF's 2015-12-05 Inception v3 graph, as pytorch-fid and torch-fidelity port it",
    paper=PAPER,
    layout=layout(pool=TF_AVG, last_pool=Pool("max", 3, 1)),
    conv=dict(bn=True, bn_eps=1e-3),
    input_size=(3, 299, 299), min_input_size=(3, 75, 75),
    # pytorch-fid's input: RGB in [0, 1], bilinear resize to 299×299 (no crop), then 2x - 1
    mean=IMAGENET_INCEPTION_MEAN, std=IMAGENET_INCEPTION_STD, interpolation="bilinear", crop_pct=1.0,
    drop_rate=0.0,
    num_classes=1008,
    params=23_850_960,
    peers=(Peer("pytorch_fid", "fid_inception_v3"),),
    feature_taps=FID_TAPS,
    output_strides=(32,),  # the FID's taps and statistics are defined on the published network only
    pretrained=(
        _fid_weights("fid", "mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception", "pytorch-fid",
                     notes="pytorch-fid's port of inception-2015-12-05.tgz; the network every published FID uses"),
        _fid_weights("fidelity", "toshas/torch-fidelity/releases/download/v0.2.0/weights-inception",
                     "torch-fidelity", notes="the same weights in torch-fidelity's file (the same keys)"),
    ),
    doc="The network of the Fréchet Inception Distance (arXiv 1706.08500): TensorFlow's Inception v3 graph "
    "of 2015-12-05, ported by pytorch-fid and torch-fidelity. Inception v3's Table 1 layout with average "
    "pools that exclude the padding, a max-pool branch in Mixed_7c and 1008 classes. features_only returns "
    "the four maps the FID packages tap (64, 192, 768 and 2048 channels); forward_head(x, pre_logits=True) "
    "the 2048-d pool3 vector. inception_zoo.fid computes activations, statistics and the FID with it.",
))
