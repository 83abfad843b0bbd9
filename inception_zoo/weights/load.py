"""Loading checkpoints (ours, our 0.1 layout, torchvision's, timm's, pytorchcv's, pytorch-fid's); saving ours.

A peer checkpoint is converted through the committed key map of its layout
(:mod:`inception_zoo.weights.keymaps`): a table lookup, no peer library needed. The layout is detected
from the keys (the layout whose key set overlaps the checkpoint's most) unless given.

Nothing is ever half-loaded: the whole state dict is read, converted and checked before a single tensor is
copied into the model, and any problem raises :class:`CheckpointError` with the model's name, the layout
the keys were taken for, and the first few missing / unexpected / mis-shaped keys.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from functools import cache
from pathlib import Path

import torch
from torch import nn

from ..models.base import init_weights
from ..records import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from ..registry import get_record, list_models, resolve_name
from .keymaps import LEGACY, keymap, layouts
from .reader import CheckpointError, few, read_checkpoint, strip_prefix_to_fit, unwrap_state_dict

__all__ = ["SOURCES", "convert_checkpoint", "converted", "load_pretrained", "save_weights"]

SOURCES = ("auto", "ours", LEGACY, "torchvision", "timm", "pytorchcv", "pytorch_fid")
_OURS_AUX = ("aux_heads.",)


# ------------------------------------------------------------------------------------------ layouts
@cache
def _our_keys(name: str) -> frozenset[str]:
    """Our state-dict keys for ``name``, auxiliary heads included (built on the meta device: no memory)."""
    from ..models import InceptionNet

    record = get_record(name)
    with torch.device("meta"):
        model = InceptionNet(record, aux_logits=bool(record.aux_heads))
    return frozenset(model.state_dict())


def _candidates(name: str) -> list[tuple[str, frozenset[str]]]:
    """Every layout known for ``name`` with its key set: ours, then each committed key map."""
    return [("ours", _our_keys(name))] + [(src, frozenset(keymap(name, src))) for src in layouts(name)]


def _overlap(keys: set[str], expected: frozenset[str]) -> float:
    return len(keys & expected) / max(len(keys | expected), 1)


def _detect(name: str, keys: set[str]) -> str:
    """The layout whose key set overlaps the checkpoint's most (Jaccard index); ties go to the earlier."""
    best, best_score = "ours", -1.0
    for source, expected in _candidates(name):
        score = _overlap(keys, expected)
        if score > best_score + 1e-12:
            best, best_score = source, score
    return best


def _fit_prefix(name: str, state: dict[str, torch.Tensor], target: frozenset[str] | None = None):
    """``state`` without a wrapper's attribute prefix (Lightning's ``model.``, ...) where removing it makes
    the keys fit ``name``'s layouts (or ``target``, for a model that is not registered) better; and the
    prefix removed."""
    known = [keys for _, keys in _candidates(name)] if target is None else [target]
    return strip_prefix_to_fit(state, lambda keys: max(_overlap(keys, k) for k in known))


def _fitting_model(keys: set[str], *, exclude: str) -> tuple[str, str] | None:
    """The registered model and layout whose keys the checkpoint matches (>= 95% overlap), if any."""
    best, best_score = None, 0.95
    for model_name in list_models():
        if model_name == exclude:
            continue
        for source, expected in _candidates(model_name):
            score = _overlap(keys, expected)
            if score > best_score:
                best, best_score = (model_name, source), score
    return best


# ------------------------------------------------------------------------------------------ conversion
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


def _is_classifier(key: str) -> bool:
    return key.startswith("head.fc.") or (key.startswith("aux_heads.") and ".head.fc." in key)


