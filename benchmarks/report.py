"""The benchmark's report around the measurements: the machine it ran on, the project's targets and
docs/benchmarks.md. Used by ``benchmarks/compare.py``; the package's benchmark (``inception-zoo bench``)
only measures."""

from __future__ import annotations

import collections
import contextlib
import functools
import os
import platform
import statistics
from collections.abc import Callable
from pathlib import Path

from inception_zoo.bench import table
from inception_zoo.bench.cli import variant_label
from inception_zoo.bench.measure import CALIBRATION_IMAGES, OUR_PATHS, PEER_CHOICES, fastest

__all__ = ["INT8_TARGET", "INT8_TARGET_MODELS", "RUNTIME_TARGET", "RUNTIME_TARGET_MODELS", "RUNTIME_TIE", "TIE",
           "machine", "same_graph",
           "markdown", "targets", "targets_table"]

# The targets, checked against a CPU run at batch 8 with channels_last. Ratios are the other's time
# over ours (> 1: ours faster), medians over the repeats; "per repeat" is their range over single repeats.
TIE = (0.95, 1.05)  # eager ours vs eager peer: the median within, and the per-repeat range holding 1.0
TIE_METRICS = ("latency", "throughput", "train")
RUNTIME_TARGET = 1.0  # our fastest deploy backend vs the best runtime peer, at batch 1 and batch 8
# below the runtime target but within noise: the median at least this, and the per-repeat range holding 1.0
RUNTIME_TIE = 0.97
RUNTIME_TARGET_MODELS = ("inception_v1_bn", "inception_v3", "inception_resnet_v2", "xception")
PEER_RUNTIMES = tuple(f"peer_{p}" for p in PEER_CHOICES)
INT8_TARGET = 1.5  # int8 vs our fastest fp32 path, throughput at batch 8
INT8_TARGET_MODELS = ("inception_v3",)
TARGET_HEADERS = ["model", "target", "compared", "measured", "per repeat", "met", "ceiling"]


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


def _target_row(entry: dict, dtype: str, target: str, mine: str | None, other: str | None, metric: str,
                met: Callable[[float, float, float], bool | str], ceiling: float | None = None) -> list[str]:
    """One row of :data:`TARGET_HEADERS`: ``other``'s median time over ``mine``'s at ``metric`` ("latency",
    "throughput" or "train": samples in ms), the range of that ratio over single repeats (the two measured
    back to back in each), and ``met(median, low, high)`` (True: "yes", False: "**no**", a string: itself);
    "not measured" where either side or its samples are missing."""
    results = entry["results"]
    mine_t = results[mine]["samples"].get(metric) if mine in results else None
    other_t = results[other]["samples"].get(metric) if other in results else None
    compared = " vs ".join(variant_label(entry, k, dtype) for k in (mine, other) if k in results)
    if not mine_t or not other_t:
        return [entry["model"], target, compared or "-", "-", "-", "not measured", "-"]
    got = statistics.median(other_t) / statistics.median(mine_t)
    ratios = [o / m for m, o in zip(mine_t, other_t, strict=True)]
    low, high = min(ratios), max(ratios)
    verdict = met(got, low, high)
    verdict = verdict if isinstance(verdict, str) else "yes" if verdict else "**no**"
    return [entry["model"], target, compared, f"{got:.2f}", f"{low:.2f}-{high:.2f}", verdict, _fmt(ceiling)]


def _tie(got: float, low: float, high: float) -> bool:
    return TIE[0] <= got <= TIE[1] and low <= 1.0 <= high


def _runtime_met(got: float, low: float, high: float) -> bool | str:
    """The runtime target: met at :data:`RUNTIME_TARGET`; "tie" below it but within noise (the median at
    least :data:`RUNTIME_TIE`, a repeat on either side of 1.0); missed otherwise."""
    if got >= RUNTIME_TARGET:
        return True
    return "tie" if got >= RUNTIME_TIE and low <= 1.0 <= high else False


