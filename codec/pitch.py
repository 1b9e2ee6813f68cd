"""Fundamental-frequency (F0) estimation in torch, batched: targets for the harmonic head.

A YIN estimator (cumulative mean normalised difference function) evaluated once per
decoder output step. It runs inside the training step under ``no_grad`` on whole
batches, so it is vectorised over items and steps and uses FFT correlations.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .latents import SAMPLE_RATE


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
    end of step ``t`` where a harmonic head's controls for that step apply, compared with
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
