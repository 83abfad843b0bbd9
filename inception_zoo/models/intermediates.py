"""timm's intermediate-feature API on every model: ``forward_intermediates`` and
``prune_intermediate_layers`` (timm 1.0's ``forward_intermediates(x, indices, norm, stop_early, output_fmt,
intermediates_only)`` / ``prune_intermediate_layers(indices, prune_norm, prune_head)``, which detection and
segmentation code calls instead of ``features_only``).

The feature maps are those of ``feature_taps()``, the stages ``create_model(name, features_only=True)``
returns; an index is a position in that list (0: the shallowest tap)."""

from __future__ import annotations

import operator
from collections.abc import Sequence

import torch
from torch.utils.checkpoint import checkpoint

from ..layers import ClassifierHead

__all__ = ["IntermediatesMixin", "take_indices"]


def take_indices(
    name: str, reductions: Sequence[int], indices: int | Sequence[int] | None, option: str = "indices"
) -> list[int]:
    """The absolute tap indices (0..n-1, n = ``len(reductions)``) that ``indices`` selects, in timm's
    convention: None, all n; an int k, the last k; a sequence, those indices, negative ones counted from
    the end. Sorted from the shallowest, each once: timm collects the maps in stage order, whatever the
    order of ``indices``.

    Args:
        name: the model's name, for the error message.
        reductions: the reduction (input size / map size) of each tap, for the error message.
        indices: None, an int or a sequence of ints.
        option: the argument's name, for the error message (``out_indices`` for ``features_only``).

    Raises:
        ValueError: an int outside 1..n, an empty sequence, or an element that is not an integer in
            0..n-1 (or -n..-1); the message names the allowed range and the taps' reductions. (timm's
            ``feature_take_indices`` asserts.)
    """
    count = len(reductions)
    if indices is None:
        return list(range(count))
    if _is_int(indices):
        n = operator.index(indices)  # type: ignore[arg-type]
        if not 1 <= n <= count:
            raise ValueError(
                f"{name}: {option}={n} takes the last n of its {count} feature maps (reductions "
                f"{tuple(reductions)}); n must be in 1..{count}"
            )
        return list(range(count - n, count))
    items = list(indices) if isinstance(indices, (list, tuple, range)) else None
    if not items or not all(_is_int(i) and -count <= operator.index(i) < count for i in items):
        raise ValueError(
            f"{name}: indices must be None, an int in 1..{count} (the last n), or a non-empty sequence of "
            f"integers in 0..{count - 1} (or {-count}..-1), one per feature map at reductions "
            f"{tuple(reductions)}; got {indices!r}"
        )
    return sorted({operator.index(i) % count for i in items})


def _is_int(value: object) -> bool:
    if isinstance(value, bool):
        return False
    try:
        operator.index(value)  # int, numpy integers
    except TypeError:
        return False
    return True


def _eager_only(model: object, method: str) -> None:
    # TorchScript keeps an ignored method on the scripted model, without the attributes it reads.
    if isinstance(model, torch.jit.ScriptModule):
        raise TypeError(f"{method} is eager-only: call it on the model before torch.jit.script")


