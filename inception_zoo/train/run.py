"""The setup of one training run: the recipe, optimizer, schedule, model, data and loss, every problem
reported before the first step, and ``--resume`` restored."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .. import _onednn
from ..factory import create_model
from ..losses import InceptionLoss
from ..records import Recipe
from ..registry import UnknownModelError, get_record
from .checkpoint import _load_checkpoint
from .data import TrainError, _epoch_batches, _load_data
from .distributed import _Dist

__all__ = ["DEFAULT_RECIPE"]

# The default recipe: SGD with Nesterov momentum 0.9, weight decay 5e-4 and a one-cycle learning rate
# (warm-up, cosine) peaking at 0.05; auxiliary losses weighted 0.3; ``decay`` / ``decay_every`` unused.
# ``--recipe paper`` uses the model record's recipe instead.
DEFAULT_RECIPE = Recipe("sgd", 0.05, 1.0, 1, 0.0, 0.3, weight_decay=5e-4)


def _recipe(name: str, paper: bool) -> Recipe:
    """The model record's recipe if ``paper`` (the default recipe where the record has none), else the
    default recipe."""
    return (get_record(name).recipe or DEFAULT_RECIPE) if paper else DEFAULT_RECIPE


def _supports_aux(name: str) -> bool:
    """True if the model defines auxiliary heads (read from its record; nothing is built)."""
    return bool(get_record(name).aux_heads)


def _native_bf16(device: str) -> bool:
    """True if ``device`` computes in bf16 natively: a CUDA GPU with bf16, a CPU whose oneDNN has bf16
    kernels (AVX512-BF16 or AMX); other devices are assumed to. Emulated bf16 convolutions on a CPU
    without them run several times slower than fp32 (6x for one 3×3 convolution on an AVX2 CPU)."""
    kind = torch.device(device).type
    if kind == "cpu":
        return _onednn.bf16_available()
    if kind == "cuda":
        return torch.cuda.is_bf16_supported()
    return True


def _optimizer(recipe: Recipe, params, lr: float) -> torch.optim.Optimizer:
    """RMSProp as in Inception v3 (decay 0.9, eps 1.0, momentum 0.9) if the recipe says ``"rmsprop"``,
    else SGD with Nesterov momentum 0.9; weight decay from the recipe."""
    if recipe.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=0.9, eps=1.0, momentum=0.9,
                                   weight_decay=recipe.weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=recipe.weight_decay)


def _scheduler(opt, recipe: Recipe, lr: float, paper: bool, steps_per_epoch: int, epochs: int):
    """(scheduler, unit): the paper's step decay (``decay`` every ``decay_every`` epochs), advanced every
    ``"epoch"``; or one-cycle (15% warm-up to ``lr``, then cosine annealing), advanced every ``"step"``."""
    if paper:
        return torch.optim.lr_scheduler.StepLR(opt, step_size=recipe.decay_every, gamma=recipe.decay), "epoch"
    total = max(steps_per_epoch * epochs, 1)
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total, pct_start=0.15), "step"


@dataclass
class _Run:
    """One training run, as :func:`_setup` built it; ``global_step`` counts optimizer steps (all epochs)."""

    args: argparse.Namespace
    d: _Dist
    name: str
    model: nn.Module
    train_data: object
    val_data: object
    recipe: Recipe
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    sched_unit: str  # "step" or "epoch"
    loss_fn: InceptionLoss
    amp: bool  # bf16 autocast
    out: Path
    net: nn.Module  # the model, or its DistributedDataParallel wrapper
    log: object = None  # OUT/metrics.jsonl, open on rank 0 only
    start_epoch: int = 0
    start_step: int = 0
    global_step: int = 0

    @property
    def paper(self) -> bool:
        """True for ``--recipe paper``."""
        return self.args.recipe == "paper"


def _setup(args: argparse.Namespace, d: _Dist) -> _Run:
    """Build the data, model, optimizer, schedule and loss from the command line, create ``OUT`` and
    restore ``--resume``. The torch RNG is reseeded with ``--seed`` before the model is built.

    Raises:
        TrainError: an unknown model, bad data (see :func:`~.data._load_data`) or no state at ``--resume``.
    """
    name = args.model or "inception_v1_cifar"
    in_chans = 1 if args.data is None else 3
    try:
        probe = create_model(name, in_chans=in_chans, num_classes=1)
    except UnknownModelError as e:
        raise TrainError(str(e)) from None
    train_data, val_data, num_classes = _load_data(args.data, probe)
    paper = args.recipe == "paper"
    recipe = _recipe(name, paper)
    aux = _supports_aux(name) and not args.no_aux
    smoothing = args.label_smoothing if args.label_smoothing is not None else recipe.label_smoothing
    aux_weight = args.aux_weight if args.aux_weight is not None else recipe.aux_weight
    lr = args.lr if args.lr is not None else recipe.lr

    torch.manual_seed(args.seed)
    model = create_model(name, in_chans=in_chans, num_classes=num_classes, aux_logits=aux).to(args.device)
    if hasattr(train_data, "input_cfg"):  # the digits: their size and normalization go into the checkpoints
        model.set_input_cfg(**train_data.input_cfg)
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    steps_per_epoch = len(_epoch_batches(len(train_data), args.batch_size, 0, 0, d.rank, d.world, True))
    opt = _optimizer(recipe, model.parameters(), lr)
    sched, unit = _scheduler(opt, recipe, lr, paper, steps_per_epoch, args.epochs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run = _Run(args, d, name, model, train_data, val_data, recipe, opt, sched, unit,
               InceptionLoss(label_smoothing=smoothing, aux_weight=aux_weight),
               args.amp if args.amp is not None else _native_bf16(args.device), out, net=model)
    if args.resume:
        run.start_epoch, run.start_step = _load_checkpoint(Path(args.resume), model, opt, sched)
    if d.world > 1:
        device_ids = [d.local_rank] if args.device == "cuda" else None
        run.net = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    run.log = open(out / "metrics.jsonl", "a", encoding="utf-8") if d.main else None
    run.global_step = run.start_epoch * steps_per_epoch + run.start_step
    return run
