"""Loading checkpoints (ours, our 0.1 layout, torchvision's, timm's, pytorchcv's, pytorch-fid's, Cadene's
pretrainedmodels'...); saving ours.

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
from pathlib import Path

import torch
from torch import nn

from ..models.base import init_weights
from ..records import (
    IMAGENET_CLASSES,
    IMAGENET_INCEPTION_MEAN,
    IMAGENET_INCEPTION_STD,
    TORCHVISION_TRANSFORM_INPUT,
    InputConvention,
)
from ..registry import get_record, list_models, resolve_name
from .adapt import adapt_first_conv, carry_epsilons, drop_background, fold_input, is_classifier
from .keras import check_layers
from .keymaps import LEGACY, keymap, layouts
from .layouts import candidates, detect, fit_prefix, fitting_model, peer_of
from .reader import CheckpointError, few, read_checkpoint, unwrap_state_dict

__all__ = ["SOURCES", "convert_checkpoint", "converted", "load_pretrained", "save_weights"]

SOURCES = ("auto", "ours", LEGACY, "torchvision", "timm", "pytorchcv", "pytorch_fid", "facenet", "keras", "cadene")
_OURS_AUX = ("aux_heads.",)


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
            pickled model (``torch.save(model)``) with the two lines that make it a state dict. Or a Keras
            file (``.h5`` legacy or Keras 3 ``.weights.h5``, ``.keras``; read with h5py, see
            :mod:`inception_zoo.weights.keras`).
        source: ``"auto"`` (detected from the keys), or one of ``"ours"``, ``"legacy"`` (inception_zoo 0.1's
            positional keys), ``"torchvision"``, ``"timm"``, ``"pytorchcv"``, ``"pytorch_fid"``. The peers of
            each model are its record's ``peers``: inception_v1_bn <- torchvision googlenet; inception_v3 <-
            timm or torchvision inception_v3 (same keys; auto takes timm's); inception_v4,
            inception_resnet_v2 <- timm; xception <- timm legacy_xception; bn_inception <- pytorchcv;
            inception_v3_fid <- pytorch-fid's FID Inception (torch-fidelity's file has the same keys);
            ``"facenet"``: inception_resnet_v1_facenet <- facenet-pytorch's InceptionResnetV1 (its
            ``logits`` classifier, or none for a model built with ``num_classes=0``); ``"cadene"``: Cadene's
            pretrainedmodels (``last_linear``; its published files' ``fc`` too): bn_inception <- bninception
            (BGR 0-255 input folded, see ``transform_input``), inception_v3 <- inceptionv3, inception_v4 <-
            inceptionv4 (timm's keys: auto takes timm's), inception_resnet_v2 <- inceptionresnetv2, xception
            <- xception; ``"keras"`` (detected from a Keras file): keras.applications' InceptionV3 ->
            inception_v3_tf, InceptionResNetV2 -> inception_resnet_v2, Xception -> xception_tf (the TF-exact
            layouts), layers matched in keras.applications' order, kernels transposed, ``gamma`` = 1 where
            Keras has none, each BatchNorm's epsilon from the file's configuration where it has one, and
            ``default_cfg`` mean = std = 0.5 (Keras' ``x / 127.5 - 1``). Ties in auto-detection go to the
            record's first-listed peer.
        transform_input: fold the source's input convention (:attr:`~inception_zoo.records.Peer.folded_input`)
            into the first convolution, so that the model takes RGB normalized as ``default_cfg`` then says:
            torchvision's transform_input (ImageNet mean / std), Cadene's BGR 0-255 input for bn_inception
            (RGB minus the Caffe mean / 255, std 1: exact, the padding included); True for a source without
            one folds torchvision's transform. Default: True where the source has one, else False.
        use_ema: for a training checkpoint that holds both EMA weights (timm's ``state_dict_ema``,
            torchvision's ``model_ema``) and the raw ones: True (default, as timm's ``load_checkpoint``)
            loads the EMA weights, False the raw ones. EMA weights alone load with True, fail with False.

    After loading, ``model.default_cfg`` mean/std say which normalization the weights expect.

    1001-class files (``Peer.background_class``: Cadene's inceptionv4 / inceptionresnetv2, TF-slim's label
    map): loaded into a 1000-class model, the classifier's row 0, the background class, is dropped with a
    ``UserWarning``; a model with ``num_classes=1001`` keeps it.

    Head mismatches: when the checkpoint's classifier (or an auxiliary classifier) has another number of
    classes than the model, everything else is loaded, those layers are re-initialized and a
    ``UserWarning`` names them; auxiliary heads the checkpoint lacks are re-initialized the same way, and
    the checkpoint's auxiliary heads are skipped when the model has none. When the model's ``in_chans``
    is not 3, the first convolution's RGB weights are adapted (see ``adapt_first_conv``).

    Returns:
        The model, in the mode it was in.

    Raises:
        CheckpointNotFoundError: the path does not exist.
        CheckpointError: unreadable, truncated or corrupt file; refused file (a whole pickled model, a
            TorchScript archive, any other pickled code); a checkpoint of another architecture; missing,
            unexpected or mis-shaped keys outside the classifiers; a Keras file whose layers differ from
            the model's (naming the first that differs), or a Keras file for a model without a Keras layout.
            The model is unchanged.
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
    return _load(model, state, metadata, source=source, transform_input=transform_input)


def _load(
    model: nn.Module, state: dict[str, torch.Tensor], metadata: Mapping[str, str], *, source: str,
    transform_input: bool | None,
) -> nn.Module:
    """:func:`load_pretrained` once the checkpoint is read: ``state`` and the file's ``metadata``."""
    name = getattr(model, "name", type(model).__name__)
    registered = name in list_models()
    state, prefix = fit_prefix(name, state, None if registered else frozenset(model.state_dict()))

    if metadata.get("architecture") and metadata["architecture"] != name:
        raise CheckpointError(
            f"{name}: the checkpoint was saved from {metadata['architecture']!r}, another architecture"
        )
    guessed = detect(name, set(state)) if registered else "ours"
    if source == "auto":
        source = guessed
    allowed = [s for s, _ in candidates(name)] if registered else ["ours"]
    if metadata.get("format") == "keras" and "keras" not in allowed:
        takers = [m for m in list_models() if "keras" in layouts(m)]
        raise CheckpointError(f"{name}: this is a Keras file, and no Keras layout is known for {name}; Keras "
                              f"weights load into {', '.join(takers)}. The model's weights were not changed.")
    if source == "keras" and metadata.get("format") != "keras":
        raise CheckpointError(f"{name}: source='keras' needs a Keras file (.h5, .weights.h5, .keras); this "
                              "checkpoint is not one. The model's weights were not changed.")
    if source not in allowed:
        raise CheckpointError(f"{name}: no {source} layout is known for it; known: {', '.join(allowed)}")
    first_conv = model.default_cfg["first_conv"] if hasattr(model, "default_cfg") else None
    first_weight = f"{first_conv}.weight"
    keras_layers = json.loads(metadata["keras_layers"]) if source == "keras" else []
    if source == "keras":  # layer by layer, so that the error names the first Keras layer that differs
        target_shapes = {k: v.shape for k, v in model.state_dict().items()}
        try:
            check_layers(name, keymap(name, source), target_shapes, state, keras_layers,
                         first_weight=first_weight)
        except CheckpointError as e:
            raise CheckpointError(f"{e}. The model's weights were not changed.") from None

    # 1. Rename into our keys through the layout's committed key map.
    if source != "ours":
        mapping = keymap(name, source)
        renamed = {mapping[k]: v for k, v in state.items() if k in mapping}
        unexpected = [k for k in state if k not in mapping and not k.endswith("num_batches_tracked")]
    else:
        renamed, unexpected = dict(state), []
    # The source's conventions (records.Peer): the input convention folded into the first convolution
    # (transform_input=True without one: torchvision's transform, as for ``ours``), the background class.
    peer = peer_of(name, source)
    if transform_input is None:
        transform_input = peer is not None and peer.folded_input is not None
    folded = ((peer.folded_input if peer else None) or TORCHVISION_TRANSFORM_INPUT) if transform_input else None

    # 2. Compare with the model. Auxiliary heads are optional on both sides; so is the classifier of a
    # model built without one (num_classes=0: a backbone of pooled features).
    target = model.state_dict()
    optional = _OURS_AUX + (() if any(is_classifier(k) for k in target) else ("head.fc.",))
    unexpected += [k for k in renamed if k not in target and not k.startswith(optional)]
    renamed = {k: v for k, v in renamed.items() if k in target}
    missing = [k for k in target if k not in renamed and not k.endswith("num_batches_tracked")]
    missing_aux = [k for k in missing if k.startswith(_OURS_AUX)]
    missing = [k for k in missing if not k.startswith(_OURS_AUX)]
    background = peer is not None and peer.background_class and drop_background(renamed, target)

    if folded and first_weight in renamed and not missing:  # missing keys: the error below names them
        if renamed[first_weight].shape[1] != 3:
            raise CheckpointError(f"{name}: transform_input needs a 3-channel first convolution. The model's "
                                  "weights were not changed.")
        fold_input(renamed, first_conv, folded)

    reset, misshaped = set(), []
    widths = {getattr(model, "num_features", None), getattr(model, "head_hidden_size", None)}
    widths |= {v.shape[1] for k, v in target.items() if is_classifier(k) and v.dim() == 2}
    for key, value in list(renamed.items()):
        want = target[key].shape
        if value.shape == want:
            continue
        # another number of classes (or the model's pooling widens its features: catavgmax); a classifier
        # over other features (a Flatten head) is no classifier of this network
        if is_classifier(key) and (value.dim() < 2 or value.shape[1] in widths):
            reset.add(key.rsplit(".", 1)[0])
            del renamed[key]
        elif (
            key == first_weight
            and value.dim() == 4
            and value.shape[0] == want[0]
            and value.shape[2:] == want[2:]
        ):
            renamed[key] = adapt_first_conv(value, want[1])
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
        fits = (fitting_model(set(state), exclude=name)
                if all(is_classifier(m.split()[0]) for m in misshaped) else None)
        if fits:
            message += f" The keys fit {fits[0]} ({fits[1]} layout)."
        raise CheckpointError(message)

    # 3. Load: everything is checked, so this cannot fail half-way.
    model.load_state_dict({k: v.to(dtype=target[k].dtype) for k, v in renamed.items()}, strict=False)
    if source == "keras":
        carry_epsilons(model, keymap(name, source), keras_layers)
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
    if background:
        warnings.warn(
            f"{name}: dropped row 0 of the checkpoint's 1001-class classifier, the background class of "
            f"TF-slim's label map ({source} layout), keeping ImageNet-1k's 1000 classes; a model with "
            "num_classes=1001 keeps it",
            UserWarning,
            stacklevel=2,
        )
    _update_cfg(model, source, folded, metadata)
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


