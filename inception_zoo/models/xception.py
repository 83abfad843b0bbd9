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
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import torch
from torch import nn

from ..layers import Conv, ConvLayer, Pool, ResidualParts
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
from ._published import CADENE_HOST, cadene, keras_applications, pytorchcv

__all__ = ["XceptionBlock", "XceptionBlockSpec", "XCEPTION", "XCEPTION_TF", "XCEPTION_CIFAR"]

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


class XceptionBlock(nn.Module):
    """A residual block of Figure 5: [ReLU, SeparableConv 3×3, BN] × reps, a 3×3/2 max pool when
    reducing, plus a shortcut (identity, or 1×1 conv + BN when the width or the grid changes).

    Args:
        in_channels, out_channels: channels in and out.
        reps: separable convolutions in the block (2 in the entry/exit flows, 3 in the middle flow).
        stride: 1, or 2 for a reducing block (max pool at the end, strided shortcut).
        start_with_relu: False for the first block, which follows a ReLU already.
        grow_first: widen at the first separable convolution (True) or at the last (the exit block).
        pool_padding: the reducing max pool's padding: 1 (PyTorch's ports) or ``"same"`` (TensorFlow's
            "same", asymmetric on even sizes: Keras' Xception).
        conv_layer: the family's conv block.

    Shapes: (B, in_channels, H, W) -> (B, out_channels, ceil(H / stride), ceil(W / stride)).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        reps: int,
        stride: int = 1,
        *,
        start_with_relu: bool = True,
        grow_first: bool = True,
        pool_padding: int | Literal["same"] = 1,
        conv_layer: ConvLayer,
    ) -> None:
        super().__init__()
        widths = [out_channels] * reps if grow_first else [in_channels] * (reps - 1) + [out_channels]
        layers: list[nn.Module] = [nn.ReLU(inplace=False)] if start_with_relu else []  # input feeds the shortcut
        ch = in_channels
        for i, width in enumerate(widths):
            # The ReLU that opens the next separable step is this block's activation.
            layers.append(conv_layer(ch, width, 3, 1, 1, separable=True, act=i < reps - 1))
            ch = width
        if stride != 1:
            layers.append(Pool("max", 3, stride, padding=pool_padding).build(ch, conv_layer)[0])
        if in_channels != out_channels or stride != 1:
            self.shortcut: nn.Module = conv_layer(in_channels, out_channels, 1, stride, 0, act=False)
        else:
            self.shortcut = nn.Identity()
        self.rep = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rep(x) + self.shortcut(x)

    def residual_parts(self) -> ResidualParts:
        """For fusion: the sum goes into the 1×1 shortcut convolution, or, with an identity shortcut, into
        the last separable convolution of ``rep``."""
        if isinstance(self.shortcut, nn.Identity):
            return ResidualParts(self.rep[:-1], self.rep[-1], on_shortcut=False, scale=1.0, act=False)
        return ResidualParts(self.rep, self.shortcut, on_shortcut=True, scale=1.0, act=False)


@dataclass(frozen=True)
class XceptionBlockSpec:
    """Layer spec for an :class:`XceptionBlock` (see :mod:`inception_zoo.layers.blocks`)."""

    out: int
    reps: int
    stride: int = 1
    start_with_relu: bool = True
    grow_first: bool = True
    pool_padding: int | Literal["same"] = 1

    def build(self, in_channels: int, conv_layer: ConvLayer) -> tuple[nn.Module, int, int]:
        block = XceptionBlock(
            in_channels, self.out, self.reps, self.stride,
            start_with_relu=self.start_with_relu, grow_first=self.grow_first, pool_padding=self.pool_padding,
            conv_layer=conv_layer,
        )
        return block, self.out, self.stride


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
    input_size=(3, 32, 32), min_input_size=(3, 1, 1), num_classes=100,
    mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762), interpolation="bilinear", crop_pct=1.0,
    drop_rate=0.5,
    params=21_011_852,
    recipe=PAPER_RECIPE,
    doc="Xception for CIFAR-size (32×32) input: the entry, middle (8 blocks) and exit flows of Figure 5 "
    "after a padded stride-2 3×3 stem; 100 classes by default, as commonly used on CIFAR-100. The grid goes "
    "16 -> 8 -> 4 -> 2 through the entry flow and 1 after the exit block.",
))
