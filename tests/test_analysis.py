"""The DSP analysis front-end (codec.analysis): what it measures, causality, streaming."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal
import torch

from codec.analysis import (
    Analysis,
    AnalysisConfig,
    Analyzer,
    analyze,
    band_weights,
    feature_size,
    window_starts,
)
from codec.heads import SourceFilterHead
from codec.heads.dsp import accumulate_phase, band_limited_pulses
from codec.latents import FRAME_SIZE, SAMPLE_RATE
from codec.nn.streaming import set_streaming

FORMANTS = ((700.0, 90.0), (1220.0, 110.0), (2600.0, 160.0))


def _all_pole(formants) -> np.ndarray:
    """Denominator of a cascade of two-pole resonators (at 24 kHz)."""
    a = np.array([1.0])
    for freq, bw in formants:
        r = math.exp(-math.pi * bw / SAMPLE_RATE)
        a = np.convolve(a, [1.0, -2 * r * math.cos(2 * math.pi * freq / SAMPLE_RATE), r * r])
    return a


def _pulses(f0: np.ndarray) -> np.ndarray:
    """The head's unit-power band-limited pulse train at per-sample ``f0`` (Hz)."""
    f0_t = torch.from_numpy(f0.astype(np.float32))[None]
    start, _ = accumulate_phase(f0_t, torch.zeros(1, 1), SAMPLE_RATE)
    return band_limited_pulses(f0_t, start, SAMPLE_RATE)[0].numpy()


def vowel(seconds: float = 1.2, f0: float = 120.0, noise: float = 0.01, seed: int = 0) -> np.ndarray:
    """A steady vowel: pulses at ``f0`` through three formants, plus a little white noise, with
    the filter's gain normalised to 1 at DC (so its envelope is the filter's response)."""
    n = int(seconds * SAMPLE_RATE) // FRAME_SIZE * FRAME_SIZE
    a = _all_pole(FORMANTS)
    x = scipy.signal.lfilter([a.sum()], a, _pulses(np.full(n, f0)))
    rng = np.random.default_rng(seed)
    return (0.05 * x + noise * rng.standard_normal(n)).astype(np.float32)


def true_log_envelope(cfg: AnalysisConfig, gain: float = 0.05, noise: float = 0.01) -> np.ndarray:
    """Natural-log amplitude of the vowel's envelope at the analysis control points: the
    filter's power response plus the white noise's flat power."""
    a = _all_pole(FORMANTS)
    freqs = np.linspace(0, SAMPLE_RATE / 2, 4097)
    _, h = scipy.signal.freqz([a.sum()], a, worN=freqs, fs=SAMPLE_RATE)
    weights = band_weights(cfg.bands, torch.from_numpy(freqs)).numpy()
    return 0.5 * np.log(weights @ ((np.abs(h) * gain) ** 2 + noise ** 2))


def test_f0_envelope_and_voicing_of_a_known_vowel() -> None:
    cfg = AnalysisConfig()
    a = analyze(torch.from_numpy(vowel())[None, None], cfg, causal=False)
    steady = slice(10, -10)
    assert bool(a.voiced[0, steady].all())
    assert float((a.f0[0, steady] / 120.0 - 1).abs().max()) < 0.01
    # Envelope error in dB over the control points from above the F0 (below it a pulse train
    # has no energy to measure) to 5 kHz, the formant region.
    centres = 700.0 * (10 ** (np.linspace(0, 2595 * math.log10(1 + 12000 / 700), cfg.bands) / 2595) - 1)
    low = (centres > 150) & (centres < 5000)
    measured = a.log_envelope[0, steady].mean(0).numpy()
    error_db = 20 / math.log(10) * np.abs(measured - true_log_envelope(cfg))[low]
    assert error_db.mean() < 2.0 and error_db.max() < 6.0
    # The pulses dominate the low bands; the noise floor the top ones.
    voicing = a.voicing[0, steady].mean(0)
    assert float(voicing[:3].min()) > 0.9
    assert float(voicing[-1]) < 0.5


