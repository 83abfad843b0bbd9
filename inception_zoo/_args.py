"""Command-line helpers shared by the commands: argparse types (each raises ``ArgumentTypeError``, one clear
line, for bad input) and the check that an output file can be written, made before the slow part."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

__all__ = ["non_negative_int", "positive_float", "positive_int", "unwritable"]


def _int_at_least(text: str, minimum: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1."""
    return _int_at_least(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    return _int_at_least(text, 0, "an integer >= 0")


def positive_float(text: str) -> float:
    """A positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive, finite number of seconds, got {text}")
    return value


def unwritable(path: Path) -> str:
    """Why a file cannot be written at ``path`` ("" if it can): a folder there, a missing folder, no
    permission or a file system that refuses new files (tried: a file made there is removed again)."""
    if path.is_dir():
        return "is a folder"
    if not path.parent.is_dir():
        return f"{path.parent} is not a folder" if path.parent.exists() else f"folder {path.parent} does not exist"
    existed = path.exists()
    try:
        with open(path, "ab"):
            pass
    except OSError as e:
        return f"cannot be written ({e.strerror or e})"
    if not existed:
        path.unlink(missing_ok=True)
    return ""
