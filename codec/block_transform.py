"""A linear transform between 80 ms blocks of the analysis and the acoustic latent.

Per frame (8 analysis steps): principal components of the 8 x ``bands`` log envelope, of the
8 x ``voicing_bands`` voicing share and of the 8 log F0 values, fitted on a training corpus;
``parts`` coefficients of each, scaled so that +-1 is +-``span`` standard deviations. A part
named in ``fine`` spends one more latent value on the quantization residual of its first
component (a second 21-level scalar inside one step of the first): the frame's mean log F0
and overall level have so much spread across speakers and loudness that one 21-level step of
them is a 9 % pitch error or a 3 dB level jump. Quantized on FSQ's 21 levels this is a
classic transform coder (the quality benchmark's floor row).

What the fit weighs (saved with the bases, so a transform fitted otherwise loads as it was):
the envelope bands are weighted by how much they matter to a listener (full weight to 2.5 kHz,
falling to 0.05 above 8 kHz), only frames louder than ``fit_min_db`` are fitted (silence
carries no envelope worth coding), and steps whose voicing share exceeds ``voiced_share``
count as voiced for the pitch even where YIN calls them unvoiced (the head renders them
with a pulse train, so their F0 must be right: PESQ-WB of the analysis ceiling 2.21 with
the measured F0 there, 2.04 with the frame's mean).

In an analysis-driven codec (``CodecConfig.block_transform``) the encoder's acoustic output
is these coefficients plus a learned correction (zero at the start), and the decoder's head
controls are their reconstruction plus a learned correction (likewise): training starts
from what no learning gives and learns what a linear transform misses. The fitted bases
are buffers of the model, saved with its weights.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from codec.analysis import Analysis, mel
from codec.latents import SAMPLE_RATE, fsq_codes_to_values, fsq_values_to_codes

STEPS = 8
PARTS = ("envelope", "voicing", "f0")
LEVELS = 21  # FSQ's grid, on which the fine values refine their first components


def listener_weights(bands: int, sample_rate: int = SAMPLE_RATE) -> Tensor:
    """``[bands]`` weight of each envelope control point (evenly spaced in mel) in the fit."""
    centers = torch.linspace(0.0, float(mel(torch.tensor(sample_rate / 2.0))), bands, dtype=torch.float64)
    hz = 700.0 * (10.0 ** (centers / 2595.0) - 1.0)
    return torch.where(hz < 2500, 1.0, torch.where(hz < 5000, 0.6, torch.where(hz < 8000, 0.3, 0.05))).float()


def _grid(v: Tensor) -> Tensor:
    return fsq_codes_to_values(fsq_values_to_codes(v, LEVELS), LEVELS).to(v.dtype)


class BlockTransform(nn.Module):
    """Analysis blocks <-> ``size`` coefficients per frame.

    ``coefficients``: :class:`~codec.analysis.Analysis` of ``T`` steps -> ``[B, T / 8, size]``
    (about [-1, 1]); ``reconstruct``: ``[B, F, size]`` -> log envelope ``[B, 8F, bands]``,
    voicing share ``[B, 8F, voicing_bands]`` and log F0 ``[B, 8F]``. Per part the layout is
    its ``parts`` coefficients, then its fine value if the part is in ``fine``.
    """

    def __init__(self, bands: int, voicing_bands: int, parts: tuple[int, ...] = (29, 2, 3),
                 fine: tuple[str, ...] = ("envelope", "f0"), span: float = 2.5, fit_min_db: float = -50.0) -> None:
        super().__init__()
        if unknown := set(fine) - set(PARTS):
            raise ValueError(f"fine parts must be among {PARTS}, got {sorted(unknown)}")
        self.widths = {"envelope": bands, "voicing": voicing_bands, "f0": 1}
        self.parts = dict(zip(PARTS, parts, strict=True))
        self.fine = tuple(name for name in PARTS if name in fine)
        self.span = span
        self.fit_min_db = fit_min_db
        for name in PARTS:
            size, k = STEPS * self.widths[name], self.parts[name]
            self.register_buffer(f"{name}_mean", torch.zeros(size))
            self.register_buffer(f"{name}_basis", torch.zeros(k, size))
            self.register_buffer(f"{name}_scale", torch.ones(k))
        self.register_buffer("envelope_weight", torch.ones(STEPS * bands))
        self.register_buffer("voiced_share", torch.tensor(2.0))  # above 1: YIN's voiced flag alone

    @property
    def size(self) -> int:
        return sum(self.parts.values()) + len(self.fine)

    def _load_from_state_dict(self, state: dict[str, Any], prefix: str, *args: Any) -> None:
        # Transforms fitted before the fit's weights were saved: unweighted, YIN's flag alone.
        state.setdefault(prefix + "envelope_weight", torch.ones_like(self.envelope_weight))
        state.setdefault(prefix + "voiced_share", torch.tensor(2.0))
        super()._load_from_state_dict(state, prefix, *args)

    def blocks(self, a: Analysis) -> dict[str, Tensor]:
        """``[B, F, 8 * width]`` per part (T = 8F steps); the envelope weighted as fitted."""
        b, t = a.f0.shape
        frames = t // STEPS
        log_f0 = a.f0.float().clamp_min(40.0).log().view(b, frames, STEPS)
        voiced = (a.voiced | (a.voicing.float().mean(-1) > self.voiced_share)).view(b, frames, STEPS)
        count = voiced.sum(-1, keepdim=True)
        mean = torch.where(count > 0, (log_f0 * voiced).sum(-1, keepdim=True) / count.clamp_min(1),
                           log_f0.mean(-1, keepdim=True))
        return {"envelope": a.log_envelope.float().reshape(b, frames, -1) * self.envelope_weight,
                "voicing": a.voicing.float().reshape(b, frames, -1),
                "f0": torch.where(voiced, log_f0, mean)}

    def coefficients(self, a: Analysis) -> Tensor:
        out = []
        for name, x in self.blocks(a).items():
            basis, scale = getattr(self, f"{name}_basis"), getattr(self, f"{name}_scale")
            c = (x - getattr(self, f"{name}_mean")) @ basis.t() / (self.span * scale)
            out.append(c)
            if name in self.fine:  # the first component's residual, in units of half a grid step
                first = c[..., :1].clamp(-1, 1)
                out.append(((first - _grid(first)) * (LEVELS - 1)).clamp(-1, 1))
        return torch.cat(out, dim=-1)

    def reconstruct(self, values: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        b, frames, _ = values.shape
        parts, start = {}, 0
        for name in PARTS:
            k = self.parts[name]
            c = values[..., start:start + k].float()
            start += k
            if name in self.fine:
                # The first component on its grid (straight through) plus the fine residual.
                first = c[..., :1] + (_grid(c[..., :1]) - c[..., :1]).detach()
                c = torch.cat([first + values[..., start:start + 1].float() / (LEVELS - 1), c[..., 1:]], dim=-1)
                start += 1
            basis, scale = getattr(self, f"{name}_basis"), getattr(self, f"{name}_scale")
            block = (c * self.span * scale) @ basis + getattr(self, f"{name}_mean")
            parts[name] = block.view(b, frames * STEPS, self.widths[name])
        envelope = parts["envelope"] / self.envelope_weight.view(STEPS, -1)[0]
        return envelope, parts["voicing"], parts["f0"][..., 0]

    @torch.no_grad()
    def fit(self, analyses: list[Analysis], voiced_share: float = 0.5, weighted: bool = True) -> None:
        """Principal components of the frames of ``analyses`` (each batch 1, whole frames)
        louder than ``fit_min_db``; the envelope bands weighted by :func:`listener_weights`
        (``weighted``), steps with a voicing share above ``voiced_share`` voiced for the pitch."""
        bands = self.widths["envelope"]
        self.envelope_weight.copy_((listener_weights(bands) if weighted else torch.ones(bands)).repeat(STEPS))
        self.voiced_share.fill_(voiced_share)
        blocks = [self.blocks(a) for a in analyses]
        loud = torch.cat([a.energy[0].float().view(-1, STEPS).mean(-1) > self.fit_min_db for a in analyses])
        if int(loud.sum()) == 0:
            raise ValueError(f"no frame of the fit's analyses is louder than {self.fit_min_db} dB")
        for name in PARTS:
            x = torch.cat([b[name][0] for b in blocks])[loud].double().numpy()
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
