"""Checkpoints: load ours and the peers' (torchvision, timm, pytorchcv), save ours as safetensors.

A peer checkpoint is converted structurally: the peer's own model is built on the ``meta`` device (no
memory, no initialization) to learn its parameter order, and its keys are matched to ours position by
position within three groups (body, auxiliary heads, classifier), with every shape checked. The peers
register their layers in the order the papers draw them, and so do we, so the match is one to one; the
tests prove it by identical logits.

Nothing is ever half-loaded: the whole state dict is read, converted and checked before a single tensor is
copied into the model, and any problem raises :class:`CheckpointError` with the model's name, the layout
the keys were taken for, and the first few missing / unexpected / mis-shaped keys.
"""

from __future__ import annotations

import json
import os
import pickle
import warnings
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .models.base import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, init_weights

__all__ = [
    "CheckpointError",
    "CheckpointNotFoundError",
    "SOURCES",
    "convert_checkpoint",
    "load_pretrained",
    "read_checkpoint",
    "save_weights",
]

SOURCES = ("auto", "ours", "torchvision", "timm", "pytorchcv")
_SHOWN = 5  # keys listed per category in an error message


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded into the model; the model is left unchanged."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint path does not exist (also a :class:`FileNotFoundError`)."""


@dataclass(frozen=True)
class PeerLayout:
    """A peer implementation of one of our models: the library (``source``) and its model name.

    ``build(aux)`` returns the peer model (called on the meta device); ``aux`` / ``classifier`` are the key
    prefixes of its auxiliary heads and of its final classifier; ``transform_input`` says its released
    weights expect torchvision's input transform (folded into our first convolution on conversion)."""

    source: str
    model: str
    build: Callable[[bool], nn.Module]
    aux: tuple[str, ...] = ()
    classifier: tuple[str, ...] = ("fc.",)
    transform_input: bool = False


def _tv(name: str, **kwargs) -> Callable[[bool], nn.Module]:
    def build(aux: bool) -> nn.Module:
        import torchvision

        return getattr(torchvision.models, name)(weights=None, aux_logits=aux, init_weights=False, **kwargs)

    return build


def _timm(name: str, takes_aux: bool = False) -> Callable[[bool], nn.Module]:
    def build(aux: bool) -> nn.Module:
        import timm

        return timm.create_model(name, pretrained=False, **({"aux_logits": aux} if takes_aux else {}))

    return build


def _pytorchcv_bninception(aux: bool) -> nn.Module:
    try:
        from pytorchcv.models.bninception import bninception
    except ImportError as e:  # pragma: no cover - pytorchcv is in the test extra
        raise CheckpointError("converting a pytorchcv checkpoint needs pytorchcv: pip install pytorchcv") from e
    return bninception()


# Our model name -> its peers, in the order auto-detection prefers them on a tie. timm's and torchvision's
# inception_v3 share every key name: auto-detection takes them as timm's (no input transform folded, input
# normalized with mean = std = 0.5, which is what torchvision's transform_input produces anyway).
PEERS: dict[str, tuple[PeerLayout, ...]] = {
    "inception_v1_bn": (
        PeerLayout("torchvision", "googlenet", _tv("googlenet"), aux=("aux1.", "aux2."), transform_input=True),
    ),
    "inception_v3": (
        PeerLayout("timm", "inception_v3", _timm("inception_v3", takes_aux=True), aux=("AuxLogits.",)),
        PeerLayout("torchvision", "inception_v3", _tv("inception_v3"), aux=("AuxLogits.",), transform_input=True),
    ),
    "inception_v4": (PeerLayout("timm", "inception_v4", _timm("inception_v4"), classifier=("last_linear.",)),),
    "inception_resnet_v2": (PeerLayout("timm", "inception_resnet_v2", _timm("inception_resnet_v2"), classifier=("classif.",)),),
    "xception": (PeerLayout("timm", "legacy_xception", _timm("legacy_xception")),),
    "bn_inception": (PeerLayout("pytorchcv", "bninception", _pytorchcv_bninception, classifier=("output.",)),),
}

