"""What is measured on which models: the three variants of a model (ours, deploy, the record's first
peer), their peak memory, one model's figures (:func:`bench_model`) and the whole run (:func:`run`); the
timing itself is in :mod:`.timing`. Units: seconds inside; ms, images/s, GFLOP/s and MB in the report."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import warnings
from pathlib import Path

import torch
from torch import nn

from .timing import autocast, matmul_gflops, time_eval, time_train

__all__ = ["VARIANTS", "models_with_peer", "check_args", "build_variants", "memory_probe", "bench_model",
           "run"]

VARIANTS = ("ours", "deploy", "peer")


def models_with_peer(pattern: str = "*") -> list[str]:
    """The registered models matching the fnmatch ``pattern`` whose record names a peer, sorted.

    Raises:
        ValueError: none matches (the message lists the models with a peer).
    """
    from ..registry import list_records

    names = [r.name for r in list_records(pattern) if r.peers]
    if not names:
        with_peer = ", ".join(r.name for r in list_records() if r.peers)
        raise ValueError(f"no model with a peer matches {pattern!r}; models with peers: {with_peer}")
    return names


def check_args(args: argparse.Namespace) -> list[str]:
    """The models ``args`` selects (see :func:`models_with_peer`), checked before anything is measured.

    Raises:
        ValueError: no model with a peer matches ``args.models``, or ``--device cuda`` without a CUDA device.
    """
    names = models_with_peer(args.models)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda but no CUDA device is available")
    return names


def build_variants(name: str, device: str, channels_last: bool, compile_: bool) -> dict[str, nn.Module]:
    """``{"ours", "deploy", "peer"}``: our model, its deploy mode and the record's first peer, all in eval
    mode with identical weights (the peer's random init loaded into ours), on ``device``, optionally
    channels_last and ``torch.compile``-d.

    Raises:
        ImportError: the peer's library is not installed.
    """
    from ..deploy import optimize_for_inference
    from ..factory import create_model
    from ..registry import get_record
    from ..weights import load_pretrained
    from ..weights.sources import build_peer

    peer_spec = get_record(name).peers[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the peer libraries' own deprecation warnings
        peer = build_peer(peer_spec, aux=False)
    ours = create_model(name)
    load_pretrained(ours, peer.state_dict(), source=peer_spec.source, transform_input=False)
    models = {"ours": ours.eval(), "deploy": optimize_for_inference(ours, "torch"), "peer": peer.eval()}
    for key, model in models.items():
        model.to(device)
        if channels_last:
            model.to(memory_format=torch.channels_last)
        if compile_:
            models[key] = torch.compile(model)
    return models


def _input(batch: int, name: str, device: str, channels_last: bool) -> torch.Tensor:
    """Random images of shape (batch, *input_size) at the model's default input size."""
    from ..registry import get_record

    x = torch.randn(batch, *get_record(name).input_size, device=device)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _probe_command(name: str, variant: str, args: argparse.Namespace) -> list[str]:
    cmd = [sys.executable, "-m", "inception_zoo.bench", "--memory-probe", name, variant,
           "--batch-size", str(args.batch_size), "--dtype", args.dtype_now]
    if args.channels_last:
        cmd.append("--channels-last")
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    return cmd


def _peak_memory_mb(name: str, variant: str, args: argparse.Namespace) -> float | None:
    """Peak memory of one eval forward at batch N, in MB (2**20 bytes). CUDA: ``max_memory_allocated``
    growth, here; CPU: resident-set growth in a fresh child process (:func:`memory_probe`), None if the
    child fails."""
    if args.device == "cuda":
        model = build_variants(name, args.device, args.channels_last, False)[variant]
        x = _input(args.batch_size, name, args.device, args.channels_last)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        with torch.no_grad(), autocast(args.device, args.dtype_now):
            model(x)
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    proc = subprocess.run(_probe_command(name, variant, args), capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        return None
    return float(proc.stdout.strip().splitlines()[-1])


def _rss_kib(field: str) -> int:
    """A field of /proc/self/status in KiB (``VmRSS``, ``VmHWM``). Raises OSError if it is missing."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def _one_variant(name: str, variant: str) -> nn.Module:
    """One variant in eval mode at random init: what its memory depends on (shapes, not weight values),
    without building the other two."""
    from ..deploy import optimize_for_inference
    from ..factory import create_model
    from ..registry import get_record
    from ..weights.sources import build_peer

    if variant == "peer":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return build_peer(get_record(name).peers[0], aux=False).eval()
    ours = create_model(name).eval()
    return optimize_for_inference(ours, "torch") if variant == "deploy" else ours


def memory_probe(name: str, variant: str, args: argparse.Namespace) -> float:
    """In the child process (``python -m inception_zoo.bench --memory-probe MODEL VARIANT``): build one
    variant on CPU, reset the peak-RSS mark, run one eval forward at batch N; returns the growth of the
    resident set in MB (MiB). Linux only (/proc/self/clear_refs and VmHWM).

    Raises:
        OSError: no /proc (not Linux).
        KeyError: a variant other than ours, deploy or peer.
    """
    if variant not in VARIANTS:
        raise KeyError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    model = _one_variant(name, variant)
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    x = _input(args.batch_size, name, "cpu", args.channels_last)
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    base = _rss_kib("VmRSS")
    with torch.no_grad(), autocast("cpu", args.dtype_now):
        model(x)
    return (_rss_kib("VmHWM") - base) / 1024


def _summary(times: dict[str, list[float]], batch: int, macs: int) -> dict:
    """One variant's figures from its samples (seconds): medians in ms and images/s, GFLOP/s
    (2 × MACs × images/s / 1e9), the samples in ms."""
    throughput = batch / statistics.median(times["throughput"])
    return {
        "latency_ms": statistics.median(times["latency"]) * 1000,
        "throughput_img_s": throughput,
        "train_step_ms": statistics.median(times["train"]) * 1000 if times["train"] else None,
        "achieved_gflops": 2 * macs * throughput / 1e9,
        "samples": {k: [t * 1000 for t in vals] for k, vals in times.items()},
    }


def _ratios(ours: dict, peer: dict, batch: int) -> dict[str, float]:
    """Peer time / our time (> 1: ours faster) for latency, throughput, train step where both have one,
    and the *ceiling* where ``ours`` has a conv-only time: the peer's batch-N time over it."""
    out = {
        "latency": peer["latency_ms"] / ours["latency_ms"],
        "throughput": ours["throughput_img_s"] / peer["throughput_img_s"],
    }
    if ours["train_step_ms"] and peer["train_step_ms"]:
        out["train"] = peer["train_step_ms"] / ours["train_step_ms"]
    if ours.get("conv_only_ms"):
        out["ceiling"] = 1000 * batch / peer["throughput_img_s"] / ours["conv_only_ms"]
    return out


def bench_model(name: str, args: argparse.Namespace, progress) -> dict:
    """Every figure of one model at ``args.dtype_now``: latency (ms, batch 1), throughput (images/s,
    batch N), train step (ms), peak memory (MB), GFLOP/s, deploy's conv-only time (ms) and the ratios
    against the peer. ``progress`` is a tqdm bar, advanced once per round and probe.

    Raises:
        ImportError: the peer's library is not installed.
    """
    from ..analysis import count_macs
    from ..factory import create_model
    from ..registry import get_record

    models = build_variants(name, args.device, args.channels_last, args.compile)
    macs = count_macs(create_model(name))
    x1 = _input(1, name, args.device, args.channels_last)
    xn = _input(args.batch_size, name, args.device, args.channels_last)
    with torch.no_grad(), autocast(args.device, args.dtype_now):
        times, conv_only, iters = time_eval(models, x1, xn, args, progress)
    train = time_train(models, xn, args, progress) if args.train else {}
    results = {v: _summary({**times[v], "train": train.get(v, [])}, args.batch_size, macs) for v in VARIANTS}
    for v in VARIANTS if args.memory else ():
        results[v]["peak_memory_mb"] = _peak_memory_mb(name, v, args)
        progress.update(1)
    results["deploy"]["conv_only_ms"] = statistics.median(conv_only) * 1000 if conv_only else None
    peer = get_record(name).peers[0]
    return {
        "model": name,
        "peer": f"{peer.source} {peer.model}",
        "input_size": list(get_record(name).input_size),
        "macs": macs,
        "iterations_per_sample": iters,
        "results": results,
        "ratios": {
            f"{v}/peer": _ratios(results[v], results["peer"], args.batch_size) for v in ("ours", "deploy")
        },
    }


def _header(args: argparse.Namespace) -> dict:
    """The report's ``machine`` (what measuring needs: device, torch threads, torch version) and
    ``settings``."""
    device = args.device if args.device == "cpu" else torch.cuda.get_device_name(0)
    settings = ("batch_size", "channels_last", "compile", "repeats", "latency_iters", "train",
                "sample_seconds")
    return {
        "machine": {"device": device, "threads": torch.get_num_threads(), "torch": torch.__version__},
        "settings": {key: getattr(args, key) for key in settings},
    }


def _progress_bar(args: argparse.Namespace, total: int, dtype: str):
    from tqdm import tqdm

    disable = not sys.stderr.isatty() if args.progress is None else not args.progress
    return tqdm(total=total, desc=f"bench {dtype}", unit="step", disable=disable, file=sys.stderr)


def run(args: argparse.Namespace) -> dict:
    """Run the benchmark as configured by ``args`` (the options of :func:`~inception_zoo.bench.build_parser`);
    returns the JSON report: ``machine``, ``settings``, ``matmul_gflops`` (GFLOP/s) and ``runs``, one per
    dtype, each with the figures of :func:`bench_model` per model plus ``matmul_fraction`` per variant.
    Runs with ``args.threads`` torch threads if given (restored afterwards).

    Raises:
        ValueError: as :func:`check_args`, before anything is measured.
        ImportError: a peer's library is not installed.
    """
    names = check_args(args)
    threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        return _run(args, names)
    finally:
        torch.set_num_threads(threads)


def _run(args: argparse.Namespace, names: list[str]) -> dict:
    dtypes = args.dtype or (["fp16"] if args.device == "cuda" else ["fp32"])  # on a GPU the default is AMP
    report = {**_header(args), "matmul_gflops": matmul_gflops(args.device), "runs": []}
    per_model = args.repeats * (1 + int(args.train)) + (3 if args.memory else 0)
    for dtype in dtypes:
        args.dtype_now = dtype
        with _progress_bar(args, per_model * len(names), dtype) as bar:
            models = []
            for name in names:
                bar.set_postfix_str(name)
                models.append(bench_model(name, args, bar))
        report["runs"].append({"dtype": dtype, "models": models})
    # measured again at the end, the better of the two kept: one reading can catch the machine busy
    report["matmul_gflops"] = max(report["matmul_gflops"], matmul_gflops(args.device))
    for entry in (m for run_ in report["runs"] for m in run_["models"]):
        for result in entry["results"].values():
            result["matmul_fraction"] = result["achieved_gflops"] / report["matmul_gflops"]
    return report
