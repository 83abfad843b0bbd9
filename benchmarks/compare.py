"""Comparison benchmark against torchvision / timm / pytorchcv, with the machine report and the targets.

    python benchmarks/compare.py --channels-last --dtype fp32 bf16 int8 --threads 2 --repeats 5 \\
        --json docs/benchmarks.json --markdown docs/benchmarks.md

The options of ``inception-zoo bench`` (see inception_zoo/bench/ for what is measured and how), plus
``--markdown FILE``. The JSON report is the package's with the machine report (benchmarks/report.py:
CPU model, cores, Python / torch / torchvision / timm versions) added to its ``machine`` entry; the
terminal gets the results table and, for a CPU run at batch 8 with channels_last, the targets
(benchmarks/report.py: the eager tie, our fastest path against the best runtime peer, int8 against our
fastest fp32 path).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # report.py beside this script, whether run as a script or imported
    sys.path.insert(0, str(HERE))

from fid import BEGIN, END, write_section  # noqa: E402
from report import machine, markdown, targets, targets_table  # noqa: E402

from inception_zoo.bench import build_parser as bench_parser  # noqa: E402
from inception_zoo.bench import run, table  # noqa: E402
from inception_zoo.bench.cli import check_writable, checked_args, write_report  # noqa: E402

__all__ = ["build_parser", "main"]

PROG = "benchmarks/compare.py"


def build_parser() -> argparse.ArgumentParser:
    """``inception-zoo bench``'s options plus ``--markdown FILE``."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    bench_parser(parser)
    parser.add_argument("--markdown", default=None, metavar="FILE",
                        help="also write the markdown report (docs/benchmarks.md)")
    return parser


def _kept_fid_section(path: str | None) -> str:
    """The FID section that benchmarks/fid.py wrote into the markdown report, kept across a rewrite."""
    text = Path(path).read_text(encoding="utf-8") if path and Path(path).exists() else ""
    if BEGIN in text and END in text:
        return BEGIN + text.split(BEGIN, 1)[1].split(END, 1)[0] + END
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    """Measure as ``inception-zoo bench`` does, add the machine report to the JSON report, print the table
    and the targets, write the JSON report and, with ``--markdown``, the markdown report (its command
    line: ``python benchmarks/compare.py`` and ``argv``). ``argv``: the options (default
    ``sys.argv[1:]``). Returns the exit status (1: a report could not be written).

    Raises:
        SystemExit: a bad option, no model with a peer matching ``--models``, no CUDA device for
            ``--device cuda``, or an output folder that does not exist or is not writable; all checked
            before measuring.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = checked_args(build_parser().parse_args(argv), PROG)
    if args.markdown:
        check_writable("--markdown", args.markdown, PROG)
    fid_section = _kept_fid_section(args.markdown)
    report = run(args)
    report["machine"] = {**machine(), **report["machine"]}
    print(table(report))
    rows = targets(report)
    if rows:
        print("\n" + targets_table(rows))
    if not write_report(report, args.json, PROG):
        return 1
    if args.markdown:
        command = shlex.join(["python", "benchmarks/compare.py", *argv])
        try:
            Path(args.markdown).write_text(markdown(report, command) + "\n")
            if fid_section:
                write_section(Path(args.markdown), fid_section)
        except OSError as e:
            print(f"{PROG}: {e}", file=sys.stderr)
            return 1
        print(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
