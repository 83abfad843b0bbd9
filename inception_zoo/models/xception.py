"""Xception: Chollet, "Xception: Deep Learning with Depthwise Separable Convolutions", arXiv 1610.02357.

Figure 5 of the paper: an entry flow (two plain convolutions, three residual blocks that halve the grid),
a middle flow of eight residual blocks of three separable convolutions at 728 channels, and an exit flow
(one reducing block, two separable convolutions to 1536 and 2048 channels), global average pool,
dropout 0.5, FC. Every separable convolution is followed by BatchNorm (eps 1e-5, as in timm's
``legacy_xception``); the residual shortcuts of reducing blocks are 1×1 stride-2 convolutions with
BatchNorm. 22,855,952 parameters, as Table 3 of the paper reports.

``xception_tf`` is the same network as Keras builds it (``keras.applications.Xception``, whose weights
Cadene's and timm's ports approximate): BatchNorm eps 1e-3, and the reducing blocks' 3×3/2 max pools with
TensorFlow's "same" padding, which on an even-sized map pads one row and column at the bottom and right
only (PyTorch's padding 1 pads both sides: a one-pixel shift of every pooling window). Its 1×1/2 shortcut
convolutions are "same" too, which for a 1×1 kernel is no padding at any size, as here.

``xception41``, ``xception65`` and ``xception71`` are the "modified aligned Xception" of DeepLabv3+ (Chen et
al., arXiv 1802.02611, Section 3.2 and Figure 4, which draws Xception-65) as TensorFlow's DeepLab code and
timm's ``xception_aligned`` build them; ``xception41p`` and ``xception65p`` are timm's pre-activation
variants of two of them. Their blocks are in :mod:`inception_zoo.models.xception_blocks`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from ..layers import Conv
from ..records import (
    IMAGENET_INCEPTION_MEAN,
    IMAGENET_INCEPTION_STD,
    ModelRecord,
    Paper,
    Peer,
    Pretrained,
    Recipe,
)
from ..registry import register_model
from ._published import CADENE_HOST, cadene, keras_applications, pytorchcv, timm_hub
from .xception_blocks import AlignedXceptionSpec, PlainConv, XceptionBlock, XceptionBlockSpec

__all__ = [
    "XceptionBlock", "XceptionBlockSpec", "XCEPTION", "XCEPTION_TF", "XCEPTION_CIFAR",
    "XCEPTION41", "XCEPTION65", "XCEPTION71", "XCEPTION41P", "XCEPTION65P",
]

PAPER = Paper(
    title="Xception: Deep Learning with Depthwise Separable Convolutions",
    arxiv="1610.02357",
    params=22_855_952,
    note="params: Table 3; the paper reports no multiply-add count",
    top1=79.0,
    top1_note="Table 1, single model, single crop",
)

# Section 4.3: SGD, momentum 0.9, initial learning rate 0.045 decayed by 0.94 every 2 epochs.
PAPER_RECIPE = Recipe("sgd", 0.045, 0.94, 2, 0.0, 0.0, source="arXiv 1610.02357, Section 4.3")


def _layout(*, cifar: bool = False, pool_padding: int | Literal["same"] = 1) -> tuple:
    """Figure 5. ``cifar=True`` pads the two stem convolutions (32×32 input keeps a 16×16 grid after the
    stride-2 stem instead of shrinking to 13×13); ``pool_padding`` is the reducing blocks' max-pool padding
    (``"same"``: TensorFlow's)."""
    pad = 1 if cifar else 0
    p = pool_padding
    return (
        # Entry flow
        ("entry_conv1", Conv(32, 3, 2, padding=pad)),
        ("entry_conv2", Conv(64, 3, padding=pad)),
        ("entry_block1", XceptionBlockSpec(128, 2, 2, start_with_relu=False, pool_padding=p)),
        ("entry_block2", XceptionBlockSpec(256, 2, 2, pool_padding=p)),
        ("entry_block3", XceptionBlockSpec(728, 2, 2, pool_padding=p)),
        # Middle flow, repeated eight times
        *[(f"middle_block{i}", XceptionBlockSpec(728, 3)) for i in range(1, 9)],
        # Exit flow
        ("exit_block", XceptionBlockSpec(1024, 2, 2, grow_first=False, pool_padding=p)),
        ("exit_conv1", Conv(1536, 3, padding=1, separable=True)),
        ("exit_conv2", Conv(2048, 3, padding=1, separable=True)),
    )


XCEPTION = register_model(ModelRecord(
    name="xception",
    summary="Xception, arXiv 1610.02357",
    paper=PAPER,
    layout=_layout(),
    conv=dict(bn=True, bn_eps=1e-5),
    input_size=(3, 299, 299), min_input_size=(3, 7, 7),
    mean=IMAGENET_INCEPTION_MEAN, std=IMAGENET_INCEPTION_STD, interpolation="bicubic", crop_pct=0.8975,
    drop_rate=0.5,
    params=22_855_952,
    recipe=PAPER_RECIPE,
    peers=(Peer("timm", "legacy_xception"), Peer("pytorchcv", "xception"), Peer("cadene", "xception")),
    pretrained=(
        Pretrained(
            "tf_in1k", "timm",
            url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-cadene/xception-43020ad28.pth",
            license="Apache-2.0 (timm)", top1=79.040, top5=94.382,
            accuracy_source="timm results-imagenet.csv, legacy_xception.tf_in1k (299, crop 0.897)",
            mean=IMAGENET_INCEPTION_MEAN, std=IMAGENET_INCEPTION_STD, interpolation="bicubic", crop_pct=0.8975,
            notes="Keras' Xception weights via Cadene's port, timm's legacy_xception; timm serves this file from "
            "its GitHub release (no Hugging Face copy in timm 1.0), and its name's suffix is no sha256 prefix",
        ),
        pytorchcv("xception", "v0.0.544", "a75b50eceb5fdfb1e1bfaada6820a448ce40e593", 20.35, 5.16,
                  notes="pytorchcv's Xception, trained in Gluon"),
        cadene(f"{CADENE_HOST}/xception-43020ad28.pth", "Xception, Our porting", 78.888, 94.292, crop_pct=0.8975,
               license="MIT (Keras' Xception weights, ported by pretrainedmodels)",
               notes="Keras' Xception weights as pretrainedmodels publishes them (keys fc, renamed last_linear "
               "after loading): the file name of tf_in1k, which timm serves from its own GitHub release; both "
               "land as xception-43020ad28.pth in $TORCH_HOME/hub/checkpoints, so either tag finds the other's "
               "download. pretrainedmodels' accuracy (bilinear, resize 333) differs from timm's measurement"),
    ),
    doc="Xception (arXiv 1610.02357, Figure 5), 299×299 input, dropout 0.5 (Section 4.3); no auxiliary "
    "heads. 22,855,952 parameters, as Table 3 of the paper reports.",
))

XCEPTION_TF = register_model(replace(
    XCEPTION,
    name="xception_tf",
    summary="Xception as Keras builds it (TF 'same' max pools, BatchNorm eps 1e-3), for Keras weights",
    layout=_layout(pool_padding="same"),
    conv=dict(bn=True, bn_eps=1e-3),
    # Keras' preprocess_input for Xception ("tf" mode): x / 127.5 - 1
    interpolation="bilinear", crop_pct=0.875,
    peers=(Peer("keras", "Xception"),),
    pretrained=(
        keras_applications("xception/xception_weights_tf_dim_ordering_tf_kernels.h5",
                           "0a58e3b7378bc2990ea3b43d5981f1f6", 79.0, 94.5,
                           notes="keras.applications.Xception(weights='imagenet'), the weights Cadene's and timm's "
                           "xception ports approximate"),
    ),
    doc="Xception (arXiv 1610.02357, Figure 5) exactly as keras.applications.Xception computes it: "
    "BatchNorm eps 1e-3 (Keras' default) and the reducing blocks' max pools with TensorFlow's 'same' padding "
    "(on an even-sized map one extra row and column at the bottom and right, where PyTorch pads both sides). "
    "Same weights and parameter count as xception; load Keras files (.h5, .weights.h5, .keras) with "
    "load_pretrained(model, path, source='keras').",
))

XCEPTION_CIFAR = register_model(ModelRecord(
    name="xception_cifar",
    summary="Xception for 32×32 input (CIFAR-100)",
    paper=replace(PAPER, params=None, note="CIFAR layout: the paper's figures are for ImageNet", top1=None,
                  top1_note=""),
    layout=_layout(cifar=True),
    conv=dict(bn=True, bn_eps=1e-5),
    input_size=(3, 32, 32), min_input_size=(3, 1, 1), num_classes=100, output_strides=(32,),
    mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762), interpolation="bilinear", crop_pct=1.0,
    drop_rate=0.5,
    params=21_011_852,
    recipe=PAPER_RECIPE,
    doc="Xception for CIFAR-size (32×32) input: the entry, middle (8 blocks) and exit flows of Figure 5 "
    "after a padded stride-2 3×3 stem; 100 classes by default, as commonly used on CIFAR-100. The grid goes "
    "16 -> 8 -> 4 -> 2 through the entry flow and 1 after the exit block.",
))


