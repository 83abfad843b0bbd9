"""What a checkpoint's conventions change in its tensors before they are loaded: a peer's input
convention folded into the first convolution, TF-slim's background class dropped, RGB weights adapted to
another number of input channels, Keras' BatchNorm epsilons carried over."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from ..records import IMAGENET_CLASSES, InputConvention
from .reader import CheckpointError

__all__ = ["adapt_first_conv", "carry_epsilons", "drop_background", "fold_input", "is_classifier"]


def fold_input(state: dict[str, torch.Tensor], first_conv: str, convention: InputConvention) -> None:
    """Fold a peer's input convention into the first convolution, in place: where the peer's first
    convolution took ``(input_range * p[k] - mean[k]) / std[k]`` in its channel order (``p`` the image in
    [0, 1]), ours then takes ``x = (p[c] - folded_mean[c]) / folded_std[c]`` in RGB order (see
    :class:`~inception_zoo.records.InputConvention`; torchvision's transform_input is one such convention).

    Substituting ``p[c] = x * folded_std[c] + folded_mean[c]``, the peer's input is ``x * a[c] + b[c]`` with
    ``a = input_range * folded_std / std`` and ``b = (input_range * folded_mean - mean) / std`` (the peer's
    mean / std taken in RGB order). A convolution of that per-channel affine map is the convolution whose
    weights are reordered into RGB and scaled by ``a``, plus per output channel the sum of the weights times
    ``b``; that constant goes into the convolution's bias, or, when it has none, into the running mean of
    the BatchNorm after it. In float64, then back to the checkpoint's dtype. Exact wherever the kernel stays
    inside the image; in the zero padding it is exact only when ``folded_mean`` is ``mean / input_range``
    (Cadene's BN-Inception: the model pads with the pixel Cadene's pads with). torchvision's transform pads
    with gray 0.5 where we pad with the ImageNet mean: about 1e-7 of the logits (tested); Inception v3's
    first convolution has no padding: exact.

    Raises:
        CheckpointError: the checkpoint's first convolution has neither a bias nor a BatchNorm after it.
    """
    rgb = [2, 1, 0] if convention.input_space == "BGR" else [0, 1, 2]  # the peer's channel of each RGB one
    mean = torch.tensor(convention.mean, dtype=torch.float64)[rgb]
    std = torch.tensor(convention.std, dtype=torch.float64)[rgb]
    folded_mean = torch.tensor(convention.folded_mean, dtype=torch.float64)
    folded_std = torch.tensor(convention.folded_std, dtype=torch.float64)
    scale = convention.input_range * folded_std / std
    shift = (convention.input_range * folded_mean - mean) / std
    dtype = state[first_conv + ".weight"].dtype
    weight = state[first_conv + ".weight"].double()[:, rgb]
    constant = (weight * shift[None, :, None, None]).sum((1, 2, 3))
    state[first_conv + ".weight"] = (weight * scale[None, :, None, None]).to(dtype)
    bn = first_conv.rsplit(".", 1)[0] + ".bn.running_mean"
    if first_conv + ".bias" in state:
        state[first_conv + ".bias"] = (state[first_conv + ".bias"].double() + constant).to(dtype)
    elif bn in state:
        state[bn] = (state[bn].double() - constant).to(state[bn].dtype)
    else:
        raise CheckpointError(f"{first_conv} has neither a bias nor a BatchNorm to take the folded input's "
                              "offset. The model's weights were not changed.")


def drop_background(state: dict[str, torch.Tensor], target: Mapping[str, torch.Tensor]) -> bool:
    """Drop row 0, the "background" class of TF-slim's label map, from a 1001-class classifier loaded into a
    1000-class one (in place, renamed keys); True if it did."""
    weight, want = state.get("head.fc.weight"), target.get("head.fc.weight")
    if weight is None or want is None or (weight.shape[0], want.shape[0]) != (IMAGENET_CLASSES + 1, IMAGENET_CLASSES):
        return False
    state["head.fc.weight"] = weight[1:]
    if "head.fc.bias" in state:
        state["head.fc.bias"] = state["head.fc.bias"][1:]
    return True


def adapt_first_conv(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """RGB first-conv weights for ``in_chans`` inputs, as timm does: summed over RGB for one channel;
    for more, RGB repeated to fill the channels and rescaled by 3 / in_chans (same response to a gray
    image replicated over all channels)."""
    if in_chans == 1:
        return weight.sum(dim=1, keepdim=True)
    repeats = -(-in_chans // weight.shape[1])
    return weight.repeat(1, repeats, 1, 1)[:, :in_chans] * (weight.shape[1] / in_chans)


def is_classifier(key: str) -> bool:
    return key.startswith("head.fc.") or (key.startswith("aux_heads.") and ".head.fc." in key)


def carry_epsilons(model: nn.Module, mapping: dict[str, str], described: list) -> None:
    """Each Keras BatchNormalization's epsilon, where the file's configuration gives it, into the
    BatchNorm it maps to (Keras' default 1e-3 is the TF-exact layouts' already)."""
    modules = dict(model.named_modules())
    for canonical, _, kind, _, epsilon in described:
        ours = mapping.get(f"{canonical}/moving_mean")
        if kind == "batch_normalization" and epsilon is not None and ours:
            modules[ours.rsplit(".", 1)[0]].eps = float(epsilon)
