"""Reading checkpoint files safely: safetensors, or ``torch.load(weights_only=True)``; containers unwrapped.

Accepted containers (the tensors are found inside, nothing else is needed from them):

* a plain state dict (``model.state_dict()``), also as ``.safetensors``;
* timm's ``train.py``: ``{'epoch', 'arch', 'state_dict', 'optimizer', 'version', 'args': Namespace,
  'state_dict_ema'?, 'amp_scaler'?, 'metric'?, 'saver'}``, or a dict holding only ``state_dict_ema``;
* torchvision's ``references/classification/train.py``: ``{'model', 'optimizer', 'lr_scheduler', 'epoch',
  'args': Namespace, 'model_ema'?, 'scaler'?}`` (``model_ema`` is an ``AveragedModel``: ``module.*`` keys
  and its ``n_averaged`` counter);
* PyTorch Lightning: ``{'state_dict': {'<attribute>.<key>': ...}, 'epoch', 'global_step',
  'pytorch-lightning_version', 'hyper_parameters', 'callbacks', 'optimizer_states', 'lr_schedulers', ...}``
  (the attribute prefix is removed by :func:`strip_prefix_to_fit`, where it makes the keys fit the model);
* other dicts under ``model``, ``model_state_dict``, ``module``, ``net``, ``ema_state_dict``;
* keys wrapped by DDP / DataParallel (``module.``) and ``torch.compile`` (``_orig_mod.``), in any nesting.

``argparse.Namespace`` (the arguments timm and torchvision store) is allow-listed for this load only; any
other class in the pickle is refused without running it, with a message naming it (a whole pickled
``nn.Module`` gets its own, with the two lines that turn it into a state dict where the file is trusted).
"""

from __future__ import annotations

import os
import pickle
import threading
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError, CheckpointNotFoundError
from .keras import is_keras_file, read_keras
from .unreadable import (
    _CONVERT,
    _EMA_KEYS,
    _MODEL_KEYS,
    _SAFE_GLOBALS,
    _corrupt,
    _first_line,
    _is_pickle,
    _refusal,
)

__all__ = [
    "CheckpointError",
    "CheckpointNotFoundError",
    "few",
    "load_torch_file",
    "read_checkpoint",
    "strip_prefix_to_fit",
    "strip_wrappers",
    "unwrap_state_dict",
]

_SHOWN = 5  # keys listed per category in an error message
_ALLOW_LIST_LOCK = threading.Lock()
_WRAPPERS = ("module.", "_orig_mod.")  # DDP / DataParallel, torch.compile


def read_checkpoint(
    path: str | os.PathLike, *, use_ema: bool = True
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a checkpoint file into ``(state_dict, metadata)`` without running any code from it.

    ``.safetensors`` files are read with the safetensors library (metadata: its header's ``__metadata__``);
    Keras files (``.keras``, and HDF5 files whatever their name: ``.h5``, ``.weights.h5``) with h5py
    (:func:`~inception_zoo.weights.keras.read_keras`);
    anything else with ``torch.load(weights_only=True)``, with ``argparse.Namespace`` allow-listed for this
    call only. The state dict is taken out of its container (see the module's docstring and
    :func:`unwrap_state_dict`; ``use_ema`` as there) and ``module.`` / ``_orig_mod.`` prefixes stripped.

    Raises:
        CheckpointNotFoundError: no such file.
        CheckpointError: unreadable, truncated or corrupt; a TorchScript archive; a whole pickled
            ``nn.Module`` or any other pickle that needs a class or function outside the allow-list (never
            run; the message names it); or holding no tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"checkpoint {str(path)!r} does not exist or is not a file")
    metadata: dict[str, str] = {}
    with open(path, "rb") as f:
        hdf5 = f.read(len(_HDF5_SIGNATURE)) == _HDF5_SIGNATURE
    if path.suffix.lower() == ".keras" or hdf5:  # Keras (read with h5py, see inception_zoo.weights.keras)
        return read_keras(path)
    if is_keras_file(path):  # an .h5 without HDF5's signature
        if path.stat().st_size > 0 and (zipfile.is_zipfile(path) or _is_pickle(path)):
            raise CheckpointError(
                f"{str(path)!r} is named like a Keras file but holds no HDF5 data: its bytes are "
                "a PyTorch checkpoint's (torch.save); rename it to .pth to load it as one"
            )
        why = "the file is empty" if path.stat().st_size == 0 else "it does not start with HDF5's signature"
        raise CheckpointError(f"{str(path)!r} is not a readable Keras file (truncated or corrupt?): {why}")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                metadata = dict(f.metadata() or {})
                obj: Any = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open is no mapping
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(
                f"{str(path)!r} is not a readable safetensors file (truncated or corrupt?): {_first_line(e)}"
            ) from None
    else:
        obj = load_torch_file(path)
    return unwrap_state_dict(obj, str(path), use_ema=use_ema), metadata


def load_torch_file(path: str | os.PathLike) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)`` (any object, not unwrapped), with
    ``argparse.Namespace`` allow-listed for this call only. Raises what :func:`read_checkpoint` raises, with
    what is wrong in words (the data ends early, an opcode torch.save never writes, ...), never a bare number.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"checkpoint {str(path)!r} does not exist or is not a file")
    try:
        # the allow-list is process-wide: one load at a time adds what is not on it yet (removed on leaving)
        with _ALLOW_LIST_LOCK:
            extra = [g for g in _SAFE_GLOBALS if g not in torch.serialization.get_safe_globals()]
            with warnings.catch_warnings(), torch.serialization.safe_globals(extra):
                warnings.simplefilter("ignore")  # e.g. torch's note on pickle protocols
                return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(_refusal(path, str(e))) from None
    except Exception as e:  # noqa: BLE001 - on damaged bytes torch raises whatever its unpickler trips on
        if "TorchScript" in str(e):
            raise CheckpointError(
                f"refused to load {str(path)!r}: it is a TorchScript archive (torch.jit.save), not a state "
                f"dict. Where you trust the file: m = torch.jit.load({str(path)!r}); " + _CONVERT.format("m")
            ) from None
        raise CheckpointError(_corrupt(path, e)) from None


