"""Published checkpoints by name: ``create_model("inception_v3.tv_in1k", pretrained=True)``.

The file is fetched the way its publisher's library does it, into that library's cache, where a file a
user's own torchvision or timm downloaded earlier is found too:

* a URL (torchvision, pytorchcv, timm's GitHub releases): ``torch.hub.load_state_dict_from_url`` into
  ``$TORCH_HOME/hub/checkpoints`` (the published sha256 prefix checked on download; a pytorchcv zip is
  extracted by torch.hub and its ``.pth`` checked against pytorchcv's published sha1);
* a Hugging Face repo (timm's): ``huggingface_hub.hf_hub_download`` into ``$HF_HOME/hub``.
* a Keras ``.h5`` (keras.applications' weights): ``torch.hub.download_url_to_file`` into Keras' own cache,
  ``$KERAS_HOME/models`` (default ``~/.keras/models``), where ``keras.applications`` finds it too and puts
  its own downloads; the md5 Keras publishes is checked.

A file already in those caches is used without any network access; ``HF_HUB_OFFLINE=1`` forbids network
access for both. The file is converted once (committed key map, input conventions folded) and cached as
safetensors in :func:`cache_dir` as ``<model>.<tag>.safetensors``: later loads read only that file.
Failures are one clear :class:`~inception_zoo.CheckpointError`, and never leave a partial file there.
"""

from __future__ import annotations

import hashlib
import os
import socket
import warnings
import zipfile
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from ..records import ModelRecord, Pretrained
from .keras import is_keras_file
from .load import converted, load_pretrained, save_weights
from .reader import CheckpointError, CheckpointNotFoundError, read_checkpoint, unwrap_state_dict

__all__ = ["CACHE_ENV", "cache_dir", "cached_file", "keras_cache", "load_published"]

CACHE_ENV = "INCEPTION_ZOO_CACHE"


def cache_dir() -> Path:
    """Where converted weights are cached: ``$INCEPTION_ZOO_CACHE``, else ``$XDG_CACHE_HOME/inception_zoo``,
    else ``~/.cache/inception_zoo`` (read at each call)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "inception_zoo"


def cached_file(record: ModelRecord, row: Pretrained) -> Path:
    """The converted weights of ``record.name``'s ``row.tag`` in :func:`cache_dir`."""
    return cache_dir() / f"{record.name}.{row.tag}.safetensors"


def _offline() -> bool:
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - a timm dependency
        return os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")
    return bool(constants.HF_HUB_OFFLINE)


def _unavailable(name: str, row: Pretrained, looked_in: Path, fetch: str, reason: str) -> CheckpointNotFoundError:
    return CheckpointNotFoundError(
        f"{name}: the weights {row.location} are not in the cache ({looked_in}) and could not be downloaded "
        f"({reason}). On a machine with internet access, run: {fetch} -- then copy the cache folder here, "
        f"or point {_cache_variable(row)} at it."
    )


def _cache_variable(row: Pretrained) -> str:
    """The environment variable that points at the cache the row's file is looked for in."""
    if row.url is None:
        return "HF_HOME"
    return "KERAS_HOME" if is_keras_file(urlparse(row.url).path) else "TORCH_HOME"


def _torch_hub_file(row: Pretrained) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(row.url).path)


def keras_cache() -> Path:
    """Keras' download cache, as ``keras.utils.get_file`` resolves it: ``$KERAS_HOME/models``, else
    ``~/.keras/models`` (``/tmp/.keras/models`` where the home folder is not writable)."""
    if os.environ.get("KERAS_HOME"):
        return Path(os.environ["KERAS_HOME"]) / "models"
    home = Path.home() if os.access(Path.home(), os.W_OK) else Path("/tmp")
    return home / ".keras" / "models"


