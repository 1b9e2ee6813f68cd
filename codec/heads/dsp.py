"""Signal processing of the output heads: pitch estimation, mel-spaced band interpolation,
minimum-phase filters, band-limited pulse trains and phase accumulation.

:func:`estimate_f0` is a YIN estimator (cumulative mean normalised difference function)
evaluated once per decoder output step. It runs inside the training step under
``no_grad`` on whole batches, so it is vectorised over items and steps and uses FFT
correlations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from codec.latents import SAMPLE_RATE


@dataclass(frozen=True)
class PitchConfig:
    """Search range and decisions of :func:`estimate_f0`.

    ``threshold``: the largest normalised difference (YIN's aperiodicity) of a voiced
    frame. ``silence_db``: frames this far below the loudest frame of their item are
    unvoiced whatever their periodicity (low-level noise is often periodic enough).
    """

    f0_min: float = 55.0
    f0_max: float = 550.0
    window: int = 480
    threshold: float = 0.2
    silence_db: float = 45.0


@torch.no_grad()
def estimate_f0(wav: Tensor, hop: int, config: PitchConfig = PitchConfig(),
                sample_rate: int = SAMPLE_RATE) -> tuple[Tensor, Tensor]:
    """F0 per ``hop`` samples of ``wav`` ``[B, 1, N]`` (N a multiple of ``hop``).

    Step ``t`` is analysed on a ``config.window`` centred on sample ``(t + 1) * hop``, the
    end of step ``t`` where a source-filter head's controls for that step apply, compared with
    its shifts by up to the longest period (the signal is zero-padded at both ends).

    Returns:
        ``f0 [B, T]`` in Hz (meaningful where voiced) and ``voiced [B, T]`` bool,
        ``T = N // hop``.
    """
    if wav.dim() != 3 or wav.shape[1] != 1:
        raise ValueError(f"expected audio [B, 1, N], got {tuple(wav.shape)}")
    if wav.shape[-1] % hop:
        raise ValueError(f"audio length {wav.shape[-1]} is not a multiple of the hop {hop}")
    x = wav[:, 0].float()
    b, n = x.shape
    steps = n // hop
    lag_min = max(2, int(sample_rate / config.f0_max))
    lag_max = int(sample_rate / config.f0_min) + 1
    w = config.window
    span = w + lag_max
    # Frame t starts half a window before the end of step t.
    padded = F.pad(x, (w // 2, span))
    frames = padded[:, hop:].unfold(1, span, hop)[:, :steps]  # [B, T, span]
    size = 1 << (span + w - 1).bit_length()
    head = frames[..., :w]
    corr = torch.fft.irfft(torch.fft.rfft(frames, size) * torch.fft.rfft(head, size).conj(), size)
    corr = corr[..., : lag_max + 1]  # sum_j head[j] * frames[j + lag]
    energy = F.pad(frames.square().cumsum(-1), (1, 0))  # prefix sums
    lags = torch.arange(lag_max + 1, device=x.device)
    e_lag = energy[..., lags + w] - energy[..., lags]  # sum of frames[lag : lag + w]^2
    diff = (energy[..., w:w + 1] + e_lag - 2.0 * corr).clamp_min(0.0)
    diff[..., 0] = 0.0
    running = diff[..., 1:].cumsum(-1) / lags[1:]
    cmnd = torch.ones_like(diff)
    cmnd[..., 1:] = diff[..., 1:] / running.clamp_min(1e-12)
    # First local minimum under the threshold within the search range, else the global one.
    inner = cmnd[..., lag_min:lag_max]
    left = cmnd[..., lag_min - 1:lag_max - 1]
    right = cmnd[..., lag_min + 1:lag_max + 1]
    is_min = (inner < left) & (inner <= right) & (inner < config.threshold)
    first = torch.where(is_min.any(-1), is_min.float().argmax(-1), inner.argmin(-1))
    best = first + lag_min
    value = cmnd.gather(-1, best[..., None])[..., 0]
    # Parabolic refinement of the lag between its neighbours.
    y0 = cmnd.gather(-1, (best - 1)[..., None])[..., 0]
    y2 = cmnd.gather(-1, (best + 1).clamp_max(lag_max)[..., None])[..., 0]
    denom = y0 - 2 * value + y2
    offset = torch.where(denom.abs() > 1e-9, 0.5 * (y0 - y2) / denom, torch.zeros_like(denom)).clamp(-0.5, 0.5)
    f0 = sample_rate / (best.float() + offset)
    level = 10 * torch.log10(head.square().mean(-1) + 1e-10)
    loud = level > level.amax(-1, keepdim=True) - config.silence_db
    voiced = (value < config.threshold) & loud & (level > -70.0)
    return f0, voiced


def mel(hz: Tensor) -> Tensor:
    """Hz -> mel (the HTK formula)."""
    return 2595.0 * torch.log10(1.0 + hz / 700.0)


def mel_centers_hz(bands: int, sample_rate: int) -> Tensor:
    """``[bands]`` centre frequencies (Hz) spread evenly in mel from 0 Hz to Nyquist."""
    centers = torch.linspace(0.0, float(mel(torch.tensor(sample_rate / 2.0))), bands)
    return 700.0 * (10.0 ** (centers / 2595.0) - 1.0)


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
