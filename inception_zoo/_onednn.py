"""The private PyTorch entry points deploy mode uses, in one place, gated by version and availability.

``torch.ops.mkldnn._convolution_pointwise`` (a oneDNN convolution with fused post-ops: ReLU, a residual
sum) is what torch's own Inductor CPU backend calls; it is not public API. Everything here answers "not
available" rather than failing when a PyTorch version lacks them, and deploy mode then runs plain
convolutions (the same function, without the fusion).
"""

from __future__ import annotations

import functools

import torch

__all__ = ["available", "bf16_available", "conv", "conv_add"]

_MIN_TORCH = (2, 2)


def _version() -> tuple[int, int]:
    major, minor = torch.__version__.split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


@functools.cache
def available() -> bool:
    """oneDNN's fused convolution can be called (fixed for the process: asked once)."""
    return (
        _version() >= _MIN_TORCH
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
    )


@functools.cache
def bf16_available() -> bool:
    """The CPU runs oneDNN's bfloat16 convolutions (AVX512-BF16 / AMX, or emulated where oneDNN allows)."""
    return available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def conv(x, weight, bias, padding, stride, dilation, groups: int, relu: bool) -> torch.Tensor:
    """``relu(conv2d(x, weight) + bias)`` (ReLU optional) as one oneDNN call."""
    return torch.ops.mkldnn._convolution_pointwise(
        x, weight, bias, padding, stride, dilation, groups, "relu" if relu else "none", [], ""
    )


def conv_add(x, residual, weight, bias, padding, stride, dilation, groups: int, relu: bool) -> torch.Tensor:
    """``relu(conv2d(x, weight) + bias + residual)`` (ReLU optional) as one oneDNN call (binary post-op)."""
    return torch.ops.mkldnn._convolution_pointwise.binary(
        x, residual, weight, bias, padding, stride, dilation, groups, "add", None, "relu" if relu else None, [], ""
    )
