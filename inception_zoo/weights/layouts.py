"""Which layout a checkpoint's keys are in: ours, or one of the committed key maps of a model's peers
(:mod:`inception_zoo.weights.keymaps`), told apart by how much their key sets overlap."""

from __future__ import annotations

from functools import cache

import torch

from ..records import Peer
from ..registry import get_record, list_models
from .keymaps import LEGACY, keymap, layouts
from .reader import strip_prefix_to_fit

__all__ = ["candidates", "detect", "fit_prefix", "fitting_model", "our_keys", "overlap", "peer_of"]


@cache
def our_keys(name: str) -> frozenset[str]:
    """Our state-dict keys for ``name``, auxiliary heads included (built on the meta device: no memory)."""
    from ..models import InceptionNet

    record = get_record(name)
    with torch.device("meta"):
        model = InceptionNet(record, aux_logits=bool(record.aux_heads))
    return frozenset(model.state_dict())


def candidates(name: str) -> list[tuple[str, frozenset[str]]]:
    """Every layout known for ``name`` with its key set: ours, then each committed key map in the order of
    the record's ``peers`` (which thereby decides ties: timm's inception_v4 before Cadene's, the same
    keys), ``legacy`` last."""
    order = [p.source for p in get_record(name).peers]
    ranked = sorted(layouts(name), key=lambda s: order.index(s) if s in order else len(order))
    return [("ours", our_keys(name))] + [(src, frozenset(keymap(name, src))) for src in ranked]


def peer_of(name: str, source: str) -> Peer | None:
    """The record's peer for ``source`` (None for ``ours``, ``legacy`` or a model that is not registered)."""
    if source in ("ours", LEGACY) or name not in list_models():
        return None
    return next((p for p in get_record(name).peers if p.source == source), None)


def overlap(keys: set[str], expected: frozenset[str]) -> float:
    return len(keys & expected) / max(len(keys | expected), 1)


def detect(name: str, keys: set[str]) -> str:
    """The layout whose key set overlaps the checkpoint's most (Jaccard index); ties go to the earlier."""
    best, best_score = "ours", -1.0
    for source, expected in candidates(name):
        score = overlap(keys, expected)
        if score > best_score + 1e-12:
            best, best_score = source, score
    return best


def fit_prefix(name: str, state: dict[str, torch.Tensor], target: frozenset[str] | None = None):
    """``state`` without a wrapper's attribute prefix (Lightning's ``model.``, ...) where removing it makes
    the keys fit ``name``'s layouts (or ``target``, for a model that is not registered) better; and the
    prefix removed."""
    known = [keys for _, keys in candidates(name)] if target is None else [target]
    return strip_prefix_to_fit(state, lambda keys: max(overlap(keys, k) for k in known))


def fitting_model(keys: set[str], *, exclude: str) -> tuple[str, str] | None:
    """The registered model and layout whose keys the checkpoint matches (>= 95% overlap), if any."""
    best, best_score = None, 0.95
    for model_name in list_models():
        if model_name == exclude:
            continue
        for source, expected in candidates(model_name):
            score = overlap(keys, expected)
            if score > best_score:
                best, best_score = (model_name, source), score
    return best