def test_white_noise_is_unvoiced_at_envelope_one() -> None:
    """On the head's scale, unit-variance white noise has log envelope 0 at every point."""
    x = torch.from_numpy(np.random.default_rng(1).standard_normal(FRAME_SIZE * 10).astype(np.float32) * 0.1)
    a = analyze(x[None, None], causal=False)
    inner = a.log_envelope[0, 5:-5, 1:-1]
    assert abs(float(inner.mean()) - math.log(0.1)) < 0.1
    assert float(a.voiced[0, 5:-5].float().mean()) < 0.1
    assert float(a.voicing[0, 5:-5].mean()) < 0.65


def test_causal_windows_stay_inside_their_frame() -> None:
    cfg = AnalysisConfig()
    starts = window_starts(80, cfg.window, causal=True)
    steps = torch.arange(80)
    frame_end = (steps // 8 + 1) * FRAME_SIZE
    assert bool((starts + cfg.window <= frame_end).all())
    centred = window_starts(80, cfg.window, causal=False)
    assert bool((centred == (steps + 1) * 240 - cfg.window // 2).all())


def test_causal_analysis_ignores_the_future_and_streams_like_offline() -> None:
    x = torch.from_numpy(vowel(1.6))[None, None]
    offline = analyze(x)
    later = x.clone()
    later[..., 4 * FRAME_SIZE:] = torch.randn_like(later[..., 4 * FRAME_SIZE:])
    changed = analyze(later)
    assert torch.equal(offline.log_envelope[:, :32], changed.log_envelope[:, :32])
    assert torch.equal(offline.f0[:, :32], changed.f0[:, :32])
    analyzer = Analyzer()
    set_streaming(analyzer, True)
    chunks = [analyzer(x[..., i:i + FRAME_SIZE]) for i in range(0, x.shape[-1], FRAME_SIZE)]
    for name in ("log_envelope", "voicing", "f0", "voiced", "aperiodicity", "energy"):
        streamed = torch.cat([getattr(c, name) for c in chunks], dim=1)
        torch.testing.assert_close(streamed.float(), getattr(offline, name).float(), atol=1e-4, rtol=0)


def test_packing_round_trips_and_features_have_their_width() -> None:
    cfg = AnalysisConfig()
    a = analyze(torch.from_numpy(vowel(0.4))[None, None], cfg)
    b = Analysis.unpack(a.packed(), cfg.bands, cfg.voicing_bands)
    for name in ("log_envelope", "voicing", "f0", "voiced", "aperiodicity", "energy"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert a.features().shape == (1, a.f0.shape[1], feature_size(cfg))


def test_head_driven_by_the_analysis_reproduces_a_vowel_sequence() -> None:
    """The analysis ceiling on a signal with known parameters: a gliding vowel with syllable-rate
    amplitude changes, rendered by the source-filter head from its own analysis."""
    from codec import metrics

    n = FRAME_SIZE * 20
    t = np.arange(n) / SAMPLE_RATE
    f0 = 110 + 30 * np.sin(2 * math.pi * 1.5 * t)
    a = _all_pole(FORMANTS)
    x = scipy.signal.lfilter([a.sum()], a, _pulses(f0)) * (0.3 + 0.7 * np.abs(np.sin(2 * math.pi * 2.5 * t)))
    x = (0.05 * x).astype(np.float32)
    analysis = analyze(torch.from_numpy(x)[None, None], causal=False)
    head = SourceFilterHead(8, 240, 960)
    v = analysis.voicing.clamp(0.02, 0.98)
    controls = torch.cat([analysis.log_envelope, torch.log(v) - torch.log1p(-v)], dim=-1)
    y, _ = head.synthesize(analysis.f0, controls, head.init_state(controls))
    assert metrics.stoi(x, y[0, 0].numpy(), SAMPLE_RATE) > 0.9


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"expected audio \[B, 1, N\]"):
        analyze(torch.zeros(240))
    with pytest.raises(ValueError, match="multiple of the 240-sample step"):
        analyze(torch.zeros(1, 1, 1000))
