"""The setup of one training run: the recipe, optimizer, schedule, model, data and loss, every problem
reported before the first step, and ``--resume`` restored."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .. import _onednn
from ..factory import create_model
from ..losses import InceptionLoss
from ..records import Recipe
from ..registry import UnknownModelError, get_record
from .checkpoint import _read_state, _restore
from .data import TrainError, _epoch_batches, _load_data
from .distributed import _Dist

__all__ = ["DEFAULT_RECIPE"]

# The default recipe: SGD with Nesterov momentum 0.9, weight decay 5e-4 and a one-cycle learning rate
# (warm-up, cosine) peaking at 0.05; auxiliary losses weighted 0.3; ``decay`` / ``decay_every`` unused.
# ``--recipe paper`` uses the model record's recipe instead.
DEFAULT_RECIPE = Recipe("sgd", 0.05, 1.0, 1, 0.0, 0.3, weight_decay=5e-4)


def _devices() -> list[str]:
    """The device types this machine can train on: cpu, and cuda / mps where torch finds them."""
    mps = getattr(torch.backends, "mps", None)
    return ["cpu"] + ["cuda"] * torch.cuda.is_available() + ["mps"] * bool(mps and mps.is_available())


def _validate(args: argparse.Namespace) -> None:
    """Check the options that need neither the data nor the model, before anything is read or built.

    Raises:
        TrainError: the first bad option, named, with what was expected and what was given.
    """
    for option in ("epochs", "batch_size"):
        if getattr(args, option) < 1:
            raise TrainError(f"--{option.replace('_', '-')} must be at least 1, got {getattr(args, option)}")
    if args.batch_size < 2:
        raise TrainError("--batch-size must be at least 2: BatchNorm layers normalize over the batch")
    for option, ok, expected in (
        ("lr", lambda v: v > 0, "a finite number > 0"),
        ("label_smoothing", lambda v: 0 <= v < 1, "a finite number in [0, 1)"),
        ("aux_weight", lambda v: v >= 0, "a finite number >= 0"),
    ):
        value = getattr(args, option)
        if value is not None and not (math.isfinite(value) and ok(value)):
            raise TrainError(f"--{option.replace('_', '-')} must be {expected}, got {value}")
    if args.max_steps is not None and args.max_steps < 1:
        raise TrainError(f"--max-steps must be at least 1 when given, got {args.max_steps}")
    if args.log_every < 0:
        raise TrainError(f"--log-every must be an integer >= 0 (0: once per epoch only), got {args.log_every}")
    if not 0 <= args.seed < 2**32:
        raise TrainError(f"--seed must be an integer from 0 to 2**32 - 1, got {args.seed}")
    here = _devices()
    try:
        device = torch.device(args.device)
    except (RuntimeError, ValueError, TypeError):
        raise TrainError(f"--device {args.device!r} is no device torch knows; available on this machine: "
                         f"{', '.join(here)}") from None
    if device.type not in here:
        raise TrainError(f"--device {args.device}: no {device.type} device on this machine; "
                         f"available: {', '.join(here)}")
    count = torch.cuda.device_count() if device.type == "cuda" else 1
    if device.type == "cuda" and device.index is not None and device.index >= count:
        raise TrainError(f"--device {args.device}: this machine has {count} CUDA device{'s' * (count > 1)} "
                         f"(cuda:0{f' to cuda:{count - 1}' if count > 1 else ''})")


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


def _precision(device: str, amp: bool | None) -> tuple[bool, str]:
    """Whether to train in bf16 autocast, and the line that says so and why: ``amp`` True (``--amp``) or
    False (``--no-amp``) as asked; None: where :func:`_native_bf16` says the device computes in bf16."""
    kind = torch.device(device).type
    where = {"cpu": "this CPU", "cuda": "this GPU"}.get(kind, f"this {kind} device")
    how = ": AVX512-BF16/AMX" if kind == "cpu" else ""
    if amp is False:
        return False, "precision: fp32 (--no-amp)"
    native = _native_bf16(device)
    if amp:
        why = f"native on {where}" if native else f"emulated on {where}, several times slower than fp32"
        return True, f"precision: bf16 autocast (--amp; {why})"
    if native:
        return True, f"precision: bf16 autocast (native on {where}{how}; --no-amp forces fp32)"
    return False, f"precision: fp32 ({where} has no native bf16{how}; --amp forces bf16 autocast)"


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
    precision: str = ""  # the line that says which precision was chosen and why (see _precision)
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
        TrainError: an unknown model, bad data (see :func:`~.data._load_data`), a ``--resume`` state that is
            missing, unreadable or of another model (see :func:`~.checkpoint._read_state`), or one that has
            made ``--max-steps`` steps already.
    """
    name = args.model or "inception_v1_cifar"
    in_chans = 1 if args.data is None else 3
    try:
        get_record(name)
    except UnknownModelError as e:
        raise TrainError(str(e)) from None
    resumed = _read_state(Path(args.resume)) if args.resume else None  # before the data and the model
    if resumed and resumed[0]["model"] != name:
        raise TrainError(f"--resume: {resumed[1]} is a state of {resumed[0]['model']}, not of {name}"
                         + ("" if args.model else " (the default --model)"))
    probe = create_model(name, in_chans=in_chans, num_classes=1)
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
    amp, run_precision = _precision(args.device, args.amp)
    run = _Run(args, d, name, model, train_data, val_data, recipe, opt, sched, unit,
               InceptionLoss(label_smoothing=smoothing, aux_weight=aux_weight), amp, out, net=model,
               precision=run_precision)
    if resumed:
        run.start_epoch, run.start_step = _restore(*resumed, model, opt, sched)
    run.global_step = run.start_epoch * steps_per_epoch + run.start_step
    if args.max_steps and run.global_step >= args.max_steps:
        raise TrainError(f"--max-steps {args.max_steps}: the resumed run has made {run.global_step} steps already")
    if d.world > 1:
        device_ids = [d.local_rank] if torch.device(args.device).type == "cuda" else None
        run.net = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    run.log = open(out / "metrics.jsonl", "a", encoding="utf-8") if d.main else None
    return run
