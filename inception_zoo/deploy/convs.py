"""The deploy-mode convolution: BatchNorm folded, ReLU and residual sum fused into one oneDNN call."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import BasicConv2d, PreActivation, SeparableConv2d
from .. import _onednn

__all__ = ["DeployConv2d", "FusedResidual", "deploy_conv", "fold_batchnorm", "preactivation_conv"]


def fold_batchnorm(block: BasicConv2d) -> None:
    """Fold ``block.bn`` into ``block.conv`` (the pointwise conv of a separable one), in place:
    ``W' = W·γ/σ``, ``b' = (b - μ)·γ/σ + β`` with σ = sqrt(running_var + eps); and a separable
    convolution's BatchNorm between depthwise and pointwise (``depthwise_bn``) into the depthwise one."""
    separable = isinstance(block.conv, SeparableConv2d)
    if separable and _foldable(block.conv.depthwise_bn):
        block.conv.depthwise = _folded(block.conv.depthwise, block.conv.depthwise_bn)
        block.conv.depthwise_bn = None
    if not _foldable(block.bn):
        return
    folded = _folded(block.conv.pointwise if separable else block.conv, block.bn)
    if separable:
        block.conv.pointwise = folded
    else:
        block.conv = folded
    block.bn = nn.Identity()


def _foldable(norm: nn.Module | None) -> bool:
    """Whether ``norm`` is a BatchNorm to fold: PyTorch's, or a frozen one (torchvision's and timm's
    ``FrozenBatchNorm2d``: the same statistics and affine buffers). None / ``nn.Identity``: nothing to fold.

    Raises:
        TypeError: another normalization (GroupNorm, a BatchNorm without running statistics ...), which
            deploy mode cannot fold and must not drop."""
    if norm is None or isinstance(norm, nn.Identity):
        return False
    if all(getattr(norm, a, None) is not None for a in ("running_mean", "running_var", "eps")):
        return True
    raise TypeError(f"deploy mode folds BatchNorm layers into their convolution and cannot fold a "
                    f"{type(norm).__name__} (a BatchNorm with running statistics, or a FrozenBatchNorm2d, can)")


def _folded(conv: nn.Conv2d, bn: nn.Module) -> nn.Conv2d:
    """``conv`` followed by ``bn`` (a BatchNorm in eval mode, or a frozen one) as one convolution with a
    bias."""
    # computed in float64 and stored in the weights' dtype (a float16 / bfloat16 model folds as exactly)
    var = bn.running_var.double()
    gamma = bn.weight.double() if getattr(bn, "weight", None) is not None else torch.ones_like(var)
    beta = bn.bias.double() if getattr(bn, "bias", None) is not None else torch.zeros_like(var)
    scale = gamma / torch.sqrt(var + bn.eps)
    bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
    folded = nn.Conv2d(
        conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
        conv.dilation, conv.groups, bias=True, device=conv.weight.device, dtype=conv.weight.dtype,
    )
    with torch.no_grad():
        folded.weight.copy_(conv.weight.double() * scale.reshape(-1, 1, 1, 1))
        folded.bias.copy_((bias - bn.running_mean.double()) * scale + beta)
    return folded


def preactivation_conv(module: PreActivation) -> DeployConv2d:
    """A :class:`~inception_zoo.layers.PreActivation` (BatchNorm + ReLU with no convolution to fold into:
    its input is a residual sum, its output feeds two paths) as a 1×1 depthwise convolution computing the
    BatchNorm, with the ReLU fused.

    Raises:
        TypeError: ``module.bn`` is no BatchNorm to fold (as :func:`_foldable` says)."""
    bn = module.bn
    if not _foldable(bn):
        raise TypeError(f"deploy mode expected a BatchNorm in the pre-activation layer, got {type(bn).__name__}")
    channels = bn.running_mean.numel()  # FrozenBatchNorm2d has no num_features
    identity = nn.Conv2d(channels, channels, 1, groups=channels, bias=False,
                         device=bn.running_mean.device, dtype=bn.running_mean.dtype)
    with torch.no_grad():
        identity.weight.fill_(1.0)
    return DeployConv2d(_folded(identity, bn), relu=isinstance(module.act, nn.ReLU))


