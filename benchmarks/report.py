"""The benchmark's report around the measurements: the machine it ran on, the project's targets and
docs/benchmarks.md. Used by ``benchmarks/compare.py``; the package's benchmark (``inception-zoo bench``)
only measures."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path

from inception_zoo.bench import table

__all__ = ["TARGETS", "MATMUL_TARGET_MODELS", "machine", "targets", "targets_table", "markdown"]

# The targets, checked against a CPU fp32 run at batch 8 with channels_last: throughput ratios
# (peer time / our time) and deploy's achieved GFLOP/s as a fraction of the machine's matmul rate.
TARGETS = {"ours/peer": 1.0, "deploy/peer": 1.2, "deploy_matmul_fraction": 0.6}
MATMUL_TARGET_MODELS = ("inception_v1_bn", "inception_v3")
TARGET_HEADERS = ["model", "target", "measured", "per repeat", "met", "ceiling"]


def _cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what :mod:`platform` knows."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine() -> dict[str, object]:
    """What the run's figures depend on beyond the settings: CPU model, logical cores, the versions of
    Python, torch and (if importable) torchvision and timm."""
    import torch

    facts: dict[str, object] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    with contextlib.suppress(ImportError):
        import timm
        import torchvision

        facts.update(torchvision=torchvision.__version__, timm=timm.__version__)
    return facts


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _paired_range(ours: dict, peer: dict) -> tuple[float, float]:
    """Lowest and highest throughput ratio (peer time / our time) over the repeats, each repeat's ours and
    peer taken together (they ran back to back), which shows how far one reading of the median can be
    trusted. ``ours``, ``peer``: results with ``samples["throughput"]`` in ms per forward."""
    pairs = zip(ours["samples"]["throughput"], peer["samples"]["throughput"])
    ratios = [p / o for o, p in pairs]
    return min(ratios), max(ratios)


def _ratio_rows(entry: dict) -> list[list[str]]:
    rows = []
    for key in ("ours/peer", "deploy/peer"):
        got = entry["ratios"][key]["throughput"]
        low, high = _paired_range(entry["results"][key.split("/")[0]], entry["results"]["peer"])
        met = "yes" if got >= TARGETS[key] else "**no**"
        rows.append([entry["model"], f"{key} throughput >= {TARGETS[key]}", f"{got:.2f}",
                     f"{low:.2f}-{high:.2f}", met, _fmt(entry["ratios"][key].get("ceiling"))])
    return rows


def _matmul_row(entry: dict) -> list[str]:
    got, goal = entry["results"]["deploy"]["matmul_fraction"], TARGETS["deploy_matmul_fraction"]
    return [entry["model"], f"deploy >= {goal:.0%} of matmul rate", f"{got:.0%}", "-",
            "yes" if got >= goal else "**no**", "-"]


def targets(report: dict) -> list[list[str]]:
    """Rows (columns as ``TARGET_HEADERS``): model, target, measured (median), per-repeat range, met?,
    ceiling; two throughput-ratio rows per model, plus the matmul-fraction row for
    ``MATMUL_TARGET_MODELS``. Empty unless the report is a CPU run at batch 8 with channels_last; only its
    fp32 run counts."""
    s = report["settings"]
    if report["machine"]["device"] != "cpu" or s["batch_size"] != 8 or not s["channels_last"]:
        return []
    rows = []
    for entry in (m for run_ in report["runs"] if run_["dtype"] == "fp32" for m in run_["models"]):
        rows += _ratio_rows(entry)
        if entry["model"] in MATMUL_TARGET_MODELS:
            rows.append(_matmul_row(entry))
    return rows


def targets_table(rows: list[list[str]], fmt: str = "github") -> str:
    """:func:`targets`' rows as a table (any tabulate format; github: markdown)."""
    from tabulate import tabulate

    return tabulate(rows, headers=TARGET_HEADERS, tablefmt=fmt, disable_numparse=True)


SETTINGS = (
    "Batch {batch_size} for throughput, train step and memory; batch 1 for latency; channels_last {cl} on "
    "both sides; torch.compile {compile}; {repeats} repeats, alternating ours / deploy / peer, each sample "
    "about {sample_seconds} s of forwards (half that at batch 1); medians. Ratios are peer time / our time "
    "(> 1: ours faster). *deploy* is `optimize_for_inference(model)` (eval only: no train step). "
    "GFLOP/s = 2 x MACs x images/s; *of matmul* compares it with the fp32 matrix-multiply rate above, "
    "so bf16 rows, whose multiply-adds run at up to twice the fp32 rate, go above 100%, and so can fp32 "
    "rows where oneDNN's convolution kernels beat `torch.mm`. *ceiling* (deploy rows): deploy/peer "
    "throughput if nothing but deploy mode's convolutions took time (see the targets below)."
)
TARGETS_NOTE = [
    "*ceiling*: the peer's batch time over the time the deploy model spends in its convolutions alone "
    "(each oneDNN convolution re-run in isolation on its recorded input, summed; pooling, concatenation "
    "and the head counted as free). No fusion around these convolution kernels can take deploy/peer above "
    "it; only doing fewer multiply-adds could.",
    "",
    "*per repeat*: the lowest and highest ratio of single repeats (ours and the peer measured back to "
    "back); a target inside that range is a tie within this machine's noise.",
]


def _settings(s: dict) -> str:
    on = {True: "on", False: "off"}
    return SETTINGS.format(cl=on[s["channels_last"]], **{**s, "compile": on[s["compile"]]})


def markdown(report: dict, command: str) -> str:
    """``docs/benchmarks.md``: the machine (every fact of ``report["machine"]`` and the matmul rate in
    GFLOP/s), the settings, the results table and, for a run :func:`targets` applies to, the targets.
    ``command``: the command line that made the report, shown verbatim."""
    facts = [f"- {k}: {v}" for k, v in report["machine"].items()]
    rate = "- fp32 matrix-multiply rate (torch.mm 2048x2048, best reading): "
    rate += f"{report['matmul_gflops']:.0f} GFLOP/s"
    lines = [
        "<!-- Written by `python benchmarks/compare.py --markdown`; rerun it to refresh. -->", "",
        "# Benchmarks: ours vs the peers", "",
        f"Command: `{command}`", "",
        "## Machine", "", *facts, rate, "",
        "## Settings", "", _settings(report["settings"]), "",
        "## Results", "", table(report), "",
    ]
    rows = targets(report)
    if rows:
        lines += ["## Targets (CPU, fp32, batch 8, channels_last)", "", *TARGETS_NOTE, "",
                  targets_table(rows), ""]
    return "\n".join(lines)