_OURS_AUX, _OURS_CLASSIFIER = ("aux_heads.",), ("head.",)


# --------------------------------------------------------------------------------------------- reading
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
    return _unwrap(obj, str(path)), metadata


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


def _unwrap(obj: Any, where: str) -> dict[str, torch.Tensor]:
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
        raise CheckpointError(f"{where} holds no tensors (keys: {_few(list(obj))})")
    for prefix in ("module.", "_orig_mod."):
        if all(k.startswith(prefix) for k in tensors):
            tensors = {k[len(prefix):]: v for k, v in tensors.items()}
    return tensors


# ------------------------------------------------------------------------------------------ conversion
def _group(key: str, aux: tuple[str, ...], classifier: tuple[str, ...]) -> str:
    if key.startswith(aux):
        return "aux"
    if key.startswith(classifier):
        return "classifier"
    return "body"


@lru_cache(maxsize=None)
def _peer_keys(name: str, source: str) -> tuple[tuple[str, tuple[int, ...]], ...]:
    peer = next(p for p in PEERS[name] if p.source == source)
    has_aux = bool(peer.aux)
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = peer.build(has_aux)
    return tuple((k, tuple(v.shape)) for k, v in model.state_dict().items())


@lru_cache(maxsize=None)
def _our_keys(name: str) -> tuple[tuple[str, tuple[int, ...]], ...]:
    from .registry import create_model

    with torch.device("meta"):
        try:
            model = create_model(name, aux_logits=True)
        except ValueError:  # no auxiliary heads
            model = create_model(name)
    return tuple((k, tuple(v.shape)) for k, v in model.state_dict().items())


def _rename_map(name: str, peer: PeerLayout) -> dict[str, str]:
    """Peer key -> our key, matched by position within body / aux / classifier."""
    theirs: dict[str, list[tuple[str, tuple[int, ...]]]] = {"body": [], "aux": [], "classifier": []}
    ours: dict[str, list[tuple[str, tuple[int, ...]]]] = {"body": [], "aux": [], "classifier": []}
    for key, shape in _peer_keys(name, peer.source):
        theirs[_group(key, peer.aux, peer.classifier)].append((key, shape))
    for key, shape in _our_keys(name):
        ours[_group(key, _OURS_AUX, _OURS_CLASSIFIER)].append((key, shape))
    mapping = {}
    for group in theirs:
        a, b = theirs[group], ours[group]
        if len(a) != len(b) or any(sa != sb for (_, sa), (_, sb) in zip(a, b)):  # pragma: no cover
            raise CheckpointError(
                f"{name}: the installed {peer.source} defines this network differently from the version "
                f"these mappings were proven against (its {group} layers differ); convert with that version"
            )
        mapping.update({ka: kb for (ka, _), (kb, _) in zip(a, b)})
    return mapping


def _candidates(name: str) -> list[tuple[str, set[str]]]:
    cands = [("ours", {k for k, _ in _our_keys(name)})]
    for peer in PEERS.get(name, ()):
        try:
            cands.append((peer.source, {k for k, _ in _peer_keys(name, peer.source)}))
        except CheckpointError:  # pragma: no cover - peer library missing
            continue
    return cands


def _detect(name: str, keys: set[str]) -> str:
    """The source whose key set overlaps the checkpoint's most (Jaccard index); ties go to the earlier."""
    best, best_score = "ours", -1.0
    for source, expected in _candidates(name):
        score = len(keys & expected) / max(len(keys | expected), 1)
        if score > best_score + 1e-12:
            best, best_score = source, score
    return best


def _fitting_model(keys: set[str], *, exclude: str) -> tuple[str, str] | None:
    """The registered model and layout whose keys the checkpoint matches (>= 95% overlap), if any."""
    best, best_score = None, 0.95
    for model_name in sorted(_known_models() - {exclude}):
        for source, expected in _candidates(model_name):
            score = len(keys & expected) / max(len(keys | expected), 1)
            if score > best_score:
                best, best_score = (model_name, source), score
    return best


