"""BN-Inception ("Inception v2"): Ioffe & Szegedy, "Batch Normalization: Accelerating Deep Network Training
by Reducing Internal Covariate Shift", arXiv 1502.03167, Figure 5.

GoogLeNet with BatchNorm after every convolution, each 5×5 convolution replaced by two 3×3, the 28×28
grid widened by a third module (3c), and the grid reductions done inside modules 3c and 4e (stride-2
3×3 convolutions beside a max pool, no 1×1 or pool-projection branch). Average pooling in the pool
branches except 5b (max). The convolutions keep their biases, as in the released Caffe model that
pytorchcv ports (BatchNorm eps 1e-5).
"""

from __future__ import annotations

from ..layers import Conv, Mixed, Pool
from ..records import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, InputConvention, ModelRecord, Paper, Peer
from ..registry import register_model
from ._published import CADENE_HOST, cadene, pytorchcv
from .inception_v1 import PAPER_RECIPE

__all__ = ["BN_INCEPTION_TABLE", "bn_inception_module", "BN_INCEPTION", "CAFFE_BGR_INPUT"]

# Figure 5: #1×1, #3×3 reduce, #3×3, double #3×3 reduce, double #3×3, pool type, pool proj, stride.
# A stride-2 row has no 1×1 branch and passes the max-pooled input through unprojected ("pass through").
BN_INCEPTION_TABLE: dict[str, tuple[int, int, int, int, int, str, int, int]] = {
    "inception_3a": (64, 64, 64, 64, 96, "avg", 32, 1),
    "inception_3b": (64, 64, 96, 64, 96, "avg", 64, 1),
    "inception_3c": (0, 128, 160, 64, 96, "max", 0, 2),
    "inception_4a": (224, 64, 96, 96, 128, "avg", 128, 1),
    "inception_4b": (192, 96, 128, 96, 128, "avg", 128, 1),
    "inception_4c": (160, 128, 160, 128, 160, "avg", 128, 1),
    "inception_4d": (96, 128, 192, 160, 192, "avg", 128, 1),
    "inception_4e": (0, 128, 192, 192, 256, "max", 0, 2),
    "inception_5a": (352, 192, 320, 160, 224, "avg", 128, 1),
    "inception_5b": (352, 192, 320, 192, 224, "max", 128, 1),
}

PAPER = Paper(
    title="Batch Normalization: Accelerating Deep Network Training by Reducing Internal Covariate Shift",
    arxiv="1502.03167",
    note="the paper reports no parameter or multiply-add count for BN-Inception",
    top1=74.8,
    top1_note="Figure 3, BN-x30 (this network trained with BatchNorm and a 30x learning rate), single crop",
)


def bn_inception_module(
    c1: int, c3r: int, c3: int, d3r: int, d3: int, pool: str, pool_proj: int, stride: int
) -> Mixed:
    """One row of Figure 5 as an Inception module (a reduction module when ``stride == 2``), with branches
    ``branch1x1``, ``branch3x3``, ``branch3x3dbl`` and ``branch_pool``."""
    branches = {}
    if c1:
        branches["branch1x1"] = (Conv(c1),)
    branches["branch3x3"] = (Conv(c3r), Conv(c3, 3, stride, padding=1))
    branches["branch3x3dbl"] = (Conv(d3r), Conv(d3, 3), Conv(d3, 3, stride, padding=1))
    if stride == 1:
        branches["branch_pool"] = (Pool(pool, 3, 1, ceil_mode=True), Conv(pool_proj))
    else:
        # "same" max pool: Caffe's ceil-mode pool at the even grids of 224×224 input, and the stride-2
        # convolutions' output size at odd grids too (Caffe's layout only concatenates on even grids).
        branches["branch_pool"] = (Pool(pool, 3, 2, padding="same"),)
    return Mixed(**branches)


MAXPOOL = Pool("max", 3, 2, ceil_mode=True)

# The released Caffe model's input, as Cadene's pretrainedmodels port takes it: BGR pixel values in 0-255
# minus the Caffe mean (104, 117, 128), std 1. Folded on conversion so that our model takes RGB in [0, 1]
# minus that mean / 255 in RGB order, std 1 (the channel flip and the x255 go into the first convolution's
# weights): our zero padding is then the pixel Cadene's zero padding stands for, and the fold is exact.
# (Folding into ImageNet mean / std instead would move the padded border of the 7×7/2 first convolution.)
CAFFE_BGR_INPUT = InputConvention(
    mean=(104.0, 117.0, 128.0), std=(1.0, 1.0, 1.0), input_space="BGR", input_range=255.0,
    folded_mean=(128 / 255, 117 / 255, 104 / 255), folded_std=(1.0, 1.0, 1.0),
)

BN_INCEPTION = register_model(ModelRecord(
    name="bn_inception",
    summary="Batch Normalization, arXiv 1502.03167, Figure 5",
    paper=PAPER,
    layout=(
        ("conv1_7x7_s2", Conv(64, 7, 2, padding=3)),
        ("pool1_3x3_s2", MAXPOOL),
        ("conv2_3x3_reduce", Conv(64)),
        ("conv2_3x3", Conv(192, 3)),
        ("pool2_3x3_s2", MAXPOOL),
        *[(name, bn_inception_module(*row)) for name, row in BN_INCEPTION_TABLE.items()],
    ),
    conv=dict(bn=True, bn_eps=1e-5, bias=True),
    input_size=(3, 224, 224), min_input_size=(3, 7, 7),
    mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD, interpolation="bilinear", crop_pct=0.875,
    drop_rate=0.0,
    params=11_295_240,
    recipe=PAPER_RECIPE,
    peers=(Peer("pytorchcv", "bninception"), Peer("cadene", "bninception", input_convention=CAFFE_BGR_INPUT)),
    pretrained=(
        pytorchcv("bninception", "v0.0.405", "d79ba5f573ba2da5fea5e4c9a7f67ddd526e234b", 25.37, 7.74, size=224,
                  notes="pytorchcv's BN-Inception (converted from its Gluon model); a zip holding one .pth, whose "
                  "sha1 pytorchcv publishes"),
        cadene(f"{CADENE_HOST}/bn_inception-52deb4733.pth", "BNInception, Our porting", 73.524, 91.562, size=224,
               license="MIT (pretrainedmodels); the Caffe weights (Yuanjun Xiong) state none",
               mean=CAFFE_BGR_INPUT.folded_mean, std=CAFFE_BGR_INPUT.folded_std, transform_input=True,
               input_note="RGB scaled to [0, 1], minus the Caffe mean (104, 117, 128) / 255 in RGB order, std 1: "
               "pretrainedmodels' BGR 0-255 input, its channel flip and x255 folded into the first convolution",
               notes="Yuanjun Xiong's Caffe BN-Inception as Cadene's pretrainedmodels ported it (its ceil-mode "
               "pools and 5b max-pool branch are this layout's). Its input convention is folded with the Caffe "
               "mean kept, so that the zero padding of the 7×7/2 first convolution stands for the same pixel "
               "as in pretrainedmodels and the logits are equal (folding into ImageNet mean / std instead moves "
               "them by about 3e-3, measured)"),
    ),
    aliases=("inception_v2",),
    doc="BN-Inception (arXiv 1502.03167, Figure 5), 224×224 input. No dropout (Section 4.2.1 removes it) "
    "and no auxiliary heads in this layout.",
))
