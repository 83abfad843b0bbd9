"""The training loop of ``inception-zoo train``: :func:`train` (epochs of steps, a validation pass, a
metrics line and a checkpoint after each) and :func:`evaluate`."""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import warnings

import torch
from torch import nn

from .checkpoint import _save_checkpoint
from .data import _epoch_batches
from .distributed import _all_sum, _Dist, _finish_distributed, _init_distributed
from .run import _Run, _setup, _validate

__all__ = ["train", "evaluate"]


def _autocast(device: str, enabled: bool):
    """Mixed precision: bf16 autocast (no loss scaling needed; BatchNorm and the loss stay in fp32)."""
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=enabled)


def _topk(logits: torch.Tensor, y: torch.Tensor, k: int) -> int:
    """How many rows of ``logits`` (B, classes) have their label ``y`` (B,) among their ``k`` highest."""
    k = min(k, logits.shape[1])
    return int((logits.topk(k, dim=1).indices == y[:, None]).any(dim=1).sum())


def _save(run: _Run, epoch: int, step_in_epoch: int) -> None:
    """Checkpoint the run (on rank 0 only) to go on at step ``step_in_epoch`` of epoch ``epoch``."""
    if run.d.main:
        _save_checkpoint(run.out, run.model, run.opt, run.sched, run.name, epoch, step_in_epoch)


def _train_step(run: _Run, indices: list[int]):
    """One optimizer step on the batch at ``indices``: (labels (B,), logits (B, classes), loss (scalar)), or
    None when fewer than two of its images could be read (the step is skipped)."""
    args = run.args
    item = run.train_data.batch(indices)
    if item is None or len(item[1]) < 2:  # every image of the batch but one was unreadable
        return None
    x, y = item[0].to(args.device), item[1].to(args.device)
    if args.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with _autocast(args.device, run.amp):
        output = run.net(x)
        loss = run.loss_fn(output, y)
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    if run.recipe.clip_grad and run.paper:
        nn.utils.clip_grad_norm_(run.model.parameters(), run.recipe.clip_grad)
    run.opt.step()
    if run.sched_unit == "step":
        run.sched.step()
    logits = output.logits if hasattr(output, "logits") else output
    return y, logits, loss


def _progress(run: _Run, epoch: int, first: int, total: int):
    """The per-step progress bar of an epoch (at step ``first`` of ``total``) on stderr, on the main rank
    only: redrawn in place on a terminal and cleared at the end; where stderr is no terminal (a log), drawn
    at most every 10 s, in ASCII, and kept at the end."""
    from tqdm import tqdm

    tty = sys.stderr.isatty()
    return tqdm(desc=f"epoch {epoch + 1}/{run.args.epochs}", total=total, initial=first, disable=not run.d.main,
                leave=not tty, file=sys.stderr, mininterval=0.1 if tty else 10.0, dynamic_ncols=tty, ascii=not tty)


def _train_epoch(run: _Run, epoch: int) -> tuple[list[float], float, bool]:
    """Train one epoch (0-based), from the resumed step if it is the first, with a progress bar (see
    :func:`_progress`); logs every ``--log-every`` steps and stops with a checkpoint at ``--max-steps``.
    Returns this rank's [loss sum, correct, seen], the ``time.perf_counter()`` at the start and whether
    ``--max-steps`` stopped the run."""
    args, d = run.args, run.d
    run.net.train()
    batches = _epoch_batches(len(run.train_data), args.batch_size, args.seed, epoch, d.rank, d.world, True)
    first = run.start_step if epoch == run.start_epoch else 0
    seen = correct = 0
    loss_sum = 0.0
    t0 = time.perf_counter()
    with _progress(run, epoch, first, len(batches)) as bar:
        for i, indices in enumerate(batches[first:], start=first):
            step = _train_step(run, indices)
            if step is None:
                bar.update()
                continue
            y, logits, loss = step
            run.global_step += 1
            seen += len(y)
            correct += int((logits.argmax(1) == y).sum())
            loss_sum += float(loss.detach()) * len(y)
            if run.log is not None and args.log_every and run.global_step % args.log_every == 0:
                run.log.write(json.dumps({"step": run.global_step, "epoch": epoch, "loss": float(loss.detach()),
                                          "lr": run.opt.param_groups[0]["lr"]}) + "\n")
                run.log.flush()
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}",
                            img_s=f"{seen * d.world / (time.perf_counter() - t0):.0f}", refresh=False)
            bar.update()
            if args.max_steps and run.global_step >= args.max_steps:
                _save(run, epoch, i + 1)
                return [loss_sum, correct, seen], t0, True
    return [loss_sum, correct, seen], t0, False


