"""Quantizers of the hybrid latent, ``[B, T, D]``: the semantic VQ, the acoustic FSQ, and the
:class:`HybridQuantizer` that owns both (the split of the encoder output, the training-time
quantization schedule, codes <-> decoder-input vectors)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codec.latents import fsq_codes_to_values, fsq_values_to_codes

if TYPE_CHECKING:
    from codec.config import CodecConfig


@dataclass
class VQOutput:
    """Result of :meth:`SemanticVQ.forward`.

    Attributes:
        vector: ``[B, T, D]`` the semantic vector passed on (quantized where the schedule says).
        codes: ``[B, T]`` int64 nearest codebook entries (always computed).
        commitment_loss: scalar, pulls encoder outputs towards their codes.
        codebook_loss: scalar, pulls codes towards encoder outputs.
        perplexity: scalar, ``exp(entropy)`` of code usage in this batch.
    """

    vector: Tensor
    codes: Tensor
    commitment_loss: Tensor
    codebook_loss: Tensor
    perplexity: Tensor


class SemanticVQ(nn.Module):
    """One codebook of ``codebook_size`` entries, searched in a low-dim l2-normalised space.

    ``z [B, T, dim]`` is projected to ``lookup_dim``, normalised, matched by cosine
    similarity against the normalised codebook, then projected back to ``dim``. The
    straight-through estimator lets gradients skip the nearest-neighbour choice.
    Codes whose usage (an EMA over training batches) falls far below the mean are
    restarted on encoder outputs of the current batch, so the codebook stays alive.
    """

    def __init__(self, dim: int, codebook_size: int, lookup_dim: int, dead_code_threshold: float,
                 usage_decay: float) -> None:
        super().__init__()
        self.codebook_size = codebook_size
        self.proj_in = nn.Linear(dim, lookup_dim)
        self.proj_out = nn.Linear(lookup_dim, dim)
        self.codebook = nn.Parameter(F.normalize(torch.randn(codebook_size, lookup_dim), dim=-1))
        self.dead_code_threshold = dead_code_threshold
        self.usage_decay = usage_decay
        # Zero usage marks every code dead, so the first training batch places the whole
        # codebook on encoder outputs (a data-dependent initialisation).
        self.register_buffer("usage", torch.zeros(codebook_size))

    def normalized_codebook(self) -> Tensor:
        """``[codebook_size, L]`` unit-norm codes; callers that look up many times with fixed
        weights (a streaming session) may compute it once and pass it to encode/embed."""
        return F.normalize(self.codebook, dim=-1)

    def _lookup(self, z: Tensor, codebook: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``z [B, T, dim]`` -> (normalised low-dim input ``[B, T, L]``, codes ``[B, T]``)."""
        codebook = self.normalized_codebook() if codebook is None else codebook
        e = F.normalize(self.proj_in(z), dim=-1)
        sims = e.reshape(-1, e.shape[-1]) @ codebook.t()
        return e, sims.argmax(dim=-1).view(e.shape[:-1])

    def encode(self, z: Tensor, codebook: Tensor | None = None) -> Tensor:
        """``[B, T, dim] -> [B, T]`` codes (``codebook``: a precomputed :meth:`normalized_codebook`)."""
        return self._lookup(z, codebook)[1]

    def embed(self, codes: Tensor, codebook: Tensor | None = None) -> Tensor:
        """``[B, T]`` codes -> ``[B, T, dim]`` the vectors the decoder sees for them."""
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.codebook_size):
            raise ValueError(f"semantic codes must be in [0, {self.codebook_size}), got "
                             f"[{int(codes.min())}, {int(codes.max())}]")
        codebook = self.normalized_codebook() if codebook is None else codebook
        return self.proj_out(codebook[codes])

    def forward(self, z: Tensor, quantize_mask: Tensor | None = None) -> VQOutput:
        """Quantize ``z [B, T, dim]``; items with ``quantize_mask[b] == False`` stay continuous."""
        e, codes = self._lookup(z)
        q = F.normalize(self.codebook, dim=-1)[codes]
        commitment = F.mse_loss(e, q.detach())
        codebook = F.mse_loss(q, e.detach())
        q_st = e + (q - e).detach()
        if quantize_mask is not None:
            q_st = torch.where(quantize_mask.view(-1, 1, 1), q_st, e)
        counts = torch.bincount(codes.flatten(), minlength=self.codebook_size).float()
        probs = counts / counts.sum().clamp(min=1)
        perplexity = torch.exp(-(probs * torch.log(probs.clamp(min=1e-10))).sum())
        if self.training:
            self._update_usage(counts, e.detach())
        return VQOutput(self.proj_out(q_st), codes, commitment, codebook, perplexity)

    @torch.no_grad()
    def _update_usage(self, counts: Tensor, e: Tensor) -> None:
        if _distributed():
            # Every rank must hold the same usage statistics to make the same restarts.
            torch.distributed.all_reduce(counts)
        self.usage.mul_(self.usage_decay).add_(counts, alpha=1 - self.usage_decay)
        self.restart_dead_codes(e.reshape(-1, e.shape[-1]))

    @torch.no_grad()
    def restart_dead_codes(self, candidates: Tensor, pool: int = 512) -> int:
        """Move codes used far less than average onto random ``candidates [N, L]``; returns how many.

        Under DistributedDataParallel each rank contributes ``pool`` candidates (a fixed
        count, so the gather lines up whatever the local batch length) and every rank then
        picks the same replacements.
        """
        if candidates.shape[0] == 0:
            return 0
        if _distributed():
            pick = torch.randint(0, candidates.shape[0], (pool,), device=candidates.device)
            local = candidates[pick].contiguous()
            gathered = [torch.empty_like(local) for _ in range(torch.distributed.get_world_size())]
            torch.distributed.all_gather(gathered, local)
            candidates = torch.cat(gathered)
        usage = self.usage
        dead = usage < self.dead_code_threshold * usage.mean()
        n = int(dead.sum())
        if n == 0:
            return 0
        # A generator seeded from the (rank-identical) usage keeps the choice identical on every rank.
        g = torch.Generator(device="cpu").manual_seed(int(usage.sum().item() * 1e6) % (2**31))
        pick = torch.randint(0, candidates.shape[0], (n,), generator=g).to(candidates.device)
        noise = torch.randn(n, candidates.shape[1], generator=g).to(candidates.device)
        self.codebook.data[dead] = F.normalize(candidates[pick] + 0.01 * noise, dim=-1)
        usage[dead] = usage.mean()
        return n


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


