"""The command line of ``inception-zoo train`` (also ``python -m inception_zoo.train`` and
``torchrun -m inception_zoo.train``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import torch

from .data import TrainError
from .loop import train

__all__ = ["build_parser", "main"]


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Add the options of ``inception-zoo train`` to ``parser`` (a new parser if None) and return it."""
    if parser is None:
        description = sys.modules[__package__].__doc__.split("\n\n")[0]  # the package docstring's first part
        parser = argparse.ArgumentParser(prog="inception-zoo train", description=description)
    parser.add_argument("data", nargs="?", default=None, metavar="DIR",
                        help="ImageFolder root with train/ and val/ (default: scikit-learn's digits)")
    parser.add_argument("--model", default=None, help="model name (default: inception_v1_cifar)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs (default: 3)")
    parser.add_argument("--batch-size", type=int, default=64, help="images per step and rank (default: 64)")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the recipe's)")
    parser.add_argument("--recipe", choices=["default", "paper"], default="default",
                        help="default: SGD + one-cycle; paper: the paper's optimizer and step decay")
    parser.add_argument("--label-smoothing", type=float, default=None,
                        help="default: the recipe's (0 or 0.1)")
    parser.add_argument("--aux-weight", type=float, default=None,
                        help="weight of each auxiliary loss (default: the recipe's, 0.3 or 0.4)")
    parser.add_argument("--no-aux", action="store_true", help="train without the auxiliary heads")
    parser.add_argument("--max-steps", type=int, default=None, help="stop (with a checkpoint) after N steps")
    parser.add_argument("--resume", default=None, metavar="OUT", help="continue from OUT/last_state.pt")
    parser.add_argument("--out", default="runs/train", metavar="OUT", help="checkpoints and metrics.jsonl")
    parser.add_argument("--seed", type=int, default=0, help="initialization and data order (default: 0)")
    parser.add_argument("--log-every", type=int, default=0, metavar="N", help="also log every N steps")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="cpu, cuda, cuda:N or mps (default: cuda when available)")
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument("--amp", dest="amp", action="store_true", default=None,
                           help="train in bf16 mixed precision (autocast) even where bf16 is emulated")
    precision.add_argument("--no-amp", dest="amp", action="store_false", default=None,
                           help="train in fp32 (default: bf16 mixed precision where the hardware has bf16: "
                           "CUDA with bf16, or a CPU with AVX512-BF16 or AMX; fp32 elsewhere, where "
                           "emulated bf16 is several times slower)")
    parser.add_argument("--no-channels-last", dest="channels_last", action="store_false",
                        help="keep the NCHW memory format (default: channels_last, faster on CPU and GPU)")
    return parser


def main(argv: Sequence[str] | None = None, args: argparse.Namespace | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``) unless ``args`` is given, train, and print the final
    validation accuracy.

    The options are checked first (see :func:`~.loop.train`), then the model name, the ``--resume`` state
    and the data, all before the first step.

    Returns:
        The exit status: 0, or 2 after printing a :class:`~.data.TrainError` (a bad option, model, data or
        ``--resume`` state) as one line on stderr.
    """
    args = args or build_parser().parse_args(argv)
    try:
        metrics = train(args)
    except TrainError as e:
        print(f"inception-zoo train: error: {e}", file=sys.stderr)
        return 2
    if metrics:
        print(f"final: val top-1 {metrics['val_top1']:.4f}, top-5 {metrics['val_top5']:.4f}")
    return 0
