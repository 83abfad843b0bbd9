"""How each figure is timed: eval forwards and train steps in rounds with the order rotated, deploy
mode's convolutions alone, and the machine's matrix-multiply rate. Times are in seconds."""

from __future__ import annotations

import argparse
import contextlib
import copy
import math
import time
from collections.abc import Callable, Sequence

import torch
from torch import nn

__all__ = ["DTYPES", "SAMPLE_SECONDS", "autocast", "matmul_gflops", "time_eval", "time_train"]

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
SAMPLE_SECONDS = 0.5  # default seconds of one batch-N timing sample (batch 1: half); longer ones are steadier
TRAIN_CLASSES = 1000  # the classifier size of every model with a peer (ImageNet)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _time(fn: Callable[[], object], iters: int, device: str) -> float:
    """Mean seconds per call over ``iters`` calls (CUDA: synchronized before and after)."""
    _sync(device)
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / iters


def _iterations(fn: Callable[[], object], seconds: float, at_least: int, device: str) -> int:
    """Calls per timing sample so that one sample lasts about ``seconds`` s (short samples are noisy)."""
    return max(at_least, math.ceil(seconds / _time(fn, 1, device)))


def matmul_gflops(device: str = "cpu", n: int = 2048, repeats: int = 10, warmup_s: float = 1.0) -> float:
    """The machine's fp32 matrix-multiply rate in GFLOP/s (2·n³ floating-point operations per ``n``×``n``
    product, ``torch.mm`` at the current torch threads): after ``warmup_s`` seconds of products (clocks
    and caches settle), the best of ``repeats`` timed products, since the question is what the machine
    can do.

    Raises:
        RuntimeError: from torch, e.g. ``device="cuda"`` without a CUDA device.
    """
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    start = time.perf_counter()
    while time.perf_counter() - start < warmup_s:
        torch.mm(a, b)
        _sync(device)
    times = [_time(lambda: torch.mm(a, b), 1, device) for _ in range(repeats)]
    return 2 * n**3 / min(times) / 1e9


def autocast(device: str, dtype: str):
    """The context a forward runs in at ``dtype``: none for fp32, ``torch.autocast`` to bf16 / fp16 on
    ``device``. Raises KeyError for a dtype not in ``DTYPES``."""
    if DTYPES[dtype] is None:
        return contextlib.nullcontext()
    return torch.autocast(device, dtype=DTYPES[dtype])


def _train_step_fn(model: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    """One SGD step (forward, cross-entropy on random labels, backward, update) of ``model`` on ``x``."""
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-6, momentum=0.9)
    target = torch.randint(0, TRAIN_CLASSES, (x.shape[0],), device=x.device)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        out = model(x)
        out = out[0] if isinstance(out, tuple) else out
        loss_fn(out, target).backward()
        opt.step()

    return step


def _record_convs(model: nn.Module, x: torch.Tensor) -> list[Callable[[], object]]:
    """Every :class:`~inception_zoo.deploy.DeployConv2d` call of one forward of ``model`` on ``x``, each as
    a closure that repeats it on the same arguments."""
    from ..deploy import DeployConv2d

    calls: list[Callable[[], object]] = []

    def record(mod, a, kw, out):
        calls.append(lambda: mod(*a, **kw))

    convs = [m for m in model.modules() if isinstance(m, DeployConv2d)]
    handles = [m.register_forward_hook(record, with_kwargs=True) for m in convs]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return calls


def _conv_only_seconds(calls: Sequence[Callable[[], object]], device: str) -> float:
    """Seconds the deploy model spends in its convolutions alone: the recorded calls, each timed on its
    own, summed. Everything between them (pooling, concatenation, the head, Python) counts as zero, so
    ``peer time / this`` bounds what any fusion around these convolution kernels could reach against the
    peer: the *ceiling* of deploy/peer."""
    return sum(_time(call, 1, device) for call in calls)


def time_eval(
    models: dict[str, nn.Module], x1: torch.Tensor, xn: torch.Tensor, args: argparse.Namespace, progress
) -> tuple[dict[str, dict[str, list[float]]], list[float], dict[str, int]]:
    """Warm-up, then ``args.repeats`` rounds of batch-1 and batch-N samples of every variant (``x1``,
    ``xn``: the inputs; ``models["deploy"]`` and ``models["peer"]`` must exist), the order rotated each
    round, plus deploy's conv-only time in the same rounds (none with ``--compile``).
    Returns (seconds per forward: variant -> {"latency", "throughput"} -> list, conv-only seconds per
    round, forwards per sample). ``progress`` (a tqdm bar) advances once per round."""
    variants = tuple(models)
    times = {v: {"latency": [], "throughput": []} for v in variants}
    for v in variants:  # warm-up (oneDNN primitive caches, weight packing, compilation)
        for _ in range(2):
            models[v](x1)
            models[v](xn)
    # as many forwards per sample as fill --sample-seconds (half that at batch 1), the peer's speed deciding
    peer, seconds, device = models["peer"], args.sample_seconds, args.device
    iters = {
        "latency": _iterations(lambda: peer(x1), seconds / 2, args.latency_iters, device),
        "throughput": _iterations(lambda: peer(xn), seconds, 1, device),
    }
    calls = _record_convs(models["deploy"], xn) if not args.compile else []
    conv_only = []
    for r in range(args.repeats):
        k = r % len(variants)
        for v in variants[k:] + variants[:k]:
            times[v]["latency"].append(_time(lambda: models[v](x1), iters["latency"], args.device))
            times[v]["throughput"].append(_time(lambda: models[v](xn), iters["throughput"], args.device))
        if calls:  # in the same round as the others, so that drift of the machine cancels here too
            conv_only.append(_conv_only_seconds(calls, args.device))
        progress.update(1)
    return times, conv_only, iters


def time_train(
    models: dict[str, nn.Module], xn: torch.Tensor, args: argparse.Namespace, progress
) -> dict[str, list[float]]:
    """Seconds per SGD step at batch N of ours and the peer (copies; deploy mode is eval-only),
    alternating, ``args.repeats`` each after one untimed step."""
    steps = {v: _train_step_fn(copy.deepcopy(models[v]), xn) for v in ("ours", "peer")}
    times = {v: [] for v in steps}
    with autocast(args.device, args.dtype_now):
        for step in steps.values():
            step()
        for r in range(args.repeats):
            for v in (("ours", "peer") if r % 2 == 0 else ("peer", "ours")):
                times[v].append(_time(steps[v], 1, args.device))
            progress.update(1)
    return times