def _from_keras_url(name: str, row: Pretrained, progress: bool) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A Keras ``.h5`` from its URL (see the module's docstring), read by :mod:`inception_zoo.weights.keras`."""
    file = keras_cache() / os.path.basename(urlparse(row.url).path)
    fetch = (f"python -c \"import torch; torch.hub.download_url_to_file('{row.url}', '{file}')\" "
             "(or build the model once with keras.applications and weights='imagenet')")
    if not file.is_file():
        if _offline():
            raise _unavailable(name, row, file, fetch, "HF_HUB_OFFLINE is set")
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_name(f".{file.name}.{os.getpid()}.part")
        try:
            torch.hub.download_url_to_file(row.url, str(tmp), progress=progress)
            digest = hashlib.md5(tmp.read_bytes()).hexdigest()
            if row.md5 and digest != row.md5:
                raise CheckpointError(f"{name}: the download of {row.url} has md5 {digest}, not the published "
                                      f"{row.md5}; nothing was kept. Try again.")
            os.replace(tmp, file)
        except OSError as e:
            raise _unavailable(name, row, file, fetch, str(e)) from e
        finally:
            tmp.unlink(missing_ok=True)
    try:
        return read_checkpoint(file)
    except CheckpointError as e:
        raise CheckpointError(f"{name}: {e}. Delete it and try again.") from None


def _from_url(name: str, row: Pretrained, progress: bool) -> dict[str, torch.Tensor]:
    file = _torch_hub_file(row)
    fetch = f"python -c \"import torch; torch.hub.load_state_dict_from_url('{row.url}')\""
    downloaded = not file.is_file()
    if downloaded and _offline():
        raise _unavailable(name, row, file, fetch, "HF_HUB_OFFLINE is set")
    try:
        with warnings.catch_warnings():  # torch.hub's notice on the one-file zips pytorchcv publishes
            warnings.filterwarnings("ignore", "Falling back to the old format", FutureWarning)
            state = torch.hub.load_state_dict_from_url(
                row.url, map_location="cpu", progress=progress, check_hash=bool(row.sha256), weights_only=True
            )
    except OSError as e:  # URLError, connection refused, no route to host, HTTP errors
        raise _unavailable(name, row, file, fetch, str(e)) from e
    except RuntimeError as e:
        if "invalid hash value" in str(e):
            raise CheckpointError(
                f"{name}: the download of {row.url} does not match its published sha256 prefix {row.sha256} "
                f"({e}); nothing was kept. Try again; if it persists, the file on the server has changed."
            ) from e
        raise CheckpointError(f"{name}: {file} is not a readable checkpoint (truncated or corrupt?): {e}. "
                              "Delete it and try again.") from e
    except Exception as e:  # noqa: BLE001 - an unreadable cached file (EOFError, UnpicklingError, BadZipFile...)
        raise CheckpointError(f"{name}: {file} is not a readable checkpoint (truncated or corrupt?): {e}. "
                              "Delete it and try again.") from e
    if downloaded and row.sha1:
        _check_sha1(name, row, file)
    return unwrap_state_dict(state, str(file))


def _check_sha1(name: str, row: Pretrained, file: Path) -> None:
    """pytorchcv publishes the sha1 of the ``.pth`` inside its zip (which torch.hub extracted beside it)."""
    with zipfile.ZipFile(file) as z:
        inner = file.parent / z.namelist()[0]
    digest = hashlib.sha1(inner.read_bytes()).hexdigest()
    if digest != row.sha1:
        for f in (file, inner):
            f.unlink(missing_ok=True)
        raise CheckpointError(f"{name}: {inner.name} from {row.url} has sha1 {digest}, not the published "
                              f"{row.sha1}; the files were removed. Try again.")


def _from_hf_hub(name: str, row: Pretrained) -> dict[str, torch.Tensor]:
    from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache

    repo, filename = row.hf_hub
    looked_in = Path(constants.HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}"
    fetch = f"python -c \"from huggingface_hub import hf_hub_download; hf_hub_download('{repo}', '{filename}')\""
    path = try_to_load_from_cache(repo, filename)  # no network
    if not isinstance(path, str):
        if _offline():
            raise _unavailable(name, row, looked_in, fetch, "HF_HUB_OFFLINE is set")
        host = urlparse(constants.ENDPOINT).hostname
        try:  # fails at once without a network, where huggingface_hub would retry for half a minute
            socket.getaddrinfo(host, 443)
        except OSError as e:
            raise _unavailable(name, row, looked_in, fetch, f"{host} cannot be resolved: {e}") from e
        try:
            path = hf_hub_download(repo, filename)
        except Exception as e:  # noqa: BLE001 - huggingface_hub's network and not-found errors
            raise _unavailable(name, row, looked_in, fetch, f"{type(e).__name__}: {e}") from e
    try:
        return read_checkpoint(path)[0]
    except CheckpointError as e:
        raise CheckpointError(f"{name}: {e}. Delete it and try again.") from None


def _convert(record: ModelRecord, row: Pretrained, progress: bool) -> nn.Module:
    """Fetch and convert (through the committed key map, input conventions folded)."""
    name = f"{record.name}.{row.tag}"
    metadata: dict[str, str] = {}
    if row.url and is_keras_file(urlparse(row.url).path):
        state, metadata = _from_keras_url(name, row, progress)
    else:
        state = _from_url(name, row, progress) if row.url else _from_hf_hub(name, row)
    net = converted(record.name, state, row.source, transform_input=row.transform_input, metadata=metadata)
    net.set_input_cfg(**row.cfg())
    return net


def _write_cache(net: nn.Module, path: Path) -> None:
    """Save atomically: a temporary file renamed into place (removed on any failure), readable as the
    umask allows (safetensors alone writes 0600, which a cache shared by a team could not read)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.safetensors")
    try:
        save_weights(net, tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_published(model: nn.Module, record: ModelRecord, row: Pretrained, *, progress: bool = True) -> nn.Module:
    """Load the published checkpoint ``row`` of ``record`` into ``model`` (built from ``record``): from the
    converted cache if there, else fetched, converted and cached first. ``model.default_cfg`` then holds
    the preprocessing the weights expect (mean, std, input size, crop, interpolation), the tag, license,
    source location and published accuracy. Another ``num_classes`` or ``in_chans`` is handled as by
    :func:`~inception_zoo.load_pretrained` (classifier re-initialized with a warning, or dropped for
    ``num_classes=0``; first convolution adapted). A damaged cached file is converted again; a cache
    folder that cannot be written costs a warning, and the conversion is used from memory.

    Raises:
        CheckpointNotFoundError: not cached and not downloadable (offline); names the tag, the location,
            the cache looked in, and a command that fetches it on a connected machine.
        CheckpointError: a hash mismatch, or an unreadable (truncated, corrupt) source file.
    """
    path = cached_file(record, row)
    if path.is_file():
        try:
            load_pretrained(model, path, source="ours")
        except CheckpointError as e:  # a damaged cache: convert again (the model is unchanged on failure)
            warnings.warn(f"{path} is unreadable ({e}); converting {record.name}.{row.tag} again", stacklevel=2)
            path.unlink(missing_ok=True)
        else:
            model.default_cfg["weights_source"] = row.source
            return model
    net = _convert(record, row, progress)
    try:
        _write_cache(net, path)
    except OSError as e:
        warnings.warn(f"cannot cache the converted weights in {path.parent} ({e}); set {CACHE_ENV} to a "
                      "writable folder to convert only once", stacklevel=2)
        load_pretrained(model, net.state_dict(), source="ours")
        model.set_input_cfg(**row.cfg())
    else:
        load_pretrained(model, path, source="ours")
    model.default_cfg["weights_source"] = row.source
    return model
