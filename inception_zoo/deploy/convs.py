"""The deploy-mode convolution: BatchNorm folded, ReLU and residual sum fused, weights packed for oneDNN."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.graph import increment_version

from ..layers import BasicConv2d, SeparableConv2d
from .. import _onednn

__all__ = ["DeployConv2d", "FrozenWeight", "FusedResidual", "fold_batchnorm", "deploy_conv"]


def fold_batchnorm(block: BasicConv2d) -> None:
    """Fold ``block.bn`` into ``block.conv`` (the pointwise conv of a separable one), in place:
    ``W' = W·γ/σ``, ``b' = (b - μ)·γ/σ + β`` with σ = sqrt(running_var + eps)."""
    bn = block.bn
    if not isinstance(bn, nn.BatchNorm2d):
        return
    separable = isinstance(block.conv, SeparableConv2d)
    conv = block.conv.pointwise if separable else block.conv
    # computed in float64 and stored in the weights' dtype (a float16 / bfloat16 model folds as exactly)
    scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
    folded = nn.Conv2d(
        conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
        conv.dilation, conv.groups, bias=True, device=conv.weight.device, dtype=conv.weight.dtype,
    )
    with torch.no_grad():
        folded.weight.copy_(conv.weight.double() * scale.reshape(-1, 1, 1, 1))
        folded.bias.copy_((bias - bn.running_mean.double()) * scale + bn.bias.double())
    if separable:
        block.conv.pointwise = folded
    else:
        block.conv = folded
    block.bn = nn.Identity()


class FrozenWeight(nn.Parameter):
    """A deploy-mode weight whose every in-place change is visible to :class:`DeployConv2d`'s pack cache.

    PyTorch counts in-place changes of a tensor (its version counter), but two ways around that counter
    are common: ``weight.data`` (a view with a counter of its own) and a NumPy view. Here ``.data`` is a
    view that shares the weight's counter (``detach()``: an edit through it, now or later, is counted;
    assigning ``.data`` counts as a change too), and ``.numpy()`` / ``np.asarray`` give read-only arrays
    (an edit there raises instead of going unseen). Otherwise a plain frozen ``nn.Parameter``.
    """

    @property
    def data(self) -> torch.Tensor:
        return self.detach()

    @data.setter
    def data(self, value: torch.Tensor) -> None:
        nn.Parameter.data.__set__(self, value)
        increment_version(self)

    def numpy(self, *, force: bool = False):
        array = self.detach().cpu().numpy(force=force)
        array.flags.writeable = False
        return array

    def __array__(self, dtype=None, copy=None):
        array = self.numpy()
        if copy:
            return array.astype(dtype or array.dtype, copy=True)
        return array if dtype is None else array.astype(dtype, copy=False)


def _frozen(t: torch.Tensor | None) -> FrozenWeight | None:
    """``t`` as a :class:`FrozenWeight` that is not an inference tensor (an inference tensor has no
    version counter: it is copied out once, which lets every later change be counted)."""
    if t is None or (type(t) is FrozenWeight and not t.is_inference()):
        return t
    with torch.inference_mode(False):
        data = t.detach().clone() if t.is_inference() else t.detach()
        return FrozenWeight(data, requires_grad=False)


def _source(t: torch.Tensor | None):
    """What a pack made from ``t`` depends on: its storage and version counter; None when a change could
    go unseen (a tensor that is not a :class:`FrozenWeight`, or an inference tensor): then no pack is kept."""
    if t is None:
        return ()
    if type(t) is not FrozenWeight or t.is_inference():
        return None
    return (t.data_ptr(), t._version)


class _Packs(NamedTuple):
    source: tuple  # the weight's and bias's (storage, version) when packed
    table: dict  # (dtype, input shape) -> (packed weight, bias), least recently used first


class DeployConv2d(nn.Module):
    """A convolution, an optional residual sum and an optional ReLU, for inference:
    ``relu(conv(x) + residual)``.

    On a CPU with oneDNN it runs as one oneDNN call: the sum and the ReLU are fused into the convolution
    (post-ops) and the weight is reordered once into oneDNN's blocked layout (a plain convolution repeats
    that reorder at every call). It does so in float32, and in bfloat16 under CPU autocast to bfloat16 (or
    for bfloat16 weights and input), with a bfloat16 copy of the weight packed once instead of cast at every
    call. Elsewhere (GPU, float16, ``torch.compile``/``torch.export``/tracing, or while autograd records a
    gradient, e.g. of the input) it is ``F.conv2d``, the sum and ``F.relu``. All paths compute the same
    function. Weights are frozen (``requires_grad=False``, :class:`FrozenWeight`); any change to them is seen
    by the next call (see :meth:`_pack`), and one instance can serve calls from many threads at once. A
    deployed model cannot be ``torch.jit.script``-ed (trace or export it instead).

    Shapes: x as for the wrapped :class:`torch.nn.Conv2d`; ``residual``, if given, the shape of the output.
    Output dtype: as the wrapped convolution's under the same autocast state.
    """

    PACKED_SHAPES = 2
    """Input shapes whose packed weights are kept (e.g. batch 1 and batch N); older ones are repacked."""

    def __init__(self, conv: nn.Conv2d, relu: bool) -> None:
        super().__init__()
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError("DeployConv2d supports explicit zero padding only")
        with torch.inference_mode(False):
            self.weight = _frozen(conv.weight.detach().clone())
            self.bias = _frozen(conv.bias.detach().clone()) if conv.bias is not None else None
        self.stride, self.padding, self.dilation = list(conv.stride), list(conv.padding), list(conv.dilation)
        self.groups = conv.groups
        self.relu = relu
        self._packs = _Packs((), {})

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

    def _pack(self, dtype: torch.dtype, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The weight in the blocked layout oneDNN picks for this dtype and input shape, and the bias.

        oneDNN chooses the layout for the shape it is given, and a weight packed for batch 1 can run
        several times slower at batch 8 (measured: a bfloat16 1×7 convolution, 14 ms against 3 ms), so
        packs are kept per input shape: the :attr:`PACKED_SHAPES` most recently used.

        Packs are a cache of the weight and bias, valid while those are unchanged: each set of packs
        records the storage and version counter of the tensors it was made from, and any change
        (``load_state_dict`` in any grad mode, an in-place edit, ``.data``, a new tensor) drops it. Weights
        whose changes cannot be counted (one replaced by a plain tensor) are packed at every call instead.

        Thread-safe without a lock: the set of packs is never changed in place, only replaced by a new one
        (two threads that miss at once both pack; one result is kept).
        """
        source = (_source(self.weight), _source(self.bias))
        key = (dtype, tuple(x.shape))
        packs = self._packs
        table = packs.table if packs.source == source else {}
        packed = table.get(key)
        if packed is None:
            weight = _onednn.pack_weight(self.weight.to(dtype), self.padding, self.stride, self.dilation, self.groups,
                                         x.shape)
            packed = (weight, None if self.bias is None else self.bias.to(dtype))
        if None in source:  # untracked weights: nothing is kept
            return packed
        if next(reversed(table), None) != key:  # the most recently used goes last; the oldest are dropped
            kept = [(k, v) for k, v in table.items() if k != key][-(self.PACKED_SHAPES - 1):]
            self._packs = _Packs(source, dict([*kept, (key, packed)]))
        return packed

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        dtype = self._onednn_dtype(x, residual)
        if dtype is not None:
            weight, bias = self._pack(dtype, x)
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

    def _refreeze(self) -> None:
        """Weights put in by ``load_state_dict(assign=True)``, ``.to()`` or unpickling as FrozenWeights."""
        self.weight = _frozen(self.weight)
        if self.bias is not None:
            self.bias = _frozen(self.bias)
        self._packs = _Packs((), {})

    def _apply(self, fn, recurse=True):
        with torch.inference_mode(False):  # converted weights stay countable even under inference_mode
            result = super()._apply(fn, recurse)
        self._refreeze()
        return result

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._refreeze()

    def __getstate__(self):  # copies and pickles carry the plain weight only
        state = self.__dict__.copy()
        state["_packs"] = _Packs((), {})
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._refreeze()

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
    """A BN-folded :class:`BasicConv2d` as deploy convolutions (a separable one as two)."""
    relu = isinstance(block.act, nn.ReLU)
    if isinstance(block.conv, SeparableConv2d):
        return nn.Sequential(DeployConv2d(block.conv.depthwise, False), DeployConv2d(block.conv.pointwise, relu))
    return DeployConv2d(block.conv, relu)
