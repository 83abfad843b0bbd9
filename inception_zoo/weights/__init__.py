"""Checkpoints: read them safely, load ours and the peers' (torchvision, timm, pytorchcv) through committed
key maps, save ours as safetensors.

* :mod:`.reader`: reading files and unwrapping containers, never running code from them;
* :mod:`.keymaps`: the committed tables peer key -> our key, one per model and layout;
* :mod:`.sources`: one module per peer library (to regenerate the maps, and as the tests' reference);
* :mod:`.load`: :func:`load_pretrained`, :func:`save_weights`, :func:`convert_checkpoint`.
"""

from .load import SOURCES, convert_checkpoint, load_pretrained, save_weights
from .reader import CheckpointError, CheckpointNotFoundError, read_checkpoint

__all__ = [
    "CheckpointError",
    "CheckpointNotFoundError",
    "SOURCES",
    "convert_checkpoint",
    "load_pretrained",
    "read_checkpoint",
    "save_weights",
]
