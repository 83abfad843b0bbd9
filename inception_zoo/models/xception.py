"""Xception: Chollet, "Xception: Deep Learning with Depthwise Separable Convolutions", arXiv 1610.02357.

Figure 5 of the paper: an entry flow (two plain convolutions, three residual blocks that halve the grid),
a middle flow of eight residual blocks of three separable convolutions at 728 channels, and an exit flow
(one reducing block, two separable convolutions to 1536 and 2048 channels), global average pool,
dropout 0.5, FC. Every separable convolution is followed by BatchNorm (eps 1e-5, as in timm's
``legacy_xception``); the residual shortcuts of reducing blocks are 1×1 stride-2 convolutions with
BatchNorm. 22,855,952 parameters, as Table 3 of the paper reports.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial

import torch
from torch import nn

from ..layers import BasicConv2d, Conv
from ..layers.blocks import ConvLayer
from ..registry import register_model
from .base import IMAGENET_INCEPTION_MEAN, IMAGENET_INCEPTION_STD, InceptionNet, Paper, model_cfg

__all__ = ["XceptionBlock", "XceptionBlockSpec", "xception", "xception_cifar"]

PAPER = Paper(
    title="Xception: Deep Learning with Depthwise Separable Convolutions",
    arxiv="1610.02357",
    params=22_855_952,
    note="params: Table 3; the paper reports no multiply-add count",
    top1=79.0,
    top1_note="Table 1, single model, single crop",
)


class XceptionBlock(nn.Module):
    """A residual block of Figure 5: [ReLU, SeparableConv 3×3, BN] × reps, a 3×3/2 max pool when
    reducing, plus a shortcut (identity, or 1×1 conv + BN when the width or the grid changes).

    Args:
        in_ch, out_ch: channels in and out.
        reps: separable convolutions in the block (2 in the entry/exit flows, 3 in the middle flow).
        stride: 1, or 2 for a reducing block (max pool at the end, strided shortcut).
        start_with_relu: False for the first block, which follows a ReLU already.
        grow_first: widen at the first separable convolution (True) or at the last (the exit block).
        conv_layer: the family's conv block.

    Shapes: (B, in_ch, H, W) -> (B, out_ch, ceil(H / stride), ceil(W / stride)).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        reps: int,
        stride: int = 1,
        *,
        start_with_relu: bool = True,
        grow_first: bool = True,
        conv_layer: ConvLayer,
    ) -> None:
        super().__init__()
        widths = [out_ch] * reps if grow_first else [in_ch] * (reps - 1) + [out_ch]
        layers: list[nn.Module] = [nn.ReLU(inplace=False)] if start_with_relu else []  # input feeds the shortcut
        ch = in_ch
        for i, width in enumerate(widths):
            # The ReLU that opens the next separable step is this block's activation.
            layers.append(conv_layer(ch, width, 3, 1, 1, separable=True, act=i < reps - 1))
            ch = width
        if stride != 1:
            layers.append(nn.MaxPool2d(3, stride, 1))
        if in_ch != out_ch or stride != 1:
            self.shortcut: nn.Module = conv_layer(in_ch, out_ch, 1, stride, 0, act=False)
        else:
            self.shortcut = nn.Identity()
        self.rep = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rep(x) + self.shortcut(x)


@dataclass(frozen=True)
class XceptionBlockSpec:
    """Layer spec for an :class:`XceptionBlock` (see :mod:`inception_zoo.layers.blocks`)."""

    out: int
    reps: int
    stride: int = 1
    start_with_relu: bool = True
    grow_first: bool = True

    def build(self, in_ch: int, conv_layer: ConvLayer) -> tuple[nn.Module, int, int]:
        block = XceptionBlock(
            in_ch, self.out, self.reps, self.stride,
            start_with_relu=self.start_with_relu, grow_first=self.grow_first, conv_layer=conv_layer,
        )
        return block, self.out, self.stride


def _layout(*, cifar: bool = False) -> list:
    """Figure 5. ``cifar=True`` pads the two stem convolutions (32×32 input keeps a 16×16 grid after the
    stride-2 stem instead of shrinking to 13×13)."""
    pad = 1 if cifar else 0
    return [
        # Entry flow
        ("entry_conv1", Conv(32, 3, 2, padding=pad)),
        ("entry_conv2", Conv(64, 3, padding=pad)),
        ("entry_block1", XceptionBlockSpec(128, 2, 2, start_with_relu=False)),
        ("entry_block2", XceptionBlockSpec(256, 2, 2)),
        ("entry_block3", XceptionBlockSpec(728, 2, 2)),
        # Middle flow, repeated eight times
        *[(f"middle_block{i}", XceptionBlockSpec(728, 3)) for i in range(1, 9)],
        # Exit flow
        ("exit_block", XceptionBlockSpec(1024, 2, 2, grow_first=False)),
        ("exit_conv1", Conv(1536, 3, padding=1, separable=True)),
        ("exit_conv2", Conv(2048, 3, padding=1, separable=True)),
    ]


@register_model
def xception(
    *, num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = False, drop_rate: float = 0.5,
    global_pool: str = "avg",
) -> InceptionNet:
    """Xception (arXiv 1610.02357, Figure 5), 299×299 input, 22,855,952 parameters, dropout 0.5
    (Section 4.3). No auxiliary heads. Output (B, num_classes)."""
    return InceptionNet(
        _layout(),
        conv_layer=partial(BasicConv2d, bn=True, bn_eps=1e-5),
        name="xception",
        default_cfg=model_cfg(
            paper=PAPER, input_size=(3, 299, 299), min_input_size=(3, 7, 7),
            mean=IMAGENET_INCEPTION_MEAN, std=IMAGENET_INCEPTION_STD, interpolation="bicubic", crop_pct=0.8975,
        ),
        num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate, aux_logits=aux_logits, global_pool=global_pool,
    )


@register_model
def xception_cifar(
    *, num_classes: int = 100, in_chans: int = 3, aux_logits: bool = False, drop_rate: float = 0.5,
    global_pool: str = "avg",
) -> InceptionNet:
    """Xception for CIFAR-size (32×32) input: the entry, middle (8 blocks) and exit flows of Figure 5
    after a padded stride-2 3×3 stem; 100 classes by default, as commonly used on CIFAR-100. The grid goes
    16 -> 8 -> 4 -> 2 through the entry flow and 1 after the exit block."""
    return InceptionNet(
        _layout(cifar=True),
        conv_layer=partial(BasicConv2d, bn=True, bn_eps=1e-5),
        name="xception_cifar",
        default_cfg=model_cfg(
            paper=replace(PAPER, params=None, note="CIFAR layout: the paper's figures are for ImageNet", top1=None,
                          top1_note=""),
            input_size=(3, 32, 32), min_input_size=(3, 1, 1),
            mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762), interpolation="bilinear", crop_pct=1.0,
        ),
        num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate, aux_logits=aux_logits,
        global_pool=global_pool,
    )
