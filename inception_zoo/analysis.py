"""Counting: parameters, fvcore multiply-adds and activations, per-stage breakdowns, the summary table."""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from .factory import create_model
from .registry import get_record, list_models

__all__ = [
    "count_params",
    "count_macs",
    "count_activations",
    "StageRow",
    "stage_breakdown",
    "ModelStats",
    "model_stats",
    "all_stats",
    "stats_table",
]


def count_params(model: nn.Module) -> int:
    """Number of parameters (elements of every parameter tensor; buffers such as BatchNorm running
    statistics excluded), a plain count."""
    return sum(p.numel() for p in model.parameters())


def _count_nothing(inputs, outputs) -> Counter:
    return Counter()


class _quiet_fvcore:
    """Silence fvcore's loggers and the tracer's warnings for the duration of a block."""

    names = ("fvcore", "fvcore.nn.jit_analysis")

    def __enter__(self):
        self.levels = [(logging.getLogger(n), logging.getLogger(n).level) for n in self.names]
        for logger, _ in self.levels:
            logger.setLevel(logging.ERROR)
        self.warnings = warnings.catch_warnings()
        self.warnings.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc):
        self.warnings.__exit__(*exc)
        for logger, level in self.levels:
            logger.setLevel(level)


def _analyze(model: nn.Module, input_size, kind: str) -> tuple[int, dict[str, int]]:
    """Trace ``model`` in eval mode on zeros of shape (1, *input_size) with fvcore's flop ("macs") or
    activation counter; returns (total, per-module counts). The model's mode is restored."""
    with _quiet_fvcore():  # fvcore's import trips torch.jit deprecation warnings too
        from fvcore.nn import ActivationCountAnalysis, FlopCountAnalysis

        if input_size is None:
            input_size = tuple(model.default_cfg["input_size"])
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                cls = FlopCountAnalysis if kind == "macs" else ActivationCountAnalysis
                analysis = cls(model, torch.zeros(1, *input_size))
                if kind == "macs":
                    # fvcore's set_op_handle(name, None) keeps a default handle: override with a zero count.
                    analysis.set_op_handle("aten::adaptive_avg_pool2d", _count_nothing)
                analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
                return int(analysis.total()), {k: int(v) for k, v in analysis.by_module().items()}
        finally:
            model.train(was_training)


def count_macs(model: nn.Module, input_size: tuple[int, int, int] | None = None) -> int:
    """Multiply-adds for one image, counted by fvcore's ``FlopCountAnalysis`` (which counts one fused
    multiply-add as one "flop"; FLOPs in the 2-per-MAC sense are twice this).

    fvcore's default operator set is used (convolutions, linear layers, BatchNorm at 2 per element in eval
    mode, ...) with one change: pooling counts zero whichever operator implements it. fvcore counts
    ``adaptive_avg_pool2d`` (one per input element) but not ``avg_pool2d``, so the same network pooled
    either way would otherwise get two counts. Operators it has no rule for (ReLU, LRN, concatenation)
    count zero. The model is traced in eval mode on zeros of shape (1, *input_size); ``input_size``
    defaults to ``model.default_cfg["input_size"]``. fvcore's warnings are silenced; the model's
    train/eval mode is restored.
    """
    return _analyze(model, input_size, "macs")[0]


def count_activations(model: nn.Module, input_size: tuple[int, int, int] | None = None) -> int:
    """Activations for one image: the number of output elements of the convolutions and linear layers,
    counted by fvcore's ``ActivationCountAnalysis`` (same tracing as :func:`count_macs`)."""
    return _analyze(model, input_size, "activations")[0]


@dataclass(frozen=True)
class StageRow:
    """One row of a per-stage breakdown: a stage's output shape (C, H, W) for one image, its parameter
    count and its multiply-adds (fvcore, as :func:`count_macs`)."""

    name: str
    output_shape: tuple[int, ...]
    params: int
    macs: int


def stage_breakdown(model: nn.Module, input_size: tuple[int, int, int] | None = None) -> list[StageRow]:
    """Per-stage parameters and multiply-adds in the spirit of GoogLeNet's Table 1: one row per child of
    ``model.features`` (stem layers, Inception modules, reduction blocks) and one for the head. The rows
    add up to :func:`count_params` and :func:`count_macs` (auxiliary heads, if built, are not run in eval
    mode and get no row)."""
    return _stage_rows(model, input_size)[1]