def _fold_transform_input(state: dict[str, torch.Tensor], first_conv: str) -> None:
    """Fold torchvision's ``transform_input`` into the first convolution, in place.

    torchvision maps ImageNet-normalized input x to ``x * std / 0.5 + (mean - 0.5) / 0.5`` per channel
    before its first convolution. A convolution of an affine per-channel map is a convolution with
    per-input-channel scaled weights plus a per-output-channel constant; the constant goes into the conv
    bias, or, when the conv has none, into the running mean of the BatchNorm after it. Exact wherever the
    kernel does not reach into the zero padding; inside the padding torchvision pads the transformed input
    with 0 (gray 0.5 in pixels) and we pad the normalized input with 0 (the ImageNet mean), which moves the
    logits by about 1e-7 relative (tested). For inception_v3 the first convolution has no padding: exact.
    """
    mean = torch.tensor(IMAGENET_DEFAULT_MEAN, dtype=torch.float64)
    std = torch.tensor(IMAGENET_DEFAULT_STD, dtype=torch.float64)
    scale, shift = std / 0.5, (mean - 0.5) / 0.5
    weight = state[first_conv + ".weight"].double()
    constant = (weight * shift[None, :, None, None]).sum((1, 2, 3))
    dtype = state[first_conv + ".weight"].dtype
    state[first_conv + ".weight"] = (weight * scale[None, :, None, None]).to(dtype)
    if first_conv + ".bias" in state:
        state[first_conv + ".bias"] = (state[first_conv + ".bias"].double() + constant).to(dtype)
    else:
        bn = first_conv.rsplit(".", 1)[0] + ".bn.running_mean"
        state[bn] = (state[bn].double() - constant).to(state[bn].dtype)


