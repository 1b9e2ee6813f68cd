"""A linear transform between 80 ms blocks of the analysis and the acoustic latent.

Per frame (8 analysis steps): principal components of the 8 x ``bands`` log envelope, of the
8 x ``voicing_bands`` voicing share and of the 8 log F0 values (unvoiced steps take the
frame's voiced mean), fitted on a training corpus; ``parts`` coefficients of each, 36 in
all by default, scaled so that +-1 is +-``span`` standard deviations. Quantized on FSQ's
21 levels this is a classic transform coder (the quality benchmark's floor row).

In an analysis-driven codec (``CodecConfig.block_transform``) the encoder's acoustic output
is these coefficients plus a learned correction (zero at the start), and the decoder's head
controls are their reconstruction plus a learned correction (likewise): training starts
from what no learning gives and learns what a linear transform misses. The fitted bases
are buffers of the model, saved with its weights.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from codec.analysis import Analysis

STEPS = 8
PARTS = ("envelope", "voicing", "f0")


class BlockTransform(nn.Module):
    """Analysis blocks <-> ``sum(parts)`` coefficients per frame.

    ``coefficients``: :class:`~codec.analysis.Analysis` of ``T`` steps -> ``[B, T / 8, K]``
    (about [-1, 1]); ``reconstruct``: ``[B, F, K]`` -> log envelope ``[B, 8F, bands]``,
    voicing share ``[B, 8F, voicing_bands]`` and log F0 ``[B, 8F]``.
    """

    def __init__(self, bands: int, voicing_bands: int, parts: tuple[int, int, int] = (30, 2, 4),
                 span: float = 2.5) -> None:
        super().__init__()
        self.widths = {"envelope": bands, "voicing": voicing_bands, "f0": 1}
        self.parts = dict(zip(PARTS, parts, strict=True))
        self.span = span
        for name in PARTS:
            size, k = STEPS * self.widths[name], self.parts[name]
            self.register_buffer(f"{name}_mean", torch.zeros(size))
            self.register_buffer(f"{name}_basis", torch.zeros(k, size))
            self.register_buffer(f"{name}_scale", torch.ones(k))

    @property
    def size(self) -> int:
        return sum(self.parts.values())

    @staticmethod
    def blocks(a: Analysis) -> dict[str, Tensor]:
        """``[B, F, 8 * width]`` per part (T = 8F steps)."""
        b, t = a.f0.shape
        frames = t // STEPS
        log_f0 = a.f0.float().clamp_min(40.0).log().view(b, frames, STEPS)
        voiced = a.voiced.view(b, frames, STEPS)
        count = voiced.sum(-1, keepdim=True)
        mean = torch.where(count > 0, (log_f0 * voiced).sum(-1, keepdim=True) / count.clamp_min(1),
                           log_f0.mean(-1, keepdim=True))
        return {"envelope": a.log_envelope.float().reshape(b, frames, -1),
                "voicing": a.voicing.float().reshape(b, frames, -1),
                "f0": torch.where(voiced, log_f0, mean)}

    def coefficients(self, a: Analysis) -> Tensor:
        out = []
        for name, x in self.blocks(a).items():
            basis, scale = getattr(self, f"{name}_basis"), getattr(self, f"{name}_scale")
            out.append((x - getattr(self, f"{name}_mean")) @ basis.t() / (self.span * scale))
        return torch.cat(out, dim=-1)

    def reconstruct(self, values: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        b, frames, _ = values.shape
        parts, start = {}, 0
        for name in PARTS:
            k = self.parts[name]
            basis, scale = getattr(self, f"{name}_basis"), getattr(self, f"{name}_scale")
            block = (values[..., start:start + k].float() * self.span * scale) @ basis + getattr(self, f"{name}_mean")
            parts[name] = block.view(b, frames * STEPS, self.widths[name])
            start += k
        return parts["envelope"], parts["voicing"], parts["f0"][..., 0]

    @torch.no_grad()
    def fit(self, analyses: list[Analysis]) -> None:
        """Principal components of the blocks of ``analyses`` (each batch 1, whole frames)."""
        blocks = [self.blocks(a) for a in analyses]
        for name in PARTS:
            x = torch.cat([b[name][0] for b in blocks]).double().numpy()
            mean = x.mean(0)
            _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
            k = self.parts[name]
            if vt.shape[0] < k:
                raise ValueError(f"{len(x)} frames cannot fit {k} {name} components")
            getattr(self, f"{name}_mean").copy_(torch.from_numpy(mean))
            getattr(self, f"{name}_basis").copy_(torch.from_numpy(vt[:k]))
            getattr(self, f"{name}_scale").copy_(torch.from_numpy(s[:k] / math.sqrt(max(len(x) - 1, 1))))

    @property
    def fitted(self) -> bool:
        return bool(self.envelope_basis.abs().sum() > 0)
