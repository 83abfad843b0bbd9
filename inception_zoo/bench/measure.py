"""What is measured on which models: the variants of a model (ours, its deploy backends, the record's
first peer and the peer in the same runtimes; an int8 copy of ours), their peak memory and deviation from
our eager logits, one model's figures (:func:`bench_model`) and the whole run (:func:`run`); the timing
itself is in :mod:`.timing`. Units: seconds inside; ms, images/s, GFLOP/s and MB in the report."""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from functools import partial

import torch
from torch import nn

from .memory import EAGER, images, peak_memory_mb
from .timing import (
    MATMUL_SIZES,
    autocast,
    compiled,
    inference_compile,
    matmul_rates,
    native_precisions,
    time_eval,
    time_train,
)

__all__ = ["CALIBRATION_IMAGES", "EAGER", "OUR_PATHS", "PEER_CHOICES", "VARIANTS", "bench_model",
           "build_variants", "check_args", "fastest", "models_with_peer", "peer_choice",
           "run"]

RUNTIMES = ("onnxruntime", "openvino")  # the deploy backends besides torch, and the peer in them
PEER_CHOICES = (*RUNTIMES, "compile")  # --peers: the peer in each runtime, and torch.compile of it
# Every variant a model can have, in the report's order. "ours": our model, eager; "deploy":
# optimize_for_inference(ours, "torch"); "deploy_<runtime>": optimize_for_inference(ours, runtime);
# "int8_onnxruntime": ours quantized (int8 run only); "peer": the record's first peer, eager;
# "peer_<runtime>": the peer exported to that runtime; "peer_compile": torch.compile of the peer.
VARIANTS = ("ours", "deploy", *(f"deploy_{b}" for b in RUNTIMES), "int8_onnxruntime", "peer",
            *(f"peer_{b}" for b in RUNTIMES), "peer_compile")
OUR_PATHS = ("deploy", *(f"deploy_{b}" for b in RUNTIMES))  # optimize_for_inference's backends
# The variants compared pairwise (ours with the eager peer, ours with the peer in each runtime): each pair
# is timed back to back (see timing.time_eval); the others stand alone.
PAIRS = (("ours", "peer"), *((f"deploy_{b}", f"peer_{b}") for b in RUNTIMES))
CALIBRATION_IMAGES = 16  # random images the int8 variant is calibrated on (for timing only)


def models_with_peer(pattern: str = "*") -> list[str]:
    """The registered models matching the fnmatch ``pattern`` whose record names a PyTorch peer, sorted.

    Raises:
        ValueError: none matches (the message lists the models with a peer).
    """
    from ..registry import list_records
    from ..weights.sources import torch_peers

    names = [r.name for r in list_records(pattern) if torch_peers(r.peers)]
    if not names:
        with_peer = ", ".join(r.name for r in list_records() if torch_peers(r.peers))
        raise ValueError(f"no model with a peer matches {pattern!r}; models with peers: {with_peer}")
    return names


def peer_choice(args: argparse.Namespace) -> list[str]:
    """The runtime peers ``--peers`` selects, in ``PEER_CHOICES`` order: by default every installed runtime
    (CPU only: the runtimes run on CPU) and ``compile``; none for ``--peers none`` or a bare ``--peers``.
    The same selection decides which of our deploy backends are measured besides torch."""
    from ..deploy import available_backends

    if args.peers is None:
        installed = available_backends() if args.device == "cpu" else []
        return [p for p in PEER_CHOICES if p in installed or p == "compile"]
    return [p for p in PEER_CHOICES if p in args.peers]


def check_args(args: argparse.Namespace) -> list[str]:
    """The models ``args`` selects (see :func:`models_with_peer`), checked before anything is measured.

    Raises:
        ValueError: no model with a peer matches ``args.models``; ``--device cuda`` without a CUDA device;
            ``--peers none`` beside another choice; a runtime in ``--peers`` that is not installed or asked
            for with ``--device cuda``; ``--dtype int8`` on CUDA, without onnxruntime, or without
            :mod:`inception_zoo.deploy.quantize`.
    """
    from ..deploy import available_backends

    names = models_with_peer(args.models)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda but no CUDA device is available")
    peers = args.peers or []
    if "none" in peers and len(peers) > 1:
        raise ValueError(f"--peers none cannot be combined with {' '.join(p for p in peers if p != 'none')}")
    for runtime in (p for p in peers if p in RUNTIMES):
        if args.device == "cuda":
            raise ValueError(f"--peers {runtime}: the runtimes run on CPU (with --device cuda: compile only)")
        if runtime not in available_backends():
            raise ValueError(f"--peers {runtime}: the {runtime} package (and onnx) is not installed: "
                             f"pip install \"inception_zoo[deploy]\"")
    if "int8" in (args.dtype or []):
        if args.device != "cpu":
            raise ValueError("--dtype int8 runs on CPU only (ONNX Runtime's quantized kernels)")
        if "onnxruntime" not in available_backends():
            raise ValueError("--dtype int8 needs onnxruntime and onnx: pip install \"inception_zoo[deploy]\"")
        try:
            importlib.import_module("inception_zoo.deploy.quantize")
        except ImportError as e:
            raise ValueError(f"--dtype int8 needs inception_zoo.deploy.quantize: {e}") from None
    return names


