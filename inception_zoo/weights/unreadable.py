"""Why a file is no readable checkpoint, in words: the messages of :mod:`.reader` for damaged bytes (torch's
unpickler errors turned into "its data ends early", "an opcode torch.save never writes", ...) and for
pickles ``torch.load(weights_only=True)`` refuses (what they hold, found by a probe that builds nothing)."""

from __future__ import annotations

import argparse
import contextlib
import io
import pickle
import pickletools
import re
import struct
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import torch

_SAFE_GLOBALS = (argparse.Namespace,)  # the training arguments timm's and torchvision's scripts store
_CONVERT = 'torch.save({}.state_dict(), "weights.pth")'
_EMA_KEYS = ("state_dict_ema", "model_ema", "ema_state_dict")  # where checkpoints keep their weights
_MODEL_KEYS = ("state_dict", "model", "model_state_dict", "module", "net")


def _is_pickle(path: Path) -> bool:
    """Whether the file starts like a pickle (torch.save's legacy format): the PROTO opcode."""
    with open(path, "rb") as f:
        return f.read(1) == pickle.PROTO


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _corrupt(path: Path, e: BaseException | None, why: str = "") -> str:
    """The message for a file that is no checkpoint, the reason in words: ``why``, or from torch's ``e``."""
    return (
        f"{str(path)!r} is not a readable PyTorch checkpoint (truncated or corrupt?): {why or _why(path, e)}"
    )


def _where(path: Path) -> str:  # where the pickle is: the zip's data.pkl, the file itself, or none
    return "its data.pkl" if zipfile.is_zipfile(path) else "its pickle" if _is_pickle(path) else "its bytes"


def _why(path: Path, e: BaseException | None) -> str:
    text, where = (_first_line(e) if e else "").rstrip("."), _where(path)
    operand = re.match(r"Unsupported operand (\d+)", text)  # an opcode weights_only's unpickler does not know
    miniz = re.match(
        r"PytorchStreamReader failed (?:reading zip archive: )?(.+?)(?:\. This is an inter.*)?$", text
    )
    if path.stat().st_size == 0:
        return "the file is empty"
    if isinstance(e, (EOFError, struct.error)) or text.startswith(("unexpected EOF", "index out of range")):
        return "its data ends early"
    if isinstance(e, OSError):
        return f"reading it failed ({text})"
    if miniz:
        return f"its zip archive is damaged ({miniz.group(1)})"
    if where == "its bytes":
        return "its bytes are neither a zip archive nor a pickle that torch.save writes"
    if operand:
        code = int(operand.group(1))
        if op := pickletools.code2op.get(chr(code) if code < 256 else ""):
            return f"{where} holds opcode {code} ({chr(code)!r}, {op.name}), which torch.save never writes"
        return f"{where} holds byte {code} (0x{code:02x}) where an opcode should be"
    if isinstance(e, KeyError):  # BINGET of a memo entry never stored; str(e) is a bare number
        return f"{where} refers to object {e.args[0]!r} of its memo, which it never stored"
    if isinstance(e, UnicodeDecodeError):
        return f"a string in {where} is not valid UTF-8 (byte 0x{e.object[e.start]:02x} at offset {e.start})"
    malformed = isinstance(e, (IndexError, AssertionError, AttributeError, TypeError))  # e.g. an empty stack
    return f"{where} is malformed ({text})" if malformed else text


def _refusal(path: Path, error: str) -> str:
    """The message for a file ``torch.load(weights_only=True)`` rejected: what it holds, in words."""
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    at = next((i for i, ln in enumerate(lines) if "WeightsUnpickler error:" in ln), None)
    detail = (
        "" if at is None else (lines[at].split("error:", 1)[1].strip() or "".join(lines[at + 1 : at + 2]))
    )
    named = re.search(r"GLOBAL (\S+?)(?: was not| whose|\.?$)", detail) or re.search(
        r"<class '([^']+)'>", detail
    )
    root, shown = _probe(path), repr(str(path))
    if root is _UNREADABLE and not named:  # not a pickle at all
        return _corrupt(path, pickle.UnpicklingError(detail or "not a pickle"))
    if root is _UNREADABLE:  # a name (maybe cut short itself), but a pickle that cannot be read to its end
        return _corrupt(path, None, f"{_where(path)} is damaged: it cannot be read to its end")
    module = _find(
        root, lambda g, state: isinstance(state, dict) and "_modules" in state and "_parameters" in state
    )
    if module:
        cls, where = module
        m = "ckpt" if where else "m"
        place = f"holds, at {m}{where}," if where else "is"
        return (
            f"refused to load {shown}: it {place} a whole pickled nn.Module ({cls}), not a state dict; "
            "unpickling it would run code named in the file (arbitrary code), which is never done here. Where "
            f"you trust the file, turn it into a state dict in two lines: {m} = torch.load({shown}, "
            "weights_only=False); " + _CONVERT.format(m + where)
        )
    name = named.group(1) if named else ""
    allowed = _allowed()
    hit = _find(root, lambda g, _: g.qualname == name if name else g.qualname not in allowed)
    if not name and not hit:  # pickle protocols 4 and 5, which torch.load(weights_only=True) reads not
        with _pickle_stream(path) as f:
            head = f.read(2)
        protocol = head[1] if head[:1] == pickle.PROTO else "?"
        written = f"pickle.dump (pickle protocol {protocol}), not torch.save"
        fix = f'pickle.load(open({shown}, "rb"))'
        if zipfile.is_zipfile(path):
            written, fix = (
                f"torch.save(..., pickle_protocol={protocol})",
                f"torch.load({shown}, weights_only=False)",
            )
        return (
            f"refused to load {shown}: it was written by {written}, which torch.load(weights_only=True) cannot "
            f'read. Where you trust the file, write it again: torch.save({fix}, "weights.pth")'
        )
    what = f"GLOBAL {name or hit[0]}" + (f", at ckpt{hit[1]}" if hit and hit[1] else "")
    keep = next((k for k in _MODEL_KEYS + _EMA_KEYS if isinstance(root, dict) and k in root), None)
    if keep and not (hit and hit[1].startswith(f"[{keep!r}]")):
        how = f'ckpt = torch.load({shown}, weights_only=False); torch.save(ckpt[{keep!r}], "weights.pth")'
    else:
        how = f"load it with torch.load({shown}, weights_only=False) and torch.save its state dict alone"
    return (
        f"refused to load {shown}: it needs arbitrary code to unpickle ({what}; not allow-listed), which is "
        f"never run. Where you trust the file: {how}"
    )