@dataclass
class FSQOutput:
    """Result of :meth:`FSQ.forward`: ``values [B, T, A]`` passed on and ``codes [B, T, A]`` int64."""

    values: Tensor
    codes: Tensor


class FSQ(nn.Module):
    """Finite scalar quantization: ``tanh`` then rounding to ``levels`` uniform values in [-1, 1].

    Training follows a per-item schedule: quantized (straight-through), dithered with
    uniform noise one level wide, or left continuous, so the decoder learns to tolerate
    quantization noise without the encoder's gradients being hidden by it.
    """

    def __init__(self, levels: int) -> None:
        super().__init__()
        self.levels = levels

    def forward(self, z: Tensor, mode: Tensor | None = None) -> FSQOutput:
        """``z [B, T, A]`` raw -> quantized. ``mode [B]``: 0 quantize, 1 dither, 2 continuous."""
        x = torch.tanh(z)
        codes = fsq_values_to_codes(x.detach(), self.levels)
        q = x + (fsq_codes_to_values(codes, self.levels).to(x.dtype) - x).detach()
        if mode is None:
            return FSQOutput(q, codes)
        width = 2.0 / (self.levels - 1)
        dithered = x + (torch.rand_like(x) - 0.5) * width
        m = mode.view(-1, 1, 1)
        values = torch.where(m == 0, q, torch.where(m == 1, dithered, x))
        return FSQOutput(values, codes)