def _end_epoch(run: _Run, epoch: int, sums: list[float], t0: float) -> dict:
    """After epoch ``epoch`` (0-based): advance a per-epoch schedule, validate, log and print the epoch's
    metrics (rank 0) and checkpoint. Returns the metrics (losses per image, accuracies as fractions)."""
    args, d = run.args, run.d
    if run.sched_unit == "epoch":
        run.sched.step()
    loss_sum, correct, seen = _all_sum(sums, d)
    with _autocast(args.device, run.amp):
        val = evaluate(run.model, run.val_data, args.batch_size, args.device, d, args.channels_last)
    metrics = {"epoch": epoch + 1, "train_loss": loss_sum / max(seen, 1), "train_acc": correct / max(seen, 1),
               **val, "images_per_s": seen / (time.perf_counter() - t0), "lr": run.opt.param_groups[0]["lr"],
               "skipped_images": run.train_data.skipped + run.val_data.skipped}
    if d.main:
        run.log.write(json.dumps(metrics) + "\n")
        run.log.flush()
        print(f"epoch {epoch + 1}/{args.epochs}: loss {metrics['train_loss']:.4f}, train acc "
              f"{metrics['train_acc']:.4f}, val top-1 {val['val_top1']:.4f}, top-5 {val['val_top5']:.4f}",
              file=sys.stderr)
    _save(run, epoch + 1, 0)
    return metrics


def train(args: argparse.Namespace) -> dict:
    """Run a training as configured by the command line (see :func:`~.cli.build_parser`).

    Returns:
        The last epoch's metrics: ``epoch`` (1-based), ``train_loss`` (per image), ``train_acc``,
        ``val_top1``, ``val_top5`` (fractions), ``images_per_s``, ``lr``, ``skipped_images``; empty if
        ``--max-steps`` stopped the run before an epoch ended.

    Raises:
        TrainError: a problem with the command line (the options checked first, by :func:`~.run._validate`,
            before anything is read or built), the model name, the ``--resume`` state or the data, found
            before the first step.
    """
    _validate(args)
    d = _init_distributed(args.device)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    run = _setup(args, d)
    if d.main:
        print(run.precision, file=sys.stderr)
    metrics: dict = {}
    for epoch in range(run.start_epoch, args.epochs):
        sums, t0, stopped = _train_epoch(run, epoch)
        if stopped:
            break
        metrics = _end_epoch(run, epoch, sums, t0)
    skipped = run.train_data.skipped + run.val_data.skipped
    if skipped:
        warnings.warn(f"{skipped} unreadable images were skipped", RuntimeWarning, stacklevel=2)
    _finish_distributed(run.model, run.out, d)
    if run.log is not None:
        run.log.close()
    return metrics


@torch.no_grad()
def evaluate(
    model: nn.Module, data, batch_size: int, device: str, d: _Dist, channels_last: bool = False
) -> dict:
    """Top-1 / top-5 accuracy of ``model`` (put in eval mode) on ``data``, sharded over the ranks and summed.

    Returns:
        ``{"val_top1": fraction, "val_top5": fraction}`` (0.0 for no readable image).
    """
    model.eval()
    correct1 = correct5 = seen = 0
    for indices in _epoch_batches(len(data), batch_size, 0, 0, d.rank, d.world, False):
        item = data.batch(indices)
        if item is None:
            continue
        x, y = item[0].to(device), item[1].to(device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        logits = model(x)
        correct1 += _topk(logits, y, 1)
        correct5 += _topk(logits, y, 5)
        seen += len(y)
    c1, c5, n = _all_sum([correct1, correct5, seen], d)
    return {"val_top1": c1 / max(n, 1), "val_top5": c5 / max(n, 1)}
