"""Pre-norm transformer layers with local causal attention, ``[B, T, D]``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codec.nn.attention import LocalSelfAttention


class TransformerLayer(nn.Module):
    """Pre-norm transformer layer with local causal attention and layer scale. ``[B, T, D]``."""

    def __init__(self, dim: int, num_heads: int, window: int, mlp_ratio: float, layer_scale: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = LocalSelfAttention(dim, num_heads, window)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        # Small residual branches at init keep deep stacks trainable without warm-up tricks.
        self.scale1 = nn.Parameter(torch.full((dim,), layer_scale))
        self.scale2 = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: Tensor) -> Tensor:
        # Functional layer norms: in a streaming step of a few time steps the per-module call
        # overhead would cost about as much as the ops themselves.
        n1, n2 = self.norm1, self.norm2
        fc1, act, fc2 = self.mlp
        h = F.layer_norm(x, n1.normalized_shape, n1.weight, n1.bias, n1.eps)
        x = x + self.scale1 * self.attn(h)
        h = F.layer_norm(x, n2.normalized_shape, n2.weight, n2.bias, n2.eps)
        h = fc2(F.gelu(fc1(h), approximate=act.approximate))
        return x + self.scale2 * h


class Transformer(nn.Module):
    """A stack of :class:`TransformerLayer`. ``[B, T, D] -> [B, T, D]``."""

    def __init__(self, dim: int, num_heads: int, num_layers: int, window: int, mlp_ratio: float,
                 layer_scale: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TransformerLayer(dim, num_heads, window, mlp_ratio, layer_scale) for _ in range(num_layers)
        )

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