@dataclass
class HybridQuantized:
    """Result of :meth:`HybridQuantizer.forward`.

    Attributes:
        latent: ``[B, T, semantic_dim + acoustic_dim]`` the decoder's input.
        semantic: the semantic VQ's output (its ``vector`` is what teachers read).
        acoustic: the FSQ's output.
    """

    latent: Tensor
    semantic: VQOutput
    acoustic: FSQOutput


class HybridQuantizer(nn.Module):
    """The semantic VQ and the acoustic FSQ of a frame, and the split between them.

    The first ``semantic_dim`` dims of an encoder frame go to the :class:`SemanticVQ`, the
    remaining ``acoustic_dim`` to the :class:`FSQ`. In training mode :meth:`forward`
    samples the schedule of the config per item (Voxtral's): the semantic VQ applied with
    probability ``semantic_vq_prob``; the acoustic stream quantized with
    ``acoustic_quantize_prob``, dithered with ``acoustic_dither_prob``, else continuous.
    """

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        self.config = config
        self.semantic = SemanticVQ(config.semantic_dim, config.semantic_codebook_size, config.semantic_lookup_dim,
                                   config.dead_code_threshold, config.usage_decay)
        self.acoustic = FSQ(config.acoustic_levels)
        # The l2-normalised codebook, fixed for a streaming session (cache_codebook): computing
        # it is a large share of a one-frame step.
        self._codebook: Tensor | None = None

    def cache_codebook(self, enabled: bool) -> None:
        """Look codes up in a normalised codebook computed once (weights must stay fixed), or not."""
        with torch.no_grad():
            self._codebook = self.semantic.normalized_codebook() if enabled else None

    def split(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Encoder output ``[B, T, D]`` -> semantic ``[B, T, semantic_dim]``, acoustic ``[B, T, acoustic_dim]``."""
        return z[..., : self.config.semantic_dim], z[..., self.config.semantic_dim:]

    def encode(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Encoder output ``[B, T, D]`` -> semantic ``[B, T]`` and acoustic ``[B, T, A]`` int64 codes."""
        sem, ac = self.split(z)
        return self.semantic.encode(sem, self._codebook), self.acoustic(ac).codes

    def semantic_embedding(self, codes: Tensor) -> Tensor:
        """Semantic codes ``[B, T]`` -> the ``[B, T, semantic_dim]`` vectors the decoder sees."""
        return self.semantic.embed(codes, self._codebook)

    def decode(self, semantic: Tensor, acoustic_codes: Tensor) -> Tensor:
        """Codes ``[B, T]`` and ``[B, T, A]`` -> decoder input ``[B, T, semantic_dim + A]``."""
        ac = fsq_codes_to_values(acoustic_codes, self.config.acoustic_levels)
        return torch.cat([self.semantic_embedding(semantic), ac], dim=-1)

    def forward(self, z: Tensor) -> HybridQuantized:
        """Quantize encoder output ``z [B, T, D]`` (the schedule in training mode, fully in eval)."""
        sem, ac = self.split(z)
        vq_mask = fsq_mode = None
        if self.training:
            cfg, b = self.config, z.shape[0]
            vq_mask = torch.rand(b, device=z.device) < cfg.semantic_vq_prob
            r = torch.rand(b, device=z.device)
            fsq_mode = torch.full((b,), 2, device=z.device, dtype=torch.long)
            fsq_mode[r < cfg.acoustic_quantize_prob + cfg.acoustic_dither_prob] = 1
            fsq_mode[r < cfg.acoustic_quantize_prob] = 0
        vq = self.semantic(sem, vq_mask)
        fsq = self.acoustic(ac, fsq_mode)
        return HybridQuantized(torch.cat([vq.vector, fsq.values], dim=-1), vq, fsq)
