"""Inception-ResNet v1 and v2: Szegedy et al., "Inception-v4, Inception-ResNet and the Impact of Residual
Connections on Learning", arXiv 1602.07261.

Both are built from :class:`~inception_zoo.layers.ResidualInceptionBlock`: Inception branches, a linear
1×1 up-projection with a bias (no BatchNorm), the residual scaled before the sum (Section 3.3), ReLU.
Convolutions inside the branches have no bias and a BatchNorm (eps 1e-3). Stage names follow TF-slim
(``block35_*`` = Inception-ResNet-A on the 35×35 grid, ``block17_*`` = B, ``block8_*`` = C,
``Mixed_6a`` = Reduction-A, ``Mixed_7a`` = Reduction-B).

``inception_resnet_v1_facenet`` is Inception-ResNet-v1 as David Sandberg's face-recognition code base
(github.com/davidsandberg/facenet) builds it, whose checkpoints facenet-pytorch ports: the paper's layout
plus one last C block (``Block8``, scale 1.0, no ReLU), and a FaceNet embedding head (Schroff et al.,
"FaceNet: A Unified Embedding for Face Recognition and Clustering", arXiv 1503.03832): a 512-d
projection, BatchNorm1d and L2 normalization (:class:`~inception_zoo.layers.EmbeddingHead`).

Auxiliary head: ``inception_resnet_v2`` has TF-slim's (tensorflow/models,
research/slim/nets/inception_resnet_v2.py, ``inception_resnet_v2(create_aux_logits=True)``, scope
'AuxLogits') on end point PreAuxLogits, the output of the 20 block17 repeats (our stage ``block17_20``,
17×17×1088 at 299 px): 5×5/3 VALID average pool (-> 5×5), 1×1 conv 128, conv 768 with the pooled map's
size as kernel (5×5) VALID (-> 1×1), flatten, fully connected; Inception v3's head
(:data:`~inception_zoo.models.inception_v3.AUX_HEAD`) with another tap, built with ``aux_logits=True``.
Inception-ResNet-v1 has none: the paper draws none, TF-slim defines no Inception-ResNet-v1, and facenet's
(davidsandberg/facenet, src/models/inception_resnet_v1.py) builds no auxiliary logits.
"""

from __future__ import annotations

from dataclasses import replace

from ..layers import Conv, EmbeddingSpec, Factorized, Mixed, Residual
from ..records import (
    IMAGENET_INCEPTION_MEAN,
    IMAGENET_INCEPTION_STD,
    ModelRecord,
    Peer,
    Pretrained,
)
from ..registry import register_model
from ._published import CADENE_HOST, cadene, keras_applications, pytorchcv, timm_hub
from .inception_v3 import AUX_HEAD as V3_AUX_HEAD
from .inception_v3 import MAX_S2, PAPER_RECIPE
from .inception_v3 import STEM as V3_STEM
from .inception_v4 import PAPER as V4_PAPER
from .inception_v4 import TF_AVG, reduction_a

__all__ = ["reduction_b", "V2_AUX_HEAD", "INCEPTION_RESNET_V1", "INCEPTION_RESNET_V1_FACENET", "INCEPTION_RESNET_V2"]

PAPER_V1 = replace(V4_PAPER, top1=78.7, top1_note="Table 2, 21.3% top-1 error, single model, single crop")
PAPER_V2 = replace(V4_PAPER, top1=80.1, top1_note="Table 2, 19.9% top-1 error, single model, single crop")

# Residual scales of the released v2 checkpoint (A, B, C); the paper (Section 3.3) asks for 0.1-0.3.
SCALE_A, SCALE_B, SCALE_C = 0.17, 0.10, 0.20

# Branches are positional, as TF-slim's Branch_0 ...: weight keys block35_1.branch0 ..., block35_1.up.


def reduction_b(a: int, b: int, c1: int, c2: int) -> Mixed:
    """Reduction-B of the Inception-ResNets (v1 Figure 12, v2 Figure 18), 17×17 -> 8×8:
    1×1 256 -> 3×3/2 a | 1×1 256 -> 3×3/2 b | 1×1 256 -> 3×3 c1 -> 3×3/2 c2 | max 3×3/2."""
    return Mixed(
        (Conv(256), Conv(a, 3, 2)),
        (Conv(256), Conv(b, 3, 2)),
        (Conv(256), Conv(c1, 3), Conv(c2, 3, 2)),
        (MAX_S2,),
    )


