"""The model class every family builds: named stages, a classifier head, optional auxiliary heads."""

from typing import Any, NamedTuple

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..layers import BasicConv2d, ClassifierHead, build_stages
from ..records import ModelRecord

__all__ = ["InceptionNet", "InceptionOutputs", "check_input", "init_weights"]


class InceptionOutputs(NamedTuple):
    """What a model returns in train mode when built with ``aux_logits=True``.

    Attributes:
        logits: (B, num_classes) from the main head.
        aux: one (B, num_classes) tensor per auxiliary head, ordered from the shallowest head to the deepest.
    """

    logits: torch.Tensor
    aux: tuple[torch.Tensor, ...]


def init_weights(model: nn.Module) -> None:
    """He-normal convolutions with zero bias, fresh BatchNorm, small-normal linear layers with zero bias.

    Convolutions that a BatchNorm follows use fan-out (the BatchNorm sets the scale); those without one
    (GoogLeNet as published, the linear up-projections of Inception-ResNet) use fan-in, which keeps the
    activations' variance from layer to layer so that a network without BatchNorm starts trainable.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            m.reset_parameters()  # unit scale, zero shift, fresh running statistics
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.01)
            nn.init.zeros_(m.bias)
    for m in model.modules():
        if isinstance(m, BasicConv2d) and isinstance(m.bn, nn.Identity):
            for conv in m.conv.modules():
                if isinstance(conv, nn.Conv2d):
                    nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")


class InceptionNet(nn.Module):
    """An image classifier built from a :class:`~inception_zoo.records.ModelRecord`: the generic
    builder of every model in the zoo.

    Args:
        record: the model's record (layout, conv options, input configuration, auxiliary heads).
        num_classes: classifier outputs (0: the head returns pooled features); None: the record's.
        in_chans: input channels.
        drop_rate: dropout before the main classifier; None: the paper's (the record's). Auxiliary heads
            keep their papers' dropout.
        aux_logits: build the auxiliary heads and return :class:`InceptionOutputs` in train mode.
        global_pool: the head's pooling, one of "avg", "max", "avgmax", "catavgmax", "" (see
            :class:`~inception_zoo.layers.GlobalPool`).

    The stages of ``record.layout`` are the children of ``self.features`` (``features.Mixed_5b``). The timm
    model surface: ``forward_features``, ``forward_head(pre_logits=)``, ``get_classifier``,
    ``reset_classifier``, ``set_grad_checkpointing``, ``default_cfg``, ``feature_taps``; feature maps at
    reductions 2-32 through ``create_model(name, features_only=True)``.

    Forward: (B, in_chans, H, W) float -> (B, num_classes) logits in eval mode or without auxiliary heads;
    :class:`InceptionOutputs` in train mode with ``aux_logits=True``.

    Raises:
        ValueError: at construction, for ``num_classes < 0``, ``in_chans < 1``, a ``drop_rate`` outside
            [0, 1), a non-bool ``aux_logits``, or ``aux_logits=True`` on an architecture without auxiliary
            heads or with ``num_classes=0``; in forward, for an input that is not a floating-point
            (B, in_chans, H, W) tensor of the weights' dtype (autocast aside) with H and W at least
            ``default_cfg["min_input_size"]``, and for a batch of 1 in train mode when the model has
            BatchNorm.
    """

    def __init__(
        self,
        record: ModelRecord,
        *,
        num_classes: int | None = None,
        in_chans: int = 3,
        drop_rate: float | None = None,
        aux_logits: bool = False,
        global_pool: str = "avg",
    ) -> None:
        super().__init__()
        name = record.name
        num_classes = record.num_classes if num_classes is None else num_classes
        drop_rate = record.drop_rate if drop_rate is None else drop_rate
        _check_int("num_classes", num_classes, minimum=0, name=name)
        _check_int("in_chans", in_chans, minimum=1, name=name)
        if not isinstance(drop_rate, (int, float)) or isinstance(drop_rate, bool) or not 0.0 <= drop_rate < 1.0:
            raise ValueError(f"{name}: drop_rate must be a number in [0, 1), got {drop_rate!r}")
        if not isinstance(aux_logits, bool):
            raise ValueError(f"{name}: aux_logits must be True or False, got {aux_logits!r}")
        if aux_logits and not record.aux_heads:
            raise ValueError(f"{name} has no auxiliary classifiers; aux_logits=True is not available for it")
        if aux_logits and num_classes == 0:
            raise ValueError(f"{name}: aux_logits=True needs num_classes > 0")

        self.name = name
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = float(drop_rate)
        conv_layer = record.conv_layer()
        self.features, self.stage_info = build_stages(in_chans, record.layout, conv_layer)
        self.num_features = self.stage_info[-1].channels
        self.head = ClassifierHead(self.num_features, num_classes, pool=global_pool, drop_rate=self.drop_rate)
        self.grad_checkpointing = False

        self.aux_logits = bool(aux_logits)
        self.aux_heads = nn.ModuleList()
        self.aux_taps: list[int] = []
        if aux_logits:
            names = [s.name for s in self.stage_info]
            for spec in record.aux_heads:
                idx = names.index(spec.tap)
                self.aux_heads.append(spec.build(self.stage_info[idx].channels, num_classes, conv_layer))
                self.aux_taps.append(idx)

        init_weights(self)
        first_conv = next(n for n, m in self.named_modules() if isinstance(m, nn.Conv2d))
        cfg = record.default_cfg()
        self.default_cfg = dict(
            cfg,
            num_classes=num_classes,
            first_conv=first_conv,
            classifier="head.fc",
            input_size=(in_chans, *record.input_size[1:]),
            min_input_size=(in_chans, *record.min_input_size[1:]),
        )
        self.set_input_cfg(mean=cfg["mean"], std=cfg["std"])
        self.pretrained_cfg = self.default_cfg  # the name timm's data helpers read; the same dict
        self._min_size = tuple(record.min_input_size[1:])
        self._has_bn = any(isinstance(m, nn.BatchNorm2d) for m in self.modules())
        # An empty buffer that follows .half() / .to(dtype): the weights' dtype, readable when scripted too.
        self.register_buffer("_dtype_probe", torch.zeros(0), persistent=False)

    @torch.jit.ignore
    def set_input_cfg(self, **cfg: Any) -> None:
        """Update ``default_cfg`` (e.g. with the preprocessing some weights expect); RGB ``mean`` / ``std``
        are adapted to ``in_chans`` as timm does (one channel: their average; more: the average repeated)."""
        for key in ("mean", "std", "input_size"):
            value = cfg.get(key)
            if value is None:
                continue
            if key == "input_size":
                cfg[key] = (self.in_chans, *value[1:])
            elif self.in_chans != len(value):
                cfg[key] = (sum(value) / len(value),) * self.in_chans
        self.default_cfg.update(cfg)

    @torch.jit.ignore
    def _check_input(self, x: torch.Tensor) -> None:
        check_input(x, self)

    # ----------------------------------------------------------------------------------- the timm surface
    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        """The final linear layer (``nn.Identity`` when ``num_classes == 0``)."""
        return self.head.fc

    @torch.jit.ignore
    def reset_classifier(self, num_classes: int, global_pool: str = "avg") -> None:
        """Replace the classifier (and the auxiliary heads' classifiers) for ``num_classes`` outputs.

        ``num_classes=0`` makes the model return pooled features (B, num_features · feat_mult) and drops the
        auxiliary heads; ``global_pool`` is one of "avg", "max", "avgmax", "catavgmax" (twice the
        features), or "" (no pooling: the model returns the feature map; needs ``num_classes=0``).

        Raises:
            ValueError: ``num_classes`` not an integer >= 0, or an unknown ``global_pool`` (naming the
                allowed values).
        """
        _check_int("num_classes", num_classes, minimum=0, name=self.name)
        ref = next(self.parameters())
        head = ClassifierHead(self.num_features, num_classes, pool=global_pool, drop_rate=self.drop_rate)
        init_weights(head)
        self.head = head.to(device=ref.device, dtype=ref.dtype).train(self.training)
        if num_classes == 0:
            self.aux_heads, self.aux_taps, self.aux_logits = nn.ModuleList(), [], False
        for aux in self.aux_heads:
            fc = nn.Linear(aux.head.fc.in_features, num_classes)
            init_weights(fc)
            aux.head.fc = fc.to(device=ref.device, dtype=ref.dtype)
        self.num_classes = num_classes
        self.default_cfg["num_classes"] = num_classes

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each stage's activations in the backward pass instead of storing them (train mode
        with gradients): less activation memory for about one more forward pass of compute. BatchNorm
        running statistics are then updated twice per step (once more during recomputation)."""
        self.grad_checkpointing = bool(enable)

    def feature_taps(self) -> list[int]:
        """Indices into ``features`` of the last stage at each reduction (input size / map size) the
        network has: 2, 4, 8, 16, 32 for the ImageNet layouts; fewer for the CIFAR ones (1, 2, 4 for
        inception_v1_cifar, whose stem keeps the 32×32 grid)."""
        last: dict[int, int] = {}
        for i, s in enumerate(self.stage_info):
            last[s.reduction] = i
        return [last[r] for r in sorted(last)]

    def _run_stages(self, x: torch.Tensor) -> torch.Tensor:
        if self.grad_checkpointing and self.training and torch.is_grad_enabled() and not torch.jit.is_scripting():
            return self._checkpointed(x)
        return self.features(x)

    @torch.jit.ignore
    def _checkpointed(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.features:
            x = checkpoint(stage, x, use_reentrant=False)
        return x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_chans, H, W) -> the last feature map (B, num_features, H/32, W/32 roughly), unpooled."""
        self._check_input(x)
        return self._run_stages(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Feature map -> logits (B, num_classes), or the pooled features (B, num_features) if pre_logits."""
        return self.head(x, pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.aux_logits and not torch.jit.is_scripting():
            return self._forward_with_aux(x)
        return self.forward_head(self.forward_features(x))

    @torch.jit.unused
    def _forward_with_aux(self, x: torch.Tensor) -> torch.Tensor:
        # Returns InceptionOutputs; annotated as a tensor for TorchScript, which never runs this path.
        self._check_input(x)
        aux: list[torch.Tensor] = []
        for i, stage in enumerate(self.features):
            x = checkpoint(stage, x, use_reentrant=False) if self.grad_checkpointing and torch.is_grad_enabled() else stage(x)
            aux += [head(x) for tap, head in zip(self.aux_taps, self.aux_heads) if tap == i]
        return InceptionOutputs(self.forward_head(x), tuple(aux))  # type: ignore[return-value]


def check_input(x: torch.Tensor, model: nn.Module) -> None:
    """Raise a ValueError naming what ``model`` expects unless ``x`` is a floating-point (B, in_chans, H, W)
    tensor of the weights' dtype (autocast aside) with H, W at least the minimum input size, and, in train
    mode with BatchNorm, a batch of at least 2. ``model`` provides ``name``, ``in_chans``, ``_min_size``,
    ``_has_bn`` and the ``_dtype_probe`` buffer."""
    name = model.name
    min_h, min_w = model._min_size
    expected = f"a (B, {model.in_chans}, H, W) tensor with H >= {min_h} and W >= {min_w}"
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} expects {expected}, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"{name} expects {expected}, got a {x.dim()}-D tensor of shape {tuple(x.shape)}")
    if x.shape[1] != model.in_chans:
        raise ValueError(f"{name} expects {expected}, got a tensor of shape {tuple(x.shape)}")
    if x.shape[2] < min_h or x.shape[3] < min_w:
        raise ValueError(f"{name} expects {expected} (its minimum input size), got {x.shape[2]}x{x.shape[3]}")
    if not x.is_floating_point():
        raise ValueError(
            f"{name} expects a floating-point tensor (images scaled to [0, 1] and normalized with "
            f"default_cfg mean/std), got {x.dtype}"
        )
    dtype = model._dtype_probe.dtype
    if x.dtype != dtype and not torch.is_autocast_enabled(x.device.type):
        raise ValueError(f"{name} has {dtype} weights and got a {x.dtype} input; convert one to the other")
    if model.training and model._has_bn and x.shape[0] == 1:
        raise ValueError(
            f"{name} in train mode needs a batch of at least 2 (its BatchNorm layers normalize over the batch); "
            "got 1. Use model.eval() for single images."
        )


def _check_int(what: str, value: Any, *, minimum: int, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name}: {what} must be an integer >= {minimum}, got {value!r}")