_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # the first bytes of every HDF5 file (Keras' .h5)


def unwrap_state_dict(obj: Any, where: str, *, use_ema: bool = True) -> dict[str, torch.Tensor]:
    """The tensors of a state dict, taken out of the training containers of timm, torchvision's reference
    scripts, Lightning, ... (see the module's docstring), without ``module.`` / ``_orig_mod.`` prefixes.

    ``use_ema``: where a container holds both EMA weights (``state_dict_ema``, ``model_ema``,
    ``ema_state_dict``) and the raw training weights (``state_dict``, ``model``, ...), True takes the EMA
    weights, as timm's ``load_checkpoint`` does by default; False the raw ones. A container holding EMA
    weights only is loaded with True, refused with False.

    Raises:
        CheckpointError: no state dict or no tensors in ``obj``, or only EMA weights and ``use_ema=False``.
    """
    for _ in range(3):
        if not isinstance(obj, Mapping) or any(isinstance(v, torch.Tensor) for v in obj.values()):
            break
        present = [k for k in _EMA_KEYS + _MODEL_KEYS if isinstance(obj.get(k), Mapping) and obj[k]]
        ema = [k for k in present if k in _EMA_KEYS]
        raw = [k for k in present if k not in _EMA_KEYS]
        if ema and not raw and not use_ema:
            raise CheckpointError(
                f"{where} holds EMA weights only ({ema[0]!r}); pass use_ema=True to load them"
            )
        if not present:
            break
        obj = obj[(ema if use_ema and ema else raw)[0]]
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{where} holds no state dict (got {type(obj).__name__})")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"{where} holds no tensors (keys: {few(list(obj))})")
    # torch.optim.swa_utils.AveragedModel (torchvision's model_ema): its counter beside the module.* keys
    if (
        len(tensors) > 1
        and "n_averaged" in tensors
        and all(k.startswith("module.") for k in tensors if k != "n_averaged")
    ):
        del tensors["n_averaged"]
    return strip_wrappers(tensors)


def strip_wrappers(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` without the ``module.`` (DDP) and ``_orig_mod.`` (torch.compile) prefixes that all its keys
    share, in any nesting (``module._orig_mod.``, ``_orig_mod.module.``, ...)."""
    while state:
        prefix = next((p for p in _WRAPPERS if all(k.startswith(p) for k in state)), None)
        if prefix is None:
            return state
        state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def strip_prefix_to_fit(
    state: dict[str, torch.Tensor], score: Callable[[set[str]], float]
) -> tuple[dict[str, torch.Tensor], str]:
    """``state`` without the attribute prefix a wrapper module put on its keys (a LightningModule's
    ``model.``, ``net.``, ``backbone.``, ..., with any ``module.`` / ``_orig_mod.`` after it), and the
    prefix removed (``""`` if none).

    A prefix is the first dotted name of at least half of the keys; it is removed only where ``score`` (how
    well a key set fits the model, higher is better) rises, so keys that already fit stay as they are. Keys
    without the prefix are kept, to be reported as unexpected.
    """
    best, best_score, removed = state, score(set(state)), ""
    for _ in range(3):  # e.g. "model." and then "backbone."
        heads = Counter(k.split(".", 1)[0] for k in best if "." in k)
        found = None
        for head, count in heads.items():
            if 2 * count < len(best):
                continue
            candidate = {}
            for k, v in best.items():
                if k.startswith(head + "."):
                    k = k[len(head) + 1 :]
                    while k.startswith(_WRAPPERS):
                        k = k.split(".", 1)[1]
                candidate[k] = v
            if len(candidate) == len(best) and (s := score(set(candidate))) > best_score + 1e-12:
                found, best_score = (candidate, head + "."), s
        if found is None:
            break
        best, removed = found[0], removed + found[1]
    return best, removed


def few(keys) -> str:
    """The first few keys, and how many there are in all, for an error message."""
    keys = list(keys)
    shown = ", ".join(keys[:_SHOWN])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > _SHOWN else "")
