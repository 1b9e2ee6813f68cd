"""Causal multi-head self-attention over a sliding window, ``[B, T, D]``."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codec.nn.streaming import StreamingModule


@dataclass
class AttentionState:
    """Streaming state of :class:`LocalSelfAttention`."""

    kv: Tensor  # [B, window, 2, H, head_dim] keys and values of the last ``window`` steps
    valid: int  # how many of those steps are real; the others predate the stream
    # Attention biases of short chunks by (new steps, valid). A chunk's bias depends only on
    # these and the weights, and a stream sees few distinct pairs, so each is built once.
    biases: dict[tuple[int, int], Tensor] = field(default_factory=dict)


class LocalSelfAttention(StreamingModule):
    """Causal multi-head self-attention over a sliding window of ``window`` steps (self included).

    Positions enter only through a learned bias per head and distance, so the block needs
    no absolute time index and streams over inputs of any length. Attention is computed
    in blocks of ``window`` queries against the previous ``window`` keys plus their own,
    which keeps memory linear in the sequence length; a chunk of at most ``window`` steps
    (the streaming case) attends directly to the cached and new keys. ``[B, T, D] -> [B, T, D]``.
    The state (:class:`AttentionState`) holds the keys and values of the last ``window`` steps.
    """

    def __init__(self, dim: int, num_heads: int, window: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.window = window
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.out = nn.Linear(dim, dim, bias=False)
        self.rel_bias = nn.Parameter(torch.zeros(num_heads, window))
        w = window
        # distance d = (w + i) - j between query i of a block and key j of [previous block, block]
        dist = w + torch.arange(w)[:, None] - torch.arange(2 * w)[None, :]
        self.register_buffer("_dist", dist.clamp(0, w - 1), persistent=False)
        self.register_buffer("_allowed", (dist >= 0) & (dist < w), persistent=False)

    def init_state(self, x: Tensor) -> AttentionState:
        return AttentionState(x.new_zeros(x.shape[0], self.window, 2, self.num_heads, self.head_dim), 0)

    def is_steady(self) -> bool:
        # Once the window is full, only the cached keys and values change from step to step.
        return self._state is not None and self._state.valid == self.window

    def state_tensor(self) -> Tensor:
        return self._state.kv

    def load_state_tensor(self, state: Tensor) -> None:
        self._state.kv = state  # in place: no new object per step

    def step(self, x: Tensor, state: AttentionState) -> tuple[Tensor, AttentionState]:
        b, t, d = x.shape
        w = self.window
        # Time-major like the projection's output, so caching new keys and values is one
        # concatenation and, for one stream, no head has to be gathered into a copy.
        qkv = self.qkv(x).view(b, t, 3, self.num_heads, self.head_dim)
        q = qkv.select(2, 0).transpose(1, 2)  # [B, H, T, hd]
        all_kv = torch.cat([state.kv, qkv.narrow(2, 1, 2)], dim=1)  # [B, w + T, 2, H, hd]
        new_state = AttentionState(all_kv.narrow(1, t, w), min(w, state.valid + t), state.biases)
        if t <= w:
            bias = self._short_bias(t, state, b)
            out = self._attend_short(q, all_kv, bias if bias.dtype == q.dtype else bias.to(q.dtype))
        else:
            out = self._attend_blocks(q, all_kv, state.valid)
        return self.out(out.transpose(1, 2).reshape(b, t, d)), new_state

    def _short_bias(self, t: int, state: AttentionState, batch: int) -> Tensor:
        """Bias ``[B * H, t, w + t]`` of ``t <= w`` queries against [cached keys, new keys]."""
        key = (int(t), state.valid)  # int: under torch.jit.trace sizes are tensors
        # A cached bias would cut the gradient path to ``rel_bias``.
        cacheable = not (torch.is_grad_enabled() and self.rel_bias.requires_grad)
        if cacheable and key in state.biases:
            return state.biases[key]
        w = self.window
        # The first t rows of the block layout: query i sits at w + i, cached keys at [0, w).
        bias = self.rel_bias[:, self._dist[:t, : w + t]]
        neg = torch.finfo(bias.dtype).min
        bias = bias.masked_fill(~self._allowed[:t, : w + t], neg)
        if state.valid < w:
            bias[:, :, : w - state.valid] = neg  # steps before the stream began are not real
        if batch > 1:
            bias = bias.repeat(batch, 1, 1)
        if cacheable:
            state.biases[key] = bias
        return bias

    def _attend_short(self, q: Tensor, all_kv: Tensor, bias: Tensor) -> Tensor:
        """``q [B, H, t, hd]`` against all of ``all_kv``; the bias hides what is out of reach."""
        b, h, t, hd = q.shape
        n = all_kv.shape[1]
        k = all_kv.select(2, 0).transpose(1, 2).reshape(b * h, n, hd)
        v = all_kv.select(2, 1).transpose(1, 2).reshape(b * h, n, hd)
        scores = torch.baddbmm(bias, q.reshape(b * h, t, hd), k.transpose(1, 2), alpha=hd ** -0.5)
        return torch.bmm(scores.softmax(dim=-1), v).view(b, h, t, hd)

    def _attend_blocks(self, q: Tensor, all_kv: Tensor, valid: int) -> Tensor:
        """``q [B, H, T, hd]`` in blocks of ``w`` queries against the previous ``w`` keys plus their own."""
        b, h, t, hd = q.shape
        w = self.window
        all_k, all_v = all_kv.select(2, 0).transpose(1, 2), all_kv.select(2, 1).transpose(1, 2)  # [B, H, w + T, hd]
        pad = (-t) % w
        if pad:
            # Padded steps come after every real query, so causality already hides them.
            q = F.pad(q, (0, 0, 0, pad))
            all_k = F.pad(all_k, (0, 0, 0, pad))
            all_v = F.pad(all_v, (0, 0, 0, pad))
        nb = (t + pad) // w
        qb = q.reshape(b, h, nb, w, hd)
        kb = all_k.unfold(2, 2 * w, w).transpose(-1, -2)  # [B, H, nb, 2w, hd]
        vb = all_v.unfold(2, 2 * w, w).transpose(-1, -2)

        bias = self.rel_bias[:, self._dist]  # [H, w, 2w]
        neg = torch.finfo(bias.dtype).min
        mask = bias.masked_fill(~self._allowed, neg).unsqueeze(1).expand(-1, nb, -1, -1).clone()
        if valid < w:
            # The first block's "previous block" is the cache; steps before the stream began are not real.
            mask[:, 0, :, : w - valid] = neg
        out = F.scaled_dot_product_attention(qb, kb, vb, attn_mask=mask.to(qb.dtype))
        return out.reshape(b, h, nb * w, hd)[:, :, :t]


