"""One module per paper; importing this package registers every model."""

from . import bn_inception, inception_resnet, inception_v1, inception_v3, inception_v4, xception  # noqa: F401
from .base import InceptionNet, InceptionOutputs

__all__ = ["InceptionNet", "InceptionOutputs"]
