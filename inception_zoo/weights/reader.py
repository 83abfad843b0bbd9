"""Reading checkpoint files safely: safetensors, or ``torch.load(weights_only=True)``; containers unwrapped."""

from __future__ import annotations

import os
import pickle
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = ["CheckpointError", "CheckpointNotFoundError", "read_checkpoint", "unwrap_state_dict", "few"]

_SHOWN = 5  # keys listed per category in an error message


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded into the model; the model is left unchanged."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint path does not exist (also a :class:`FileNotFoundError`)."""


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a checkpoint file into ``(state_dict, metadata)`` without running any code from it.

    ``.safetensors`` files are read with the safetensors library (metadata: its header's ``__metadata__``);
    anything else with ``torch.load(weights_only=True)``, which refuses pickles that need arbitrary code.
    Containers are unwrapped (``state_dict``, ``model``, ``model_state_dict``, ``module``, ``net``) and
    ``module.`` (DataParallel / DDP) and ``_orig_mod.`` (torch.compile) prefixes stripped.

    Raises:
        CheckpointNotFoundError: no such file.
        CheckpointError: unreadable, truncated or corrupt, refused (needs code to unpickle), or holding no
            tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"checkpoint {str(path)!r} does not exist or is not a file")
    metadata: dict[str, str] = {}
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                metadata = dict(f.metadata() or {})
                obj: Any = {k: f.get_tensor(k) for k in f.keys()}
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(
                f"{str(path)!r} is not a readable safetensors file (truncated or corrupt?): {e}"
            ) from None
    else:
        try:
            with warnings.catch_warnings():  # e.g. torch's note on pickle protocols
                warnings.simplefilter("ignore")
                obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            raise CheckpointError(_refusal(str(path), str(e))) from None
        except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, KeyError) as e:
            raise CheckpointError(
                f"{str(path)!r} is not a readable PyTorch checkpoint (truncated or corrupt?): {e}"
            ) from None
    return unwrap_state_dict(obj, str(path)), metadata


def _refusal(path: str, error: str) -> str:
    """The message for a file ``torch.load(weights_only=True)`` rejected."""
    if not error.startswith("Weights only load failed"):  # not even a pickle
        return f"{path!r} is not a readable PyTorch checkpoint (truncated or corrupt?): {error}"
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    detail = next((ln for ln in lines if ln.startswith(("Unsupported", "Trying to", "Can only"))), lines[-1])
    said = f"torch.load(weights_only=True) said: {detail}"
    if "GLOBAL" in detail or "global" in detail:
        return f"refused to load {path!r}: it needs arbitrary code to unpickle, which is never run ({said})"
    return (
        f"refused to load {path!r} ({said}): it is truncated or corrupt, or a pickle that needs code to "
        "load, which is never run"
    )


def unwrap_state_dict(obj: Any, where: str) -> dict[str, torch.Tensor]:
    """The tensors of a state dict, out of the usual containers (``state_dict``, ``model``, ``module``,
    ...) and without ``module.`` / ``_orig_mod.`` prefixes; raises :class:`CheckpointError` if none."""
    for _ in range(3):
        if isinstance(obj, Mapping) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
            for key in ("state_dict", "model", "model_state_dict", "module", "net", "model_ema"):
                if isinstance(obj.get(key), Mapping):
                    obj = obj[key]
                    break
            else:
                break
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{where} holds no state dict (got {type(obj).__name__})")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"{where} holds no tensors (keys: {few(list(obj))})")
    for prefix in ("module.", "_orig_mod."):
        if all(k.startswith(prefix) for k in tensors):
            tensors = {k[len(prefix):]: v for k, v in tensors.items()}
    return tensors


def few(keys) -> str:
    """The first few keys, and how many there are in all, for an error message."""
    keys = list(keys)
    shown = ", ".join(keys[:_SHOWN])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > _SHOWN else "")