def _tie_rows(entry: dict) -> list[list[str]]:
    """Eager ours vs eager peer, latency (batch 1), throughput and train step (batch 8): a tie within
    noise."""
    target = "ours/peer {}: tie, median {:.2f}-{:.2f} and range holding 1.0"
    return [_target_row(entry, "fp32", target.format(metric, *TIE), "ours", "peer", metric, _tie)
            for metric in TIE_METRICS]


def _graph(model, size) -> tuple[list, list]:
    """What a runtime runs of ``model``: the ONNX export's operator counts (Identity aside) and its
    convolutions' weight shapes, sorted."""
    import onnx

    from inception_zoo.deploy import to_onnx

    proto = onnx.load_model_from_string(to_onnx(model, size))
    shapes = {i.name: tuple(i.dims) for i in proto.graph.initializer}
    alias = {n.output[0]: n.input[0] for n in proto.graph.node if n.op_type == "Identity"}
    ops = collections.Counter(n.op_type for n in proto.graph.node if n.op_type != "Identity")
    convs = [shapes.get(alias.get(n.input[1], n.input[1])) for n in proto.graph.node if n.op_type == "Conv"]
    return sorted(ops.items()), sorted(convs, key=str)


@functools.cache
def same_graph(name: str) -> bool:
    """Whether our ``name`` and its peer (the benchmark's pair, identical weights) export to the same ONNX
    graph (:func:`_graph`), which a runtime then runs with the same kernels: between them in one runtime
    no layer can account for a gap, only the machine's noise. False where either cannot be built."""
    from inception_zoo.bench.measure import _ours_and_peer
    from inception_zoo.registry import get_record

    try:
        ours, peer = _ours_and_peer(name)
    except ImportError:
        return False
    size = get_record(name).input_size
    return _graph(ours, size) == _graph(peer, size)


def _runtime_rows(entry: dict, batch: int) -> list[list[str]]:
    """Our fastest deploy backend vs the fastest runtime peer (ONNX Runtime, OpenVINO, compiled), at batch 1
    and batch ``batch``; the ceiling: the best peer's time over deploy mode's convolutions alone (below 1:
    the torch backend's convolution kernels alone take longer than the whole peer). A row not met where
    the best peer is the peer in a runtime that also ran ours, on the same graph (:func:`same_graph`),
    says "tie (same graph)"."""
    rows, results = [], entry["results"]
    for metric, size, field in (("latency", 1, "conv_only_b1_ms"), ("throughput", batch, "conv_only_ms")):
        mine, other = fastest(results, OUR_PATHS, metric), fastest(results, PEER_RUNTIMES, metric)
        conv_only, ceiling = results["deploy"].get(field), None
        if other and conv_only:  # the peer's median ms per forward at this batch
            ceiling = statistics.median(results[other]["samples"][metric]) / conv_only
        target = f"batch {size}: fastest ours / best runtime peer >= {RUNTIME_TARGET}"
        row = _target_row(entry, "fp32", target, mine, other, metric, _runtime_met, ceiling)
        ours_there = other and other.replace("peer_", "deploy_") in results and other != "peer_compile"
        if row[5] not in ("yes", "not measured") and ours_there and same_graph(entry["model"]):
            row[5] = "tie (same graph)"
        rows.append(row)
    return rows


def _int8_row(entry: dict, batch: int) -> list[str]:
    """The int8 variant vs our fastest fp32 path (deploy in torch, ONNX Runtime or OpenVINO), throughput."""
    target = f"batch {batch}: int8 / fastest ours fp32 >= {INT8_TARGET}"
    best = fastest(entry["results"], OUR_PATHS, "throughput")
    return _target_row(entry, "int8", target, "int8_onnxruntime", best, "throughput",
                       lambda got, low, high: got >= INT8_TARGET)