def _allowed() -> set[str]:
    """The globals ``torch.load(weights_only=True)`` accepts, as ``module.name``."""
    from torch import _weights_only_unpickler as unpickler

    names = set(getattr(unpickler, "_get_allowed_globals", dict)())
    names |= {
        f"{g.__module__}.{g.__qualname__}"
        for g in (*torch.serialization.get_safe_globals(), *_SAFE_GLOBALS)
        if hasattr(g, "__qualname__")
    }
    return names


# ------------------------------------------------------------------------------------------ probe
class _Ghost:
    """Stands in for every class or function a pickle names: records what it is given, runs nothing."""

    qualname = "?"

    def __new__(cls, *args: Any, **kwargs: Any):
        self = object.__new__(cls)
        self.args, self.state, self.items = args, None, {}
        return self

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __setitem__(self, key: Any, value: Any) -> None:
        self.items[key] = value

    def append(self, value: Any) -> None:
        self.items[len(self.items)] = value

    def extend(self, values: Any) -> None:
        for v in values:
            self.append(v)


class _Probe(pickle.Unpickler):
    """Unpickles the structure only: every global becomes a fresh :class:`_Ghost` subclass, so nothing the
    file names is imported or called."""

    def find_class(self, module: str, name: str) -> type:
        return type("Ghost", (_Ghost,), {"qualname": f"{module}.{name}"})

    def persistent_load(self, pid: Any) -> Any:
        # torch's legacy format stores an nn.Module's class as ("module", class, file, source)
        return pid[1] if isinstance(pid, tuple) and len(pid) > 1 and pid[0] == "module" else None


_UNREADABLE = object()


@contextlib.contextmanager
def _pickle_stream(path: Path) -> Iterator[IO[bytes]]:
    """The pickle of a checkpoint: ``data.pkl`` of torch's zip format, or the file itself."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            yield io.BytesIO(z.read(next(n for n in z.namelist() if n.endswith("data.pkl"))))
    else:
        with open(path, "rb") as f:  # read as far as the pickle goes, not the tensor data after it
            yield f


def _probe(path: Path) -> Any:
    """The pickle's structure, every global in it a :class:`_Ghost`, read without running anything;
    ``_UNREADABLE`` if it cannot be read."""
    try:
        with _pickle_stream(path) as f:
            probe = _Probe(f)
            obj = probe.load()
            if isinstance(obj, int) and obj == 0x1950A86A20F9469CFC6C:  # torch's legacy format: its header
                probe.load(), probe.load()
                obj = probe.load()
            return obj
    except Exception:  # noqa: BLE001 - a damaged pickle: torch's own message is all there is
        return _UNREADABLE


def _find(obj: Any, test: Callable[[_Ghost, Any], bool]) -> tuple[str, str] | None:
    """The class name and the index path (``['model']``) of the shallowest ghost object for which
    ``test(ghost, its state)`` holds."""
    level, seen = [(obj, "")], set()
    for _ in range(8):
        following = []
        for item, where in level:
            if id(item) in seen:
                continue
            seen.add(id(item))
            if isinstance(item, _Ghost):
                if item.qualname.split(".")[0] in ("copyreg", "copy_reg") and item.args:
                    item.qualname = getattr(item.args[0], "qualname", item.qualname)  # pickle protocols 0, 1
                state = item.state[0] if isinstance(item.state, tuple) and item.state else item.state
                if test(item, state):
                    return item.qualname, where
                following += [(v, f"{where}[{k!r}]") for k, v in item.items.items()]
                following += [(v, where) for v in (*item.args, item.state)]
            elif isinstance(item, dict):
                following += [(v, f"{where}[{k!r}]") for k, v in item.items()]
            elif isinstance(item, (list, tuple)):
                following += [(v, f"{where}[{i}]") for i, v in enumerate(item)]
        level = following
    return None


# ------------------------------------------------------------------------------------------ containers
