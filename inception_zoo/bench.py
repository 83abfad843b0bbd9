"""Comparison benchmark: our models, their deploy mode and the peers' (torchvision, timm, pytorchcv).

``inception-zoo bench`` (or ``python benchmarks/compare.py``) measures, for every model with a peer, in
one process, the same architecture with the same weights on the same machine:

* eval latency at batch 1 (ms per forward) and eval throughput at batch N (images/s),
* train-step time at batch N (forward, backward, SGD step; ours and peer, deploy mode being eval-only),
* peak memory of an eval forward at batch N (CPU: resident-set growth, measured in a fresh child process
  per model so one measurement does not hide another; CUDA: ``max_memory_allocated``).

After warm-up, the variants are measured in turn, ours / deploy / peer, with the order rotated every
repeat so that drift of the machine (turbo, other load) falls on all of them alike; one sample is as
many forwards as fill about half a second (a quarter at batch 1), and each figure is the median over the
repeats. Deploy mode's convolutions are also timed alone, in the same repeats, which gives the *ceiling*
of deploy/peer: what it would be if nothing but the convolutions took time. Ratios are peer time / our
time (> 1: ours faster). The machine's own fp32 matrix-multiply rate (``torch.mm``, 2048×2048, same
threads; the best reading, taken at the start and at the end) is measured too, and each model's
achieved rate (2 × MACs × images/s) is reported as a fraction of it.
"""

from __future__ import annotations

import argparse
import copy
import contextlib
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

__all__ = ["run", "main", "matmul_gflops", "TARGETS"]

VARIANTS = ("ours", "deploy", "peer")
# The issue's targets, checked against a CPU fp32 run at batch 8 with channels_last.
TARGETS = {"ours/peer": 1.0, "deploy/peer": 1.2, "deploy_matmul_fraction": 0.6}
MATMUL_TARGET_MODELS = ("inception_v1_bn", "inception_v3")
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
SAMPLE_SECONDS = 0.5  # default length of one batch-N timing sample (batch 1: half); longer samples are steadier


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _time(fn: Callable[[], object], iters: int, device: str) -> float:
    """Mean seconds per call over ``iters`` calls."""
    _sync(device)
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / iters