def targets(report: dict) -> list[list[str]]:
    """Rows (columns as ``TARGET_HEADERS``): model, target, the variants compared, measured (median ratio),
    per-repeat range, met?, ceiling. From the fp32 run: the eager tie (three rows per model) and, for
    ``RUNTIME_TARGET_MODELS``, our fastest path against the best runtime peer (batch 1 and batch 8); from
    the int8 run: int8 against our fastest fp32 path for ``INT8_TARGET_MODELS``. Empty unless the report is
    a CPU run at batch 8 with channels_last."""
    s = report["settings"]
    if report["machine"]["device"] != "cpu" or s["batch_size"] != 8 or not s["channels_last"]:
        return []
    rows = []
    for run_ in report["runs"]:
        for entry in run_["models"]:
            if run_["dtype"] == "fp32":
                rows += _tie_rows(entry)
                if entry["model"] in RUNTIME_TARGET_MODELS:
                    rows += _runtime_rows(entry, s["batch_size"])
            elif run_["dtype"] == "int8" and entry["model"] in INT8_TARGET_MODELS:
                rows.append(_int8_row(entry, s["batch_size"]))
    return rows


def targets_table(rows: list[list[str]], fmt: str = "github") -> str:
    """:func:`targets`' rows as a table (any tabulate format; github: markdown)."""
    from tabulate import tabulate

    return tabulate(rows, headers=TARGET_HEADERS, tablefmt=fmt, disable_numparse=True)


SETTINGS = (
    "Batch {batch_size} for throughput, train step and memory; batch 1 for latency; channels_last {cl} on "
    "both sides; {repeats} repeats, every variant of a model measured in turn with the order rotated each "
    "repeat and the compared pairs (ours and the eager peer, ours and the peer in each runtime) back to back "
    "in each, leading in turn, each sample about {sample_seconds} s of forwards (half that at batch 1); medians. "
    "Variants: *ours* (eager); *deploy*, `optimize_for_inference(model, backend)` with backend torch and, "
    "as `--peers` selects ({peers}), onnxruntime and openvino; the peer library's model with the same "
    "weights, eager and in the same runtimes (the exported ONNX in ONNX Runtime: CPUExecutionProvider, "
    "ORT_ENABLE_ALL; in OpenVINO: CPU device, f32 precision hint; both with torch's thread count) and "
    "*compile*d (`torch.compile`, inductor, freezing, static shapes). torch.compile of the ours, deploy "
    "and peer rows: {compile}. The runtime rows compute in float32, so they are in the fp32 run only (and "
    "in the int8 run as references). The int8 run times `quantize(ours, ..., backend=\"onnxruntime\")`, "
    "calibrated on {calibration} random-normal images (fit for timing, not for accuracy), beside ours and "
    "our deploy backends in fp32; *fp32 best* is the fastest of those backends per column. "
    "*vs* and the ratios after it: that variant's time over the row's (> 1: the row faster): ours and "
    "deploy against the eager peer, our runtime rows against the peer in the same runtime, int8 against "
    "fp32 best. *max dev*: max |logits - our eager fp32 logits| / max |our eager fp32 logits| on the "
    "batch-{batch_size} input, once per model. *setup*: seconds from the model to a warm variant (deploy "
    "rewrite, export, runtime compilation, quantization, and the first forwards at batch 1 and "
    "{batch_size}, where torch.compile compiles). GFLOP/s = 2 x MACs x images/s; *of matmul* is that as a "
    "fraction of the reference rate of the row's precision (above): \"-\" where there is none (int8, or "
    "a low precision this machine only emulates), *check!* where the model is above it, which no model "
    "can be: a measurement problem (the reference caught the machine busy), never a fraction over 100%. "
    "Train step: ours and the eager peer; peak memory: ours, deploy and the eager peer. *ceiling* (deploy "
    "rows): deploy/peer throughput if nothing but deploy mode's convolutions took time (see the targets "
    "below)."
)
TARGETS_NOTE = [
    ("*tie*: eager ours against the eager peer, median ratio within {low:.2f}-{high:.2f} with the per-repeat "
     "range holding 1.0; *fastest ours*: the fastest of our deploy backends (torch, onnxruntime, openvino) "
     "at that batch, against the fastest runtime peer (onnxruntime, openvino, compile); *int8*: the int8 "
     "row against our fastest fp32 path. Ratios are the compared variant's time over ours (> 1: ours "
     "faster). *tie* (runtime rows): below 1.0 but within this machine's noise, the median at least "
     "{runtime_tie:.2f} with single repeats on both sides of 1.0, as when ours and the peer run the same "
     "graph in the same runtime. *tie (same graph)*: not met, but the best runtime peer is the peer in a "
     "runtime that also runs ours, and ours and the peer export to the same ONNX graph (the same operators "
     "and convolution shapes, the same weights), so that runtime runs the same kernels on both: no layer "
     "accounts for the gap, only this machine's noise (the per-repeat range shows how much)."),
    "",
    ("*per repeat*: the lowest and highest ratio of single repeats (both sides measured back to back in "
     "each); a target inside that range is a tie within this machine's noise."),
    "",
    ("*ceiling*: the best runtime peer's time at that batch over the time the torch deploy model spends in "
     "its convolutions alone (each oneDNN convolution re-run in isolation on its recorded input, summed; "
     "pooling, concatenation and the head counted as free). Below 1, the convolution kernels alone take "
     "longer than the whole peer: that is where the gap is, and no fusion around them closes it; only "
     "faster convolution kernels or fewer multiply-adds could."),
]