# Inception-ResNet-v1: Inception-ResNet-A, -B, -C (Figures 10, 11, 13).
V1_BLOCK_A = Residual((Conv(32),), (Conv(32), Conv(32, 3)), (Conv(32), Conv(32, 3), Conv(32, 3)), scale=SCALE_A)
V1_BLOCK_B = Residual((Conv(128),), (Conv(128), Factorized(128, 128, 7)), scale=SCALE_B)
V1_BLOCK_C_BRANCHES = ((Conv(192),), (Conv(192), Factorized(192, 192, 3)))
V1_BLOCK_C = Residual(*V1_BLOCK_C_BRANCHES, scale=SCALE_C)

# Inception-ResNet-v2 as released (Figures 16, 17, 19 with the checkpoint's widths).
V2_BLOCK_A = Residual((Conv(32),), (Conv(32), Conv(32, 3)), (Conv(32), Conv(48, 3), Conv(64, 3)), scale=SCALE_A)
V2_BLOCK_B = Residual((Conv(192),), (Conv(128), Factorized(160, 192, 7)), scale=SCALE_B)
V2_BLOCK_C_BRANCHES = ((Conv(192),), (Conv(192), Factorized(224, 256, 3)))

V1_LAYOUT = (
    *V3_STEM,  # Figure 14: Inception v3's stem, then a 3×3/2 convolution to 256 channels
    ("Conv2d_4b_3x3", Conv(256, 3, 2)),
    *[(f"block35_{i}", V1_BLOCK_A) for i in range(1, 6)],
    ("Mixed_6a", reduction_a(192, 192, 256, 384)),
    *[(f"block17_{i}", V1_BLOCK_B) for i in range(1, 11)],
    ("Mixed_7a", reduction_b(384, 256, 256, 256)),
    *[(f"block8_{i}", V1_BLOCK_C) for i in range(1, 6)],
)

# Sandberg's facenet (and facenet-pytorch): the paper's layout, then one more C block with scale 1.0 and
# no ReLU (TF-slim's "Block8"), as the released Inception-ResNet-v2 has.
V1_FACENET_LAYOUT = (
    *V1_LAYOUT,
    ("Block8", Residual(*V1_BLOCK_C_BRANCHES, scale=1.0, act=False)),
)

V2_LAYOUT = (
    *V3_STEM,  # the released checkpoint's stem: Inception v3's, then Mixed_5b
    ("MaxPool_5a_3x3", MAX_S2),
    ("Mixed_5b", Mixed(
        (Conv(96),),
        (Conv(48), Conv(64, 5)),
        (Conv(64), Conv(96, 3), Conv(96, 3)),
        (TF_AVG, Conv(64)),
    )),
    *[(f"block35_{i}", V2_BLOCK_A) for i in range(1, 11)],
    ("Mixed_6a", reduction_a(256, 256, 384, 384)),
    *[(f"block17_{i}", V2_BLOCK_B) for i in range(1, 21)],
    ("Mixed_7a", reduction_b(384, 288, 288, 320)),
    *[(f"block8_{i}", Residual(*V2_BLOCK_C_BRANCHES, scale=SCALE_C)) for i in range(1, 10)],
    ("Block8", Residual(*V2_BLOCK_C_BRANCHES, scale=1.0, act=False)),
    ("Conv2d_7b_1x1", Conv(1536)),
)

# TF-slim's 'AuxLogits' (research/slim/nets/inception_resnet_v2.py, function inception_resnet_v2): on
# end_points['PreAuxLogits'] (after slim.repeat(net, 20, block17): our block17_20), avg_pool2d 5 stride 3
# VALID, conv2d 128 1×1 ('Conv2d_1b_1x1'), conv2d 768 with kernel = the pooled map's size, 5×5 at 299 px,
# VALID ('Conv2d_2a_5x5'), flatten, fully_connected num_classes ('Logits'); convolutions with BatchNorm
# (inception_resnet_v2_arg_scope). Inception v3's head tapping block17_20 (1088 channels):
# 1088·128 + 2·128 + 128·768·25 + 2·768 + 768·1000 + 1000 = 3,367,656 parameters.
V2_AUX_HEAD = replace(V3_AUX_HEAD, tap="block17_20")

