"""The training loss of the Inception papers: cross-entropy with label smoothing plus weighted auxiliary
heads, on top of :class:`torch.nn.CrossEntropyLoss` (no hand-written smoothing)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from .models.base import InceptionOutputs

__all__ = ["InceptionLoss"]


def _is_real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


class InceptionLoss(nn.Module):
    """``CE(logits) + sum_i aux_weight_i × CE(aux_i)``, each CE with the same label smoothing.

    The papers' values:

    * GoogLeNet (arXiv 1409.4842, Section 5): auxiliary losses weighted 0.3 each, no smoothing:
      ``InceptionLoss(aux_weight=0.3)``.
    * Inception v3 (arXiv 1512.00567, Sections 7 and 8): label smoothing 0.1 and one auxiliary head;
      torchvision's and TF-slim's training recipes weight it 0.4:
      ``InceptionLoss(label_smoothing=0.1, aux_weight=0.4)``.

    Args:
        label_smoothing: in [0, 1], passed to :class:`torch.nn.CrossEntropyLoss`.
        aux_weight: one weight for every auxiliary head, or a list/tuple with one per head (shallowest
            first). Outputs without auxiliary logits (eval mode) take the plain cross-entropy.
        reduction: ``"mean"`` or ``"sum"`` over the batch, as in CrossEntropyLoss.

    Forward:
        output: logits (B, num_classes), or :class:`~inception_zoo.InceptionOutputs` (train mode with
            ``aux_logits=True``).
        target: (B,) class indices (int64) or (B, num_classes) class probabilities.
        Returns a scalar tensor.

    Raises:
        ValueError: a smoothing that is not a number in [0, 1], a weight that is not a finite number
            >= 0, an unknown reduction, or per-head weights whose count differs from the number of
            auxiliary outputs.
        TypeError: an output that is neither a tensor nor InceptionOutputs (torchvision's output tuples
            included: convert them).
    """

    def __init__(
        self,
        label_smoothing: float = 0.0,
        aux_weight: float | Sequence[float] = 0.3,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if not _is_real(label_smoothing) or not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be a number in [0, 1], got {label_smoothing!r}")
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        self.per_head = not _is_real(aux_weight)
        weights = tuple(aux_weight) if self.per_head and isinstance(aux_weight, (list, tuple)) else (aux_weight,)
        if not all(_is_real(w) and 0.0 <= w < math.inf for w in weights):
            raise ValueError(
                f"aux_weight must be a finite number >= 0 or a list/tuple of them (one per auxiliary head), "
                f"got {aux_weight!r}"
            )
        self.aux_weight = tuple(float(w) for w in weights)
        self.label_smoothing = float(label_smoothing)
        self.ce = nn.CrossEntropyLoss(label_smoothing=self.label_smoothing, reduction=reduction)

    def forward(self, output: torch.Tensor | InceptionOutputs, target: torch.Tensor) -> torch.Tensor:
        if isinstance(output, InceptionOutputs):
            logits, aux = output.logits, output.aux
            if isinstance(aux, torch.Tensor):  # one head given bare
                aux = (aux,)
            elif not isinstance(aux, (tuple, list)) or not all(isinstance(a, torch.Tensor) for a in aux):
                raise TypeError(f"InceptionOutputs.aux must be a tuple of tensors, got {type(aux).__name__}")
        elif isinstance(output, torch.Tensor):
            logits, aux = output, ()
        else:
            kind = f"{type(output).__module__}.{type(output).__qualname__}"
            raise TypeError(
                f"InceptionLoss expects a logits tensor or inception_zoo.InceptionOutputs, got {kind}"
            )
        loss = self.ce(logits, target)
        if not aux:  # eval mode, or a model without auxiliary heads
            return loss
        weights = self.aux_weight if self.per_head else self.aux_weight * len(aux)
        if len(weights) != len(aux):
            raise ValueError(f"{len(weights)} aux weights given for {len(aux)} auxiliary outputs")
        for weight, aux_logits in zip(weights, aux):
            loss = loss + weight * self.ce(aux_logits, target)
        return loss

    def extra_repr(self) -> str:
        w = self.aux_weight if self.per_head else self.aux_weight[0]
        return f"label_smoothing={self.label_smoothing}, aux_weight={w}"