def load_pretrained(
    model: nn.Module,
    checkpoint: str | os.PathLike | Mapping[str, torch.Tensor],
    *,
    source: str = "auto",
    transform_input: bool | None = None,
    use_ema: bool = True,
) -> nn.Module:
    """Load a checkpoint of ours or of a peer implementation into ``model``, all or nothing.

    Args:
        model: a model from :func:`~inception_zoo.create_model`.
        checkpoint: a path (``.pth``/``.pt``/``.bin``/``.ckpt``/``.pth.tar`` read with
            ``torch.load(weights_only=True)``, ``.safetensors`` with safetensors) or a state dict, either
            plain or in the container a training run writes: timm's ``train.py`` (``state_dict``,
            ``state_dict_ema``, ``args`` ...), torchvision's reference scripts (``model``, ``model_ema``,
            ``args`` ...), PyTorch Lightning (``state_dict`` with keys under the LightningModule's
            attribute, e.g. ``model.``; the prefix is removed where that makes the keys fit), with
            ``module.`` (DDP) and ``_orig_mod.`` (torch.compile) prefixes in any nesting. Nothing in the
            file is run: a pickled class other than ``argparse.Namespace`` is refused with its name; a whole
            pickled model (``torch.save(model)``) with the two lines that make it a state dict.
        source: ``"auto"`` (detected from the keys), or one of ``"ours"``, ``"legacy"`` (inception_zoo 0.1's
            positional keys), ``"torchvision"``, ``"timm"``, ``"pytorchcv"``, ``"pytorch_fid"``. The peers of
            each model are its record's ``peers``: inception_v1_bn <- torchvision googlenet; inception_v3 <-
            timm or torchvision inception_v3 (same keys; auto takes timm's); inception_v4,
            inception_resnet_v2 <- timm; xception <- timm legacy_xception; bn_inception <- pytorchcv;
            inception_v3_fid <- pytorch-fid's FID Inception (torch-fidelity's file has the same keys).
        transform_input: fold torchvision's input transform into the first convolution, so that the model
            takes ImageNet-normalized input. Default: True for torchvision checkpoints, else False.
        use_ema: for a training checkpoint that holds both EMA weights (timm's ``state_dict_ema``,
            torchvision's ``model_ema``) and the raw ones: True (default, as timm's ``load_checkpoint``)
            loads the EMA weights, False the raw ones. EMA weights alone load with True, fail with False.

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
        CheckpointError: unreadable, truncated or corrupt file; refused file (a whole pickled model, a
            TorchScript archive, any other pickled code); a checkpoint of another architecture; missing,
            unexpected or mis-shaped keys outside the classifiers. The model is unchanged.
    """
    name = getattr(model, "name", type(model).__name__)
    if source not in SOURCES:
        raise CheckpointError(f"{name}: source must be one of {', '.join(SOURCES)}, got {source!r}")
    try:
        if isinstance(checkpoint, Mapping):
            state, metadata = unwrap_state_dict(dict(checkpoint), "the state dict", use_ema=use_ema), {}
        else:
            state, metadata = read_checkpoint(checkpoint, use_ema=use_ema)
    except CheckpointError as e:
        raise type(e)(f"{name}: {e}. The model's weights were not changed.") from None
    registered = name in list_models()
    state, prefix = _fit_prefix(name, state, None if registered else frozenset(model.state_dict()))

    if metadata.get("architecture") and metadata["architecture"] != name:
        raise CheckpointError(
            f"{name}: the checkpoint was saved from {metadata['architecture']!r}, another architecture"
        )
    guessed = _detect(name, set(state)) if registered else "ours"
    if source == "auto":
        source = guessed
    allowed = [s for s, _ in _candidates(name)] if registered else ["ours"]
    if source not in allowed:
        raise CheckpointError(f"{name}: no {source} layout is known for it; known: {', '.join(allowed)}")

    # 1. Rename into our keys through the layout's committed key map.
    if source != "ours":
        mapping = keymap(name, source)
        renamed = {mapping[k]: v for k, v in state.items() if k in mapping}
        unexpected = [k for k in state if k not in mapping and not k.endswith("num_batches_tracked")]
        if transform_input is None:
            peer = next((p for p in get_record(name).peers if p.source == source), None)
            transform_input = peer is not None and peer.transform_input
    else:
        renamed, unexpected = dict(state), []
        transform_input = bool(transform_input)

    # 2. Compare with the model. Auxiliary heads are optional on both sides; so is the classifier of a
    # model built without one (num_classes=0: a backbone of pooled features).
    target = model.state_dict()
    optional = _OURS_AUX + (() if any(_is_classifier(k) for k in target) else ("head.fc.",))
    unexpected += [k for k in renamed if k not in target and not k.startswith(optional)]
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
        elif (
            key == first_weight
            and value.dim() == 4
            and value.shape[0] == want[0]
            and value.shape[2:] == want[2:]
        ):
            renamed[key] = _adapt_first_conv(value, want[1])
        else:
            misshaped.append(f"{key} {tuple(value.shape)} vs {tuple(want)}")
    reset.update(".".join(k.split(".")[:2]) for k in missing_aux)  # whole auxiliary heads

    if missing or unexpected or misshaped:
        layout = f"keys taken as the {source} layout" + (
            f" after removing the prefix {prefix!r}" if prefix else ""
        )
        if guessed != source:
            layout += f"; they look most like the {guessed} layout"
        parts = [f"{name}: the checkpoint does not fit ({layout})"]
        if missing:
            parts.append(f"missing: {few(missing)}")
        if unexpected:
            parts.append(f"unexpected: {few(unexpected)}")
        if misshaped:
            parts.append(f"mis-shaped: {few(misshaped)}")
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


