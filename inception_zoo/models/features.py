"""Multi-scale feature extraction: ``create_model(name, features_only=True, out_indices=...)``."""

from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from .checks import InputChecks
from .intermediates import _is_int, take_indices

__all__ = ["FeatureExtractor", "FeatureInfo"]


class FeatureInfo:
    """What each output of a :class:`FeatureExtractor` is, in timm's style.

    ``channels()`` and ``reduction()`` list the channels and the reduction (input size / map size) of each
    output; ``module_name()`` the stage each is taken after; ``get_dicts()`` all of it.
    """

    def __init__(self, entries: Sequence[dict]) -> None:
        self.info = [dict(e) for e in entries]

    def channels(self, idx: int | None = None):
        return self.info[idx]["num_chs"] if idx is not None else [e["num_chs"] for e in self.info]

    def reduction(self, idx: int | None = None):
        return self.info[idx]["reduction"] if idx is not None else [e["reduction"] for e in self.info]

    def module_name(self, idx: int | None = None):
        return self.info[idx]["module"] if idx is not None else [e["module"] for e in self.info]

    def get_dicts(self) -> list[dict]:
        return [dict(e) for e in self.info]

    def __len__(self) -> int:
        return len(self.info)

    def __repr__(self) -> str:
        return f"FeatureInfo({self.info})"


class FeatureExtractor(InputChecks):
    """A backbone returning the feature maps at reductions 2, 4, 8, 16 and 32 (the last map of each
    stride; 1, 2, 4 for ``inception_v1_cifar``, whose stem keeps the grid), or those selected by
    ``out_indices``; no classifier.

    Its parameters keep the names they have in the full model (``features.<stage>...``), so the model's
    checkpoints load into it with ``strict=False`` (the head's keys are the only ones left over).

    Args:
        model: an :class:`~inception_zoo.InceptionNet`; its stages are shared, not copied.
        out_indices: which reductions to return: a sequence of indices into (2, 4, 8, 16, 32) (or the
            network's levels), negative ones counting from the end; an int n, the last n (timm's
            convention); None: all of them.

    Forward: (B, in_chans, H, W) -> list of (B, C_i, H_i, W_i), one per out index, in the order given.
    The input is checked as the model checks it (``ValueError``; see :class:`~inception_zoo.InceptionNet`).
    ``torch.jit.script`` compiles it, input check included; the scripted extractor saves and loads with
    ``torch.jit.save`` / ``torch.jit.load``.

    Raises:
        ValueError: an out index outside -5..4, or repeated, or an int n outside 1..5, naming the allowed
            values.
    """

    def __init__(self, model: nn.Module, out_indices: Sequence[int] | None = None) -> None:
        super().__init__()
        taps = model.feature_taps()
        levels = len(taps)
        if out_indices is None:
            out_indices = tuple(range(levels))
        reductions = tuple(model.stage_info[t].reduction for t in taps)
        allowed = range(-levels, levels)
        if _is_int(out_indices):  # timm's int form: the last n maps
            out_indices = take_indices(model.name, reductions, out_indices, "out_indices")
        indices = list(out_indices) if isinstance(out_indices, (list, tuple, range)) else [out_indices]
        if not indices or any(not _is_int(i) or operator.index(i) not in allowed for i in indices):
            raise ValueError(
                f"{model.name}: out_indices must be integers in 0..{levels - 1} (or {-levels}..-1), one per "
                f"reduction {reductions}, got {out_indices!r}"
            )
        indices = [operator.index(i) % levels for i in indices]
        if len(set(indices)) != len(indices):
            raise ValueError(f"{model.name}: out_indices must not repeat, got {out_indices!r}")
        self.stage_indices = [taps[i] for i in indices]
        stages = list(model.features.named_children())[: max(self.stage_indices) + 1]
        self.features = nn.Sequential(OrderedDict(stages))
        self.name, self.in_chans, self.default_cfg = model.name, model.in_chans, model.default_cfg
        self.pretrained_cfg = self.default_cfg  # the name timm's data helpers read
        self._min_size = model._min_size
        self.register_buffer("_dtype_probe", torch.zeros(0, dtype=model._dtype_probe.dtype), persistent=False)
        self.feature_info = FeatureInfo(
            [
                {
                    "num_chs": model.stage_info[s].channels,
                    "reduction": model.stage_info[s].reduction,
                    "module": f"features.{stages[s][0]}",
                }
                for s in self.stage_indices
            ]
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        self._check_input(x)
        found: dict[int, torch.Tensor] = {}
        for i, stage in enumerate(self.features):
            x = stage(x)
            if i in self.stage_indices:
                found[i] = x
        return [found[s] for s in self.stage_indices]
