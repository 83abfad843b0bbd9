"""The ``inception-zoo`` command.

``inception-zoo table [--models PATTERN] [--format FMT] [--output FILE]`` counts every registered model
(parameters, fvcore multiply-adds at the default input size) and prints the table beside the papers'
figures. ``inception-zoo convert SRC DST --model NAME [--source S]`` converts a peer checkpoint into ours.
``inception-zoo list [PATTERN] [--pretrained]`` lists the models, or their published weights.
``inception-zoo predict IMAGE... --model NAME.TAG [--top K]`` prints the top-k ImageNet classes.
``inception-zoo quantize --model NAME --checkpoint PATH --calib DIR --out FILE`` writes an int8 model.
``inception-zoo fid PATH1 PATH2`` prints the Fréchet Inception Distance of two image folders (or .npz files).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

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
    from .registry import error_message
    from .weights import CheckpointError, convert_checkpoint

    folder = Path(args.dst).resolve().parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):  # before the conversion, not after
        print(f"inception-zoo convert: {args.dst}: folder {folder} does not exist or is not writable", file=sys.stderr)
        return 1
    try:
        model = convert_checkpoint(args.src, args.dst, model=args.model, source=args.source)
    except (CheckpointError, KeyError, ValueError) as e:
        print(f"inception-zoo convert: {error_message(e)}", file=sys.stderr)
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

    if args.pretrained:
        return _list_pretrained(args.pattern)
    names = _matching(args.pattern, "list")
    aliases = {}
    for alias, target in list_aliases().items():
        aliases.setdefault(target, []).append(alias)
    for name in names:
        print(name + (f"  (alias: {', '.join(aliases[name])})" if name in aliases else ""))
    return 0 if names else 2


def _list_pretrained(pattern: str) -> int:
    from tabulate import tabulate

    from .registry import get_pretrained, list_pretrained

    names = list_pretrained(pattern if "." in pattern or pattern.endswith("*") else pattern + ".*")
    if not names:
        print(f"inception-zoo list: no pretrained tag matches {pattern!r}; tags: {', '.join(list_pretrained())}",
              file=sys.stderr)
        return 2
    rows = []
    for name in names:
        record, row = get_pretrained(name)
        default = " (default)" if row is record.pretrained[0] else ""
        rows.append([name + default, _accuracy(row.top1), _accuracy(row.top5), row.source, row.license])
    print(tabulate(rows, headers=["tag", "top-1 (%)", "top-5 (%)", "source", "license"], tablefmt="simple",
                   disable_numparse=True))
    return 0


def _accuracy(value: float | None) -> str:
    """A published accuracy in percent, or "-" for weights published without one (the FID Inception)."""
    return "-" if value is None else f"{value:.2f}"


def _predict(args: argparse.Namespace) -> int:
    from .predict import PredictError, predict

    try:
        results = predict(args.images, args.model, top=args.top)
    except PredictError as e:
        print(f"inception-zoo predict: {e}", file=sys.stderr)
        return 1
    for image, top in results:
        if len(args.images) > 1:
            print(f"{image}:")
        for label, probability in top:
            print(f"{probability:.4f}  {label}")
    return 0


def _checkpoint_model(name: str, checkpoint: str):
    """``name`` with ``checkpoint`` loaded, shaped like it: one of ours (``save_weights``, ``inception-zoo
    train``) with the channels and classes its saved config names, a peer's with the classes of its
    classifier (RGB)."""
    import json

    from .factory import create_model
    from .registry import resolve_name
    from .weights import read_checkpoint
    from .weights.load import converted

    name = resolve_name(name)
    state, metadata = read_checkpoint(checkpoint)
    cfg = json.loads(metadata.get("cfg", "{}"))
    if "input_size" in cfg:
        return create_model(name, in_chans=cfg["input_size"][0], num_classes=cfg.get("num_classes"),
                            pretrained=checkpoint)
    return converted(name, state, metadata=metadata)


def _quantize(args: argparse.Namespace) -> int:
    from ._args import unwritable
    from .deploy.int8_files import SUFFIX, calibration_images, save_quantized
    from .deploy.quantize import quantize
    from .registry import error_message
    from .weights import CheckpointError

    def fail(message: str) -> int:
        print(f"inception-zoo quantize: {message}", file=sys.stderr)
        return 1

    out, suffix = Path(args.out), SUFFIX[args.backend]
    if out.suffix != suffix:
        return fail(f"--out: --backend {args.backend} writes {suffix} files; got {args.out!r}")
    if args.batch_size < 1:
        return fail(f"--batch-size must be at least 1, got {args.batch_size}")
    problem = unwritable(out)  # before the slow part, not after
    if problem:
        return fail(f"--out {args.out}: {problem}")
    try:
        model = _checkpoint_model(args.model, args.checkpoint).eval()
        images = calibration_images(args.calib, model, limit=args.num_calib)
        print(f"quantizing {model.name} ({args.backend}) on {len(images)} calibration images from "
              f"{args.calib} at {images.shape[2]}x{images.shape[3]} ...", flush=True)
        qmodel = quantize(model, images, args.backend, batch_size=args.batch_size)
        save_quantized(qmodel, out)
    except (CheckpointError, KeyError, ValueError, ImportError, OSError) as e:
        return fail(error_message(e))
    print(f"wrote {args.out}: {model.name} int8 ({args.backend}, per-channel weights, reduce_range="
          f"{qmodel.quantization['reduce_range']}), {out.stat().st_size / 2**20:.1f} MiB; "
          "load it with inception_zoo.deploy.load_quantized")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from tabulate import tabulate_formats

    from . import __version__
    from .weights.load import SOURCES

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
        help="convert a peer checkpoint (torchvision, timm, pytorchcv, Keras .h5/.keras, ...) into ours",
        description="Read SRC (.pth/.pt/.bin with torch.load(weights_only=True), .safetensors, or a Keras "
        ".h5/.weights.h5/.keras file with h5py), map it "
        "onto MODEL and write DST as safetensors with the model's config as metadata. Auxiliary heads "
        "and the number of classes are kept as the checkpoint has them.",
    )
    convert.add_argument("src", metavar="SRC", help="the checkpoint to convert")
    convert.add_argument("dst", metavar="DST", help="output path, ending in .safetensors")
    convert.add_argument("--model", required=True, metavar="NAME", help="our model name (see 'inception-zoo list')")
    convert.add_argument(
        "--source", default="auto", choices=SOURCES,
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
        help="benchmark ours, our deploy backends and the peers (eager, ONNX Runtime, OpenVINO, torch.compile)",
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

    lst = sub.add_parser("list", help="registered model names, or their pretrained tags")
    lst.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern (default: *)")
    lst.add_argument("--pretrained", action="store_true",
                     help="list the published weights (model.tag) with their ImageNet top-1 / top-5")
    lst.set_defaults(func=_list)

    pred = sub.add_parser(
        "predict", help="top-k ImageNet classes of images with published weights",
        description="Classify images with a model's published ImageNet weights (downloaded once and cached), "
        "preprocessed as those weights expect (timm's transforms from the model's default_cfg).",
    )
    pred.add_argument("images", nargs="+", metavar="IMAGE", help="image files (anything Pillow reads)")
    pred.add_argument("--model", default="inception_v3.tv_in1k", metavar="NAME.TAG",
                      help="a model with published weights, with or without a tag (default: inception_v3.tv_in1k)")
    pred.add_argument("--top", type=int, default=5, metavar="K", help="classes per image (default: 5)")
    pred.set_defaults(func=_predict)

    from .deploy.quantize import QUANT_BACKENDS

    quant = sub.add_parser(
        "quantize", help="int8 post-training static quantization of a checkpoint (ONNX Runtime or torchao)",
        description="Load CHECKPOINT into MODEL, calibrate activation ranges on images from DIR (preprocessed "
        "with the model's evaluation transform) and write the int8 model (per-channel int8 weights, uint8 "
        "activations): an ONNX file for ONNX Runtime, or a torch.export archive (.pt2) for torchao. "
        "Load it with inception_zoo.deploy.load_quantized.",
    )
    quant.add_argument("--model", required=True, metavar="NAME", help="our model name (see 'inception-zoo list')")
    quant.add_argument("--checkpoint", required=True, metavar="PATH",
                       help="weights: ours (safetensors, e.g. from 'inception-zoo train') or a peer's")
    quant.add_argument("--calib", required=True, metavar="DIR",
                       help="folder of calibration images (jpg, png, ...; class subfolders allowed)")
    quant.add_argument("--out", required=True, metavar="FILE",
                       help="output: .onnx for onnxruntime, .pt2 for torchao (read back with "
                       "torch.export.load, which unpickles: load .pt2 files only from sources you trust)")
    quant.add_argument("--backend", default="onnxruntime", choices=QUANT_BACKENDS,
                       help="onnxruntime (default; any input size) or torchao (Inductor-compiled; the "
                       "calibration size only, compiled again on load)")
    quant.add_argument("--num-calib", type=int, default=100, metavar="N",
                       help="calibration images, spread over the folder's sorted files (default: 100)")
    quant.add_argument("--batch-size", type=int, default=8, metavar="N", help="calibration batch (default: 8)")
    quant.set_defaults(func=_quantize)

    from .fid import cli as fid_cli

    fid = sub.add_parser("fid", help="the Fréchet Inception Distance between two image folders (or .npz statistics)",
                         description=fid_cli.DESCRIPTION)
    fid_cli.build_parser(fid)
    fid.set_defaults(func=fid_cli.main)
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
