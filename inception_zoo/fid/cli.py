"""``inception-zoo fid PATH1 PATH2``: the FID of two image folders (or ``.npz`` statistics files)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .features import DIMS, PRECISIONS, RESIZES, is_statistics_file

__all__ = ["DESCRIPTION", "build_parser", "main"]

DESCRIPTION = (
    "The FID between two image sets, each a folder (image files, recursively) or a .npz of pytorch-fid's "
    "statistics (mu, sigma), computed as pytorch-fid computes it (its network and weights, its resize, its "
    "numerics: the same value), on inception_v3_fid in deploy form."
)


def build_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the fid command's arguments to ``parser``."""
    from .._args import non_negative_int, positive_int

    add = parser.add_argument
    add("paths", nargs="+", metavar="PATH", help="two folders or .npz files (one folder with --save-stats)")
    add("--batch-size", type=positive_int, default=50, metavar="N", help="images per forward (default: 50)")
    add("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available, else cpu)")
    add("--num-workers", type=non_negative_int, default=None, metavar="N",
        help="threads decoding images (default: min(8, CPUs); 0: none)")
    add("--dims", type=int, default=2048, choices=DIMS,
        help="the features: 2048 (pool3, the FID's; default), 768, 192 or 64 (earlier taps)")
    add("--save-stats", metavar="OUT.npz", help="also write the first folder's statistics (pytorch-fid's .npz: "
        "mu, sigma); with one PATH, only that")
    add("--resize", default="pytorch-fid", choices=RESIZES,
        help="the resize to 299x299 and scaling: pytorch-fid's (default) or torch-fidelity's (TensorFlow 1's "
        "bilinear)")
    add("--precision", default="fp32", choices=PRECISIONS,
        help="fp32 (default: the FID's) or bf16 / fp16 under autocast (faster where the device has them; the "
        "features differ, so the FID is not comparable with published ones)")
    add("--no-progress", action="store_true", help="no progress bar")
    return parser


def _problem(args: argparse.Namespace) -> str:
    """What is wrong with the command line before any work ("" if nothing)."""
    from .._args import unwritable

    if len(args.paths) > 2:
        return f"give two image folders or .npz files, got {len(args.paths)} paths"
    if len(args.paths) == 1 and args.save_stats is None:
        return "give two image folders or .npz files (or one folder with --save-stats OUT.npz)"
    missing = [p for p in args.paths if not os.path.exists(p)]
    if missing:
        return f"{missing[0]} does not exist"
    if args.save_stats is None:
        return ""
    if Path(args.save_stats).suffix.lower() != ".npz":
        return f"--save-stats writes pytorch-fid's .npz format; {args.save_stats!r} must end in .npz"
    if is_statistics_file(args.paths[0]):
        return "--save-stats saves the statistics of the first path, which must be an image folder"
    problem = unwritable(Path(args.save_stats))
    return f"--save-stats {args.save_stats}: {problem}" if problem else ""


def main(args: argparse.Namespace) -> int:
    """Run the command; errors are one line on stderr and exit status 1."""
    from ..registry import error_message
    from ..weights import CheckpointError
    from .distance import check_image_sets, fid, save_statistics, statistics
    from .features import activations, check_device

    problem = _problem(args)
    if problem:
        print(f"inception-zoo fid: {problem}", file=sys.stderr)
        return 1
    options = dict(batch_size=args.batch_size, device=args.device, num_workers=args.num_workers,
                   resize=args.resize, precision=args.precision, progress=not args.no_progress)
    try:
        if len(args.paths) == 1:
            check_image_sets(args.paths[0])
            check_device(args.device)
            save_statistics(args.save_stats, *statistics(activations(args.paths[0], dims=args.dims, **options)))
        else:
            value = fid(*args.paths, dims=args.dims, save_stats=args.save_stats, **options)
    except (CheckpointError, ValueError, OSError) as e:
        print(f"inception-zoo fid: {error_message(e)}", file=sys.stderr)
        return 1
    if args.save_stats is not None:
        print(f"wrote {args.save_stats}: mu and sigma of {args.paths[0]} ({args.dims} dims)")
    if len(args.paths) == 2:
        print(f"FID: {value!r}")
    return 0