TF_INPUT = dict(
    conv=dict(bn=True, bn_eps=1e-3), input_size=(3, 299, 299), min_input_size=(3, 75, 75),
    mean=IMAGENET_INCEPTION_MEAN, std=IMAGENET_INCEPTION_STD, interpolation="bicubic", crop_pct=0.8975,
    drop_rate=0.2, recipe=PAPER_RECIPE,
)

INCEPTION_RESNET_V1 = register_model(ModelRecord(
    name="inception_resnet_v1",
    summary="Inception-ResNet-v1, arXiv 1602.07261, Figures 10-15",
    paper=PAPER_V1,
    layout=V1_LAYOUT,
    params=22_756_328,
    **TF_INPUT,
    doc="Inception-ResNet-v1 as in the paper (arXiv 1602.07261, Figure 15): stem of Figure 14, 5 × A "
    "(Figure 10), Reduction-A (k, l, m, n = 192, 192, 256, 384), 10 × B (Figure 11), Reduction-B "
    "(Figure 12), 5 × C (Figure 13), average pool, dropout 0.2 (keep 0.8), FC 1792 -> num_classes. "
    "Residual scales 0.17 / 0.10 / 0.20 (the paper gives only the 0.1-0.3 range). Not pytorchcv's "
    "inceptionresnetv1, which follows the face-recognition code base (one extra C block without ReLU and "
    "another head).",
))

# facenet's fixed_image_standardization, (x - 127.5) / 128 on RGB in [0, 255], in timm's terms: RGB scaled
# to [0, 1], then mean 127.5 / 255 = 0.5 and std 128 / 255.
FACENET_MEAN = (127.5 / 255,) * 3
FACENET_STD = (128 / 255,) * 3
FACENET_RELEASE = "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/"


def facenet_weights(tag: str, file: str, num_classes: int, lfw: float, notes: str) -> Pretrained:
    """One of David Sandberg's facenet models as facenet-pytorch publishes it on its GitHub releases (a
    plain state dict of ``InceptionResnetV1`` with its ``logits`` classifier): 160×160 face crops
    (facenet-pytorch's MTCNN resizes a PIL crop bilinearly, without a centre crop), standardized as
    (x - 127.5) / 128; ``lfw`` is the LFW accuracy (a fraction) facenet-pytorch's README lists."""
    return Pretrained(
        tag, "facenet", url=FACENET_RELEASE + file, license="MIT (facenet-pytorch, davidsandberg/facenet)",
        top1=None, top5=None,
        accuracy_source=f"none published for ImageNet-1k (a face-identity classifier); facenet-pytorch "
        f"2.6.0's README lists LFW accuracy {lfw} (face verification), as davidsandberg/facenet does",
        input_size=(3, 160, 160), mean=FACENET_MEAN, std=FACENET_STD, interpolation="bilinear", crop_pct=1.0,
        input_note="RGB face crops scaled to [0, 1], then normalized with mean / std: (x - 127.5) / 128 on "
        "[0, 255]",
        num_classes=num_classes, notes=notes,
    )


INCEPTION_RESNET_V1_FACENET = register_model(ModelRecord(
    name="inception_resnet_v1_facenet",
    summary="Inception-ResNet-v1 (arXiv 1602.07261) as facenet builds it, with a FaceNet embedding head "
    "(arXiv 1503.03832)",
    paper=replace(PAPER_V1, top1=None, top1_note=""),
    layout=V1_FACENET_LAYOUT,
    conv={"bn": True, "bn_eps": 1e-3},
    input_size=(3, 160, 160),
    min_input_size=(3, 75, 75),
    mean=FACENET_MEAN,
    std=FACENET_STD,
    interpolation="bilinear",
    crop_pct=1.0,
    drop_rate=0.6,
    num_classes=8631,
    embedding=EmbeddingSpec(embed_dim=512, bn_eps=1e-3),
    params=27_910_327,
    peers=(Peer("facenet", "InceptionResnetV1"),),
    pretrained=(
        facenet_weights("vggface2", "20180402-114759-vggface2.pt", 8631, 0.9965,
                        "David Sandberg's 20180402-114759, trained on VGGFace2 (arXiv 1710.08092), 8631 "
                        "identities"),
        facenet_weights("casia_webface", "20180408-102900-casia-webface.pt", 10575, 0.9905,
                        "David Sandberg's 20180408-102900, trained on CASIA-WebFace (arXiv 1411.7923), "
                        "10575 identities"),
    ),
    doc="Inception-ResNet-v1 for face recognition, in the layout of David Sandberg's facenet (TF-slim) and "
    "its facenet-pytorch port (InceptionResnetV1), whose checkpoints load with source='facenet': the paper's "
    "network (arXiv 1602.07261, Figure 15; as inception_resnet_v1) plus a last C block (Block8) with scale "
    "1.0 and no ReLU, then average pool, dropout 0.6 (keep 0.4), a bias-free linear 1792 -> 512, "
    "BatchNorm1d (eps 1e-3) and a linear classifier over training identities on the un-normalized 512-d "
    "vector. forward_head(x, pre_logits=True), or the model built with num_classes=0, gives the "
    "L2-normalized 512-d face embedding (FaceNet, arXiv 1503.03832: faces compared by Euclidean distance). "
    "160×160 RGB face crops, standardized as (x - 127.5) / 128, which default_cfg states in timm's terms "
    "(mean 0.5, std 128/255). The default of 8631 classes is the classifier of the default vggface2 weights "
    "(VGGFace2's training identities), so that those load whole; the casia_webface tag builds 10575.",
))


