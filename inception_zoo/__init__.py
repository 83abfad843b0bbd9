"""inception_zoo: the Inception family of image classifiers on PyTorch, exact to the papers."""

from . import models  # noqa: F401  (registers every model)
from .models.base import InceptionOutputs
from .registry import create_model, is_model, list_models, register_model

__version__ = "0.1.0"
__all__ = ["create_model", "list_models", "register_model", "is_model", "InceptionOutputs"]