def _ours_and_peer(name: str) -> tuple[nn.Module, nn.Module]:
    """Our model and the record's first PyTorch peer (no aux head), in eval mode with identical weights (the peer's
    random init loaded into ours).

    Raises:
        ImportError: the peer's library is not installed.
    """
    from ..factory import create_model
    from ..registry import get_record
    from ..weights import load_pretrained
    from ..weights.sources import build_peer, torch_peers

    peer_spec = torch_peers(get_record(name).peers)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the peer libraries' own deprecation warnings
        peer = build_peer(peer_spec, aux=False)
    ours = create_model(name)
    load_pretrained(ours, peer.state_dict(), source=peer_spec.source, transform_input=False)
    return ours.eval(), peer.eval()


def _int8(ours: nn.Module, name: str, threads: int) -> nn.Module:
    """``ours`` quantized to int8 in ONNX Runtime (:func:`inception_zoo.deploy.quantize.quantize`),
    calibrated on ``CALIBRATION_IMAGES`` random-normal images at the model's input size: activation
    ranges fit for timing, not for accuracy (calibrate on real images for that)."""
    from ..deploy.quantize import quantize
    from ..registry import get_record

    generator = torch.Generator().manual_seed(0)
    calibration = torch.randn(CALIBRATION_IMAGES, *get_record(name).input_size, generator=generator)
    return quantize(ours, calibration, backend="onnxruntime", threads=threads)


def _timed(build: Callable[[], nn.Module]) -> tuple[nn.Module, float]:
    """``build()`` and the seconds it took."""
    start = time.perf_counter()
    model = build()
    return model, time.perf_counter() - start


def build_variants(
    name: str, args: argparse.Namespace, dtype: str
) -> tuple[dict[str, nn.Module], dict[str, float]]:
    """The variants of model ``name`` measured in the ``dtype`` run, keys in ``VARIANTS`` order, in eval mode
    with identical weights, uncompiled (``--compile`` is applied by :func:`bench_model`), on ``args.device``
    and channels_last with ``args.channels_last``; and the seconds each took to build from ours or the peer
    (the deploy rewrite, ONNX export and runtime compilation, quantization; 0 for ours and the peer;
    torch.compile compiles later, at the first forwards).

    * every run: ours, deploy, and ours deployed in the runtimes ``--peers`` selects (fp32 and int8 runs
      only: the runtimes compute in float32);
    * int8 run: ``int8_onnxruntime``, ours quantized; no peer (our float32 paths are the comparison);
    * other runs: the peer, the peer in the selected runtimes (fp32 run only), and ``peer_compile`` if
      ``compile`` is selected and ``--compile`` does not already compile the peer row.

    Raises:
        ImportError: the peer's library, a runtime, or (int8) the quantizer is not installed.
    """
    from ..deploy import optimize_for_inference, runtime_model
    from ..registry import get_record

    peers, threads = peer_choice(args), torch.get_num_threads()
    runtimes = [b for b in RUNTIMES if b in peers] if dtype in ("fp32", "int8") else []
    ours, peer = _ours_and_peer(name)
    models, setup = {"ours": ours}, {"ours": 0.0}
    models["deploy"], setup["deploy"] = _timed(partial(optimize_for_inference, ours, "torch"))
    if dtype != "int8":
        models["peer"], setup["peer"] = peer, 0.0
    for model in models.values():
        model.to(args.device)
        if args.channels_last:
            model.to(memory_format=torch.channels_last)
    size = get_record(name).input_size
    for b in runtimes:
        key = f"deploy_{b}"
        models[key], setup[key] = _timed(partial(optimize_for_inference, ours, b, threads=threads))
        if dtype == "fp32":
            key = f"peer_{b}"
            build = partial(runtime_model, peer, b, threads=threads, input_size=size)
            models[key], setup[key] = _timed(build)
    if dtype == "int8":
        models["int8_onnxruntime"], setup["int8_onnxruntime"] = _timed(partial(_int8, ours, name, threads))
    elif "compile" in peers and not args.compile:
        models["peer_compile"], setup["peer_compile"] = compiled(peer), 0.0
    return {k: models[k] for k in VARIANTS if k in models}, setup


