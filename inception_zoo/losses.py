"""The training loss of the Inception papers: cross-entropy with label smoothing plus weighted auxiliary
heads, on top of :class:`torch.nn.CrossEntropyLoss` (no hand-written smoothing)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .models.base import InceptionOutputs

__all__ = ["InceptionLoss"]


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
        aux_weight: one weight for every auxiliary head, or one per head (shallowest first).
        reduction: ``"mean"`` or ``"sum"`` over the batch, as in CrossEntropyLoss.

    Forward:
        output: logits (B, num_classes), or :class:`~inception_zoo.InceptionOutputs` (train mode with
            ``aux_logits=True``).
        target: (B,) class indices (int64) or (B, num_classes) class probabilities.
        Returns a scalar tensor.

    Raises:
        ValueError: a smoothing outside [0, 1], a negative weight, an unknown reduction, or per-head
            weights whose count differs from the number of auxiliary outputs.
        TypeError: an output that is neither a tensor nor InceptionOutputs.
    """

    def __init__(
        self,
        label_smoothing: float = 0.0,
        aux_weight: float | Sequence[float] = 0.3,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if not 0.0 <= float(label_smoothing) <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        weights = (aux_weight,) if isinstance(aux_weight, (int, float)) else tuple(aux_weight)
        if any(float(w) < 0 for w in weights):
            raise ValueError(f"aux_weight must be >= 0, got {aux_weight!r}")
        self.per_head = not isinstance(aux_weight, (int, float))
        self.aux_weight = tuple(float(w) for w in weights)
        self.label_smoothing = float(label_smoothing)
        self.ce = nn.CrossEntropyLoss(label_smoothing=self.label_smoothing, reduction=reduction)

    def forward(self, output: torch.Tensor | InceptionOutputs, target: torch.Tensor) -> torch.Tensor:
        if isinstance(output, InceptionOutputs):
            logits, aux = output.logits, output.aux
        elif isinstance(output, torch.Tensor):
            logits, aux = output, ()
        else:
            raise TypeError(f"InceptionLoss expects a logits tensor or InceptionOutputs, got {type(output).__name__}")
        weights = self.aux_weight if self.per_head else self.aux_weight * len(aux)
        if len(weights) != len(aux):
            raise ValueError(f"{len(weights)} aux weights given for {len(aux)} auxiliary outputs")
        loss = self.ce(logits, target)
        for weight, aux_logits in zip(weights, aux):
            loss = loss + weight * self.ce(aux_logits, target)
        return loss

    def extra_repr(self) -> str:
        w = self.aux_weight if self.per_head else self.aux_weight[0]
        return f"label_smoothing={self.label_smoothing}, aux_weight={w}"
