"""The model class every family builds: named stages, a classifier head, optional auxiliary heads."""

import numbers
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..layers import BasicConv2d, ClassifierHead, EmbeddingHead, build_stages
from ..records import ModelRecord
from .checks import InputChecks
from .intermediates import IntermediatesMixin

__all__ = ["InceptionNet", "InceptionOutputs", "init_weights"]


class InceptionOutputs(NamedTuple):
    """What a model returns in train mode when built with ``aux_logits=True``.

    Attributes:
        logits: (B, num_classes) from the main head.
        aux: one (B, num_classes) tensor per auxiliary head, ordered from the shallowest head to the deepest.
    """

    logits: torch.Tensor
    aux: tuple[torch.Tensor, ...]


def init_weights(model: nn.Module) -> None:
    """He-normal convolutions with zero bias, fresh BatchNorm (2-D, and the 1-D of an embedding head),
    small-normal linear layers with zero bias (where they have one).

    Convolutions that a BatchNorm follows use fan-out (the BatchNorm sets the scale); those without one
    (GoogLeNet as published, the linear up-projections of Inception-ResNet) use fan-in, which keeps the
    activations' variance from layer to layer so that a network without BatchNorm starts trainable.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.reset_parameters()  # unit scale, zero shift, fresh running statistics
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    for m in model.modules():
        if isinstance(m, BasicConv2d) and isinstance(m.bn, nn.Identity):
            for conv in m.conv.modules():
                if isinstance(conv, nn.Conv2d):
                    nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")


class InceptionNet(IntermediatesMixin, InputChecks):
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
        output_stride: the reduction of the last feature map: 32 (the network as published), or 16 or 8
            for dense prediction (segmentation, detection) where the record allows it
            (``ModelRecord.output_strides``): the stride-2 stages past that reduction run at stride 1 and
            the stages after them dilated (DeepLab, arXiv 1706.05587, Section 3.1), with every convolution
            and pooling padded "same" (see :func:`~inception_zoo.layers.dense_layout`), so the last map is
            ceil(H / output_stride) × ceil(W / output_stride), and each ``features_only`` map at reduction
            r is ceil(H / r) × ceil(W / r). The parameters (and so every checkpoint) are the same.

    The stages of ``record.layout`` are the children of ``self.features`` (``features.Mixed_5b``). The head
    is a :class:`~inception_zoo.layers.ClassifierHead`, or for a record with ``embedding`` an
    :class:`~inception_zoo.layers.EmbeddingHead` (``forward_head(pre_logits=True)`` and ``num_classes=0``
    give the L2-normalized embedding). ``num_features``: channels of the last feature map;
    ``head_hidden_size``: width of ``forward_head(pre_logits=True)`` (timm's names). The timm
    model surface: ``forward_features``, ``forward_head(pre_logits=)``, ``get_classifier``,
    ``reset_classifier``, ``set_grad_checkpointing``, ``default_cfg``, ``feature_taps``; feature maps at
    reductions 2-32 through ``create_model(name, features_only=True)``.

    Forward: (B, in_chans, H, W) float -> (B, num_classes) logits in eval mode or without auxiliary heads;
    :class:`InceptionOutputs` in train mode with ``aux_logits=True``.

    timm's ``forward_intermediates`` and ``prune_intermediate_layers`` (eager-only) come from
    :class:`~inception_zoo.models.intermediates.IntermediatesMixin`, over the ``feature_taps()`` maps.

    TorchScript: ``torch.jit.script(model)`` compiles forward with its input check, and the scripted model
    saves with ``torch.jit.save`` and loads with ``torch.jit.load`` without this package. Scripted, forward
    always returns the logits (auxiliary heads and gradient checkpointing are eager-only), and the input
    errors below are ``torch.jit.Error`` with the same message.

    Raises:
        ValueError: at construction, for ``num_classes < 0``, ``in_chans < 1``, a ``drop_rate`` outside
            [0, 1), a non-bool ``aux_logits``, ``aux_logits=True`` on an architecture without auxiliary
            heads, with ``num_classes=0`` or with ``output_stride`` below 32, or an ``output_stride`` the
            record does not allow (the message lists the allowed ones); in forward, for an input that is not a floating-point
            (B, in_chans, H, W) tensor of the weights' dtype (autocast aside) with H and W at least
            ``default_cfg["min_input_size"]``, and for a batch of 1 in train mode while some BatchNorm
            normalizes over the batch (one in train mode, or without running statistics; see
            :func:`normalizes_over_batch`): BatchNorm layers in eval mode or replaced by
            ``FrozenBatchNorm2d`` let a single image through.
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
        output_stride: int = 32,
    ) -> None:
        super().__init__()
        name = record.name
        num_classes = record.num_classes if num_classes is None else num_classes
        drop_rate = record.drop_rate if drop_rate is None else drop_rate
        _check_int("num_classes", num_classes, minimum=0, name=name)
        _check_int("in_chans", in_chans, minimum=1, name=name)
        if (
            not isinstance(drop_rate, (int, float))
            or isinstance(drop_rate, bool)
            or not 0.0 <= drop_rate < 1.0
        ):
            raise ValueError(f"{name}: drop_rate must be a number in [0, 1), got {drop_rate!r}")
        if not isinstance(aux_logits, bool):
            raise ValueError(f"{name}: aux_logits must be True or False, got {aux_logits!r}")  # noqa: TRY004
        if aux_logits and not record.aux_heads:
            raise ValueError(f"{name} has no auxiliary classifiers; aux_logits=True is not available for it")
        if aux_logits and num_classes == 0:
            raise ValueError(f"{name}: aux_logits=True needs num_classes > 0")
        integral = isinstance(output_stride, numbers.Integral) and not isinstance(output_stride, bool)
        if not integral or output_stride not in record.output_strides:  # 16.0, True, "16" refused
            raise ValueError(f"{name}: output_stride must be one of {record.output_strides}, got {output_stride!r}")
        output_stride = int(output_stride)  # a NumPy integer stored as int
        if aux_logits and output_stride != 32:
            raise ValueError(f"{name}: the auxiliary heads are for classification training at output_stride 32; "
                             f"aux_logits=True cannot be combined with output_stride={output_stride}")

        self.name = name
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = float(drop_rate)
        self.output_stride = output_stride
        conv_layer = record.conv_layer()
        self.features, self.stage_info = build_stages(
            in_chans, record.layout, conv_layer, output_stride=None if output_stride == 32 else output_stride
        )
        self.num_features = self.stage_info[-1].channels
        self._embedding = record.embedding
        self.head = self._new_head(num_classes, global_pool)
        self.head_hidden_size = self.head.num_features
        self.grad_checkpointing = False
        self._tap_names: list[str] = list(record.feature_taps)

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
    def _new_head(self, num_classes: int, global_pool: str) -> nn.Module:
        """The record's main head: an :class:`~inception_zoo.layers.EmbeddingHead` for an embedding record,
        else a :class:`~inception_zoo.layers.ClassifierHead`, at PyTorch's default init."""
        if self._embedding is not None:
            return self._embedding.build(
                self.num_features, num_classes, pool=global_pool, drop_rate=self.drop_rate
            )
        return ClassifierHead(self.num_features, num_classes, pool=global_pool, drop_rate=self.drop_rate)

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

        An embedding head (a record with ``embedding``) keeps its projection and BatchNorm, the learned
        embedding, wherever their width still fits the pooling (all but a switch to or from
        "catavgmax", which builds them anew); only the classifier is new. ``num_classes=0`` makes the model
        return the L2-normalized embedding (B, embed_dim); ``global_pool=""`` is not available there.

        Raises:
            ValueError: ``num_classes`` not an integer >= 0, or an unknown ``global_pool`` (naming the
                allowed values).
        """
        _check_int("num_classes", num_classes, minimum=0, name=self.name)
        ref = next(self.parameters())
        head, old = self._new_head(num_classes, global_pool), self.head
        init_weights(head)
        if isinstance(head, EmbeddingHead) and isinstance(old, EmbeddingHead) and (
            head.embed.in_features == old.embed.in_features
        ):
            head.embed, head.bn = old.embed, old.bn  # the learned embedding stays
        self.head = head.to(device=ref.device, dtype=ref.dtype).train(self.training)
        self.head_hidden_size = self.head.num_features
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
        """Indices into ``features`` of the stages ``features_only`` returns: those the record names
        (``ModelRecord.feature_taps``: inception_v3_fid's four FID taps), else the last stage at each
        reduction (input size / map size) the network has at output stride 32: 2, 4, 8, 16, 32 for the
        ImageNet layouts; fewer for the CIFAR ones (1, 2, 4 for inception_v1_cifar, whose stem keeps the
        32×32 grid). A smaller ``output_stride`` keeps the same stages (their reductions then stop at it,
        e.g. 2, 4, 8, 16, 16)."""
        if self._tap_names:
            names = [s.name for s in self.stage_info]
            return [names.index(t) for t in self._tap_names]
        last: dict[int, int] = {}
        for i, s in enumerate(self.stage_info):
            last[s.nominal_reduction] = i
        return [last[r] for r in sorted(last)]

    def _run_stages(self, x: torch.Tensor) -> torch.Tensor:
        if (
            self.grad_checkpointing
            and self.training
            and torch.is_grad_enabled()
            and not torch.jit.is_scripting()
        ):
            return self._checkpointed(x)
        return self.features(x)

    @torch.jit.ignore
    def _checkpointed(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.features:
            x = checkpoint(stage, x, use_reentrant=False)
        return x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_chans, H, W) -> the last feature map (B, num_features, H', W'), unpooled: about H/32 × W/32
        (the published layouts' valid paddings trim a few pixels), exactly ceil(H / output_stride) ×
        ceil(W / output_stride) with ``output_stride`` 16 or 8."""
        self._check_input(x)
        return self._run_stages(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Feature map -> logits (B, num_classes), or if pre_logits the pooled features (B, num_features)
        (an embedding head: the L2-normalized embedding, (B, head_hidden_size))."""
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
            x = (
                checkpoint(stage, x, use_reentrant=False)
                if self.grad_checkpointing and torch.is_grad_enabled()
                else stage(x)
            )
            aux += [head(x) for tap, head in zip(self.aux_taps, self.aux_heads) if tap == i]
        return InceptionOutputs(self.forward_head(x), tuple(aux))  # type: ignore[return-value]


def _check_int(what: str, value: Any, *, minimum: int, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name}: {what} must be an integer >= {minimum}, got {value!r}")
