"""``inception-zoo bench``: the options, the terminal table and the JSON report.

``benchmarks/compare.py`` builds on these: the same options plus ``--markdown``, and the machine report.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from .._args import positive_float, positive_int
from .measure import PEER_CHOICES, VARIANTS, check_args, run
from .memory import memory_probe
from .timing import DTYPES, SAMPLE_SECONDS

__all__ = ["PROG", "build_parser", "check_writable", "checked_args", "main", "table", "variant_label",
           "write_report"]

DESCRIPTION = ("Comparison benchmark: our models and their deploy backends against the peers' (torchvision, "
               "timm, pytorchcv), eager, in ONNX Runtime and OpenVINO, and torch.compile-d, side by side in "
               "one process.")
PROG = "inception-zoo bench"
HEADERS = ["dtype", "model", "variant", "latency b1 (ms)", "images/s", "train step (ms)", "peak mem (MB)",
           "GFLOP/s", "of matmul", "max dev", "setup (s)", "vs", "ratio: latency", "throughput", "train",
           "ceiling"]


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The benchmark's options, added to ``parser`` (the ``bench`` subcommand's) or to a new parser;
    returns it."""
    parser = parser or argparse.ArgumentParser(prog=PROG, description=DESCRIPTION)
    add = parser.add_argument
    add("--device", choices=["cpu", "cuda"], default="cpu")
    add("--batch-size", type=positive_int, default=8, metavar="N", help="batch of the throughput, train-step "
        "and memory figures (default 8); latency is at batch 1")
    add("--channels-last", action="store_true", help="channels_last weights and inputs, both sides")
    add("--dtype", nargs="+", choices=list(DTYPES), default=None,
        help="fp32; autocast to bf16 / fp16; or int8 (CPU only: ours quantized in ONNX Runtime, timed beside "
             "our fp32 paths); several run one after the other (default: fp32 on cpu, fp16 on cuda)")
    add("--peers", nargs="*", choices=[*PEER_CHOICES, "none"], default=None, metavar="PEER",
        help=f"runtime peers, any of {', '.join(PEER_CHOICES)}: the peer in ONNX Runtime / OpenVINO (which "
             "also run ours), and torch.compile-d with inductor and freezing (compiling takes "
             "about 1.5-2 min per model and dtype on 2 cores). Default: every installed runtime (CPU) and "
             "compile; 'none' or no value: only the eager rows")
    add("--compile", action="store_true",
        help="torch.compile (inductor, freezing) ours, deploy and the eager peer; the separate compiled-peer "
             "row is then left out")
    add("--models", default="*", metavar="PATTERN", help="fnmatch pattern (models with a peer)")
    add("--repeats", type=positive_int, default=5, help="timing rounds per model; figures are their medians")
    add("--latency-iters", type=positive_int, default=3, metavar="K",
        help="at least K batch-1 forwards per latency sample (default 3)")
    add("--sample-seconds", type=positive_float, default=SAMPLE_SECONDS, metavar="S",
        help=f"forwards per timing sample to fill about S seconds, half at batch 1 "
             f"(default {SAMPLE_SECONDS})")
    add("--threads", type=positive_int, default=None,
        help="torch threads, and the runtimes' (default: torch's)")
    add("--no-train", dest="train", action="store_false", help="skip the train-step timing")
    add("--no-memory", dest="memory", action="store_false", help="skip the peak-memory probes")
    add("--json", default="benchmark.json", metavar="FILE", help="JSON report (default: benchmark.json)")
    add("--progress", action="store_true", default=None, help="force the progress bar")
    add("--memory-probe", nargs=2, metavar=("MODEL", "VARIANT"), help=argparse.SUPPRESS)
    return parser


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def variant_label(entry: dict, key: str, dtype: str) -> str:
    """How a variant is named in the tables: "ours", "deploy", "deploy (onnxruntime)", the peer by its
    library and name, "timm inception_v3 (openvino)"; in the int8 run each also says its precision,
    "deploy (onnxruntime, int8)", "ours (fp32)"."""
    side, _, how = key.partition("_")
    name = entry["peer"] if side == "peer" else "deploy" if side == "int8" else side
    notes = [how] if how else []
    if dtype == "int8":
        notes.append(entry["results"][key]["precision"])
    return f"{name} ({', '.join(notes)})" if notes else name


def _against(entry: dict, variant: str) -> tuple[str, dict]:
    """What ``variant``'s ratios compare with, for the "vs" column ("peer", "peer (openvino)", "fp32 best";
    "-" if nothing), and the ratios ({} if none)."""
    for key, ratio in entry["ratios"].items():
        mine, other = key.split("/")
        if mine == variant:
            side, _, how = other.partition("_")
            return ("fp32 best" if other == "fp32_best" else f"{side} ({how})" if how else side), ratio
    return "-", {}