def _adapt_first_conv(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """RGB first-conv weights for ``in_chans`` inputs, as timm does: summed over RGB for one channel;
    for more, RGB repeated to fill the channels and rescaled by 3 / in_chans (same response to a gray
    image replicated over all channels)."""
    if in_chans == 1:
        return weight.sum(dim=1, keepdim=True)
    repeats = -(-in_chans // weight.shape[1])
    return weight.repeat(1, repeats, 1, 1)[:, :in_chans] * (weight.shape[1] / in_chans)


def _few(keys) -> str:
    keys = list(keys)
    shown = ", ".join(keys[:_SHOWN])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > _SHOWN else "")


def _is_classifier(key: str) -> bool:
    return key.startswith("head.fc.") or (key.startswith("aux_heads.") and ".head.fc." in key)


def load_pretrained(
    model: nn.Module,
    checkpoint: str | os.PathLike | Mapping[str, torch.Tensor],
    *,
    source: str = "auto",
    transform_input: bool | None = None,
) -> nn.Module:
    """Load a checkpoint of ours or of a peer implementation into ``model``, all or nothing.

    Args:
        model: a model from :func:`~inception_zoo.create_model`.
        checkpoint: a path (``.pth``/``.pt``/``.bin`` read with ``torch.load(weights_only=True)``,
            ``.safetensors`` with safetensors) or a state dict.
        source: ``"auto"`` (detected from the keys), or one of ``"ours"``, ``"torchvision"``, ``"timm"``,
            ``"pytorchcv"``. Peers per model: inception_v1_bn <- torchvision googlenet; inception_v3 <-
            timm or torchvision inception_v3 (same keys; auto takes timm's); inception_v4,
            inception_resnet_v2 <- timm; xception <- timm legacy_xception; bn_inception <- pytorchcv.
        transform_input: fold torchvision's input transform into the first convolution, so that the model
            takes ImageNet-normalized input. Default: True for torchvision checkpoints, else False.

    After loading, ``model.default_cfg`` mean/std say which normalization the weights expect.

    Head mismatches: when the checkpoint's classifier (or an auxiliary classifier) has another number of
    classes than the model, everything else is loaded, those layers are re-initialized and a
    ``UserWarning`` names them; auxiliary heads the checkpoint lacks are re-initialized the same way, and
    the checkpoint's auxiliary heads are skipped when the model has none. When the model's ``in_chans``
    is not 3, the first convolution's RGB weights are adapted (see ``_adapt_first_conv``).

    Returns:
        The model, in the mode it was in.

    Raises:
        CheckpointNotFoundError: the path does not exist.
        CheckpointError: unreadable or refused file, a checkpoint of another architecture, or missing,
            unexpected or mis-shaped keys outside the classifiers. The model is unchanged.
    """
    name = getattr(model, "name", type(model).__name__)
    if source not in SOURCES:
        raise CheckpointError(f"{name}: source must be one of {', '.join(SOURCES)}, got {source!r}")
    try:
        if isinstance(checkpoint, Mapping):
            state, metadata = _unwrap(dict(checkpoint), "the state dict"), {}
        else:
            state, metadata = read_checkpoint(checkpoint)
    except CheckpointError as e:
        raise type(e)(f"{name}: {e}. The model's weights were not changed.") from None

    if metadata.get("architecture") and metadata["architecture"] != name:
        raise CheckpointError(
            f"{name}: the checkpoint was saved from {metadata['architecture']!r}, another architecture"
        )
    registered = name in _known_models()
    guessed = _detect(name, set(state)) if registered else "ours"
    if source == "auto":
        source = guessed
    allowed = [s for s, _ in _candidates(name)] if registered else ["ours"]
    if source not in allowed:
        raise CheckpointError(f"{name}: no {source} layout is known for it; known: {', '.join(allowed)}")

    # 1. Rename into our keys (a peer's keys by their position in its own model).
    peer = next((p for p in PEERS.get(name, ()) if p.source == source), None)
    if peer is not None:
        mapping = _rename_map(name, peer)
        renamed = {mapping[k]: v for k, v in state.items() if k in mapping}
        unexpected = [k for k in state if k not in mapping and not k.endswith("num_batches_tracked")]
        if transform_input is None:
            transform_input = peer.transform_input
    else:
        renamed, unexpected = dict(state), []
        transform_input = bool(transform_input)

    # 2. Compare with the model. Auxiliary heads are optional on both sides.
    target = model.state_dict()
    unexpected += [k for k in renamed if k not in target and not k.startswith(_OURS_AUX)]
    renamed = {k: v for k, v in renamed.items() if k in target}
    missing = [k for k in target if k not in renamed and not k.endswith("num_batches_tracked")]
    missing_aux = [k for k in missing if k.startswith(_OURS_AUX)]
    missing = [k for k in missing if not k.startswith(_OURS_AUX)]

    first_conv = model.default_cfg["first_conv"] if hasattr(model, "default_cfg") else None
    first_weight = f"{first_conv}.weight"
    if transform_input and first_weight in renamed:
        if renamed[first_weight].shape[1] != 3:
            raise CheckpointError(f"{name}: transform_input needs a 3-channel first convolution")
        _fold_transform_input(renamed, first_conv)

    reset, misshaped = set(), []
    for key, value in list(renamed.items()):
        want = target[key].shape
        if value.shape == want:
            continue
        if _is_classifier(key):
            reset.add(key.rsplit(".", 1)[0])
            del renamed[key]
        elif key == first_weight and value.dim() == 4 and value.shape[0] == want[0] and value.shape[2:] == want[2:]:
            renamed[key] = _adapt_first_conv(value, want[1])
        else:
            misshaped.append(f"{key} {tuple(value.shape)} vs {tuple(want)}")
    reset.update(".".join(k.split(".")[:2]) for k in missing_aux)  # whole auxiliary heads

    if missing or unexpected or misshaped:
        layout = f"keys taken as the {source} layout"
        if guessed != source:
            layout += f"; they look most like the {guessed} layout"
        parts = [f"{name}: the checkpoint does not fit ({layout})"]
        if missing:
            parts.append(f"missing: {_few(missing)}")
        if unexpected:
            parts.append(f"unexpected: {_few(unexpected)}")
        if misshaped:
            parts.append(f"mis-shaped: {_few(misshaped)}")
        message = "; ".join(parts) + ". The model's weights were not changed."
        fits = _fitting_model(set(state), exclude=name) if not misshaped else None
        if fits:
            message += f" The keys fit {fits[0]} ({fits[1]} layout)."
        raise CheckpointError(message)

    # 3. Load: everything is checked, so this cannot fail half-way.
    model.load_state_dict({k: v.to(dtype=target[k].dtype) for k, v in renamed.items()}, strict=False)
    if reset:
        modules = dict(model.named_modules())
        for module_name in sorted(reset):
            init_weights(modules[module_name])
        warnings.warn(
            f"{name}: re-initialized {', '.join(sorted(reset))} (not in the checkpoint, or shaped for "
            "another number of classes)",
            UserWarning,
            stacklevel=2,
        )
    _update_cfg(model, source, bool(transform_input), metadata)
    return model


def _known_models() -> set[str]:
    from .registry import list_models

    return set(list_models())


def _update_cfg(model: nn.Module, source: str, folded: bool, metadata: dict[str, str]) -> None:
    cfg = getattr(model, "default_cfg", None)
    if cfg is None:
        return
    if "cfg" in metadata:
        saved = json.loads(metadata["cfg"])
        cfg["mean"], cfg["std"] = tuple(saved["mean"]), tuple(saved["std"])
    elif folded:
        cfg["mean"], cfg["std"] = IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
    cfg["weights_source"] = source


def save_weights(model: nn.Module, path: str | os.PathLike) -> Path:
    """Write the model's state dict as safetensors, with its ``default_cfg`` as JSON metadata.

    ``create_model(name, pretrained=path)`` (or :func:`load_pretrained`) restores it bit for bit, cfg
    mean/std included. Returns the path written.

    Raises:
        ValueError: if ``path`` does not end in ``.safetensors``.
    """
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"save_weights writes safetensors; give a path ending in .safetensors, got {str(path)!r}")
    cfg = dict(getattr(model, "default_cfg", {}))
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    metadata = {"format": "pt", "cfg": json.dumps(cfg, default=list)}
    if "architecture" in cfg:
        metadata["architecture"] = cfg["architecture"]
    save_file(state, str(path), metadata=metadata)
    return path