class DeployConv2d(nn.Module):
    """A convolution, an optional residual sum and an optional ReLU, for inference:
    ``relu(conv(x) + residual)``.

    On a CPU with oneDNN it runs as one oneDNN call: the sum and the ReLU are fused into the convolution
    (post-ops). It does so in float32, and in bfloat16 under CPU autocast to bfloat16 (or for bfloat16
    weights and input). Elsewhere (GPU, float16, ``torch.compile``/``torch.export``/tracing, or while
    autograd records a gradient, e.g. of the input) it is ``F.conv2d``, the sum and ``F.relu``. All paths
    compute the same function. Weights are frozen (``requires_grad=False``). A deployed model cannot be
    ``torch.jit.script``-ed (trace or export it instead).

    Every call reads the weight as it is then: nothing derived from it is kept between calls, so any change
    of the weight, by whatever route (``load_state_dict``, ``.data``, NumPy or DLPack views, an optimizer
    step), is seen by the next call, and concurrent calls from many threads share no mutable state. A copy
    of the weight packed once in oneDNN's blocked layout would save its reorder at each call (measured on
    inception_v3, 2 cores: about 14% of the batch-1 latency, 2% of batch-8 throughput), but no check that
    such a copy is still current covers every route a weight can change by and costs less than the
    reorder it saves.

    Shapes: x as for the wrapped :class:`torch.nn.Conv2d`; ``residual``, if given, the shape of the output.
    Output dtype: as the wrapped convolution's under the same autocast state.
    """

    def __init__(self, conv: nn.Conv2d, relu: bool) -> None:
        super().__init__()
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError("DeployConv2d supports explicit zero padding only")
        self.weight = nn.Parameter(conv.weight.detach().clone(), requires_grad=False)
        self.bias = nn.Parameter(conv.bias.detach().clone(), requires_grad=False) if conv.bias is not None else None
        self.stride, self.padding, self.dilation = list(conv.stride), list(conv.padding), list(conv.dilation)
        self.groups = conv.groups
        self.relu = relu

    def _onednn_dtype(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.dtype | None:
        """The dtype of the oneDNN call for this input, or None for the plain path (which autograd can
        differentiate: taken whenever a gradient is being recorded, e.g. for a saliency map)."""
        recording = torch.is_grad_enabled() and (
            x.requires_grad or self.weight.requires_grad
            or (self.bias is not None and self.bias.requires_grad)
            or (residual is not None and residual.requires_grad)
        )
        if (
            recording or x.device.type != "cpu" or torch.compiler.is_compiling() or torch.jit.is_tracing()
            or torch.jit.is_scripting() or not _onednn.available()
        ):
            return None
        if torch.is_autocast_enabled("cpu"):
            autocast_bf16 = torch.get_autocast_dtype("cpu") == torch.bfloat16 and x.dtype in (torch.float32, torch.bfloat16)
            return torch.bfloat16 if autocast_bf16 and _onednn.bf16_available() else None
        if x.dtype == self.weight.dtype == torch.float32:
            return torch.float32
        if x.dtype == self.weight.dtype == torch.bfloat16 and _onednn.bf16_available():
            return torch.bfloat16
        return None

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        dtype = self._onednn_dtype(x, residual)
        if dtype is not None:
            weight = self.weight.to(dtype)
            bias = None if self.bias is None else self.bias.to(dtype)
            x = x.to(dtype)
            if residual is None:
                return _onednn.conv(x, weight, bias, self.padding, self.stride, self.dilation, self.groups, self.relu)
            layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
            return _onednn.conv_add(x, residual.to(dtype).contiguous(memory_format=layout), weight, bias,
                                    self.padding, self.stride, self.dilation, self.groups, self.relu)
        y = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        if residual is not None:
            y = y + residual
        return F.relu(y) if self.relu else y

    def extra_repr(self) -> str:
        return (f"{self.weight.shape[1] * self.groups}, {self.weight.shape[0]}, kernel_size={tuple(self.weight.shape[2:])}, "
                f"stride={tuple(self.stride)}, padding={tuple(self.padding)}, groups={self.groups}, relu={self.relu}")


class FusedResidual(nn.Module):
    """A residual block whose sum (and ReLU) run inside one of its convolutions.

    ``on_shortcut=False``: ``conv(body(x), residual=x)``, the sum fused into the block's last convolution
    (the up-projection of an Inception-ResNet block, the last pointwise convolution of an Xception
    middle-flow block). ``on_shortcut=True``: ``conv(x, residual=body(x))``, the sum fused into the 1×1
    shortcut convolution (Xception's reducing blocks).

    Shapes: as the block it replaces.
    """

    def __init__(self, body: nn.Module, conv: DeployConv2d, *, on_shortcut: bool) -> None:
        super().__init__()
        self.body = body
        self.conv = conv
        self.on_shortcut = on_shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.on_shortcut:
            return self.conv(x, residual=self.body(x))
        return self.conv(self.body(x), residual=x)

    def extra_repr(self) -> str:
        return f"on_shortcut={self.on_shortcut}"


def deploy_conv(block: BasicConv2d) -> nn.Module:
    """A BN-folded :class:`BasicConv2d` as deploy convolutions (a separable one as two, the depthwise one
    with the ReLU it may have before the pointwise one)."""
    relu = isinstance(block.act, nn.ReLU)
    if isinstance(block.conv, SeparableConv2d):
        inner = isinstance(block.conv.depthwise_act, nn.ReLU)
        return nn.Sequential(DeployConv2d(block.conv.depthwise, inner), DeployConv2d(block.conv.pointwise, relu))
    return DeployConv2d(block.conv, relu)
