"""FID feature extraction speed: ours (eager and deploy) against pytorch-fid, in one run, on one batch size.

    python benchmarks/fid.py --threads 2 --repeats 5 --json docs/benchmarks-fid.json --markdown docs/benchmarks.md

Each variant computes the 2048-d pool3 features from the same batch of images in [0, 1] at 299×299,
everything the FID does per batch included (resize, scaling, the network): *pytorch-fid*, its
``InceptionV3([3])`` as its ``fid_score`` runs it; *ours*, ``inception_zoo.fid.fid_model(deploy=False)``
after :func:`~inception_zoo.fid.preprocess`; *deploy*, ``fid_model()`` (the default of ``inception-zoo
fid``: ``optimize_for_inference``'s torch form). All hold the same weights (pytorch-fid's network at
its random init, converted: no download; speed does not depend on the values).
The variants are timed in turn, the order rotated each repeat, after a warm-up (inception_zoo.bench's
``time_eval``); images/s are medians; *max dev* is max |features - pytorch-fid's| / max |pytorch-fid's|.
``--markdown`` replaces the FID section of that file (between its markers; appended if missing).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from inception_zoo._args import positive_int

__all__ = ["FID_TARGET", "main", "measure", "section"]

PROG = "benchmarks/fid.py"
FID_TARGET = 1.2  # deploy images/s over pytorch-fid's, at the batch size of pytorch-fid's default (50)
VARIANTS = {"pytorch_fid": "pytorch-fid InceptionV3([3])", "ours": "ours (eager)", "deploy": "ours (deploy)"}
BEGIN, END = "<!-- fid:begin (written by benchmarks/fid.py; do not edit) -->", "<!-- fid:end -->"


class _Pipeline(nn.Module):
    """Images in [0, 1] -> pool3 features through our preprocessing and a :class:`FIDModel`."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from inception_zoo.fid import preprocess

        return self.model(preprocess(x))


def _variants() -> dict[str, nn.Module]:
    """pytorch-fid's network, ours and our deploy form, with the same random weights."""
    from pytorch_fid import inception

    from inception_zoo import create_model, get_record, load_pretrained
    from inception_zoo.deploy import optimize_for_inference
    from inception_zoo.fid import FIDModel
    from inception_zoo.weights.sources import build_peer

    torch.manual_seed(0)
    state = build_peer(get_record("inception_v3_fid").peers[0]).eval().state_dict()
    load = inception.load_state_dict_from_url
    inception.load_state_dict_from_url = lambda *a, **k: state  # pytorch-fid's download, answered locally
    try:
        theirs = inception.InceptionV3([3]).eval()
    finally:
        inception.load_state_dict_from_url = load
    net = load_pretrained(create_model("inception_v3_fid"), state, source="pytorch_fid").eval()
    return {"pytorch_fid": theirs, "ours": _Pipeline(FIDModel(net)).eval(),
            "deploy": _Pipeline(FIDModel(optimize_for_inference(net, "torch"))).eval()}


def measure(batch_size: int = 50, repeats: int = 5) -> dict:
    """Images/s (medians; per-repeat samples) of each variant at ``batch_size``, and each one's deviation
    from pytorch-fid's features; the ratios ours / pytorch-fid (> 1: ours faster)."""
    from tqdm import tqdm

    from inception_zoo.bench.timing import time_eval

    models = _variants()
    g = torch.Generator().manual_seed(0)
    xn, x1 = torch.rand(batch_size, 3, 299, 299, generator=g), torch.rand(1, 3, 299, 299, generator=g)
    with torch.inference_mode():
        outs = {k: m(xn) for k, m in models.items()}
        reference = outs["pytorch_fid"][0].flatten(1)
        deviation = {k: float(((o[0].flatten(1) if isinstance(o, list) else o) - reference).abs().max()
                              / reference.abs().max()) for k, o in outs.items()}
        args = argparse.Namespace(repeats=repeats, sample_seconds=0.5, latency_iters=1, device="cpu")
        order = {"ours": models["ours"], "pytorch_fid": models["pytorch_fid"], "deploy": models["deploy"]}
        times, _, _ = time_eval(order, x1, xn, args, tqdm(disable=True))
    results = {}
    for k in VARIANTS:
        samples = times[k]["throughput"]
        results[k] = {"images_per_s": batch_size / statistics.median(samples), "max_deviation": deviation[k],
                      "samples_s": samples}
    base = times["pytorch_fid"]["throughput"]
    ratios = {k: {"median": results[k]["images_per_s"] / results["pytorch_fid"]["images_per_s"],
                  "per_repeat": [b / t for b, t in zip(base, times[k]["throughput"])]}
              for k in ("ours", "deploy")}
    return {"batch_size": batch_size, "repeats": repeats, "threads": torch.get_num_threads(),
            "torch": torch.__version__, "results": results, "ratios": ratios}


def section(report: dict, command: str) -> str:
    """The markdown section: settings, the table and the target."""
    from tabulate import tabulate

    rows = []
    for k, label in VARIANTS.items():
        r = report["results"][k]
        ratio = report["ratios"].get(k)
        rows.append([label, f"{r['images_per_s']:.2f}", f"{r['max_deviation']:.1e}",
                     f"{ratio['median']:.2f}" if ratio else "-",
                     f"{min(ratio['per_repeat']):.2f}-{max(ratio['per_repeat']):.2f}" if ratio else "-"])
    table = tabulate(rows, headers=["variant", "images/s", "max dev", "vs pytorch-fid", "per repeat"],
                     tablefmt="github", disable_numparse=True)
    got = report["ratios"]["deploy"]["median"]
    return (
        f"{BEGIN}\n## FID feature extraction\n\nCommand: `{command}`\n\n"
        f"pool3 features (2048-d) of a batch of {report['batch_size']} images at 299×299, resize and scaling "
        f"included, {report['threads']} threads, fp32, torch {report['torch']}; {report['repeats']} repeats, "
        "medians. *max dev*: max |features - pytorch-fid's| / max |pytorch-fid's|. The FID computed from "
        "these features equals pytorch-fid's (tests/test_fid.py).\n\n"
        f"{table}\n\nTarget: deploy at least {FID_TARGET}× pytorch-fid's images/s: measured {got:.2f}×, "
        f"**{'met' if got >= FID_TARGET else 'not met'}**.\n{END}"
    )


def write_section(path: Path, text: str) -> None:
    """Replace the FID section of ``path`` (between its markers), or append it."""
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        new = head + text + rest.split(END, 1)[1]
    else:
        new = old.rstrip("\n") + ("\n\n" if old else "") + text + "\n"
    path.write_text(new, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=positive_int, default=50, metavar="N", help="default: 50 (pytorch-fid's)")
    parser.add_argument("--repeats", type=positive_int, default=5, help="timing rounds (default: 5)")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--json", default=None, metavar="FILE", help="write the report as JSON")
    parser.add_argument("--markdown", default=None, metavar="FILE", help="replace (or append) the FID section there")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    report = measure(args.batch_size, args.repeats)
    text = section(report, shlex.join(["python", PROG, *argv]))
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    if args.markdown:
        write_section(Path(args.markdown), text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
