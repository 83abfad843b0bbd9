"""The model class every family builds: named stages, a classifier head, optional auxiliary heads."""

from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.checkpoint import checkpoint

from ..layers import BasicConv2d, ClassifierHead, build_stages
from ..records import ModelRecord

__all__ = [
    "InceptionNet",
    "InceptionOutputs",
    "InputChecks",
    "check_input",
    "check_tensor",
    "init_weights",
    "normalizes_over_batch",
]


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


class InputChecks(nn.Module):
    """The input check of :class:`InceptionNet` and :class:`~inception_zoo.models.FeatureExtractor`, one
    implementation for eager mode and TorchScript (``torch.jit.script`` compiles it into the scripted
    model, which ``torch.jit.save`` then exports with the rest).

    A subclass sets ``name`` (str), ``in_chans`` (int), ``_min_size`` ((min H, min W)) and the empty
    ``_dtype_probe`` buffer (it follows ``.to(dtype)``: the weights' dtype).
    """

    def _check_input(self, x: torch.Tensor) -> None:
        """Raise a ``ValueError`` unless ``x`` is what the model takes: see :func:`check_tensor` (type,
        shape, size, dtype) and, only in train mode with a batch of 1 (the only case that looks at the
        submodules: no cost otherwise), :func:`normalizes_over_batch` (a batch of 1 needs every BatchNorm
        frozen).

        A scripted model raises ``torch.jit.Error`` whose message ends with ``"builtins.ValueError: "`` and
        the same text. Scripted, a BatchNorm is recognized by its attributes (``momentum`` and
        ``running_var``), as TorchScript has no ``isinstance`` for module classes; the submodules' modes are
        read at call time, as in eager mode (``scripted.features.<stage>.bn.eval()`` freezes one; a
        ``FrozenBatchNorm2d`` put in before scripting never counts). An ``InstanceNorm`` has the same
        attributes and would count too (the zoo has none).
        """
        check_tensor(x, self.name, self.in_chans, self._min_size, self._dtype_probe.dtype)
        if self.training and x.shape[0] == 1:  # the only case that looks at the modules
            if torch.jit.is_scripting():
                # TorchScript unrolls this loop over the submodules it compiled and has no isinstance for
                # module classes: a BatchNorm is recognized by its attributes (_BatchNorm's momentum and
                # running_var; the frozen BatchNorms of torchvision and timm have no momentum). The hasattr
                # test must be an `if` of its own: only then does TorchScript skip the body for other modules.
                found = False
                for m in self.modules():
                    if hasattr(m, "momentum") and hasattr(m, "running_var"):  # noqa: SIM102 (see above)
                        if m.training or m.running_var is None:
                            found = True
            else:
                found = normalizes_over_batch(self)
            if found:
                raise ValueError(
                    f"{self.name} in train mode needs a batch of at least 2 (its BatchNorm layers normalize "
                    "over the batch); got 1. Use model.eval() for single images, or freeze the BatchNorm "
                    "layers (eval() on each, or FrozenBatchNorm2d)."
                )


class InceptionNet(InputChecks):
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

    TorchScript: ``torch.jit.script(model)`` compiles forward with its input check, and the scripted model
    saves with ``torch.jit.save`` and loads with ``torch.jit.load`` without this package. Scripted, forward
    always returns the logits (auxiliary heads and gradient checkpointing are eager-only), and the input
    errors below are ``torch.jit.Error`` with the same message.

    Raises:
        ValueError: at construction, for ``num_classes < 0``, ``in_chans < 1``, a ``drop_rate`` outside
            [0, 1), a non-bool ``aux_logits``, or ``aux_logits=True`` on an architecture without auxiliary
            heads or with ``num_classes=0``; in forward, for an input that is not a floating-point
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

        self.name = name
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = float(drop_rate)
        conv_layer = record.conv_layer()
        self.features, self.stage_info = build_stages(in_chans, record.layout, conv_layer)
        self.num_features = self.stage_info[-1].channels
        self.head = ClassifierHead(self.num_features, num_classes, pool=global_pool, drop_rate=self.drop_rate)
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
        """Indices into ``features`` of the stages ``features_only`` returns: those the record names
        (``ModelRecord.feature_taps``: inception_v3_fid's four FID taps), else the last stage at each
        reduction (input size / map size) the network has: 2, 4, 8, 16, 32 for the ImageNet layouts; fewer
        for the CIFAR ones (1, 2, 4 for inception_v1_cifar, whose stem keeps the 32×32 grid)."""
        if self._tap_names:
            names = [s.name for s in self.stage_info]
            return [names.index(t) for t in self._tap_names]
        last: dict[int, int] = {}
        for i, s in enumerate(self.stage_info):
            last[s.reduction] = i
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
            x = (
                checkpoint(stage, x, use_reentrant=False)
                if self.grad_checkpointing and torch.is_grad_enabled()
                else stage(x)
            )
            aux += [head(x) for tap, head in zip(self.aux_taps, self.aux_heads) if tap == i]
        return InceptionOutputs(self.forward_head(x), tuple(aux))  # type: ignore[return-value]