INCEPTION_RESNET_V2 = register_model(ModelRecord(
    name="inception_resnet_v2",
    summary="Inception-ResNet-v2, arXiv 1602.07261, in the released checkpoint's layout",
    paper=PAPER_V2,
    layout=V2_LAYOUT,
    aux_heads=(V2_AUX_HEAD,),
    params=55_843_464, params_aux=59_211_120,
    peers=(Peer("timm", "inception_resnet_v2", background_class=True), Peer("pytorchcv", "inceptionresnetv2"),
           Peer("keras", "InceptionResNetV2"), Peer("cadene", "inceptionresnetv2", background_class=True)),
    pretrained=(
        timm_hub("inception_resnet_v2", "tf_in1k", 80.462, 95.308, crop_pct=0.8975, notes="the TF-slim checkpoint"),
        timm_hub("inception_resnet_v2", "tf_ens_adv_in1k", 79.978, 94.946, crop_pct=0.8975,
                 notes="ensemble-adversarially trained (TF ens_adv_inception_resnet_v2)"),
        keras_applications("inception_resnet_v2/inception_resnet_v2_weights_tf_dim_ordering_tf_kernels.h5",
                           "e693bd0210a403b3192acc6073ad2e96", 80.3, 95.3,
                           notes="keras.applications.InceptionResNetV2(weights='imagenet')"),
        pytorchcv("inceptionresnetv2", "v0.0.547", "19f51781f8a454803207e319289f404d50e252cb", 19.40, 4.74,
                  notes="pytorchcv's Inception-ResNet v2, trained in Gluon"),
        cadene(f"{CADENE_HOST}/inceptionresnetv2-520b38e4.pth", "InceptionResNetV2, Our porting", 80.170, 95.234,
               license="Apache-2.0 (TF-slim weights, ported by pretrainedmodels)",
               notes="Cadene's port of the TF-slim checkpoint; the file has 1001 classes, TF-slim's background "
               "class first: its row is dropped on conversion, as pretrainedmodels does for 'imagenet'"),
    ),
    **TF_INPUT,
    doc="Inception-ResNet-v2 in the layout of the released checkpoint (shared by timm, Keras and Cadene's "
    "port), 299×299 input. Departs from the paper's Figure 18 as the checkpoint does: an Inception-v3-style "
    "stem ending in Mixed_5b (320 channels) instead of the Figure 3 stem (384), block widths of the "
    "checkpoint, 10 × A (scale 0.17), Reduction-A (k, l, m, n = 256, 256, 384, 384), 20 × B (0.10), "
    "Reduction-B, 9 × C (0.20) plus a final C block with scale 1.0 and no ReLU, and a 1×1 convolution to "
    "1536 channels before the pool. Dropout 0.2 (keep 0.8). The auxiliary head (aux_logits=True) is "
    "TF-slim's (research/slim/nets/inception_resnet_v2.py, 'AuxLogits' on PreAuxLogits = block17_20): 5×5/3 "
    "average pool, 1×1 conv 128, 5×5 conv 768, FC; the paper draws none, and the published checkpoints "
    "(timm, Keras, Cadene, pytorchcv) carry none.",
))
