"""Peak memory of one eval forward, probed in a fresh child process on CPU (``python -m inception_zoo.bench
--memory-probe MODEL VARIANT``), and the random input images every figure is measured on. Units: MB (MiB)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import warnings
from pathlib import Path

import torch
from torch import nn

from .timing import autocast

__all__ = ["EAGER", "memory_probe", "peak_memory_mb", "images"]

EAGER = ("ours", "deploy", "peer")  # plain PyTorch modules: memory probes, --compile


def images(batch: int, name: str, device: str, channels_last: bool) -> torch.Tensor:
    """Random images of shape (batch, *input_size) at the model's default input size."""
    from ..registry import get_record

    x = torch.randn(batch, *get_record(name).input_size, device=device)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _probe_command(name: str, variant: str, precision: str, args: argparse.Namespace) -> list[str]:
    cmd = [sys.executable, "-m", "inception_zoo.bench", "--memory-probe", name, variant,
           "--batch-size", str(args.batch_size), "--dtype", precision]
    if args.channels_last:
        cmd.append("--channels-last")
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    return cmd


def peak_memory_mb(name: str, variant: str, precision: str, args: argparse.Namespace) -> float | None:
    """Peak memory of one eval forward of ``variant`` (one of ``EAGER``) at batch N and ``precision``, in MB
    (2**20 bytes). CUDA: ``max_memory_allocated`` growth, here; CPU: resident-set growth in a fresh child
    process (:func:`memory_probe`), None if the child fails."""
    if args.device == "cuda":
        model = _one_variant(name, variant).to(args.device)
        if args.channels_last:
            model.to(memory_format=torch.channels_last)
        x = images(args.batch_size, name, args.device, args.channels_last)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        with torch.no_grad(), autocast(args.device, precision):
            model(x)
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    command = _probe_command(name, variant, precision, args)
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
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
    """One of the ``EAGER`` variants in eval mode at random init: what its memory depends on (shapes, not
    weight values), without building the others.

    Raises:
        KeyError: a variant other than ours, deploy or peer.
    """
    from ..deploy import optimize_for_inference
    from ..factory import create_model
    from ..registry import get_record
    from ..weights.sources import build_peer, torch_peers

    if variant not in EAGER:
        raise KeyError(f"no memory probe for variant {variant!r}; probed: {', '.join(EAGER)}")
    if variant == "peer":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return build_peer(torch_peers(get_record(name).peers)[0], aux=False).eval()
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
    model = _one_variant(name, variant)
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    x = images(args.batch_size, name, "cpu", args.channels_last)
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    base = _rss_kib("VmRSS")
    with torch.no_grad(), autocast("cpu", args.dtype_now):
        model(x)
    return (_rss_kib("VmHWM") - base) / 1024