def matmul_gflops(device: str = "cpu", n: int = 2048, repeats: int = 10, warmup_s: float = 1.0) -> float:
    """The machine's fp32 matrix-multiply rate in GFLOP/s (2·n³ per product): after ``warmup_s`` seconds
    of products (clocks and caches settle), the best of ``repeats``, since the question is what the
    machine can do."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    start = time.perf_counter()
    while time.perf_counter() - start < warmup_s:
        torch.mm(a, b)
        _sync(device)
    times = [_time(lambda: torch.mm(a, b), 1, device) for _ in range(repeats)]
    return 2 * n**3 / min(times) / 1e9


def _autocast(device: str, dtype: str):
    if DTYPES[dtype] is None:
        return contextlib.nullcontext()
    return torch.autocast(device, dtype=DTYPES[dtype])


def _build(name: str, device: str, channels_last: bool, compile_: bool) -> dict[str, nn.Module]:
    """Ours, deploy and peer with identical weights (the peer's random init loaded into ours)."""
    from .deploy import optimize_for_inference
    from .registry import create_model
    from .weights import PEERS, load_pretrained

    layout = PEERS[name][0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = layout.build(False)
    ours = create_model(name)
    load_pretrained(ours, peer.state_dict(), source=layout.source, transform_input=False)
    models = {"ours": ours.eval(), "deploy": optimize_for_inference(ours), "peer": peer.eval()}
    for key, model in models.items():
        model.to(device)
        if channels_last:
            model.to(memory_format=torch.channels_last)
        if compile_:
            models[key] = torch.compile(model)
    return models


def _input(batch: int, size, device: str, channels_last: bool) -> torch.Tensor:
    x = torch.randn(batch, *size, device=device)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _train_step_fn(model: nn.Module, x: torch.Tensor, num_classes: int) -> Callable[[], None]:
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-6, momentum=0.9)
    target = torch.randint(0, num_classes, (x.shape[0],), device=x.device)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        out = model(x)
        out = out[0] if isinstance(out, tuple) else out
        loss_fn(out, target).backward()
        opt.step()

    return step


def _peak_memory_mb(name: str, variant: str, args) -> float | None:
    """Peak memory of one eval forward at batch N, in MB (CPU: RSS growth in a child process)."""
    if args.device == "cuda":
        models = _build(name, args.device, args.channels_last, False)
        x = _input(args.batch_size, _size_of(name), args.device, args.channels_last)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        with torch.no_grad(), _autocast(args.device, args.dtype_now):
            models[variant](x)
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    cmd = [sys.executable, "-m", "inception_zoo.bench", "--memory-probe", name, variant,
           "--batch-size", str(args.batch_size), "--dtype", args.dtype_now]
    if args.channels_last:
        cmd.append("--channels-last")
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        return None
    return float(proc.stdout.strip().splitlines()[-1])


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def _memory_probe(name: str, variant: str, args) -> None:
    """Child process: build one variant, reset the peak-RSS mark, run one eval forward, print the growth
    of the resident set in MB (Linux: /proc/self/clear_refs and VmHWM)."""
    model = _build(name, "cpu", args.channels_last, False)[variant]
    x = _input(args.batch_size, _size_of(name), "cpu", args.channels_last)
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    base = _rss_kib("VmRSS")
    with torch.no_grad(), _autocast("cpu", args.dtype_now):
        model(x)
    print((_rss_kib("VmHWM") - base) / 1024)


def _record_convs(model: nn.Module, x: torch.Tensor) -> list[Callable[[], object]]:
    """Every :class:`~inception_zoo.deploy.DeployConv2d` call of one forward of ``model`` on ``x``, each as
    a closure that repeats it on the same arguments."""
    from .deploy import DeployConv2d

    calls: list[Callable[[], object]] = []

    def record(mod, a, kw, out):
        calls.append(lambda: mod(*a, **kw))

    handles = [m.register_forward_hook(record, with_kwargs=True) for m in model.modules() if isinstance(m, DeployConv2d)]
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


def _iterations(fn: Callable[[], object], seconds: float, at_least: int, device: str) -> int:
    """Calls per timing sample so that one sample lasts about ``seconds`` (short samples are noisy)."""
    return max(at_least, math.ceil(seconds / _time(fn, 1, device)))


def _size_of(name: str):
    from .registry import create_model

    with torch.device("meta"):
        return tuple(create_model(name).default_cfg["input_size"])


def _bench_model(name: str, args, progress) -> dict:
    from .analysis import count_macs
    from .registry import create_model
    from .weights import PEERS

    models = _build(name, args.device, args.channels_last, args.compile)
    size = _size_of(name)
    macs = count_macs(create_model(name))
    x1 = _input(1, size, args.device, args.channels_last)
    xn = _input(args.batch_size, size, args.device, args.channels_last)
    times: dict[str, dict[str, list[float]]] = {v: {"latency": [], "throughput": [], "train": []} for v in VARIANTS}

    with torch.no_grad(), _autocast(args.device, args.dtype_now):
        for v in VARIANTS:  # warm-up (oneDNN primitive caches, weight packing, compilation)
            for _ in range(2):
                models[v](x1)
                models[v](xn)
        # as many forwards per sample as fill --sample-seconds (half that at batch 1), the peer's speed deciding
        iters = {
            "latency": _iterations(lambda: models["peer"](x1), args.sample_seconds / 2, args.latency_iters, args.device),
            "throughput": _iterations(lambda: models["peer"](xn), args.sample_seconds, 1, args.device),
        }
        calls = _record_convs(models["deploy"], xn) if not args.compile else []
        conv_only: list[float] = []
        for r in range(args.repeats):
            order = VARIANTS[r % 3:] + VARIANTS[: r % 3]
            for v in order:
                times[v]["latency"].append(_time(lambda: models[v](x1), iters["latency"], args.device))
                times[v]["throughput"].append(_time(lambda: models[v](xn), iters["throughput"], args.device))
            if calls:  # in the same repeat as the others, so that drift of the machine cancels here too
                conv_only.append(_conv_only_seconds(calls, args.device))
            progress.update(1)
        del calls

    if args.train:
        train_models = {v: copy.deepcopy(models[v]) for v in ("ours", "peer")}
        steps = {v: _train_step_fn(m, xn, 1000) for v, m in train_models.items()}
        with _autocast(args.device, args.dtype_now):
            for v in steps:
                steps[v]()
            for r in range(args.repeats):
                for v in (("ours", "peer") if r % 2 == 0 else ("peer", "ours")):
                    times[v]["train"].append(_time(steps[v], 1, args.device))
                progress.update(1)
        del train_models, steps

    results: dict[str, dict] = {}
    for v in VARIANTS:
        lat = statistics.median(times[v]["latency"])
        thr = args.batch_size / statistics.median(times[v]["throughput"])
        results[v] = {
            "latency_ms": lat * 1000,
            "throughput_img_s": thr,
            "train_step_ms": statistics.median(times[v]["train"]) * 1000 if times[v]["train"] else None,
            "achieved_gflops": 2 * macs * thr / 1e9,
            "samples": {k: [t * 1000 for t in vals] for k, vals in times[v].items()},
        }
    if args.memory:
        for v in VARIANTS:
            results[v]["peak_memory_mb"] = _peak_memory_mb(name, v, args)
            progress.update(1)

    results["deploy"]["conv_only_ms"] = statistics.median(conv_only) * 1000 if conv_only else None

    def ratio(a: str) -> dict:
        ours, peer = results[a], results["peer"]
        out = {
            "latency": peer["latency_ms"] / ours["latency_ms"],
            "throughput": ours["throughput_img_s"] / peer["throughput_img_s"],
        }
        if ours["train_step_ms"] and peer["train_step_ms"]:
            out["train"] = peer["train_step_ms"] / ours["train_step_ms"]
        if ours.get("conv_only_ms"):
            # batch-N peer time over the deploy model's convolutions alone: the most any fusion could give
            out["ceiling"] = 1000 * args.batch_size / peer["throughput_img_s"] / ours["conv_only_ms"]
        return out

    layouts = PEERS[name]
    return {
        "model": name,
        "peer": f"{layouts[0].source} {layouts[0].model}",
        "input_size": list(size),
        "macs": macs,
        "iterations_per_sample": iters,
        "results": results,
        "ratios": {"ours/peer": ratio("ours"), "deploy/peer": ratio("deploy")},
    }


def _machine(device: str, threads: int) -> dict:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    facts = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": device if device == "cpu" else torch.cuda.get_device_name(0),
    }
    with contextlib.suppress(Exception):
        import timm
        import torchvision

        facts.update(torchvision=torchvision.__version__, timm=timm.__version__)
    return facts


