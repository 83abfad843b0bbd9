"""Checkpoints: read them safely, load ours and the peers' (torchvision, timm, pytorchcv, pytorch-fid,
Cadene's pretrainedmodels, facenet-pytorch, Keras) through committed key maps, save ours as safetensors.

* :mod:`.reader`: reading files and unwrapping containers, never running code from them;
* :mod:`.keras`: reading Keras' .h5 / .weights.h5 / .keras files (h5py), kernels in PyTorch's layouts;
* :mod:`.keymaps`: the committed tables peer key -> our key, one per model and layout;
* :mod:`.layouts`: which layout a checkpoint's keys are in;
* :mod:`.adapt`: what a source's conventions change in the tensors (input folded into the first
  convolution, background class dropped, ...);
* :mod:`.sources`: one module per peer library (to regenerate the maps, and as the tests' reference);
* :mod:`.load`: :func:`load_pretrained`, :func:`save_weights`, :func:`convert_checkpoint`;
* :mod:`.hub`: published weights by name (``create_model("<model>.<tag>", pretrained=True)``).
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
