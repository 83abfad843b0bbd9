"""Local response normalization that runs in every floating-point dtype.

:func:`torch.nn.functional.local_response_norm` averages the squared activations over a window of channels
with ``avg_pool3d``, which has no float16 / bfloat16 kernel on CPU (``"avg_pool3d_out_frame" not implemented
for 'BFloat16'``), and squares the activations in the input's dtype, which overflows float16 for
activations above 256. :class:`LocalResponseNorm` computes the normalization in float32 for float16 and
bfloat16 input and casts the result back to the input's dtype; float32 and float64 input go through
:func:`~torch.nn.functional.local_response_norm` unchanged, so their result is bit for bit PyTorch's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LocalResponseNorm"]


class LocalResponseNorm(nn.LocalResponseNorm):
    """:class:`torch.nn.LocalResponseNorm` (across channels, same parameters and output) that also runs on
    float16 and bfloat16 tensors, on CPU as on CUDA and under autocast.

    Half-precision input (float16, bfloat16) is normalized in float32 and the result cast back to the
    input's dtype: the same code path on every device, no overflow of the squared activations in float16,
    and the only rounding is the final cast. Any other dtype is passed to
    :func:`torch.nn.functional.local_response_norm` as it is (float32 results identical to PyTorch's).

    Shapes: (B, C, *) -> (B, C, *), the output in the input's dtype.
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if input.dtype == torch.float16 or input.dtype == torch.bfloat16:
            out = F.local_response_norm(input.float(), self.size, self.alpha, self.beta, self.k)
            return out.to(input.dtype)
        return F.local_response_norm(input, self.size, self.alpha, self.beta, self.k)
