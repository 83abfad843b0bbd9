"""Deploy mode: an equivalent, eval-only model that does less work per image.

:func:`optimize_for_inference` rewrites a copy of a model:

1. **BatchNorm folded** into the convolution before it (``W' = W·γ/σ``, ``b' = (b - μ)·γ/σ + β``).
2. **Residual scales folded** into the up-projection of every residual Inception block.
3. **Parallel 1×1 convolutions merged**: inside an Inception module, every branch that starts with a 1×1
   convolution of the module's input (the 1×1 branch, the reductions before the 3×3/5×5, and the
   projection of an average-pool branch) is computed by one convolution whose output is split
   afterwards. A 1×1 convolution commutes with average pooling (both are linear, and zero padding maps
   to zero), so the pool branch's projection runs *before* its pool, on the input, as part of the merged
   convolution; its bias is added after the pool, which keeps the result exact whether or not the pool
   counts its padding. The pool then works on the projected channels (e.g. 32 instead of 192).
4. **Fused convolutions**: on a CPU with oneDNN, each convolution runs with its ReLU fused and its weight
   prepacked once (:class:`DeployConv2d`), in float32 or, under CPU autocast to bfloat16, in bfloat16
   with a bfloat16 weight packed once; elsewhere (GPU, float16, compilation) as plain convolutions.
5. **Residual sums fused**: the sum (and ReLU) of every Inception-ResNet block runs inside its
   up-projection, and the sum of every Xception block inside its last convolution or its 1×1 shortcut
   (oneDNN's binary post-op, :class:`FusedResidual`).
6. **channels_last** memory format for the weights and the input.

Outputs equal the original model's in eval mode up to float rounding (tested at 1e-4 relative for every
model). The result is eval-only: ``train()`` raises, and auxiliary heads are dropped.
"""

from __future__ import annotations

import copy
import functools

import torch
import torch.nn.functional as F
from torch import nn

from .layers import BasicConv2d, InceptionModule, ResidualInceptionBlock

__all__ = ["optimize_for_inference", "MergedInceptionModule", "DeployConv2d", "FusedResidual", "fold_batchnorm"]


def fold_batchnorm(block: BasicConv2d) -> None:
    """Fold ``block.bn`` into ``block.conv`` (the pointwise conv of a separable one), in place."""
    bn = block.bn
    if not isinstance(bn, nn.BatchNorm2d):
        return
    conv = block.conv.pointwise if hasattr(block.conv, "pointwise") else block.conv
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    folded = nn.Conv2d(
        conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
        conv.dilation, conv.groups, bias=True,
    )
    with torch.no_grad():
        folded.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))
        folded.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
    if hasattr(block.conv, "pointwise"):
        block.conv.pointwise = folded
    else:
        block.conv = folded
    block.bn = nn.Identity()


@functools.cache
def _onednn_ready() -> bool:
    """oneDNN's fused convolution is available (fixed for the process: asked once, not per convolution)."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")


@functools.cache
def _onednn_bf16_ready() -> bool:
    return _onednn_ready() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def _version(t: torch.Tensor) -> int:
    """The tensor's in-place modification counter (0 for inference-mode tensors, which cannot change)."""
    return 0 if t.is_inference() else t._version


