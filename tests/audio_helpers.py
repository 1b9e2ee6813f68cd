"""Synthetic test audio shared by test modules that score or process speech-like signals."""

from __future__ import annotations

import numpy as np


def speechlike(seconds: float, seed: int = 0, sr: int = 16000, f0: float = 120.0,
               vibrato: float | None = None) -> np.ndarray:
    """Voiced pulse train with moving pitch (``f0`` plus or minus ``vibrato`` Hz, by default a
    quarter of ``f0``), formant modulation and a syllabic envelope, float32 ``[N]``: a cheap
    stand-in for speech that the metrics and codecs treat as speech."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    depth = 0.25 * f0 if vibrato is None else vibrato
    pitch = f0 + depth * np.sin(2 * np.pi * 1.5 * t + rng.uniform(0, 6))
    phase = np.cumsum(2 * np.pi * pitch / sr)
    source = sum(np.sin(k * phase) / k for k in range(1, 25))
    formants = sum(0.2 * np.sin(2 * np.pi * f * t) for f in (500, 1500, 2500))
    envelope = np.clip(np.sin(2 * np.pi * 3.0 * t), 0, None) ** 0.5
    x = source * (1 + formants) * envelope + 0.003 * rng.standard_normal(n)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)
