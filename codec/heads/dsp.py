"""Signal processing of the output heads: mel-spaced band interpolation, minimum-phase
filters, band-limited pulse trains and phase accumulation. (What the heads' controls are
measured with, the analysis front-end, is :mod:`codec.analysis`.)"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from codec.analysis import mel


def band_matrix(bands: int, bins: int, sample_rate: int) -> Tensor:
    """``[bands, bins]``: linear interpolation, on the mel scale, from ``bands`` control
    points (spread evenly in mel from 0 Hz to Nyquist) to the FFT bins."""
    freqs = mel(torch.linspace(0.0, sample_rate / 2, bins))
    centers = torch.linspace(0.0, float(mel(torch.tensor(sample_rate / 2.0))), bands)
    width = centers[1] - centers[0]
    return (1.0 - (freqs[None, :] - centers[:, None]).abs() / width).clamp(min=0.0)


def minimum_phase(log_mag: Tensor, n_fft: int) -> Tensor:
    """Complex spectrum ``[..., n_fft // 2 + 1]`` of the minimum-phase filter with natural-log
    magnitude ``log_mag`` (same shape), by folding its real cepstrum. Its impulse response
    is causal and front-loaded, so filtering with it adds no latency."""
    cepstrum = torch.fft.irfft(log_mag, n=n_fft)
    fold = torch.zeros(n_fft, device=log_mag.device, dtype=cepstrum.dtype)
    fold[0] = 1.0
    fold[1:(n_fft + 1) // 2] = 2.0
    if n_fft % 2 == 0:
        fold[n_fft // 2] = 1.0
    log_spec = torch.fft.rfft(cepstrum * fold, n=n_fft)
    # exp of the complex log-spectrum, as magnitude and angle: a complex exp is ~6x slower on CPUs.
    return torch.polar(torch.exp(log_spec.real), log_spec.imag)


def f0_from_logit(logit: Tensor, f0_min: float, f0_max: float) -> Tensor:
    """An unbounded prediction -> F0 in Hz between ``f0_min`` and ``f0_max``, even in log frequency."""
    lo, hi = math.log(f0_min), math.log(f0_max)
    return torch.exp(lo + (hi - lo) * torch.sigmoid(logit))


def accumulate_phase(f0_n: Tensor, phase: Tensor, sample_rate: int) -> tuple[Tensor, Tensor]:
    """Phase in cycles of an oscillator at ``f0_n [B, N]`` Hz per sample, from ``phase [B, 1]``.

    Returns the phase at each sample ``[B, N]`` (float32, the first one ``phase``) and the
    phase after the last one ``[B, 1]``. Accumulated in float64 and wrapped to [0, 1), so
    that long inputs keep their precision.
    """
    cycles = phase.double() + (f0_n.double() / sample_rate).cumsum(dim=1)
    cycles = cycles - torch.floor(cycles)
    start = torch.cat([phase.double(), cycles[:, :-1]], dim=1).float()
    return start, cycles[:, -1:].float()


def band_limited_pulses(f0_n: Tensor, phase: Tensor, sample_rate: int) -> Tensor:
    """Unit-power band-limited pulse train at phases ``phase [B, N]`` (cycles) and F0
    ``f0_n [B, N]``: ``sum_{k<=K} cos(2 pi k phi)`` scaled by ``sqrt(2 / K)``, ``K`` the
    harmonics below Nyquist at each sample's F0."""
    k = torch.floor(sample_rate / 2 / f0_n).clamp(min=1.0)
    half = math.pi * phase  # theta / 2
    den = torch.sin(half)
    num = torch.sin((2 * k + 1) * half)
    # Dirichlet kernel (sum of cosines), with its limit K + 1/2 where theta -> 0.
    safe = den.abs() > 1e-4
    dirichlet = torch.where(safe, num / torch.where(safe, 2 * den, torch.ones_like(den)), k + 0.5)
    return (dirichlet - 0.5) * torch.sqrt(2.0 / k)