def _stage_rows(model: nn.Module, input_size: tuple[int, int, int] | None) -> tuple[int, list[StageRow]]:
    """:func:`stage_breakdown`'s rows with fvcore's total of the same trace (what :func:`count_macs` gives)."""
    if input_size is None:
        input_size = tuple(model.default_cfg["input_size"])
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = [  # the output shapes are read as fvcore's trace runs the model: no second forward
        module.register_forward_hook(lambda m, i, o, n=name: shapes.__setitem__(n, tuple(map(int, o.shape[1:]))))
        for name, module in [*(("features." + n, m) for n, m in model.features.named_children()), ("head", model.head)]
    ]
    try:
        total, by_module = _analyze(model, input_size, "macs")
    finally:
        for h in hooks:
            h.remove()
    rows = []
    for name, module in [*(("features." + n, m) for n, m in model.features.named_children()), ("head", model.head)]:
        rows.append(StageRow(name.removeprefix("features."), shapes[name], count_params(module), by_module.get(name, 0)))
    return total, rows


@dataclass(frozen=True)
class ModelStats:
    """One model's figures. ``params`` is a count, ``macs`` multiply-adds per image at ``input_size``
    (C, H, W), ``activations`` conv/linear output elements per image (None unless asked for); the
    ``paper_*`` figures are what the paper reports (None if nothing), ``paper_top1`` in percent; ``peer``
    names the peer implementation(s), with their counts (None where there is no peer or not asked for)."""

    name: str
    input_size: tuple[int, int, int]
    min_input_size: tuple[int, int, int]
    params: int
    macs: int
    paper_params: int | None
    paper_macs: int | None
    paper_top1: float | None
    paper: str
    activations: int | None = None
    peer: str | None = None
    peer_params: int | None = None
    peer_macs: int | None = None


def model_stats(
    name: str, *, activations: bool = False, peers: bool = False, model: nn.Module | None = None,
    macs: int | None = None,
) -> ModelStats:
    """Build ``name`` at its defaults (1000 classes, no auxiliary heads; or take ``model``, built so) and
    count it; with ``peers``, also build and count the record's first PyTorch peer implementation
    (torchvision / timm / pytorchcv / ...), or its Keras one (parameters only) where it has no other.
    ``macs``: the model's multiply-adds where a trace already counted them (as :func:`count_macs`)."""
    model = create_model(name) if model is None else model
    cfg = model.default_cfg
    extra = {}
    if activations:
        extra["activations"] = count_activations(model)
    if peers:
        from .weights.sources import build_peer, peer_model, torch_peers

        peers = get_record(name).peers
        if peers:
            # the first PyTorch peer; a Keras one only where there is no other (its parameters counted by
            # its source's own rule, no multiply-adds: fvcore traces PyTorch modules)
            first = (torch_peers(peers) or peers)[0]
            spec = peer_model(first)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                peer = build_peer(first)
            extra.update(
                peer=", ".join(f"{p.source} {p.model}" for p in peers),
                peer_params=spec.params(peer) if spec.params else count_params(peer),
                peer_macs=None if spec.params else count_macs(peer, tuple(cfg["input_size"])),
            )
    return ModelStats(
        name=name,
        input_size=tuple(cfg["input_size"]),
        min_input_size=tuple(cfg["min_input_size"]),
        params=count_params(model),
        macs=count_macs(model) if macs is None else macs,
        paper_params=cfg["paper_params"],
        paper_macs=cfg["paper_macs"],
        paper_top1=cfg["paper_top1"],
        paper=f"arXiv {cfg['paper']['arxiv']}",
        **extra,
    )


def millions(n: int | None) -> str:
    """``n`` in millions with two decimals, "-" for None."""
    return "-" if n is None else f"{n / 1e6:.2f}"


def billions(n: int | None) -> str:
    """``n`` in billions with three decimals, "-" for None."""
    return "-" if n is None else f"{n / 1e9:.3f}"


def stats_table(stats: Iterable[ModelStats], fmt: str = "github") -> str:
    """Render :class:`ModelStats` rows with tabulate (``fmt`` is any ``tabulate.tabulate_formats``)."""
    from tabulate import tabulate

    headers = ["model", "input", "params (M)", "GMACs", "paper params (M)", "paper GMACs", "paper"]
    rows = [
        [
            s.name, f"{s.input_size[1]}x{s.input_size[2]}", millions(s.params), billions(s.macs),
            millions(s.paper_params), billions(s.paper_macs), s.paper,
        ]
        for s in stats
    ]
    align = ("left", "left", "right", "right", "right", "right", "left")
    return tabulate(rows, headers=headers, tablefmt=fmt, disable_numparse=True, colalign=align)


def all_stats(pattern: str = "*") -> list[ModelStats]:
    """:func:`model_stats` for every registered model matching ``pattern``."""
    return [model_stats(name) for name in list_models(pattern)]