def _first_calls(models: dict[str, nn.Module], x1: torch.Tensor, xn: torch.Tensor,
                 reference: torch.Tensor) -> tuple[dict[str, float], dict[str, float]]:
    """Each variant's first forward at batch 1 and at batch N (where torch.compile compiles): their
    seconds, and the batch-N logits' maximum deviation from ``reference`` relative to its largest
    magnitude, max |out - reference| / max |reference|."""
    seconds, deviation = {}, {}
    for v, model in models.items():
        start = time.perf_counter()
        model(x1)
        out = model(xn)
        seconds[v] = time.perf_counter() - start
        out = out[0] if isinstance(out, tuple) else out
        deviation[v] = float((out.float() - reference).abs().max() / reference.abs().max())
    return seconds, deviation


def _groups(models: dict[str, nn.Module]) -> list[tuple[str, ...]]:
    """The variants of ``models`` in ``VARIANTS`` order, those of a pair in ``PAIRS`` (where both exist)
    together at the place of the first."""
    paired = {v: pair for pair in PAIRS if all(k in models for k in pair) for v in pair}
    groups = []
    for v in models:
        group = paired.get(v, (v,))
        if group not in groups:
            groups.append(group)
    return groups


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


def fastest(results: dict[str, dict], keys: tuple[str, ...], metric: str) -> str | None:
    """The key among ``keys`` present in ``results`` with the best ``metric``: "latency" (lowest
    ``latency_ms``) or "throughput" (highest ``throughput_img_s``); None if none is present."""
    present = [k for k in keys if k in results]
    if not present:
        return None
    if metric == "latency":
        return min(present, key=lambda k: results[k]["latency_ms"])
    return max(present, key=lambda k: results[k]["throughput_img_s"])


def _ratios(ours: dict, other: dict, batch: int) -> dict[str, float]:
    """Other's time / our time (> 1: ours faster) for latency, throughput, train step where both have one,
    and the *ceiling* where ``ours`` has a conv-only time: the other's batch-N time over it."""
    out = {
        "latency": other["latency_ms"] / ours["latency_ms"],
        "throughput": ours["throughput_img_s"] / other["throughput_img_s"],
    }
    if ours["train_step_ms"] and other["train_step_ms"]:
        out["train"] = other["train_step_ms"] / ours["train_step_ms"]
    if ours.get("conv_only_ms"):
        out["ceiling"] = 1000 * batch / other["throughput_img_s"] / ours["conv_only_ms"]
    return out


def _all_ratios(results: dict[str, dict], batch: int) -> tuple[dict[str, dict], dict[str, str]]:
    """The ratios of :func:`_ratios` keyed "ours/other": ours and deploy against the eager peer, our deploy
    graph in each runtime against the peer in the same runtime, and (int8 run) the int8 variant against our
    fastest float32 path per metric ("int8_onnxruntime/fp32_best"); and that fastest path per metric."""
    pairs = [("ours", "peer"), ("deploy", "peer"), *((f"deploy_{b}", f"peer_{b}") for b in RUNTIMES)]
    ratios = {f"{a}/{b}": _ratios(results[a], results[b], batch)
              for a, b in pairs if a in results and b in results}
    best = {}
    if "int8_onnxruntime" in results:
        best = {m: fastest(results, OUR_PATHS, m) for m in ("latency", "throughput")}
        fp32 = {"latency_ms": results[best["latency"]]["latency_ms"], "train_step_ms": None,
                "throughput_img_s": results[best["throughput"]]["throughput_img_s"]}
        ratios["int8_onnxruntime/fp32_best"] = _ratios(results["int8_onnxruntime"], fp32, batch)
    return ratios, best


def _precision(variant: str, dtype: str) -> str:
    """What ``variant`` computes in during the ``dtype`` run: int8 for the quantized variant, float32 for
    the others of an int8 run, ``dtype`` otherwise."""
    if dtype == "int8":
        return "int8" if variant.startswith("int8") else "fp32"
    return dtype


