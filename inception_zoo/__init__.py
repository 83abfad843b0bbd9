"""inception_zoo: the Inception family of image classifiers on PyTorch, exact to the papers."""

from . import models  # noqa: F401  (registers every model)
from .deploy import optimize_for_inference
from .factory import create_model
from .losses import InceptionLoss
from .models import InceptionNet, InceptionOutputs
from .records import ModelRecord, Paper, Peer, Pretrained, Recipe
from .registry import (
    UnknownModelError,
    get_pretrained,
    get_record,
    is_model,
    list_models,
    list_pretrained,
    list_records,
    register_model,
)
from .weights import CheckpointError, CheckpointNotFoundError, load_pretrained, save_weights

__version__ = "0.1.0"
__all__ = [
    "create_model",
    "list_models",
    "list_records",
    "list_pretrained",
    "get_record",
    "get_pretrained",
    "register_model",
    "is_model",
    "UnknownModelError",
    "ModelRecord",
    "Paper",
    "Peer",
    "Pretrained",
    "Recipe",
    "InceptionNet",
    "InceptionOutputs",
    "InceptionLoss",
    "optimize_for_inference",
    "load_pretrained",
    "save_weights",
    "CheckpointError",
    "CheckpointNotFoundError",
]
