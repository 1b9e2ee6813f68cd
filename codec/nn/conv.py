"""Causal convolutions, ``[B, C, T]``.

For the few steps of a streaming chunk the generic conv kernels spend far longer on
setup than on arithmetic, so up to :data:`MATMUL_CONV_MAX_STEPS` output steps both
convolutions run as one matmul (:meth:`Conv1d.matmul`, :meth:`ConvTranspose1d.matmul`);
:mod:`codec.nn.int8` swaps in twins whose matmul runs in int8.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codec.nn.streaming import StreamingModule

#: Up to this many output steps, convolutions run as a plain matmul.
MATMUL_CONV_MAX_STEPS = 32


class Conv1d(nn.Conv1d):
    """``nn.Conv1d`` that can also run as a matmul over gathered windows."""

    def matmul_weight(self) -> tuple[Tensor, Tensor | None]:
        """The conv as a linear map: weight ``[C_out, C_in * kernel]`` and bias."""
        return self.weight.reshape(self.out_channels, -1), self.bias

    def matmul(self, cols: Tensor) -> Tensor:
        """Windows ``[B, T, C_in * kernel]`` -> ``[B, T, C_out]``."""
        return F.linear(cols, *self.matmul_weight())


class ConvTranspose1d(nn.ConvTranspose1d):
    """``nn.ConvTranspose1d`` with kernel == stride that can also run as one matmul."""

    def matmul_weight(self) -> tuple[Tensor, Tensor | None]:
        """The conv as a linear map: weight ``[C_out * stride, C_in]`` and bias."""
        s = self.stride[0]
        bias = None if self.bias is None else self.bias.repeat_interleave(s)
        return self.weight.reshape(self.in_channels, self.out_channels * s).t(), bias

    def matmul(self, x: Tensor) -> Tensor:
        """Steps ``[B, T, C_in]`` -> ``[B, T, C_out * stride]`` (output channel-major, then phase)."""
        return F.linear(x, *self.matmul_weight())


class CausalConv1d(StreamingModule):
    """Strided causal conv: output step ``j`` sees inputs up to the end of its own stride block.

    ``[B, C_in, T] -> [B, C_out, T / stride]``; ``T`` must be a multiple of ``stride``.
    The state is the last ``kernel - stride`` input steps.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__()
        if kernel_size < stride:
            raise ValueError("kernel_size must be >= stride")
        self.conv = Conv1d(in_channels, out_channels, kernel_size, stride)
        self.context = kernel_size - stride
        self.stride = stride

    def init_state(self, x: Tensor) -> Tensor:
        return x.new_zeros(x.shape[0], x.shape[1], self.context)

    def step(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        if x.shape[-1] % self.stride:
            raise ValueError(f"input length {x.shape[-1]} is not a multiple of the stride {self.stride}")
        steps = x.shape[-1] // self.stride
        x = torch.cat([state, x], dim=-1)
        new_state = x[..., x.shape[-1] - self.context:]
        if steps <= MATMUL_CONV_MAX_STEPS:
            return self._conv_as_matmul(x), new_state
        return self.conv(x), new_state

    def _conv_as_matmul(self, x: Tensor) -> Tensor:
        """``self.conv(x)`` as one matmul over gathered windows (``[B, C_out, T]``, channels-last in memory)."""
        b, c, _ = x.shape
        k = self.conv.kernel_size[0]
        cols = x.unfold(2, k, self.stride).transpose(1, 2).reshape(b, -1, c * k)  # [B, T, C_in * k]
        return self.conv.matmul(cols).transpose(1, 2)


class Upsample1d(nn.Module):
    """Transposed conv with kernel == stride: each input step expands to ``stride`` outputs.

    Non-overlapping, hence stateless and causal. ``[B, C_in, T] -> [B, C_out, T * stride]``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv = ConvTranspose1d(in_channels, out_channels, stride, stride)
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        b, _, t = x.shape
        if t > MATMUL_CONV_MAX_STEPS:
            return self.conv(x)
        # Kernel == stride: each input step maps to its own ``stride`` outputs, a single matmul.
        s, out_c = self.stride, self.conv.out_channels
        y = self.conv.matmul(x.transpose(1, 2))  # [B, T, C_out * stride]
        return y.view(b, t, out_c, s).transpose(2, 3).reshape(b, t * s, out_c).transpose(1, 2)