class DeployConv2d(nn.Module):
    """A convolution, an optional residual sum and an optional ReLU, for inference:
    ``relu(conv(x) + residual)``.

    On a CPU with oneDNN it runs as one oneDNN call: the sum and the ReLU are fused into the convolution
    (post-ops) and the weight is reordered once into oneDNN's blocked layout (a plain convolution repeats
    that reorder at every call). It does so in float32, and in bfloat16 under CPU autocast to bfloat16 (or
    for bfloat16 weights and input), with a bfloat16 copy of the weight packed once instead of cast at every
    call. Elsewhere (GPU, float16, ``torch.compile``/``torch.export``/tracing, or while autograd records a
    gradient, e.g. of the input) it is ``F.conv2d``, the sum and ``F.relu``. All paths compute the same
    function. Weights are frozen (``requires_grad=False``); a deployed model cannot be ``torch.jit.script``-ed
    (trace or export it instead).

    Shapes: x as for the wrapped :class:`torch.nn.Conv2d`; ``residual``, if given, the shape of the output.
    Output dtype: as the wrapped convolution's under the same autocast state.
    """

    PACKED_SHAPES = 2
    """Input shapes whose packed weights are kept (e.g. batch 1 and batch N); older ones are repacked."""

    def __init__(self, conv: nn.Conv2d, relu: bool) -> None:
        super().__init__()
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError("DeployConv2d supports explicit zero padding only")
        self.weight = nn.Parameter(conv.weight.detach().clone(), requires_grad=False)
        self.bias = nn.Parameter(conv.bias.detach().clone(), requires_grad=False) if conv.bias is not None else None
        self.stride, self.padding, self.dilation = list(conv.stride), list(conv.padding), list(conv.dilation)
        self.groups = conv.groups
        self.relu = relu
        self._packed: dict[tuple[torch.dtype, tuple[int, ...]], tuple[torch.Tensor, torch.Tensor | None]] = {}
        self._packed_from: tuple = ()

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
            or torch.jit.is_scripting() or not _onednn_ready()
        ):
            return None
        if torch.is_autocast_enabled("cpu"):
            autocast_bf16 = torch.get_autocast_dtype("cpu") == torch.bfloat16 and x.dtype in (torch.float32, torch.bfloat16)
            return torch.bfloat16 if autocast_bf16 and _onednn_bf16_ready() else None
        if x.dtype == self.weight.dtype == torch.float32:
            return torch.float32
        if x.dtype == self.weight.dtype == torch.bfloat16 and _onednn_bf16_ready():
            return torch.bfloat16
        return None

    def _pack(self, dtype: torch.dtype, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The weight in the blocked layout oneDNN picks for this dtype and input shape, and the bias.

        oneDNN chooses the layout for the shape it is given, and a weight packed for batch 1 can run
        several times slower at batch 8 (measured: a bfloat16 1×7 convolution, 14 ms against 3 ms), so
        packs are kept per input shape: the last :attr:`PACKED_SHAPES` of them. They are dropped when the
        weight or bias changes (``load_state_dict``, an in-place edit, a new tensor): each pack records the
        storage and version counter of the tensors it was made from.
        """
        source = tuple((t.data_ptr(), _version(t)) for t in (self.weight, self.bias) if t is not None)
        if self._packed_from != source:
            self._packed, self._packed_from = {}, source
        key = (dtype, tuple(x.shape))
        packed = self._packed.pop(key, None)
        if packed is None:
            weight = torch._C._nn.mkldnn_reorder_conv2d_weight(
                self.weight.to(dtype).to_mkldnn(), self.padding, self.stride, self.dilation, self.groups, list(x.shape)
            )
            packed = (weight, None if self.bias is None else self.bias.to(dtype))
            while len(self._packed) >= self.PACKED_SHAPES:
                self._packed.pop(next(iter(self._packed)), None)  # the least recently used
        self._packed[key] = packed  # (re)inserted last: most recently used
        return packed

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        dtype = self._onednn_dtype(x, residual)
        if dtype is not None:
            weight, bias = self._pack(dtype, x)
            x = x.to(dtype)
            if residual is None:
                return torch.ops.mkldnn._convolution_pointwise(
                    x, weight, bias, self.padding, self.stride, self.dilation, self.groups,
                    "relu" if self.relu else "none", [], "",
                )
            layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
            return torch.ops.mkldnn._convolution_pointwise.binary(
                x, residual.to(dtype).contiguous(memory_format=layout), weight, bias, self.padding, self.stride,
                self.dilation, self.groups, "add", None, "relu" if self.relu else None, [], "",
            )
        y = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        if residual is not None:
            y = y + residual
        return F.relu(y) if self.relu else y

    def _apply(self, fn, recurse=True):
        self._packed, self._packed_from = {}, ()  # weights moved or converted: pack again on the next call
        return super()._apply(fn, recurse)

    def __getstate__(self):  # copies and pickles carry the plain weight only
        state = self.__dict__.copy()
        state["_packed"], state["_packed_from"] = {}, ()
        return state

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


def _deploy_conv(block: BasicConv2d) -> nn.Module:
    """A BN-folded :class:`BasicConv2d` as deploy convolutions (a separable one as two)."""
    relu = isinstance(block.act, nn.ReLU)
    if hasattr(block.conv, "pointwise"):
        return nn.Sequential(DeployConv2d(block.conv.depthwise, False), DeployConv2d(block.conv.pointwise, relu))
    return DeployConv2d(block.conv, relu)


def _is_pointwise(module: nn.Module) -> bool:
    conv = getattr(module, "conv", None)
    return (
        isinstance(module, BasicConv2d) and isinstance(conv, nn.Conv2d) and isinstance(module.bn, nn.Identity)
        and conv.kernel_size == (1, 1) and conv.stride == (1, 1) and conv.padding == (0, 0) and conv.groups == 1
        and isinstance(module.act, nn.ReLU)
    )


def _branch_kind(branch: nn.Sequential) -> str:
    layers = list(branch)
    if layers and _is_pointwise(layers[0]):
        return "direct"
    if (
        len(layers) >= 2 and isinstance(layers[0], nn.AvgPool2d) and layers[0].stride in (1, (1, 1))
        and _is_pointwise(layers[1])
    ):
        return "pooled"
    return "other"


class MergedInceptionModule(nn.Module):
    """An :class:`~inception_zoo.layers.InceptionModule` (BatchNorms folded) whose leading 1×1
    convolutions run as one convolution, split afterwards. Branch kinds:

    * ``direct``: starts with a 1×1 conv + ReLU; all of these run as one convolution (ReLU fused), and
      each slice of its output continues through the rest of its branch.
    * ``pooled``: average pool then 1×1 conv + ReLU; projected first (without bias), then pooled, then
      the bias added and the ReLU applied.
    * ``other``: run as in the original module (max-pool branches, branches starting with a k×k conv).

    Shapes: as the original module.
    """

    def __init__(self, module: InceptionModule) -> None:
        super().__init__()
        kinds = [_branch_kind(b) for b in module.branches]
        direct = [b for b, k in zip(module.branches, kinds) if k == "direct"]
        pooled = [b for b, k in zip(module.branches, kinds) if k == "pooled"]
        self.direct = self._merge([b[0] for b in direct], relu=True)
        self.pooled = self._merge([b[1] for b in pooled], relu=False, bias=False) if pooled else None
        self.direct_widths = [b[0].conv.out_channels for b in direct]
        self.pooled_widths = [b[1].conv.out_channels for b in pooled]
        self.pools = nn.ModuleList(b[0] for b in pooled)
        self.pool_biases = nn.ParameterList(
            nn.Parameter(b[1].conv.bias.detach().reshape(1, -1, 1, 1).clone(), requires_grad=False) for b in pooled
        )
        self.slots: list[tuple[str, int]] = []
        self.rests = nn.ModuleList()
        counters = {"direct": 0, "pooled": 0, "other": 0}
        for branch, kind in zip(module.branches, kinds):
            self.slots.append((kind, counters[kind]))
            counters[kind] += 1
            skip = {"direct": 1, "pooled": 2, "other": 0}[kind]
            self.rests.append(nn.Sequential(*list(branch)[skip:]))
        self.out_channels = module.out_channels

    @staticmethod
    def _merge(heads: list[BasicConv2d], *, relu: bool, bias: bool = True) -> DeployConv2d:
        """One 1×1 convolution computing the given 1×1 convolutions side by side."""
        merged = nn.Conv2d(heads[0].conv.in_channels, sum(h.conv.out_channels for h in heads), 1, bias=bias)
        with torch.no_grad():
            merged.weight.copy_(torch.cat([h.conv.weight for h in heads]))
            if bias:
                merged.bias.copy_(torch.cat([h.conv.bias for h in heads]))
        return DeployConv2d(merged, relu)

    @staticmethod
    def can_merge(module: InceptionModule) -> bool:
        """True when at least two branches start with a 1×1 convolution of the input (BN folded)."""
        kinds = [_branch_kind(b) for b in module.branches]
        return kinds.count("direct") >= 2 or (kinds.count("direct") >= 1 and kinds.count("pooled") >= 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        direct = torch.split(self.direct(x), self.direct_widths, dim=1)
        pooled = torch.split(self.pooled(x), self.pooled_widths, dim=1) if self.pooled is not None else ()
        outs = []
        for (kind, j), rest in zip(self.slots, self.rests):
            if kind == "direct":
                outs.append(rest(direct[j]))
            elif kind == "pooled":
                pooled_j = self.pools[j](pooled[j])
                outs.append(rest(F.relu(pooled_j + self.pool_biases[j].to(pooled_j.dtype))))
            else:
                outs.append(rest(x))
        return torch.cat(outs, dim=1)


def _fold_residual_scale(block: ResidualInceptionBlock) -> None:
    conv = block.up.conv
    with torch.no_grad():
        conv.weight.mul_(block.scale)
        conv.bias.mul_(block.scale)
    block.scale = 1.0


def _merge_modules(parent: nn.Module) -> None:
    for name, child in list(parent.named_children()):
        _merge_modules(child)
        if isinstance(child, InceptionModule) and MergedInceptionModule.can_merge(child):
            setattr(parent, name, MergedInceptionModule(child))


def _replace_convs(parent: nn.Module) -> None:
    for name, child in list(parent.named_children()):
        if isinstance(child, BasicConv2d):
            setattr(parent, name, _deploy_conv(child))
        else:
            _replace_convs(child)


def _fused_residual(block: nn.Module) -> FusedResidual | None:
    """The fused form of a residual block whose convolutions are already :class:`DeployConv2d`."""
    from .models.xception import XceptionBlock

    if isinstance(block, ResidualInceptionBlock) and isinstance(block.up, DeployConv2d) and block.scale == 1.0:
        block.up.relu = isinstance(block.act, nn.ReLU)
        return FusedResidual(block.branches, block.up, on_shortcut=False)
    if isinstance(block, XceptionBlock):
        if isinstance(block.shortcut, DeployConv2d):
            return FusedResidual(block.rep, block.shortcut, on_shortcut=True)
        last = block.rep[-1]  # identity shortcut: the last separable convolution, (depthwise, pointwise)
        if isinstance(block.shortcut, nn.Identity) and isinstance(last, nn.Sequential) and isinstance(last[-1], DeployConv2d):
            body = nn.Sequential(*list(block.rep)[:-1], *list(last)[:-1])
            return FusedResidual(body, last[-1], on_shortcut=False)
    return None


def _fuse_residuals(parent: nn.Module) -> None:
    for name, child in list(parent.named_children()):
        _fuse_residuals(child)
        fused = _fused_residual(child)
        if fused is not None:
            setattr(parent, name, fused)


def optimize_for_inference(model: nn.Module) -> nn.Module:
    """An equivalent eval-only copy of ``model`` for deployment (see the module docstring).

    Input (B, in_chans, H, W) in any memory format; output as the original model's in eval mode.

    Raises:
        TypeError: if ``model`` is not an inception_zoo classifier (nor for a ``features_only`` extractor:
            deploy the classifier and call its ``forward_features``).
    """
    from .features import FeatureExtractor
    from .models.base import InceptionNet

    if isinstance(model, FeatureExtractor):
        raise TypeError("optimize_for_inference expects an inception_zoo classifier; features_only extractors "
                        "are not supported (deploy the classifier and call forward_features on it)")
    if not isinstance(model, InceptionNet):
        raise TypeError(f"optimize_for_inference expects an inception_zoo model, got {type(model).__name__}")
    deployed = copy.deepcopy(model).eval()
    deployed.aux_heads = nn.ModuleList()
    deployed.aux_taps = []
    deployed.aux_logits = False
    for m in deployed.modules():
        if isinstance(m, BasicConv2d):
            fold_batchnorm(m)
    for m in deployed.modules():
        if isinstance(m, ResidualInceptionBlock):
            _fold_residual_scale(m)
    _merge_modules(deployed.features)
    _replace_convs(deployed)
    _fuse_residuals(deployed.features)
    deployed.to(memory_format=torch.channels_last)
    deployed.requires_grad_(False)
    deployed.deployed = True
    return deployed