def check_input(x: torch.Tensor, model: nn.Module) -> None:
    """Raise a ``ValueError`` naming what ``model`` expects unless ``x`` is a floating-point
    (B, in_chans, H, W) tensor of the weights' dtype (autocast aside) with H, W at least the minimum input
    size and, when ``model`` is in train mode and ``x`` is a batch of one, no layer normalizes over the
    batch (see :func:`normalizes_over_batch`).

    The check the models run in forward (:meth:`InputChecks._check_input`), for any module with the
    attributes it reads (``name``, ``in_chans``, ``_min_size``, the ``_dtype_probe`` buffer).
    """
    InputChecks._check_input(model, x)  # type: ignore[arg-type]


def normalizes_over_batch(module: nn.Module) -> bool:
    """Whether a forward of ``module`` now normalizes over the batch somewhere: a
    ``torch.nn.modules.batchnorm._BatchNorm`` (BatchNorm1d/2d/3d, SyncBatchNorm) in train mode, or one
    without running statistics (``track_running_stats=False``), which uses the batch's even in eval mode.
    BatchNorm layers put in eval mode inside a train-mode model, and frozen ones (torchvision's or timm's
    ``FrozenBatchNorm2d``), do not. Looked up at call time, so it follows ``.eval()`` on submodules and
    replaced modules: a walk over the submodules, about 0.5 ms for the largest model (inception_resnet_v2,
    1,163 modules), which the models do only in train mode with a batch of 1."""
    stack = [module]
    while stack:  # module.modules() takes twice as long (it builds every submodule's name)
        m = stack.pop()
        if m is None:  # a submodule registered as None
            continue
        if isinstance(m, _BatchNorm) and (m.training or m.running_var is None):
            return True
        stack.extend(m._modules.values())
    return False


def check_tensor(
    x: torch.Tensor, name: str, in_chans: int, min_size: tuple[int, int], dtype: torch.dtype
) -> None:
    """Raise a ``ValueError`` naming what model ``name`` expects unless ``x`` is a floating-point
    (B, in_chans, H, W) tensor of ``dtype`` (under autocast any floating dtype but float64, which autocast
    leaves as it is) with H, W at least
    ``min_size``. TorchScript-compatible: scripted, it raises ``torch.jit.Error`` with the same message
    (prefixed with ``builtins.ValueError:``); there the autocast exemption follows CUDA autocast only
    (TorchScript has no per-device autocast query)."""
    min_h, min_w = min_size
    expected = f"a (B, {in_chans}, H, W) tensor with H >= {min_h} and W >= {min_w}"
    if not isinstance(x, torch.Tensor):  # resolved at compile time when scripted (x is a Tensor there)
        raise ValueError(f"{name} expects {expected}, got {type(x).__name__}")  # noqa: TRY004 (one error type)
    if x.dim() != 4:
        raise ValueError(f"{name} expects {expected}, got a {x.dim()}-D tensor of shape {_shape(x.shape)}")
    if x.shape[1] != in_chans:
        raise ValueError(f"{name} expects {expected}, got a tensor of shape {_shape(x.shape)}")
    if x.shape[2] < min_h or x.shape[3] < min_w:
        raise ValueError(f"{name} expects {expected} (its minimum input size), got {x.shape[2]}x{x.shape[3]}")
    if not x.is_floating_point():
        raise ValueError(
            f"{name} expects a floating-point tensor (images scaled to [0, 1] and normalized with "
            f"default_cfg mean/std), got {_dtype_name(x.dtype)}"
        )
    # autocast casts float32 (and the low precisions) to its dtype, but never float64
    if x.dtype != dtype and (x.dtype == torch.float64 or not _autocast_enabled(x.device.type)):
        raise ValueError(
            f"{name} has {_dtype_name(dtype)} weights and got a {_dtype_name(x.dtype)} input; "
            "convert one to the other"
        )


def _shape(shape: list[int]) -> str:
    """``str(tuple(shape))``, in TorchScript too (where a shape is a list)."""
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "(" + ", ".join([str(s) for s in shape]) + ")"


def _dtype_name(dtype: torch.dtype) -> str:
    """``str(dtype)`` ("torch.float32"), in TorchScript too (where a dtype prints as its number)."""
    if not torch.jit.is_scripting():
        return str(dtype)
    # fmt: off
    known = [
        (torch.float32, "torch.float32"), (torch.float64, "torch.float64"), (torch.float16, "torch.float16"),
        (torch.bfloat16, "torch.bfloat16"), (torch.uint8, "torch.uint8"), (torch.int8, "torch.int8"),
        (torch.int16, "torch.int16"), (torch.int32, "torch.int32"), (torch.int64, "torch.int64"),
        (torch.bool, "torch.bool"), (torch.complex64, "torch.complex64"), (torch.complex128, "torch.complex128"),
    ]
    # fmt: on
    for candidate, text in known:
        if dtype == candidate:
            return text
    return f"dtype {dtype}"


def _autocast_enabled(device_type: str) -> bool:
    if torch.jit.is_scripting():
        return torch.is_autocast_enabled()  # CUDA's; TorchScript's CPU query crashes (torch 2.x)
    return torch.is_autocast_enabled(device_type)


def _check_int(what: str, value: Any, *, minimum: int, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name}: {what} must be an integer >= {minimum}, got {value!r}")