def _fraction(result: dict) -> str:
    """The "of matmul" column: the achieved rate as a percentage of its precision's reference; "-" where
    there is no reference; "check!" where it is above the reference, which no model can be (the reference
    was measured low): a measurement problem, not a fraction."""
    fraction = result.get("matmul_fraction")
    if fraction is None:
        return "-"
    return "check!" if fraction > 1 else f"{100 * fraction:.0f}%"


def _row(dtype: str, entry: dict, variant: str) -> list[str]:
    r = entry["results"][variant]
    against, ratio = _against(entry, variant)
    deviation = r["max_deviation"]
    return [
        dtype, entry["model"], variant_label(entry, variant, dtype), _fmt(r["latency_ms"], ".1f"),
        _fmt(r["throughput_img_s"], ".1f"), _fmt(r["train_step_ms"], ".0f"),
        _fmt(r.get("peak_memory_mb"), ".0f"), _fmt(r["achieved_gflops"], ".0f"), _fraction(r),
        "0" if deviation == 0 else _fmt(deviation, ".1e"), _fmt(r.get("setup_s"), ".1f"),
        against,
        *(_fmt(ratio.get(k)) for k in ("latency", "throughput", "train", "ceiling")),
    ]


def table(report: dict, fmt: str = "github") -> str:
    """The table of a report (any tabulate format; github: markdown), one row per dtype, model and variant
    (see :func:`variant_label`): latency at batch 1 (ms), throughput (images/s), train step (ms), peak
    memory (MB), achieved GFLOP/s and its fraction of the reference matmul rate at the row's precision,
    maximum deviation from our eager fp32 logits (relative), setup seconds (conversion and first forwards,
    compilation included), then the ratios against what "vs" names (its time / the row's time, > 1: the
    row faster; the ceiling for deploy). Missing figures show as "-"."""
    from tabulate import tabulate

    rows = [_row(run_["dtype"], m, v) for run_ in report["runs"] for m in run_["models"]
            for v in VARIANTS if v in m["results"]]
    return tabulate(rows, headers=HEADERS, tablefmt=fmt, disable_numparse=True)


def check_writable(option: str, path: str, prog: str = PROG) -> None:
    """Checked before the long part: ``path``'s folder exists and is writable.

    Raises:
        SystemExit: with one line naming ``prog``, the option and the folder.
    """
    folder = Path(path).resolve().parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise SystemExit(f"{prog}: {option} {path}: folder {folder} does not exist or is not writable")


def checked_args(args: argparse.Namespace, prog: str = PROG) -> argparse.Namespace:
    """``args`` after the checks that need no measuring: the models, the device, the ``--json`` folder.

    Raises:
        SystemExit: with one line naming ``prog`` and what is wrong.
    """
    try:
        check_args(args)
    except ValueError as e:
        raise SystemExit(f"{prog}: {e}") from None
    check_writable("--json", args.json, prog)
    return args


def write_report(report: dict, path: str, prog: str = PROG) -> bool:
    """Write the JSON report to ``path`` and say so; on an OSError print it as one line to stderr and
    return False."""
    try:
        Path(path).write_text(json.dumps(report, indent=1))
    except OSError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return False
    print(f"wrote {path}")
    return True


def _probe(args: argparse.Namespace) -> int:
    """The memory-probe child: print one variant's peak memory in MB as the last line of stdout."""
    if args.threads:
        torch.set_num_threads(args.threads)
    args.dtype_now = (args.dtype or ["fp32"])[0]
    print(memory_probe(*args.memory_probe, args))
    return 0


def main(argv: Sequence[str] | None = None, args: argparse.Namespace | None = None) -> int:
    """Command line entry (``inception-zoo bench``, ``python -m inception_zoo.bench``): measure, print the
    table, write the JSON report. ``argv``: the options after ``bench`` (default ``sys.argv[1:]``); or
    ``args`` already parsed by :func:`build_parser`'s options, as the ``inception-zoo`` command passes
    them. Returns the exit status (1: the report could not be written).

    Raises:
        SystemExit: a bad option (argparse), no model with a peer matching ``--models``, no CUDA device for
            ``--device cuda``, ``--peers none`` beside another peer, a runtime in ``--peers`` that is not
            installed (or with ``--device cuda``), ``--dtype int8`` on CUDA or without onnxruntime and the
            quantizer, or a ``--json`` folder that does not exist or is not writable; all checked before
            measuring.
    """
    if args is None:
        args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.memory_probe:
        return _probe(args)
    report = run(checked_args(args))
    print(table(report))
    return 0 if write_report(report, args.json) else 1
