"""Checkpoints of ``inception-zoo train``: ``OUT/last.safetensors`` (weights) and ``OUT/last_state.pt``
(epoch, step, optimizer, scheduler, RNG: tensors and numbers only, loadable with
``torch.load(weights_only=True)``), written atomically and read back for ``--resume``."""

from __future__ import annotations

import os
import random
from pathlib import Path

import torch
from torch import nn

from ..weights import CheckpointError, load_pretrained, save_weights
from ..weights.reader import load_torch_file
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


_STATE_KEYS = ("epoch", "step_in_epoch", "optimizer", "scheduler", "rng", "model")


def _read_state(path: Path) -> tuple[dict, Path]:
    """The training state at ``--resume`` ``path`` (``OUT`` or ``OUT/last_state.pt``) and its file, read
    before anything is built; :func:`_restore` puts it into the run.

    Raises:
        TrainError: no such folder or file, no ``last_state.pt`` in the folder, a file that is no readable
            PyTorch checkpoint (its message says what is wrong with it), or not a state this command wrote.
    """
    if not path.exists():
        raise TrainError(f"--resume {path}: no such folder or file")
    state_path = path / "last_state.pt" if path.is_dir() else path
    if not state_path.is_file():
        what = "is not a file" if state_path.exists() else "does not exist"
        raise TrainError(f"--resume {path}: no training state there ({state_path} {what})")
    try:
        state = load_torch_file(state_path)
    except CheckpointError as e:
        raise TrainError(f"--resume: {e}") from None
    missing = [k for k in _STATE_KEYS if k not in state] if isinstance(state, dict) else None
    if missing or missing is None:
        holds = f"no {', '.join(map(repr, missing))}" if missing else f"a {type(state).__name__}, not a dict"
        raise TrainError(f"--resume: {state_path} is no training state of inception-zoo train (it holds {holds})")
    return state, state_path


def _restore(state: dict, state_path: Path, model: nn.Module, opt, sched) -> tuple[int, int]:
    """Load the weights next to ``state_path`` (``last.safetensors``), then the optimizer, schedule and RNG
    of ``state`` (from :func:`_read_state`); returns where to go on: (epoch, step_in_epoch).

    Raises:
        TrainError: the weights file is missing or unreadable, or the state does not fit this run's model,
            optimizer or schedule.
    """
    try:
        load_pretrained(model, state_path.with_name("last.safetensors"), source="ours")
    except CheckpointError as e:  # the run stops here: that the weights were left unchanged does not matter
        why = str(e).removesuffix(" The model's weights were not changed.").rstrip(".")
        raise TrainError(f"--resume: {why}") from None
    try:
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])
    except (KeyError, ValueError, TypeError, IndexError, RuntimeError) as e:
        why = f"no {e.args[0]!r}" if isinstance(e, KeyError) else str(e).strip().splitlines()[0]
        raise TrainError(f"--resume: {state_path} does not fit this run's optimizer or schedule ({why})") from None
    return state["epoch"], state["step_in_epoch"]