def bench_model(name: str, args: argparse.Namespace, progress) -> dict:
    """Every figure of one model at ``args.dtype_now``, per variant (see :func:`build_variants`): latency
    (ms, batch 1), throughput (images/s, batch N), train step (ms; ours and peer), peak memory (MB; ours,
    deploy, peer), GFLOP/s, setup seconds, maximum deviation from our eager float32 logits on the batch-N
    input (relative to their largest magnitude; computed once, not timed), deploy's conv-only times (ms)
    and the ratios (see :func:`_all_ratios`). ``progress`` is a tqdm bar, advanced once per round and probe.

    Raises:
        ImportError: the peer's library, a runtime or the quantizer is not installed.
    """
    from ..analysis import count_macs
    from ..factory import create_model
    from ..registry import get_record

    dtype = args.dtype_now
    eager, setup = build_variants(name, args, dtype)
    macs = count_macs(create_model(name))
    x1 = images(1, name, args.device, args.channels_last)
    xn = images(args.batch_size, name, args.device, args.channels_last)
    with torch.no_grad():
        reference = eager["ours"](xn).float()
    models = {k: compiled(m) if args.compile and k in EAGER else m for k, m in eager.items()}
    with torch.no_grad(), autocast(args.device, dtype), inference_compile(models):
        first, deviation = _first_calls(models, x1, xn, reference)
        times, conv_only, iters = time_eval(models, x1, xn, args, progress, _groups(models))
    train = time_train(eager, xn, args, progress) if args.train and "peer" in models else {}
    results = {}
    for v in models:
        results[v] = {**_summary({**times[v], "train": train.get(v, [])}, args.batch_size, macs),
                      "precision": _precision(v, dtype), "max_deviation": deviation[v],
                      "setup_s": setup[v] + first[v], "peak_memory_mb": None}
    for v in _probed(args, dtype):
        results[v]["peak_memory_mb"] = peak_memory_mb(name, v, results[v]["precision"], args)
        progress.update(1)
    for key, field in (("throughput", "conv_only_ms"), ("latency", "conv_only_b1_ms")):
        results["deploy"][field] = statistics.median(conv_only[key]) * 1000 if conv_only[key] else None
    ratios, best = _all_ratios(results, args.batch_size)
    from ..weights.sources import torch_peers

    peer = torch_peers(get_record(name).peers)[0]
    entry = {
        "model": name,
        "peer": f"{peer.source} {peer.model}",
        "input_size": list(get_record(name).input_size),
        "macs": macs,
        "iterations_per_sample": iters,
        "results": results,
        "ratios": ratios,
    }
    return {**entry, "fp32_best": best} if best else entry


def _probed(args: argparse.Namespace, dtype: str) -> tuple[str, ...]:
    """The variants whose peak memory the ``dtype`` run measures: ours, deploy and the peer, with
    ``--memory``, except in the int8 run (its float32 rows are measured in the fp32 run)."""
    return EAGER if args.memory and dtype != "int8" else ()


def _header(args: argparse.Namespace) -> dict:
    """The report's ``machine`` (what measuring needs: device, torch threads, torch version) and
    ``settings`` (``peers``: the runtime peers measured, see :func:`peer_choice`)."""
    device = args.device if args.device == "cpu" else torch.cuda.get_device_name(0)
    settings = ("batch_size", "channels_last", "compile", "repeats", "latency_iters", "train",
                "sample_seconds")
    return {
        "machine": {"device": device, "threads": torch.get_num_threads(), "torch": torch.__version__},
        "settings": {**{key: getattr(args, key) for key in settings}, "peers": peer_choice(args)},
    }


def _progress_bar(args: argparse.Namespace, total: int, dtype: str):
    from tqdm import tqdm

    disable = not sys.stderr.isatty() if args.progress is None else not args.progress
    return tqdm(total=total, desc=f"bench {dtype}", unit="step", disable=disable, file=sys.stderr)


def run(args: argparse.Namespace) -> dict:
    """Run the benchmark as configured by ``args`` (the options of :func:`~inception_zoo.bench.build_parser`);
    returns the JSON report: ``machine``, ``settings``, ``matmul`` (the reference rates in GFLOP/s per
    precision, the sizes timed, the precisions the device runs natively) and ``runs``, one per dtype, each
    with the figures of :func:`bench_model` per model plus ``matmul_fraction`` per variant (None where its
    precision has no reference). Runs with ``args.threads`` torch threads if given (restored afterwards).

    Raises:
        ValueError: as :func:`check_args`, before anything is measured.
        ImportError: a peer's library, a runtime or the quantizer is not installed.
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
    report = {**_header(args), "matmul": {}, "runs": []}
    first_rates = matmul_rates(args.device, dtypes)
    for dtype in dtypes:
        args.dtype_now = dtype
        steps = args.repeats * (1 + int(args.train and dtype != "int8")) + len(_probed(args, dtype))
        with _progress_bar(args, steps * len(names), dtype) as bar:
            models = []
            for name in names:
                bar.set_postfix_str(name)
                models.append(bench_model(name, args, bar))
        report["runs"].append({"dtype": dtype, "models": models})
    # measured again at the end, the better of the two kept: one reading can catch the machine busy
    last_rates = matmul_rates(args.device, dtypes)
    rates = {p: max(rate, last_rates[p]) for p, rate in first_rates.items()}
    native = native_precisions(args.device)
    report["matmul"] = {"gflops": rates, "sizes": list(MATMUL_SIZES), "native": native}
    for entry in (m for run_ in report["runs"] for m in run_["models"]):
        for result in entry["results"].values():
            rate = rates.get(result["precision"])
            result["matmul_fraction"] = result["achieved_gflops"] / rate if rate else None
    return report