def _update_cfg(model: nn.Module, source: str, folded: InputConvention | None, metadata: dict[str, str]) -> None:
    """The normalization (and, for published weights, the preprocessing and provenance) the loaded
    weights expect, into ``model.default_cfg``: ``folded``'s ``folded_mean`` / ``folded_std`` where an input
    convention was folded; mean / std adapted to the model's ``in_chans``."""
    if getattr(model, "default_cfg", None) is None:
        return
    update: dict = {}
    if "cfg" in metadata:
        saved = json.loads(metadata["cfg"])
        update = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items() if k in _WEIGHTS_CFG}
    elif folded:
        update = {"mean": folded.folded_mean, "std": folded.folded_std}
    elif metadata.get("format") == "keras":  # keras.applications' preprocess_input ("tf" mode): x / 127.5 - 1
        update = {"mean": IMAGENET_INCEPTION_MEAN, "std": IMAGENET_INCEPTION_STD}
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
    state, metadata = read_checkpoint(src, use_ema=use_ema)
    net = converted(name, state, source, metadata=metadata)
    save_weights(net, dst)
    return net


def converted(
    name: str, state: Mapping[str, torch.Tensor], source: str = "auto", transform_input: bool | None = None,
    *, metadata: Mapping[str, str] | None = None,
) -> nn.Module:
    """A model of ``name`` shaped like the checkpoint (its number of classes, or ``num_classes=0`` for a
    checkpoint without a classifier; its auxiliary heads if it has them, so that nothing in it is dropped),
    with the checkpoint loaded (see :func:`load_pretrained`; ``metadata``: the file's, as
    :func:`~inception_zoo.weights.read_checkpoint` returns it, which a Keras file needs).
    One exception: a 1001-class file of a source with a background class (``Peer.background_class``,
    Cadene's inceptionv4 / inceptionresnetv2) gives ImageNet-1k's 1000 classes, its row 0 dropped with a
    warning, as that source's own 1000-class loader does.

    Raises:
        CheckpointError: as :func:`load_pretrained`.
    """
    from ..models import InceptionNet

    record = get_record(name)
    state, _ = fit_prefix(name, dict(state))
    if source == "auto":
        source = detect(name, set(state))
    mapping = keymap(name, source) if source in layouts(name) else {k: k for k in state}
    ours = {mapping[k]: v for k, v in state.items() if k in mapping}
    head = ours.get("head.fc.weight")
    # a checkpoint without a classifier (a backbone: Keras' include_top=False, facenet's classify=False)
    # converts into a model without one
    num_classes = head.shape[0] if head is not None and head.dim() == 2 else 0
    peer = peer_of(name, source)
    if peer is not None and peer.background_class and (num_classes, record.num_classes) == (
        IMAGENET_CLASSES + 1, IMAGENET_CLASSES
    ):
        num_classes = IMAGENET_CLASSES
    has_aux = bool(record.aux_heads) and any(k.startswith(_OURS_AUX) for k in ours)
    net = InceptionNet(record, num_classes=num_classes, aux_logits=has_aux)
    return _load(net, dict(state), metadata or {}, source=source, transform_input=transform_input)