def run(args: argparse.Namespace) -> dict:
    """Run the benchmark as configured by ``args`` (see :func:`build_parser`); returns the JSON report."""
    from tqdm import tqdm

    from .registry import list_models
    from .weights import PEERS

    if args.threads:
        torch.set_num_threads(args.threads)
    names = [n for n in list_models(args.models) if n in PEERS]
    if not names:
        raise SystemExit(f"inception-zoo bench: no model with a peer matches {args.models!r}; "
                         f"models with peers: {', '.join(sorted(PEERS))}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("inception-zoo bench: --device cuda but no CUDA device is available")
    report = {
        "machine": _machine(args.device, torch.get_num_threads()),
        "settings": {
            "batch_size": args.batch_size, "channels_last": args.channels_last, "compile": args.compile,
            "repeats": args.repeats, "latency_iters": args.latency_iters, "train": args.train,
            "sample_seconds": args.sample_seconds,
        },
        "matmul_gflops": matmul_gflops(args.device),
        "runs": [],
    }
    per_model = args.repeats * (1 + int(args.train)) + (3 if args.memory else 0)
    for dtype in args.dtype:
        args.dtype_now = dtype
        bar = tqdm(total=per_model * len(names), desc=f"bench {dtype}", unit="step",
                   disable=not sys.stderr.isatty() if args.progress is None else not args.progress, file=sys.stderr)
        with bar:
            models = []
            for name in names:
                bar.set_postfix_str(name)
                models.append(_bench_model(name, args, bar))
        report["runs"].append({"dtype": dtype, "models": models})
    # measured again at the end, the better of the two kept: one reading can catch the machine busy
    report["matmul_gflops"] = max(report["matmul_gflops"], matmul_gflops(args.device))
    for run_ in report["runs"]:
        for entry in run_["models"]:
            for v in VARIANTS:
                entry["results"][v]["matmul_fraction"] = entry["results"][v]["achieved_gflops"] / report["matmul_gflops"]
    return report


def _fmt(v, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def table(report: dict, fmt: str = "github") -> str:
    """The terminal/markdown table of a report: one block of rows per dtype."""
    from tabulate import tabulate

    headers = ["dtype", "model", "variant", "latency b1 (ms)", "images/s", "train step (ms)", "peak mem (MB)",
               "GFLOP/s", "of matmul", "vs peer: latency", "throughput", "train", "ceiling"]
    rows = []
    for run_ in report["runs"]:
        for m in run_["models"]:
            for v in VARIANTS:
                r = m["results"][v]
                ratio = m["ratios"].get(f"{v}/peer", {})
                rows.append([
                    run_["dtype"], m["model"], v if v != "peer" else m["peer"], _fmt(r["latency_ms"], ".1f"),
                    _fmt(r["throughput_img_s"], ".1f"), _fmt(r["train_step_ms"], ".0f"),
                    _fmt(r.get("peak_memory_mb"), ".0f"), _fmt(r["achieved_gflops"], ".0f"),
                    _fmt(100 * r["matmul_fraction"], ".0f") + "%", _fmt(ratio.get("latency")),
                    _fmt(ratio.get("throughput")), _fmt(ratio.get("train")), _fmt(ratio.get("ceiling")),
                ])
    return tabulate(rows, headers=headers, tablefmt=fmt, disable_numparse=True)


def _paired_range(ours: dict, peer: dict) -> tuple[float, float]:
    """Lowest and highest throughput ratio over the repeats, each repeat's ours and peer taken together
    (they ran back to back), which shows how far one reading of the median can be trusted."""
    pairs = zip(ours["samples"]["throughput"], peer["samples"]["throughput"])
    ratios = [p / o for o, p in pairs]
    return min(ratios), max(ratios)


def targets(report: dict) -> list[list[str]]:
    """Rows: model, target, measured (median), per-repeat range, met?, ceiling (only for a CPU fp32 run at
    batch 8 with channels_last)."""
    s = report["settings"]
    rows = []
    if report["machine"]["device"] != "cpu" or s["batch_size"] != 8 or not s["channels_last"]:
        return rows
    for run_ in report["runs"]:
        if run_["dtype"] != "fp32":
            continue
        for m in run_["models"]:
            for key in ("ours/peer", "deploy/peer"):
                got = m["ratios"][key]["throughput"]
                low, high = _paired_range(m["results"][key.split("/")[0]], m["results"]["peer"])
                rows.append([m["model"], f"{key} throughput >= {TARGETS[key]}", f"{got:.2f}", f"{low:.2f}-{high:.2f}",
                             "yes" if got >= TARGETS[key] else "**no**", _fmt(m["ratios"][key].get("ceiling"))])
            if m["model"] in MATMUL_TARGET_MODELS:
                got = m["results"]["deploy"]["matmul_fraction"]
                goal = TARGETS["deploy_matmul_fraction"]
                rows.append([m["model"], f"deploy >= {goal:.0%} of matmul rate", f"{got:.0%}", "-",
                             "yes" if got >= goal else "**no**", "-"])
    return rows


def markdown(report: dict, command: str) -> str:
    """``docs/benchmarks.md``: machine facts, settings, results and the targets."""
    from tabulate import tabulate

    mach, s = report["machine"], report["settings"]
    facts = "\n".join(f"- {k}: {v}" for k, v in mach.items())
    lines = [
        "<!-- Written by `inception-zoo bench`; rerun it to refresh. -->",
        "",
        "# Benchmarks: ours vs the peers",
        "",
        f"Command: `{command}`",
        "",
        "## Machine",
        "",
        facts,
        f"- fp32 matrix-multiply rate (torch.mm 2048x2048, best reading): {report['matmul_gflops']:.0f} GFLOP/s",
        "",
        "## Settings",
        "",
        f"Batch {s['batch_size']} for throughput, train step and memory; batch 1 for latency; channels_last "
        f"{'on' if s['channels_last'] else 'off'} on both sides; torch.compile {'on' if s['compile'] else 'off'}; "
        f"{s['repeats']} repeats, alternating ours / deploy / peer, each sample about {s['sample_seconds']} s of "
        "forwards (half that at batch 1); medians. Ratios are peer time / our time "
        "(> 1: ours faster). *deploy* is `optimize_for_inference(model)` (eval only: no train step). "
        "GFLOP/s = 2 x MACs x images/s; *of matmul* compares it with the fp32 matrix-multiply rate above, "
        "so bf16 rows, whose multiply-adds run at up to twice the fp32 rate, go above 100%, and so can fp32 "
        "rows where oneDNN's convolution kernels beat `torch.mm`. *ceiling* (deploy rows): deploy/peer "
        "throughput if nothing but deploy mode's convolutions took time (see the targets below).",
        "",
        "## Results",
        "",
        table(report),
        "",
    ]
    rows = targets(report)
    if rows:
        lines += ["## Targets (CPU, fp32, batch 8, channels_last)", "",
                  "*ceiling*: the peer's batch time over the time the deploy model spends in its convolutions "
                  "alone (each oneDNN convolution re-run in isolation on its recorded input, summed; pooling, "
                  "concatenation and the head counted as free). No fusion around these convolution kernels can "
                  "take deploy/peer above it; only doing fewer multiply-adds could.", "",
                  "*per repeat*: the lowest and highest ratio of single repeats (ours and the peer measured back "
                  "to back); a target inside that range is a tie within this machine's noise.", "",
                  tabulate(rows, headers=["model", "target", "measured", "per repeat", "met", "ceiling"], tablefmt="github",
                           disable_numparse=True), ""]
    return "\n".join(lines)


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="inception-zoo bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--batch-size", type=_positive, default=8, metavar="N")
    parser.add_argument("--channels-last", action="store_true", help="channels_last weights and inputs, both sides")
    parser.add_argument("--dtype", nargs="+", choices=list(DTYPES), default=None,
                        help="fp32, or autocast to bf16 / fp16; several run one after the other "
                             "(default: fp32 on cpu, fp16 on cuda)")
    parser.add_argument("--compile", action="store_true", help="torch.compile every variant")
    parser.add_argument("--models", default="*", metavar="PATTERN", help="fnmatch pattern (models with a peer)")
    parser.add_argument("--repeats", type=_positive, default=5)
    parser.add_argument("--latency-iters", type=_positive, default=3, metavar="K",
                        help="at least K batch-1 forwards per latency sample (default 3)")
    parser.add_argument("--sample-seconds", type=_positive_float, default=SAMPLE_SECONDS, metavar="S",
                        help=f"forwards per timing sample to fill about S seconds, half at batch 1 (default {SAMPLE_SECONDS})")
    parser.add_argument("--threads", type=_positive, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--no-train", dest="train", action="store_false", help="skip the train-step timing")
    parser.add_argument("--no-memory", dest="memory", action="store_false", help="skip the peak-memory probes")
    parser.add_argument("--json", default="benchmark.json", metavar="FILE", help="JSON report (default: benchmark.json)")
    parser.add_argument("--markdown", default=None, metavar="FILE", help="also write a markdown report (docs/benchmarks.md)")
    parser.add_argument("--progress", action="store_true", default=None, help="force the progress bar")
    parser.add_argument("--memory-probe", nargs=2, metavar=("MODEL", "VARIANT"), help=argparse.SUPPRESS)
    return parser


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive, finite number of seconds, got {text}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _check_writable(option: str, path: str) -> None:
    folder = Path(path).resolve().parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise SystemExit(f"inception-zoo bench: {option} {path}: folder {folder} does not exist or is not writable")


def main(argv: Sequence[str] | None = None, args: argparse.Namespace | None = None) -> int:
    """Command line entry (``inception-zoo bench``, ``benchmarks/compare.py``). ``argv``: the options
    after ``bench`` (default ``sys.argv[1:]``); or ``args`` already parsed, with ``args.argv`` those
    options, as the ``inception-zoo`` command passes them. Returns the exit status."""
    if args is None:
        argv = list(sys.argv[1:] if argv is None else argv)
        args = build_parser().parse_args(argv)
        args.argv = argv
    if args.dtype is None:
        args.dtype = ["fp16"] if args.device == "cuda" else ["fp32"]  # on a GPU the default is AMP
    if args.memory_probe:
        if args.threads:
            torch.set_num_threads(args.threads)
        args.dtype_now = args.dtype[0]
        _memory_probe(*args.memory_probe, args)
        return 0
    _check_writable("--json", args.json)  # before the long part
    if args.markdown:
        _check_writable("--markdown", args.markdown)
    report = run(args)
    print(table(report))
    try:
        Path(args.json).write_text(json.dumps(report, indent=1))
        print(f"wrote {args.json}")
        if args.markdown:
            command = "inception-zoo bench " + shlex.join(getattr(args, "argv", []))
            Path(args.markdown).write_text(markdown(report, command.strip()) + "\n")
            print(f"wrote {args.markdown}")
    except OSError as e:
        print(f"inception-zoo bench: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