_WEIGHTS_CFG = (
    "mean",
    "std",
    "input_size",
    "interpolation",
    "crop_pct",
    "tag",
    "license",
    "top1",
    "top5",
    "url",
    "hf_hub_id",
    "hf_hub_filename",
)  # what a checkpoint's weights decide in default_cfg


def _update_cfg(model: nn.Module, source: str, folded: bool, metadata: dict[str, str]) -> None:
    """The normalization (and, for published weights, the preprocessing and provenance) the loaded
    weights expect, into ``model.default_cfg``; mean / std adapted to the model's ``in_chans``."""
    if getattr(model, "default_cfg", None) is None:
        return
    update: dict = {}
    if "cfg" in metadata:
        saved = json.loads(metadata["cfg"])
        update = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items() if k in _WEIGHTS_CFG}
    elif folded:
        update = {"mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD}
    if hasattr(model, "set_input_cfg"):
        model.set_input_cfg(**update)
    else:
        model.default_cfg.update(update)
    model.default_cfg["weights_source"] = source


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
        raise ValueError(
            f"save_weights writes safetensors; give a path ending in .safetensors, got {str(path)!r}"
        )
    cfg = dict(getattr(model, "default_cfg", {}))
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    metadata = {"format": "pt", "cfg": json.dumps(cfg, default=list)}
    if "architecture" in cfg:
        metadata["architecture"] = cfg["architecture"]
    save_file(state, str(path), metadata=metadata)
    return path


def convert_checkpoint(
    src: str | os.PathLike, dst: str | os.PathLike, *, model: str, source: str = "auto", use_ema: bool = True
) -> nn.Module:
    """Convert a checkpoint (ours or a peer's) for ``model`` into our safetensors format at ``dst``.

    The model is built with the checkpoint's number of classes (read from its classifier) and with its
    auxiliary heads when the checkpoint has them, so nothing in the checkpoint is dropped. ``src`` may be
    any container :func:`load_pretrained` takes (``use_ema`` as there). Returns the loaded model.

    Raises:
        UnknownModelError: unknown model name.
        ValueError: ``dst`` does not end in ``.safetensors``.
        CheckpointError / CheckpointNotFoundError: as :func:`load_pretrained`.
    """
    name = resolve_name(model)
    if Path(dst).suffix != ".safetensors":
        raise ValueError(
            f"the converted checkpoint is written as safetensors; {str(dst)!r} must end in .safetensors"
        )
    state, _ = read_checkpoint(src, use_ema=use_ema)
    net = converted(name, state, source)
    save_weights(net, dst)
    return net


def converted(
    name: str, state: Mapping[str, torch.Tensor], source: str = "auto", transform_input: bool | None = None
) -> nn.Module:
    """A model of ``name`` shaped like the checkpoint (its number of classes, its auxiliary heads if it
    has them, so that nothing in it is dropped), with the checkpoint loaded (see :func:`load_pretrained`).

    Raises:
        CheckpointError: as :func:`load_pretrained`.
    """
    from ..models import InceptionNet

    record = get_record(name)
    state, _ = _fit_prefix(name, dict(state))
    if source == "auto":
        source = _detect(name, set(state))
    mapping = keymap(name, source) if source in layouts(name) else {k: k for k in state}
    ours = {mapping[k]: v for k, v in state.items() if k in mapping}
    head = ours.get("head.fc.weight")
    num_classes = head.shape[0] if head is not None and head.dim() == 2 else record.num_classes
    has_aux = bool(record.aux_heads) and any(k.startswith(_OURS_AUX) for k in ours)
    net = InceptionNet(record, num_classes=num_classes, aux_logits=has_aux)
    return load_pretrained(net, state, source=source, transform_input=transform_input)