def convert_checkpoint(
    src: str | os.PathLike, dst: str | os.PathLike, *, model: str, source: str = "auto"
) -> nn.Module:
    """Convert a checkpoint (ours or a peer's) for ``model`` into our safetensors format at ``dst``.

    The model is built with the checkpoint's number of classes (read from its classifier) and with its
    auxiliary heads when the checkpoint has them, so nothing in the checkpoint is dropped. Returns the
    loaded model.

    Raises:
        UnknownModelError: unknown model name.
        ValueError: ``dst`` does not end in ``.safetensors``.
        CheckpointError / CheckpointNotFoundError: as :func:`load_pretrained`.
    """
    from .registry import _resolve, create_model

    name = _resolve(model)
    if Path(dst).suffix != ".safetensors":
        raise ValueError(f"the converted checkpoint is written as safetensors; {str(dst)!r} must end in .safetensors")
    state, _ = read_checkpoint(src)
    if source == "auto":
        source = _detect(name, set(state))
    peer = next((p for p in PEERS.get(name, ()) if p.source == source), None)
    aux, classifier = (peer.aux, peer.classifier) if peer else (_OURS_AUX, ("head.fc.",))
    heads = [v for k, v in state.items() if k.startswith(classifier) and k.endswith("weight") and v.dim() == 2]
    num_classes = heads[-1].shape[0] if heads else 1000
    has_aux = any(k.startswith(aux) for k in state) if aux else False
    net = create_model(name, num_classes=num_classes, aux_logits=has_aux)
    load_pretrained(net, state, source=source)
    save_weights(net, dst)
    return net
