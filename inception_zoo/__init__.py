"""inception_zoo: the Inception family of image classifiers on PyTorch, exact to the papers."""

from . import models  # noqa: F401  (registers every model)
from .deploy import optimize_for_inference
from .losses import InceptionLoss
from .models.base import InceptionNet, InceptionOutputs
from .weights import CheckpointError, CheckpointNotFoundError, load_pretrained, save_weights
from .registry import UnknownModelError, create_model, is_model, list_models, register_alias, register_model

__version__ = "0.1.0"
__all__ = [
    "create_model",
    "list_models",
    "register_model",
    "register_alias",
    "is_model",
    "UnknownModelError",
    "InceptionNet",
    "InceptionOutputs",
    "InceptionLoss",
    "optimize_for_inference",
    "load_pretrained",
    "save_weights",
    "CheckpointError",
    "CheckpointNotFoundError",
]
