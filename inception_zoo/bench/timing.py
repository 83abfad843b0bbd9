"""How each figure is timed: eval forwards and train steps in rounds with the order rotated, deploy
mode's convolutions alone, and the machine's matrix-multiply reference rates. Times are in seconds."""

from __future__ import annotations

import argparse
import contextlib
import copy
import math
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import torch
from torch import nn

__all__ = ["DTYPES", "MATMUL_SIZES", "SAMPLE_SECONDS", "autocast", "compiled", "inference_compile",
           "is_compiled", "matmul_gflops", "matmul_rates", "native_precisions", "round_order", "time_eval",
           "time_train"]

# --dtype choices -> the autocast dtype of the forwards (None: plain float32). int8 is no autocast: its run
# times a quantized copy of the model (see measure.py) beside float32 references.
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16, "int8": None}
SAMPLE_SECONDS = 0.5  # default seconds of one batch-N timing sample (batch 1: half); longer ones are steadier
TRAIN_CLASSES = 1000  # the classifier size of every model with a peer (ImageNet)
MATMUL_SIZES = (512, 1024, 2048)  # n of the n×n×n products whose best rate is the reference
MATMUL_SAMPLE_S = 0.05  # seconds of products per matmul timing sample
SETTLE_SECONDS = 0.05  # pause before each sample: ONNX Runtime's threads spin 10-50 ms after a call (measured)
# CPU flags (/proc/cpuinfo "flags" on x86, "Features" on Arm) of native low-precision arithmetic
NATIVE_FLAGS = {"bf16": {"avx512_bf16", "amx_bf16", "bf16"}, "fp16": {"avx512_fp16", "amx_fp16"}}


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


def _cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return set(line.split(":", 1)[1].split())
    return set()


def native_precisions(device: str = "cpu") -> list[str]:
    """The precisions whose multiply-adds ``device`` runs natively, "fp32" first: on CUDA also bf16 (where
    ``torch.cuda.is_bf16_supported()``) and fp16; on CPU bf16 / fp16 where the CPU flags say so
    (``NATIVE_FLAGS``: AVX512-BF16, AMX, Arm BF16; AVX512-FP16, AMX-FP16). Elsewhere low precision is
    emulated (converted to float32 around float32 arithmetic), and a product's rate is no reference."""
    if device == "cuda":
        return ["fp32", "bf16", "fp16"] if torch.cuda.is_bf16_supported() else ["fp32", "fp16"]
    flags = _cpu_flags()
    return ["fp32"] + [p for p, names in NATIVE_FLAGS.items() if flags & names]


def matmul_gflops(device: str = "cpu", precision: str = "fp32", sizes: Sequence[int] = MATMUL_SIZES,
                  repeats: int = 5, warmup_s: float = 0.5) -> float:
    """The machine's matrix-multiply rate in GFLOP/s at ``precision`` ("fp32", "bf16", "fp16"): the best
    over ``sizes`` of ``torch.mm`` on n×n operands (2·n³ floating-point operations per product, the current
    torch threads), each size timed as the best of ``repeats`` samples of about ``MATMUL_SAMPLE_S`` s, after
    ``warmup_s`` seconds of products of the largest size (clocks and caches settle). The best, since the
    question is what the machine can do; several sizes, since no single one reaches the peak on every
    machine.

    Raises:
        KeyError: a precision other than fp32, bf16, fp16.
        RuntimeError: from torch, e.g. ``device="cuda"`` without a CUDA device.
    """
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    operands = {n: [torch.randn(n, n, device=device, dtype=dtype) for _ in range(2)] for n in sizes}
    start = time.perf_counter()
    while time.perf_counter() - start < warmup_s:
        torch.mm(*operands[max(sizes)])
        _sync(device)
    best = 0.0
    for n, (a, b) in operands.items():
        product = partial(torch.mm, a, b)
        iters = _iterations(product, MATMUL_SAMPLE_S, 1, device)
        seconds = min(_time(product, iters, device) for _ in range(repeats))
        best = max(best, 2 * n**3 / seconds / 1e9)
    return best


def matmul_rates(device: str, precisions: Sequence[str]) -> dict[str, float]:
    """The reference rate (GFLOP/s, :func:`matmul_gflops`) of each of ``precisions`` that ``device`` runs
    natively (:func:`native_precisions`), always including fp32; a precision without native arithmetic
    gets none (its rows show no fraction of it)."""
    native = native_precisions(device)
    wanted = ["fp32"] + [p for p in native if p in precisions and p != "fp32"]
    return {p: matmul_gflops(device, p) for p in wanted}


def autocast(device: str, dtype: str):
    """The context a forward runs in at ``dtype``: none for fp32 and int8 (a quantized model computes in
    its own precision), ``torch.autocast`` to bf16 / fp16 on ``device``. Raises KeyError for a dtype not in
    ``DTYPES``."""
    if DTYPES[dtype] is None:
        return contextlib.nullcontext()
    return torch.autocast(device, dtype=DTYPES[dtype])


def _train_step_fn(model: nn.Module, x: torch.Tensor, forward: nn.Module) -> Callable[[], None]:
    """One SGD step (forward by ``forward``: ``model`` or its compiled form, cross-entropy on random labels,
    backward, update of ``model``'s parameters) on ``x``."""
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-6, momentum=0.9)
    target = torch.randint(0, TRAIN_CLASSES, (x.shape[0],), device=x.device)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        out = forward(x)
        out = out[0] if isinstance(out, tuple) else out
        loss_fn(out, target).backward()
        opt.step()

    return step


