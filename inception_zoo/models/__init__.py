"""One module per paper; importing this package registers every model."""

from . import inception_v1  # noqa: F401
from .base import InceptionNet, InceptionOutputs

__all__ = ["InceptionNet", "InceptionOutputs"]
