"""The source-filter head: pulses at a predicted F0 and noise through predicted filters."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codec.analysis import Analysis, AnalysisConfig, analyze
from codec.heads.base import HeadOutput, OutputHead
from codec.heads.dsp import (
    accumulate_phase,
    band_limited_pulses,
    band_matrix,
    f0_from_logit,
    minimum_phase,
)
from codec.latents import SAMPLE_RATE
from codec.nn.streaming import StreamingModule


@dataclass
class SourceFilterHeadConfig:
    """Settings of :class:`SourceFilterHead`.

    ``size``: samples of excitation each step's filters apply to (a multiple of the
    240-sample hop, at least two hops). ``envelope_bands`` / ``voicing_bands``: mel-spaced
    control points of the envelope and of the voicing share. ``f0_forcing_prob``: in
    training, the share of items whose voiced steps drive the pulses with the input's
    measured F0 instead of the predicted one; without it the reconstruction losses mute
    the pulses before the predicted F0 is any good. Train it with ``loss.control`` > 0.
    """

    kind: Literal["source_filter"] = "source_filter"
    size: int = 960
    envelope_bands: int = 64
    voicing_bands: int = 8
    f0_forcing_prob: float = 0.5

    def __post_init__(self) -> None:
        if self.envelope_bands < 2 or self.voicing_bands < 2:
            raise ValueError(f"envelope_bands and voicing_bands must be >= 2, got {self.envelope_bands} "
                             f"and {self.voicing_bands}")
        if not 0.0 <= self.f0_forcing_prob <= 1.0:
            raise ValueError(f"f0_forcing_prob must be in [0, 1], got {self.f0_forcing_prob}")


class SourceFilterHead(StreamingModule, OutputHead):
    """Source-filter output head: harmonic and noise excitations through predicted filters.

    Per step of ``hop`` samples the head predicts an F0 (``f0_min``..``f0_max`` Hz), a
    spectral envelope (``bands`` log-magnitudes spread evenly in mel, interpolated to the FFT
    bins) and a voicing share per frequency (``voicing_bands`` logits, likewise). Two
    excitations run at unit power: a band-limited pulse train at the F0 (every harmonic
    below Nyquist at equal amplitude, phase carried across steps) and white noise read from
    a fixed table at the absolute sample position. Each goes through a minimum-phase filter
    of the envelope times the square root of its share (voiced for the pulses, the rest for
    the noise), applied to the last ``size`` excitation samples by FFT; over a step the
    output crossfades linearly from the previous step's filters to the new ones.

    Nothing but the filters shapes the output: where the voicing share is high, the output
    is periodic with harmonics at every multiple of the F0, whatever the envelope, so the
    reconstruction losses cannot trade harmonics for noise one harmonic at a time. The
    controls are on the scale of :mod:`codec.analysis` (the same control points, white
    noise and the pulse train both at envelope 1), so the analysis of the input gives every
    control a target (:meth:`forward_train`); F0 reaches the pulses detached and learns
    from its target alone.

    Causal (the filters of steps up to ``t`` and the excitation up to step ``t`` make step
    ``t``), deterministic, no latency. The state is ``[B, 3 + bands + voicing_bands + size -
    hop]``: phase (cycles), last F0, noise-table position, last controls, pulse history.
    ``[B, T, D] -> [B, 1, T * hop]``.
    """

    TABLE = 1 << 18  # noise table length (~11 s at 24 kHz)

    def __init__(self, dim: int, hop: int, size: int, bands: int = 64, voicing_bands: int = 8,
                 f0_min: float = 50.0, f0_max: float = 600.0, sample_rate: int = SAMPLE_RATE,
                 f0_forcing_prob: float = 0.0) -> None:
        super().__init__()
        if size < 2 * hop or size % hop:
            raise ValueError(f"source-filter size {size} must be a multiple of the hop {hop}, at least two hops")
        if bands < 2 or voicing_bands < 2:
            raise ValueError(f"bands and voicing_bands must be >= 2, got {bands} and {voicing_bands}")
        self.hop, self.size, self.sample_rate = hop, size, sample_rate
        self.bands, self.voicing_bands = bands, voicing_bands
        self.bins = size // 2 + 1
        self.f0_min, self.f0_max = f0_min, f0_max
        self.f0_forcing_prob = f0_forcing_prob
        self.proj = nn.Linear(dim, 1 + bands + voicing_bands)
        with torch.no_grad():
            # Start quiet (envelope e^-4, about 0.02 rms) and half voiced.
            self.proj.bias[1:1 + bands].fill_(-4.0)
            self.proj.bias[1 + bands:].zero_()
        self.register_buffer("env_to_bins", band_matrix(bands, self.bins, sample_rate), persistent=False)
        self.register_buffer("voicing_to_bins", band_matrix(voicing_bands, self.bins, sample_rate), persistent=False)
        self.analysis = AnalysisConfig(bands=bands, voicing_bands=voicing_bands)
        self.with_base = False
        noise = torch.randn(self.TABLE, generator=torch.Generator().manual_seed(0))
        self.register_buffer("noise", noise / noise.std(), persistent=False)
        self.register_buffer("ramp", torch.arange(1, hop + 1, dtype=torch.float32) / hop, persistent=False)

    @classmethod
    def from_config(cls, dim: int, hop: int, config: SourceFilterHeadConfig) -> SourceFilterHead:
        return cls(dim, hop, config.size, config.envelope_bands, config.voicing_bands,
                   f0_forcing_prob=config.f0_forcing_prob)

    @property
    def _controls_dim(self) -> int:
        return self.bands + self.voicing_bands

    def take_base_controls(self) -> None:
        """Read base controls beside the features (``[B, T, D + 1 + bands + voicing_bands]``, from
        :meth:`base_controls`) and predict a correction to them, zero at the start."""
        self.with_base = True
        with torch.no_grad():
            self.proj.weight.zero_()
            self.proj.bias.zero_()

    def base_controls(self, log_envelope: Tensor, voicing: Tensor, log_f0: Tensor) -> Tensor:
        """Controls as the head's projection writes them (F0 logit, log envelope, voicing
        logits) ``[B, T, 1 + bands + voicing_bands]`` for values on the analysis's scale."""
        lo, hi = math.log(self.f0_min), math.log(self.f0_max)
        share = ((log_f0.float() - lo) / (hi - lo)).clamp(1e-4, 1 - 1e-4)
        v = voicing.float().clamp(0.02, 0.98)
        return torch.cat([torch.logit(share)[..., None], log_envelope.float(), torch.log(v) - torch.log1p(-v)], dim=-1)

    def controls(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``[B, T, D]`` (with base controls beside, after :meth:`take_base_controls`) -> F0
        ``[B, T]`` (Hz) and filter controls ``[B, T, bands + voicing_bands]`` (natural-log
        envelope, voicing logits)."""
        if self.with_base:
            width = 1 + self.bands + self.voicing_bands
            out = self.proj(x[..., :-width]).float() + x[..., -width:].float()
        else:
            out = self.proj(x).float()
        return f0_from_logit(out[..., 0], self.f0_min, self.f0_max), out[..., 1:]

    def named_controls(self, x: Tensor) -> dict[str, Tensor]:
        """The controls by name: ``f0`` ``[B, T]`` (Hz), ``envelope`` ``[B, T, bands]`` (log
        amplitude), ``voicing`` ``[B, T, voicing_bands]`` (logits of the periodic share)."""
        f0, ctl = self.controls(x)
        return {"f0": f0, "envelope": ctl[..., :self.bands], "voicing": ctl[..., self.bands:]}

    @staticmethod
    def control_targets(analysis: Analysis) -> dict[str, Tensor]:
        """What each control should be, from the analysis of the input (and ``voiced``, where
        the F0 target holds)."""
        return {"f0": analysis.f0, "voiced": analysis.voiced, "envelope": analysis.log_envelope,
                "voicing": analysis.voicing}

    def forward_train(self, features: Tensor, wav: Tensor) -> HeadOutput:
        """Audio and the named controls, with targets from the input's (centred) analysis; in
        training mode the measured F0 drives the pulses of the voiced steps of a
        ``f0_forcing_prob`` share of the items."""
        f0, ctl = self.controls(features)
        targets = analyze(wav.detach(), self.analysis, causal=False)
        drive = f0
        if self.training and self.f0_forcing_prob > 0:
            forced = targets.voiced & (torch.rand(wav.shape[0], 1, device=wav.device) < self.f0_forcing_prob)
            drive = torch.where(forced, targets.f0, f0)
        audio, _ = self.synthesize(drive, ctl, self.init_state(features))
        controls = {"f0": f0, "envelope": ctl[..., :self.bands], "voicing": ctl[..., self.bands:]}
        return HeadOutput(audio.to(features.dtype), controls, self.control_targets(targets))

    def _filters(self, ctl: Tensor) -> Tensor:
        """Controls ``[B, T, C]`` -> minimum-phase spectra ``[2, B, T, bins]`` of the pulse and
        the noise filter (stacked: one FFT call for both, which matters when streaming)."""
        # Float32 throughout: FFTs take no bfloat16, and autocast would make these matmuls so.
        with torch.autocast(ctl.device.type, enabled=False):
            log_env = ctl[..., :self.bands].float().clamp(max=6.0) @ self.env_to_bins
            voicing = ctl[..., self.bands:].float() @ self.voicing_to_bins
        # log sqrt(sigmoid(v)) and log sqrt(1 - sigmoid(v)), computed stably.
        shares = 0.5 * F.logsigmoid(torch.stack([voicing, -voicing]))
        return minimum_phase(log_env + shares, self.size)

    def init_state(self, x: Tensor) -> Tensor:
        state = x.new_zeros(x.shape[0], 3 + self._controls_dim + self.size - self.hop, dtype=torch.float32)
        # Before the first step the filters are silent (the offline call's zero padding).
        state[:, 3:3 + self.bands] = -30.0
        return state

    def step(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        predicted, ctl = self.controls(x)
        out, new_state = self.synthesize(predicted, ctl, state)
        return out.to(x.dtype), new_state

    def synthesize(self, f0: Tensor, ctl: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """Pulses at ``f0 [B, T]`` (Hz, not differentiated) and noise through the filters of
        ``ctl [B, T, bands + voicing_bands]`` (as :meth:`controls` gives them), from ``state``
        -> float32 audio ``[B, 1, T * hop]`` and the next state. :meth:`step` without the
        network: controls set from outside (fitted to a recording, edited) render the same way."""
        h, c = self.hop, self._controls_dim
        if ctl.dim() != 3 or ctl.shape[-1] != c or f0.shape != ctl.shape[:2]:
            raise ValueError(f"expected f0 [B, T] and controls [B, T, {c}], got {tuple(f0.shape)} and {tuple(ctl.shape)}")
        b, t, _ = ctl.shape
        f0, ctl = f0.float().detach(), ctl.float()
        prev_f0 = torch.cat([state[:, 1:2], f0[:, :-1]], dim=1)
        prev_f0 = torch.where(prev_f0 > 0, prev_f0, f0)  # the very first step has no predecessor
        f0_n = (prev_f0[:, :, None] + (f0 - prev_f0)[:, :, None] * self.ramp).reshape(b, t * h)
        start, phase = accumulate_phase(f0_n, state[:, :1], self.sample_rate)
        pulses = band_limited_pulses(f0_n, start, self.sample_rate)  # [B, T * hop]
        # Each step filters the last `size` samples of excitation: the history and its own hop.
        tail = self.size - h
        position = state[:, 2:3].long()
        noise = self.noise[(position - tail + torch.arange(tail + t * h, device=ctl.device)) % self.TABLE]
        exc_all = torch.cat([state[:, 3 + c:], pulses], dim=1)
        exc_pulses = exc_all.unfold(1, self.size, h)  # [B, T, size]
        exc_noise = noise.unfold(1, self.size, h)
        spec = torch.fft.rfft(torch.stack([exc_pulses, exc_noise]))  # [2, B, T, bins]
        filters = self._filters(torch.cat([state[:, None, 3:3 + c], ctl], dim=1))  # [2, B, T + 1, bins]
        # Each step's excitation through its own filters and through the previous step's.
        both = torch.stack([(filters[:, :, 1:] * spec).sum(0), (filters[:, :, :-1] * spec).sum(0)])
        new, old = torch.fft.irfft(both, n=self.size)[..., tail:]
        out = (old + (new - old) * self.ramp).reshape(b, 1, t * h)
        new_state = torch.cat([
            phase, f0[:, -1:], (position + t * h).remainder(self.TABLE).float(),
            ctl[:, -1], exc_all[:, exc_all.shape[1] - tail:],
        ], dim=1)
        return out, new_state
