"""The model registry: ``register_model``, ``create_model``, ``list_models`` and aliases."""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from torch import nn

__all__ = [
    "register_model",
    "register_alias",
    "create_model",
    "list_models",
    "list_aliases",
    "is_model",
    "UnknownModelError",
]

_MODELS: dict[str, Callable[..., nn.Module]] = {}
_ALIASES: dict[str, str] = {}

F = TypeVar("F", bound=Callable[..., nn.Module])


class UnknownModelError(KeyError):
    """Raised by :func:`create_model` for a name that is neither registered nor an alias.

    A :class:`KeyError`, so ``except KeyError`` catches it; its message lists the closest registered names.
    """

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0]) if self.args else ""


def register_model(fn: F) -> F:
    """Decorator: register a builder function under its ``__name__``.

    The builder takes keyword arguments (at least ``num_classes``, ``in_chans``, ``aux_logits``,
    ``drop_rate``) and returns an ``nn.Module``.

    Raises:
        ValueError: if the name is already registered (as a model or an alias).
    """
    name = fn.__name__
    if name in _MODELS or name in _ALIASES:
        raise ValueError(f"model {name!r} is already registered")
    _MODELS[name] = fn
    return fn


def register_alias(alias: str, name: str) -> None:
    """Make ``create_model(alias)`` build ``name``; aliases are not listed by :func:`list_models`.

    Raises:
        ValueError: if ``alias`` is taken or ``name`` is not registered.
    """
    if alias in _MODELS or alias in _ALIASES:
        raise ValueError(f"model {alias!r} is already registered")
    if name not in _MODELS:
        raise ValueError(f"cannot alias {alias!r} to unregistered model {name!r}")
    _ALIASES[alias] = name


def list_models(pattern: str = "*") -> list[str]:
    """Sorted registered model names matching an fnmatch pattern (``"*resnet*"``), each once.

    An alias matching the pattern contributes the model it names (``list_models("googlenet")`` is
    ``["inception_v1"]``); aliases themselves are never listed.

    Raises:
        TypeError: a pattern that is not a string.
    """
    if not isinstance(pattern, str):
        raise TypeError(f"list_models pattern must be a string such as '*resnet*', got {pattern!r}")
    names = {n for n in _MODELS if fnmatch.fnmatchcase(n, pattern)}
    names |= {target for alias, target in _ALIASES.items() if fnmatch.fnmatchcase(alias, pattern)}
    return sorted(names)


def list_aliases() -> dict[str, str]:
    """Alias -> model name."""
    return dict(sorted(_ALIASES.items()))


def is_model(name: str) -> bool:
    """True if ``name`` is a registered model or alias."""
    return name in _MODELS or name in _ALIASES


def _resolve(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"a model name must be a string such as 'inception_v3', got {name!r}")
    if name in _MODELS:
        return name
    if name in _ALIASES:
        return _ALIASES[name]
    known = sorted(_MODELS) + sorted(_ALIASES)
    lowered = {k.lower(): k for k in known}
    close = [lowered[c] for c in difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.6)]
    hint = f"closest: {', '.join(close)}" if close else f"registered: {', '.join(sorted(_MODELS))}"
    raise UnknownModelError(f"unknown model {name!r}; {hint}")


def create_model(
    name: str,
    *,
    num_classes: int | None = None,
    in_chans: int = 3,
    aux_logits: bool = False,
    drop_rate: float | None = None,
    pretrained: str | os.PathLike | Mapping | None = None,
    pretrained_source: str = "auto",
    features_only: bool = False,
    out_indices: Sequence[int] | None = None,
    **kwargs,
) -> nn.Module:
    """Build a registered model (randomly initialized) by name or alias.

    Args:
        name: a name from :func:`list_models` or an alias (``googlenet``, ``inception_v2``).
        num_classes: classifier outputs; 0 gives a model that returns pooled features; None takes the
            model's default (1000 for the ImageNet models, 10 / 100 for the CIFAR layouts).
        in_chans: input channels.
        aux_logits: build the auxiliary heads where the architecture has them; in train mode the model
            then returns :class:`~inception_zoo.InceptionOutputs`.
        drop_rate: dropout before the classifier; None takes the paper's value.
        pretrained: a checkpoint to load (a path or a state dict): ours, or torchvision's, timm's or
            pytorchcv's for the same network; see :func:`~inception_zoo.load_pretrained`. Nothing is
            ever downloaded.
        pretrained_source: the checkpoint's layout, ``"auto"`` to detect it from the keys.
        features_only: return a :class:`~inception_zoo.features.FeatureExtractor` that outputs the
            feature maps at reductions 2, 4, 8, 16, 32 (``feature_info`` gives channels and reductions).
        out_indices: with ``features_only``, which of those maps (indices 0-4; None: all).
        **kwargs: further keyword options of the model's builder.

    Returns:
        The model, in train mode, with ``default_cfg``.

    Raises:
        UnknownModelError (a KeyError): unknown name; the message lists the closest registered names.
        TypeError: a name that is not a string, or a keyword the builder does not take (named).
        ValueError: an option out of range (from the model), or ``pretrained=True`` (there is no
            download; give a path).
        CheckpointError (a ValueError): a checkpoint that cannot be loaded (see load_pretrained).
    """
    builder = _MODELS[_resolve(name)]
    params = inspect.signature(builder).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = [k for k in kwargs if k not in params]
        if unknown:
            accepted = ", ".join(sorted(params))
            raise TypeError(
                f"create_model({name!r}) got unexpected keyword argument(s) {', '.join(map(repr, unknown))}; "
                f"accepted: {accepted}"
            )
    options = dict(in_chans=in_chans, aux_logits=aux_logits, **kwargs)
    if num_classes is not None:
        options["num_classes"] = num_classes
    if drop_rate is not None:
        options["drop_rate"] = drop_rate
    if isinstance(pretrained, bool):
        if pretrained:
            raise ValueError(
                "pretrained=True would need a download, which inception_zoo never does; pass the path of a "
                "checkpoint (ours, torchvision's, timm's or pytorchcv's)"
            )
        pretrained = None
    if not features_only and out_indices is not None:
        raise ValueError("out_indices selects feature maps; it needs features_only=True")
    model = builder(**options)
    if pretrained is not None:
        from .weights import load_pretrained

        load_pretrained(model, pretrained, source=pretrained_source)
    if features_only:
        from .features import FeatureExtractor

        return FeatureExtractor(model, out_indices)
    return model
