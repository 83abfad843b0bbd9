"""Parameter and multiply-add counts (fvcore) and the summary table of the zoo."""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from .registry import create_model, list_models

__all__ = ["count_params", "count_macs", "ModelStats", "model_stats", "all_stats", "stats_table"]


def count_params(model: nn.Module) -> int:
    """Number of parameters (elements of every parameter tensor; buffers such as BatchNorm running
    statistics excluded), a plain count."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_size: tuple[int, int, int] | None = None) -> int:
    """Multiply-adds for one image, counted by fvcore's ``FlopCountAnalysis`` (which counts one fused
    multiply-add as one "flop"; FLOPs in the 2-per-MAC sense are twice this).

    fvcore's default operator set is used (convolutions, linear layers, BatchNorm, ...) with one change:
    pooling counts zero whichever operator implements it. fvcore counts ``adaptive_avg_pool2d`` (one per
    input element) but not ``avg_pool2d``, so the same network pooled either way would otherwise get
    two counts. Other operators it has no rule for (ReLU, LRN, concatenation) count zero. The model is traced in eval mode on a zero tensor of
    shape (1, *input_size); ``input_size`` defaults to ``model.default_cfg["input_size"]``. fvcore's
    warnings are silenced. The model's train/eval mode is restored afterwards.
    """
    with warnings.catch_warnings():  # fvcore's import trips torch.jit deprecation warnings
        warnings.simplefilter("ignore")
        from fvcore.nn import FlopCountAnalysis

    if input_size is None:
        input_size = tuple(model.default_cfg["input_size"])
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings(), _quiet_fvcore():
            warnings.simplefilter("ignore")
            analysis = FlopCountAnalysis(model, torch.zeros(1, *input_size))
            # A zero-count handle: fvcore's set_op_handle(name, None) keeps a default handle it already has.
            analysis.set_op_handle("aten::adaptive_avg_pool2d", _count_nothing)
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            return int(analysis.total())
    finally:
        model.train(was_training)


def _count_nothing(inputs, outputs) -> Counter:
    return Counter()


class _quiet_fvcore:
    """Raise fvcore's loggers to ERROR for the duration of a block."""

    names = ("fvcore", "fvcore.nn.jit_analysis")

    def __enter__(self):
        self.levels = [(logging.getLogger(n), logging.getLogger(n).level) for n in self.names]
        for logger, _ in self.levels:
            logger.setLevel(logging.ERROR)

    def __exit__(self, *exc):
        for logger, level in self.levels:
            logger.setLevel(level)


@dataclass(frozen=True)
class ModelStats:
    """One row of the summary table. ``params`` is a count, ``macs`` multiply-adds per image at
    ``input_size`` (C, H, W); the ``paper_*`` figures are what the paper reports (None if nothing)."""

    name: str
    input_size: tuple[int, int, int]
    params: int
    macs: int
    paper_params: int | None
    paper_macs: int | None
    paper: str


def model_stats(name: str) -> ModelStats:
    """Build ``name`` at its defaults (1000 classes, no auxiliary heads) and count it."""
    model = create_model(name)
    cfg = model.default_cfg
    return ModelStats(
        name=name,
        input_size=tuple(cfg["input_size"]),
        params=count_params(model),
        macs=count_macs(model),
        paper_params=cfg["paper_params"],
        paper_macs=cfg["paper_macs"],
        paper=f"arXiv {cfg['paper']['arxiv']}",
    )


def _millions(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:.2f}"


def _billions(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e9:.3f}"


def stats_table(stats: Iterable[ModelStats], fmt: str = "github") -> str:
    """Render :class:`ModelStats` rows with tabulate (``fmt`` is any ``tabulate.tabulate_formats``)."""
    from tabulate import tabulate

    headers = ["model", "input", "params (M)", "GMACs", "paper params (M)", "paper GMACs", "paper"]
    rows = [
        [
            s.name, f"{s.input_size[1]}x{s.input_size[2]}", _millions(s.params), _billions(s.macs),
            _millions(s.paper_params), _billions(s.paper_macs), s.paper,
        ]
        for s in stats
    ]
    align = ("left", "left", "right", "right", "right", "right", "left")
    return tabulate(rows, headers=headers, tablefmt=fmt, disable_numparse=True, colalign=align)


def all_stats(pattern: str = "*") -> list[ModelStats]:
    """:func:`model_stats` for every registered model matching ``pattern``."""
    return [model_stats(name) for name in list_models(pattern)]