class IntermediatesMixin:
    """``forward_intermediates`` and ``prune_intermediate_layers`` for
    :class:`~inception_zoo.InceptionNet`, which inherits them. Eager-only (``@torch.jit.ignore``): scripting
    the model, pruned or not, is unaffected, and the scripted model raises ``TypeError`` for these two
    (prune, then script).

    Reads the model's ``name``, ``features`` (the stages, an ``nn.Sequential``), ``stage_info``,
    ``feature_taps()``, ``_check_input``, ``grad_checkpointing`` and ``training``; pruning also updates
    ``num_features``, ``head_hidden_size``, ``_tap_names`` and, through ``reset_classifier``, the heads.

    ``feature_info`` is timm's model attribute of the same name, so timm's wrappers (in timm 1.0
    ``timm.models._features.FeatureGetterNet(model, out_indices)``) take these models too.
    """

    __jit_unused_properties__ = ["feature_info"]

    @property
    def feature_info(self) -> list[dict]:
        """One dict per ``forward_intermediates`` map, in timm's form: ``num_chs`` (channels), ``reduction``
        (input size / map size, capped at ``output_stride``) and ``module`` (the stage, ``features.<name>``)."""
        return [
            {"num_chs": s.channels, "reduction": s.reduction, "module": f"features.{s.name}"}
            for s in (self.stage_info[t] for t in self.feature_taps())
        ]

    @torch.jit.ignore
    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """The final feature map and the feature maps of the taps ``indices`` selects (timm's API).

        Args:
            x: (B, in_chans, H, W), checked as ``forward_features`` checks it.
            indices: which of the ``feature_taps()`` maps (those ``features_only`` returns: reductions 2, 4,
                8, 16, 32 for most models): None, all; an int n, the last n; a sequence, those (negative:
                from the end). See :func:`take_indices`.
            norm: accepted for timm's API; these networks have no final norm layer, so it changes nothing.
            stop_early: stop after the deepest selected tap; the "final" features are then that map.
            output_fmt: "NCHW", the only layout.
            intermediates_only: return the list only.

        Returns:
            ``(final, intermediates)``: ``final`` equals ``forward_features(x)`` (B, num_features, h, w)
            unless stopped early; ``intermediates`` has one (B, C_i, H_i, W_i) map per selected tap, from
            the shallowest to the deepest whatever the order of ``indices`` (as timm's; repeats give one
            map). With ``intermediates_only``, the list. Auxiliary heads do not run; gradient
            checkpointing applies as in ``forward_features``.

        Raises:
            ValueError: an ``output_fmt`` other than "NCHW", indices out of range (naming the allowed
                range), or an input ``forward_features`` refuses.
            TypeError: called on a scripted model (eager-only).
        """
        _eager_only(self, "forward_intermediates")
        if output_fmt != "NCHW":  # also timm's Format.NCHW, a str enum
            raise ValueError(f"{self.name}: output_fmt must be 'NCHW' (the only layout), got {output_fmt!r}")
        taps = self.feature_taps()
        take = take_indices(self.name, [self.stage_info[t].reduction for t in taps], indices)
        self._check_input(x)
        wanted = [taps[i] for i in take]
        last = max(wanted) if stop_early else len(self.features) - 1
        recompute = self.grad_checkpointing and self.training and torch.is_grad_enabled()
        found: dict[int, torch.Tensor] = {}
        for i, stage in enumerate(self.features):
            if i > last:
                break
            x = checkpoint(stage, x, use_reentrant=False) if recompute else stage(x)
            if i in wanted:
                found[i] = x
        intermediates = [found[s] for s in wanted]
        return intermediates if intermediates_only else (x, intermediates)

    @torch.jit.ignore
    def prune_intermediate_layers(
        self,
        indices: int | Sequence[int] | None = 1,
        prune_norm: bool = False,
        prune_head: bool = True,
    ) -> list[int]:
        """Remove what the taps ``indices`` selects do not need (timm's API): the stages after the deepest
        selected tap, and the classifier.

        Args:
            indices: as in :meth:`forward_intermediates` (the default 1, the last tap, removes no stage).
            prune_norm: accepted for timm's API; there is no final norm layer to remove.
            prune_head: remove the classifier: ``reset_classifier(0, "")``, after which ``forward`` returns
                the last feature map. Removing stages removes it too, whatever ``prune_head`` says, as timm
                does (it was sized for the removed stages' features). The auxiliary heads go with it, as in
                timm's Inception v3 (``aux_logits`` becomes False). A face-embedding head is replaced by the
                same pass-through head as the others (``reset_classifier`` refuses ``global_pool=""`` for
                an embedding).

        Returns:
            The absolute indices selected (0..n-1, sorted, each once), to pass to :meth:`forward_intermediates`, which then
            returns the same tensors as before pruning. Afterwards ``feature_taps()`` (and so
            ``features_only`` and the indices) covers the remaining taps only: the kept ones and those
            shallower; negative indices and "the last n" then count from the deepest kept tap (as in
            timm, where negative indices are not valid after pruning). ``num_features`` and
            ``head_hidden_size`` become the deepest kept tap's channels, as in timm.

        Raises:
            ValueError: indices out of range, naming the allowed range (the model is left unchanged).
            TypeError: called on a scripted model (eager-only).
        """
        _eager_only(self, "prune_intermediate_layers")
        taps = self.feature_taps()
        take = take_indices(self.name, [self.stage_info[t].reduction for t in taps], indices)
        deepest = max(take)
        keep = taps[deepest] + 1  # stages kept: up to the deepest selected tap
        removes_stages = keep < len(self.features)
        if removes_stages:
            # The remaining taps pinned by name: feature_taps() then indexes the remaining stages alone.
            self._tap_names = [self.stage_info[t].name for t in taps[: deepest + 1]]
            for name in list(self.features._modules)[keep:]:
                delattr(self.features, name)  # by name: `del features[keep:]` would renumber the rest
            self.stage_info = self.stage_info[:keep]
            self.num_features = self.stage_info[-1].channels
        if prune_head or removes_stages:
            self._remove_head()
        return take

    @torch.jit.ignore
    def _remove_head(self) -> None:
        """``reset_classifier(0, "")``: no classifier, no pooling, no auxiliary heads."""
        if getattr(self, "_embedding", None) is None:
            self.reset_classifier(0, "")
            return
        self.reset_classifier(0)  # classes, auxiliary heads and default_cfg, as for any other head
        head = ClassifierHead(self.num_features, 0, pool="", drop_rate=self.drop_rate)
        self.head = head.train(self.training)
        self.head_hidden_size = head.num_features
