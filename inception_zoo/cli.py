"""The ``inception-zoo`` command.

``inception-zoo table [--models PATTERN] [--format FMT] [--output FILE]`` counts every registered model
(parameters, fvcore multiply-adds at the default input size) and prints the table beside the papers'
figures. ``inception-zoo convert SRC DST --model NAME [--source S]`` converts a peer checkpoint into ours.
``inception-zoo list [PATTERN]`` lists the models.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _table(args: argparse.Namespace) -> int:
    from .analysis import model_stats, stats_table

    names = _matching(args.models, "table")
    if not names:
        return 2
    out = None
    if args.output is not None:
        if not args.output:
            print("inception-zoo table: --output needs a file name", file=sys.stderr)
            return 2
        out = open(args.output, "w", encoding="utf-8")  # fail on a bad path before the slow part
    table = stats_table((model_stats(name) for name in names), fmt=args.format)
    if out is None:
        print(table)
        return 0
    with out:
        out.write(table + "\n")
    print(f"wrote {args.output} ({len(names)} model{'s' if len(names) != 1 else ''})")
    return 0


def _matching(pattern: str, command: str) -> list[str]:
    from .registry import list_models

    names = list_models(pattern)
    if not names:
        print(f"inception-zoo {command}: no model matches {pattern!r}; models: {', '.join(list_models())}",
              file=sys.stderr)
    return names


def _convert(args: argparse.Namespace) -> int:
    from .weights import CheckpointError, convert_checkpoint

    try:
        model = convert_checkpoint(args.src, args.dst, model=args.model, source=args.source)
    except (CheckpointError, KeyError, ValueError) as e:
        print(f"inception-zoo convert: {e}", file=sys.stderr)
        return 1
    cfg = model.default_cfg
    print(
        f"wrote {args.dst}: {cfg['architecture']} from the {cfg['weights_source']} layout, "
        f"{model.num_classes} classes, expects mean={tuple(cfg['mean'])} std={tuple(cfg['std'])}"
    )
    return 0


def _docs(args: argparse.Namespace) -> int:
    from .docs import generate

    written = generate(args.out, readme=None if args.no_readme else args.readme)
    print(f"wrote {len(written)} files under {args.out}" + ("" if args.no_readme else f" and {args.readme}"))
    return 0


def _list(args: argparse.Namespace) -> int:
    from .registry import list_aliases

    names = _matching(args.pattern, "list")
    aliases = {}
    for alias, target in list_aliases().items():
        aliases.setdefault(target, []).append(alias)
    for name in names:
        print(name + (f"  (alias: {', '.join(aliases[name])})" if name in aliases else ""))
    return 0 if names else 2


def build_parser() -> argparse.ArgumentParser:
    from tabulate import tabulate_formats

    from . import __version__

    parser = argparse.ArgumentParser(
        prog="inception-zoo",
        description="The Inception family on PyTorch: model table and tools.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    table = sub.add_parser(
        "table",
        help="parameters and multiply-adds of every model beside the papers' figures",
        description="Trace every registered model at its default input size with fvcore and print "
        "parameters (millions) and GMACs (billions of multiply-adds; one fused multiply-add = one).",
    )
    table.add_argument("--models", default="*", metavar="PATTERN", help="fnmatch pattern of model names (default: *)")
    table.add_argument(
        "--format", default="github", type=str.lower, choices=sorted(tabulate_formats), metavar="FMT",
        help="any tabulate table format (default: github); e.g. simple, grid, latex, html",
    )
    table.add_argument("--output", metavar="FILE", help="write the table to FILE instead of the terminal")
    table.set_defaults(func=_table)

    convert = sub.add_parser(
        "convert",
        help="convert a torchvision / timm / pytorchcv checkpoint into ours (safetensors)",
        description="Read SRC (.pth/.pt/.bin with torch.load(weights_only=True), or .safetensors), map it "
        "onto MODEL and write DST as safetensors with the model's config as metadata. Auxiliary heads "
        "and the number of classes are kept as the checkpoint has them.",
    )
    convert.add_argument("src", metavar="SRC", help="the checkpoint to convert")
    convert.add_argument("dst", metavar="DST", help="output path, ending in .safetensors")
    convert.add_argument("--model", required=True, metavar="NAME", help="our model name (see 'inception-zoo list')")
    convert.add_argument(
        "--source", default="auto", choices=["auto", "ours", "legacy", "torchvision", "timm", "pytorchcv"],
        help="the checkpoint's layout (default: detected from its keys)",
    )
    convert.set_defaults(func=_convert)

    docs = sub.add_parser(
        "docs",
        help="regenerate docs/: the summary table, per-stage breakdowns and plots",
        description="Trace every model (and its peer) with fvcore and write docs/models.md, "
        "docs/models/<name>.md, docs/img/*.png and the summary block of README.md.",
    )
    docs.add_argument("--out", default="docs", metavar="DIR", help="output folder (default: docs)")
    docs.add_argument("--readme", default="README.md", metavar="PATH", help="README to update (default: README.md)")
    docs.add_argument("--no-readme", action="store_true", help="leave the README alone")
    docs.set_defaults(func=_docs)

    from . import bench

    bench_parser = sub.add_parser(
        "bench",
        help="benchmark ours, deploy mode and the peers side by side",
        description=bench.__doc__.split("\n\n")[0],
    )
    bench.build_parser(bench_parser)
    bench_parser.set_defaults(func=lambda args: bench.main(args=args))

    from . import train

    train_parser = sub.add_parser(
        "train", help="train a model (no data directory: scikit-learn's digits)",
        description=train.__doc__.split("\n\n")[0],
    )
    train.build_parser(train_parser)
    train_parser.set_defaults(func=lambda args: train.main(args=args))

    lst = sub.add_parser("list", help="registered model names")
    lst.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern (default: *)")
    lst.set_defaults(func=_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # e.g. piped into `head`: stop quietly, as Unix tools do
        sys.stderr.close()
        return 0
    except OSError as e:
        print(f"inception-zoo {args.command}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