def _settings(s: dict) -> str:
    on = {True: "on", False: "off"}
    return SETTINGS.format(**{**s, "cl": on[s["channels_last"]], "compile": on[s["compile"]],
                              "peers": ", ".join(s["peers"]) or "none", "calibration": CALIBRATION_IMAGES})


def _matmul(report: dict) -> str:
    """The machine section's line on the reference rates: the best of the sizes per precision, and the
    low precisions of the runs that have none (not native on the device)."""
    m = report["matmul"]
    rates = [f"{p} {gflops:.0f} GFLOP/s" for p, gflops in m["gflops"].items()]
    emulated = {r["dtype"] for r in report["runs"]} - set(m["gflops"]) - {"int8"}
    rates += [f"{p}: none (not native on this {report['machine']['device']})" for p in sorted(emulated)]
    sizes = ", ".join(str(n) for n in m["sizes"])
    return (f"- matrix-multiply reference (the best `torch.mm` rate over n x n x n products, n = {sizes}; "
            f"measured at the start and at the end, the better kept): {'; '.join(rates)}")


def markdown(report: dict, command: str) -> str:
    """``docs/benchmarks.md``: the machine (every fact of ``report["machine"]`` and the matmul reference
    rates in GFLOP/s), the settings, the results table and, for a run :func:`targets` applies to, the
    targets. ``command``: the command line that made the report, shown verbatim."""
    facts = [f"- {k}: {v}" for k, v in report["machine"].items()]
    lines = [
        "<!-- Written by `python benchmarks/compare.py --markdown`; rerun it to refresh. -->", "",
        "# Benchmarks: ours vs the peers", "",
        f"Command: `{command}`", "",
        "## Machine", "", *facts, _matmul(report), "",
        "## Settings", "", _settings(report["settings"]), "",
        "## Results", "", table(report), "",
    ]
    rows = targets(report)
    if rows:
        note = [line.format(low=TIE[0], high=TIE[1], runtime_tie=RUNTIME_TIE) for line in TARGETS_NOTE]
        lines += ["## Targets (CPU, batch 1 and 8, channels_last)", "", *note, "", targets_table(rows), ""]
    return "\n".join(lines)