# ---------------------------------------------------------------------------------------------------------
# DeepLabv3+'s modified aligned Xception (arXiv 1802.02611, Section 3.2, Figure 4), as timm 1.0 builds it
# ---------------------------------------------------------------------------------------------------------

ALIGNED_PAPER = Paper(
    title="Encoder-Decoder with Atrous Separable Convolution for Semantic Image Segmentation",
    arxiv="1802.02611",
    note="Section 3.2 and Figure 4 (Xception-65); the paper reports no ImageNet parameter or multiply-add "
    "count for it",
)
PREACT_PAPER = replace(
    ALIGNED_PAPER,
    note="timm's pre-activation variant (after He et al., arXiv 1603.05027) of the aligned Xception of "
    "Section 3.2; no paper reports its figures",
)

# (widths, stride) of the entry flow's blocks: Figure 4's three, and TF DeepLab's xception_71 (five).
ENTRY = ((128, 2), (256, 2), (728, 2))
ENTRY_71 = ((128, 2), (256, 1), (256, 2), (728, 1), (728, 2))


def _aligned_layout(entry: tuple, middle: int, *, preact: bool = False) -> tuple:
    """Figure 4 of arXiv 1802.02611: a stem of two "same"-padded 3×3 convolutions, the entry flow's blocks,
    ``middle`` blocks of 728 channels, and the exit flow: a reducing block (728, 1024, 1024) and three
    separable convolutions (1536, 1536, 2048) without shortcut. Every block has three separable
    convolutions, the third strided where the block reduces. ``preact``: timm's pre-activation blocks; the
    stem's second convolution is then bare (the first block normalizes it) and a ReLU ends the network."""
    block = AlignedXceptionSpec
    return (
        # Entry flow
        ("entry_conv1", Conv(32, 3, 2, padding=1)),
        ("entry_conv2", PlainConv(64, 3) if preact else Conv(64, 3)),
        *[(f"entry_block{i}", block(out, stride, preact=preact)) for i, (out, stride) in enumerate(entry, 1)],
        # Middle flow
        *[(f"middle_block{i}", block(728, preact=preact)) for i in range(1, middle + 1)],
        # Exit flow
        ("exit_block1", block((728, 1024, 1024), 2, preact=preact)),
        ("exit_block2", block((1536, 1536, 2048), skip=False, preact=True, act=True) if preact
         else block((1536, 1536, 2048), skip=False, start_with_relu=False)),
    )