def compiled(model: nn.Module) -> nn.Module:
    """``torch.compile`` of ``model`` as the benchmark compiles: inductor, static shapes (batch 1 and batch
    N each get their own graph). Compilation happens at the first call; run those under
    :func:`inference_compile` to get freezing."""
    return torch.compile(model, backend="inductor", dynamic=False)


def is_compiled(model: nn.Module) -> bool:
    """Whether ``model`` is a ``torch.compile`` wrapper."""
    return isinstance(model, torch._dynamo.eval_frame.OptimizedModule)


def inference_compile(models: dict[str, nn.Module]):
    """The context in which the first (compiling) eval forwards of ``models`` run: inductor's ``freezing``
    on where any of them is compiled (weights become constants of the graph, which lets the CPU backend
    fold BatchNorm and pre-pack convolution weights; it applies under ``torch.no_grad()``), restored on
    exit; no context otherwise."""
    if not any(is_compiled(m) for m in models.values()):
        return contextlib.nullcontext()
    import torch._inductor.config

    return torch._inductor.config.patch(freezing=True)


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


def round_order(groups: Sequence[Sequence[str]], r: int) -> list[tuple[str, ...]]:
    """The groups of round ``r`` (0-based): rotated by ``r``, each group's variants reversed in odd rounds,
    so that the variants of a group are measured back to back and each leads half of the rounds."""
    k = r % len(groups) if groups else 0
    return [tuple(g[::-1]) if r % 2 else tuple(g) for g in (*groups[k:], *groups[:k])]


def time_eval(
    models: dict[str, nn.Module], x1: torch.Tensor, xn: torch.Tensor, args: argparse.Namespace, progress,
    groups: Sequence[Sequence[str]] | None = None,
) -> tuple[dict[str, dict[str, list[float]]], dict[str, list[float]], dict[str, int]]:
    """Warm-up, then ``args.repeats`` rounds of batch-1 and batch-N samples of every variant in ``models``
    (``x1``, ``xn``: the inputs; ``models["ours"]`` must exist, its speed sets the forwards per sample), each
    sample after a pause (``SETTLE_SECONDS``) and one untimed forward of its own, plus deploy mode's
    conv-only time at both batches in the same rounds (none where ``models["deploy"]`` is compiled or
    missing). ``groups`` (default: each variant alone) partitions the variants into the ones compared with
    each other; a group's samples are taken back to back, batch 1 then batch N, in :func:`round_order`, so
    that drift of the machine between rounds cancels in their ratios.

    Returns:
        seconds per forward: variant -> {"latency", "throughput"} -> one per round; conv-only seconds:
        {"latency", "throughput"} -> one per round (empty lists without them); forwards per sample:
        {"latency", "throughput"}. ``progress`` (a tqdm bar) advances once per round.
    """
    variants = tuple(models)
    times = {v: {"latency": [], "throughput": []} for v in variants}
    inputs = {"latency": x1, "throughput": xn}
    for v in variants:  # warm-up (oneDNN primitive caches, weight packing, runtime allocations, compilation)
        for _ in range(2):
            models[v](x1)
            models[v](xn)
    # as many forwards per sample as fill --sample-seconds (half that at batch 1), our eager model's speed
    # deciding, so that every variant runs the same number of forwards
    ours, seconds, device = models["ours"], args.sample_seconds, args.device
    iters = {
        "latency": _iterations(partial(ours, x1), seconds / 2, args.latency_iters, device),
        "throughput": _iterations(partial(ours, xn), seconds, 1, device),
    }
    deploy = models.get("deploy")
    timed_alone = deploy is not None and not is_compiled(deploy)
    calls = {k: _record_convs(deploy, x) if timed_alone else [] for k, x in inputs.items()}
    conv_only = {k: [] for k in inputs}
    groups = [tuple(g) for g in groups] if groups is not None else [(v,) for v in variants]
    if sorted(v for g in groups for v in g) != sorted(variants):
        raise ValueError(f"groups {groups} must hold each of the variants {list(variants)} once")
    for r in range(args.repeats):
        for group in round_order(groups, r):
            for key, x in inputs.items():
                for v in group:
                    # a pause and one untimed call first: what the previous variant left running (ONNX
                    # Runtime's intra-op threads spin on the cores for 10-50 ms after a run) or evicted
                    # from the caches must not land in this variant's sample
                    time.sleep(SETTLE_SECONDS)
                    models[v](x)
                    times[v][key].append(_time(partial(models[v], x), iters[key], device))
        for key in inputs:  # in the same round as the others, so that drift of the machine cancels here too
            if calls[key]:
                conv_only[key].append(_conv_only_seconds(calls[key], device))
        progress.update(1)
    return times, conv_only, iters


def time_train(
    models: dict[str, nn.Module], xn: torch.Tensor, args: argparse.Namespace, progress
) -> dict[str, list[float]]:
    """Seconds per SGD step at batch N of ours and the peer (deep copies of the eager ``models["ours"]``
    and ``models["peer"]``, compiled with ``--compile``; deploy mode and the runtimes are eval-only),
    alternating, ``args.repeats`` each after one untimed step."""
    steps = {}
    for v in ("ours", "peer"):
        model = copy.deepcopy(models[v])
        steps[v] = _train_step_fn(model, xn, compiled(model) if args.compile else model)
    times = {v: [] for v in steps}
    with autocast(args.device, args.dtype_now):
        for step in steps.values():
            step()
        for r in range(args.repeats):
            for v in (("ours", "peer") if r % 2 == 0 else ("peer", "ours")):
                times[v].append(_time(steps[v], 1, args.device))
            progress.update(1)
    return times
