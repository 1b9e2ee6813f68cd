"""Checking and normalising waveform tensors handed to the codec."""

from __future__ import annotations

import torch
from torch import Tensor

from .audio_io import resample
from .latents import SAMPLE_RATE


def prepare_waveform(wav: Tensor, sample_rate: int, target_rate: int = SAMPLE_RATE) -> Tensor:
    """Validate ``wav`` and bring it to ``[B, 1, N]`` float32 at ``target_rate``.

    Accepts ``[N]``, ``[C, N]`` or ``[B, C, N]``; channels are averaged (down-mix), other
    rates resampled. Raises ``TypeError`` / ``ValueError`` naming the problem for a
    non-tensor, a non-float dtype, a wrong rank, an empty signal or non-finite samples.
    """
    if not isinstance(wav, Tensor):
        raise TypeError(f"wav must be a torch.Tensor, got {type(wav).__name__}")
    if not wav.is_floating_point():
        raise TypeError(f"wav must be a floating-point tensor in [-1, 1], got dtype {wav.dtype}")
    if not isinstance(sample_rate, int) or isinstance(sample_rate, bool) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive int, got {sample_rate!r}")
    if wav.dim() == 1:
        wav = wav[None, None]
    elif wav.dim() == 2:
        wav = wav[None]
    elif wav.dim() != 3:
        raise ValueError(f"wav must be [N], [C, N] or [B, C, N], got shape {tuple(wav.shape)}")
    if wav.shape[0] == 0 or wav.shape[1] == 0 or wav.shape[2] == 0:
        raise ValueError(f"wav is empty (shape {tuple(wav.shape)})")
    if not torch.isfinite(wav).all():
        bad = int((~torch.isfinite(wav)).sum())
        raise ValueError(f"wav contains {bad} NaN or Inf sample(s)")
    wav = wav.to(torch.float32)
    if wav.shape[1] > 1:
        wav = wav.mean(dim=1, keepdim=True)
    if sample_rate != target_rate:
        # The same resampler as the file readers, so a file and its samples give the same codes.
        wav = torch.from_numpy(resample(wav.cpu().numpy(), sample_rate, target_rate)).to(wav.device)
    return wav
