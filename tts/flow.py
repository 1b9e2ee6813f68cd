"""Flow-matching acoustic head: predicts the velocity of a frame's acoustic vector.

Shapes: ``h`` ``[N, H]`` (backbone hidden states, one per frame), ``x`` ``[N, D]``
(acoustic vectors, D = 36), ``t`` ``[N]`` in [0, 1]. Path convention (rectified flow):
``x_t = (1 - t) * noise + t * data``, so the target velocity is ``data - noise``,
``t = 0`` is pure noise and ``t = 1`` the data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn


def sinusoidal_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """``[N]`` times in [0, 1] -> ``[N, dim]`` sin/cos features (scaled so t=1 spans many periods)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    # Times live in [0, 1]; x1000 spreads them over the frequency range like diffusion step indices.
    args = 1000.0 * t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class FlowHead(nn.Module):
    """Bidirectional transformer over three tokens ``[proj(h), time(t), proj(x_t)]``.

    The velocity is read from the output at the ``x_t`` token. A zero ``h`` is the
    unconditional input (what classifier-free guidance contrasts against).
    """

    def __init__(self, cond_dim: int, acoustic_dim: int, dim: int, layers: int, heads: int,
                 mlp_ratio: float = 2.0) -> None:
        super().__init__()
        self.acoustic_dim = acoustic_dim
        self.dim = dim
        self.cond_proj = nn.Linear(cond_dim, dim)
        self.time_mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.x_proj = nn.Linear(acoustic_dim, dim)
        self.token_pos = nn.Parameter(torch.zeros(3, dim))
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=int(dim * mlp_ratio), dropout=0.0, activation="gelu",
            batch_first=True, norm_first=True,
        )
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, acoustic_dim)
        nn.init.normal_(self.token_pos, std=0.02)
        # Start from a zero velocity: early training is not dominated by a random field.
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, t: Tensor, h: Tensor) -> Tensor:
        """Velocity ``[N, D]`` at noisy vectors ``x`` ``[N, D]``, times ``t`` ``[N]``, conditions ``h`` ``[N, H]``."""
        if x.dim() != 2 or x.shape[-1] != self.acoustic_dim:
            raise ValueError(f"x must be [N, {self.acoustic_dim}], got {tuple(x.shape)}")
        if t.dim() != 1 or h.dim() != 2 or not (x.shape[0] == t.shape[0] == h.shape[0]):
            raise ValueError(f"t must be [N] and h [N, H] with N={x.shape[0]}; got {tuple(t.shape)}, {tuple(h.shape)}")
        tokens = torch.stack(
            [self.cond_proj(h), self.time_mlp(sinusoidal_embedding(t, self.dim).to(h.dtype)), self.x_proj(x)], dim=1
        ) + self.token_pos
        y = self.blocks(tokens)
        return self.out(self.norm(y[:, 2]))


@dataclass
class FlowLoss:
    """Conditional flow-matching loss and what went into it."""

    loss: Tensor  # scalar: mean squared velocity error
    num_frames: int


def flow_matching_loss(
    head: FlowHead,
    h: Tensor,
    target: Tensor,
    cond_dropout: float = 0.1,
    samples_per_frame: int = 1,
    generator: torch.Generator | None = None,
) -> FlowLoss:
    """Conditional flow-matching loss of ``head`` for data ``target`` ``[N, D]`` given ``h`` ``[N, H]``.

    Each frame gets ``samples_per_frame`` draws of (noise, t); ``h`` is zeroed for a
    ``cond_dropout`` share of the frames (whole frames, all their draws).
    """
    if h.shape[0] != target.shape[0]:
        raise ValueError(f"h has {h.shape[0]} frames, target {target.shape[0]}")
    n, k = target.shape[0], samples_per_frame
    if n == 0:
        return FlowLoss(h.sum() * 0.0, 0)
    dev = h.device
    if cond_dropout > 0:
        keep = torch.rand(n, 1, device=dev, generator=generator) >= cond_dropout
        h = h * keep.to(h.dtype)
    h = h.repeat_interleave(k, dim=0)
    x1 = target.to(h.dtype).repeat_interleave(k, dim=0)
    x0 = torch.randn(x1.shape, device=dev, dtype=x1.dtype, generator=generator)
    t = torch.rand(n * k, device=dev, generator=generator)
    xt = (1.0 - t[:, None]) * x0 + t[:, None] * x1
    v = head(xt, t, h)
    loss = (v.float() - (x1 - x0).float()).pow(2).mean()
    return FlowLoss(loss, n)
