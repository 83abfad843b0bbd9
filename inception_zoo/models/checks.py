"""The input check every model runs in forward, one implementation for eager mode and TorchScript: a
floating-point (B, in_chans, H, W) tensor of the weights' dtype, at least the minimum size, and in train mode
no batch of one while a BatchNorm normalizes over the batch."""

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ["InputChecks", "check_input", "check_tensor", "normalizes_over_batch"]


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