ALIGNED_CHANGES = (
    "What 'modified aligned' changes against Chollet's Xception (arXiv 1802.02611, Section 3.2; as built by "
    "TF DeepLab's code and timm): every max pool is replaced by the stride of the block's third separable "
    "convolution, and every block has three separable convolutions (Chollet's entry and exit blocks have two "
    "and a pool); a BatchNorm sits between each depthwise and pointwise convolution (the paper says BatchNorm "
    "and ReLU after each depthwise convolution; the code adds the ReLU there only in the exit flow's last three "
    "convolutions and keeps Chollet's ReLU before each separable convolution in the blocks); every convolution "
    "is padded 'same' (symmetric, ceil(H / stride) outputs; Chollet's two stem convolutions are unpadded), so "
    "299×299 input goes 150, 75, 38, 19, 10; the exit flow ends in three separable convolutions (1536, 1536, "
    "2048) after its reducing block of 728, 1024, 1024 (Chollet's: two, 1536 and 2048, after a block of 728, "
    "1024); BatchNorm eps 1e-3 (TensorFlow's). No dropout before the classifier (timm's default)."
)


def _aligned(name: str, summary: str, layout: tuple, params: int, pretrained: tuple, doc: str, *,
             paper: Paper = ALIGNED_PAPER, bn_eps: float = 1e-3) -> ModelRecord:
    """A record of the aligned family: timm's input configuration (299×299, bicubic, Inception mean / std,
    the default tag's crop), timm's model as the peer."""
    return register_model(ModelRecord(
        name=name,
        summary=summary,
        paper=paper,
        layout=layout,
        conv={"bn": True, "bn_eps": bn_eps},
        input_size=(3, 299, 299), min_input_size=(3, 1, 1),
        mean=IMAGENET_INCEPTION_MEAN, std=IMAGENET_INCEPTION_STD, interpolation="bicubic",
        crop_pct=pretrained[0].crop_pct,
        drop_rate=0.0,
        params=params,
        peers=(Peer("timm", name),),
        pretrained=pretrained,
        doc=doc,
    ))


