"""Checkpoints of ``inception-zoo train``: ``OUT/last.safetensors`` (weights) and ``OUT/last_state.pt``
(epoch, step, optimizer, scheduler, RNG: tensors and numbers only, loadable with
``torch.load(weights_only=True)``), written atomically and read back for ``--resume``."""

from __future__ import annotations

import os
import random
from pathlib import Path

import torch
from torch import nn

from ..weights import load_pretrained, save_weights
from .data import TrainError


def _atomic_save(writers: dict[Path, object]) -> None:
    """Write every file through its ``write(tmp_path)`` to a temporary name first, then rename them all
    into place: a crash while writing leaves the previous checkpoint whole (weights and state together)."""
    tmps = {path: path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}") for path in writers}
    try:
        for path, write in writers.items():
            write(tmps[path])
        for path, tmp in tmps.items():
            os.replace(tmp, path)
    finally:
        for tmp in tmps.values():
            if tmp.exists():
                tmp.unlink()


def _rng_state() -> dict:
    """The torch, Python and NumPy RNG states as tensors and numbers (so ``weights_only`` loads them)."""
    import numpy as np

    np_state = np.random.get_state()
    py_state = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "python": list(py_state[1]) + [py_state[2] if py_state[2] is not None else -1],
        "numpy": torch.from_numpy(np_state[1].astype("int64")),
        "numpy_pos": int(np_state[2]),
    }


def _set_rng_state(state: dict) -> None:
    """Restore the RNG states :func:`_rng_state` returned."""
    import numpy as np

    torch.set_rng_state(state["torch"])
    py = list(state["python"])
    gauss = None if py[-1] == -1 else py[-1]
    random.setstate((3, tuple(int(v) for v in py[:-1]), gauss))
    np.random.set_state(("MT19937", state["numpy"].numpy().astype("uint32"), state["numpy_pos"], 0, 0.0))


def _save_checkpoint(
    out: Path, model: nn.Module, opt, sched, name: str, epoch: int, step_in_epoch: int
) -> None:
    """Write ``out/last.safetensors`` and ``out/last_state.pt`` together, atomically; the run goes on at
    step ``step_in_epoch`` (0-based, 0: the epoch's start) of epoch ``epoch`` (0-based)."""
    state = {"epoch": epoch, "step_in_epoch": step_in_epoch, "optimizer": opt.state_dict(),
             "scheduler": sched.state_dict(), "rng": _rng_state(), "model": name}
    _atomic_save({
        out / "last.safetensors": lambda p: save_weights(model, p),
        out / "last_state.pt": lambda p: torch.save(state, p),
    })


def _load_checkpoint(path: Path, model: nn.Module, opt, sched) -> tuple[int, int]:
    """Load weights, optimizer, schedule and RNG from ``path`` (``OUT`` or ``OUT/last_state.pt``);
    returns where to go on: (epoch, step_in_epoch).

    Raises:
        TrainError: no training state at ``path``.
    """
    state_path = path / "last_state.pt" if path.is_dir() else path
    if not state_path.is_file():
        raise TrainError(f"--resume: no training state at {state_path}")
    state = torch.load(state_path, map_location="cpu", weights_only=True)
    load_pretrained(model, state_path.with_name("last.safetensors"), source="ours")
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    _set_rng_state(state["rng"])
    return state["epoch"], state["step_in_epoch"]
