"""The errors of checkpoint loading, shared by every reader and loader of :mod:`inception_zoo.weights`."""

from __future__ import annotations

__all__ = ["CheckpointError", "CheckpointNotFoundError"]


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded into the model; the model is left unchanged."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint path does not exist (also a :class:`FileNotFoundError`)."""