TF_DEEPLAB = "TF DeepLab's ImageNet checkpoint of {}, converted by timm"
RA3 = "trained in timm on ImageNet-1k with its RandAugment recipe RA3"

XCEPTION41 = _aligned(
    "xception41", "Modified aligned Xception-41 (DeepLabv3+, arXiv 1802.02611), timm's xception41",
    _aligned_layout(ENTRY, 8), 26_969_560,
    (timm_hub("xception41", "tf_in1k", 78.504, 94.276, crop_pct=0.903, notes=TF_DEEPLAB.format("xception_41")),),
    "Modified aligned Xception with Chollet's eight middle-flow blocks: the entry and exit flows of arXiv "
    "1802.02611, Figure 4, 26,969,560 parameters (timm's xception41). " + ALIGNED_CHANGES,
)
XCEPTION65 = _aligned(
    "xception65", "Modified aligned Xception-65, DeepLabv3+ arXiv 1802.02611, Figure 4",
    _aligned_layout(ENTRY, 16), 39_916_312,
    (timm_hub("xception65", "ra3_in1k", 83.182, 96.592, crop_pct=0.94, notes=RA3),
     timm_hub("xception65", "tf_in1k", 79.556, 94.654, crop_pct=0.903, notes=TF_DEEPLAB.format("xception_65"))),
    "Modified aligned Xception-65 (arXiv 1802.02611, Figure 4): sixteen middle-flow blocks, 39,916,312 "
    "parameters (timm's xception65). " + ALIGNED_CHANGES,
)
XCEPTION71 = _aligned(
    "xception71", "Modified aligned Xception-71 (DeepLabv3+ arXiv 1802.02611; TF DeepLab's five entry blocks)",
    _aligned_layout(ENTRY_71, 16), 42_338_736,
    (timm_hub("xception71", "tf_in1k", 79.872, 94.928, crop_pct=0.903, notes=TF_DEEPLAB.format("xception_71")),),
    "xception65 with TF DeepLab's xception_71 entry flow: five blocks (128/2, 256/1, 256/2, 728/1, 728/2) where "
    "Figure 4 of arXiv 1802.02611 has three; 42,338,736 parameters (timm's xception71). " + ALIGNED_CHANGES,
)

PREACT_CHANGES = (
    " Pre-activation (timm's variant, after arXiv 1603.05027): each block opens with BatchNorm + ReLU, whose "
    "output feeds both the separable convolutions and the shortcut (a 1×1 convolution without BatchNorm); "
    "BatchNorm + ReLU between the separable convolutions, none between depthwise and pointwise (where "
    "xception41/65/71 have a BatchNorm); the stem's second convolution is bare and a ReLU follows the last "
    "block. The layout otherwise as the modified aligned Xception of arXiv 1802.02611 (see xception41): max "
    "pools replaced by strided separable convolutions, three separable convolutions per block, 'same' "
    "padding everywhere, three separable convolutions ending the exit flow."
)
XCEPTION41P = _aligned(
    "xception41p", "xception41 with pre-activation blocks (timm's xception41p)",
    _aligned_layout(ENTRY, 8, preact=True), 26_907_752,
    (timm_hub("xception41p", "ra3_in1k", 81.972, 95.796, crop_pct=0.94, notes=RA3),),
    "The pre-activation xception41 of timm, BatchNorm eps 1e-5 (timm's default; its other aligned Xceptions "
    "use TensorFlow's 1e-3), 26,907,752 parameters, no dropout." + PREACT_CHANGES,
    paper=PREACT_PAPER, bn_eps=1e-5,
)
XCEPTION65P = _aligned(
    "xception65p", "xception65 with pre-activation blocks (timm's xception65p)",
    _aligned_layout(ENTRY, 16, preact=True), 39_819_560,
    (timm_hub("xception65p", "ra3_in1k", 83.136, 96.484, crop_pct=0.94, notes=RA3),),
    "The pre-activation xception65 of timm, BatchNorm eps 1e-3, 39,819,560 parameters, no dropout."
    + PREACT_CHANGES,
    paper=PREACT_PAPER,
)
