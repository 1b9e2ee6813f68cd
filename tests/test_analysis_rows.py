"""The benchmark rows around the analysis: ceiling, frame-rate ceiling, PCA floor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.systems.analysis import (
    AnalysisCeiling,
    AnalysisFloor,
    floor_bits_per_frame,
    floor_code,
    hold_frames,
)
from codec import metrics
from codec.analysis import AnalysisConfig, analyze
from codec.block_transform import BlockTransform
from codec.latents import SAMPLE_RATE
from tests.test_analysis import vowel


def _gliding(seconds: float = 1.6, seed: int = 0) -> np.ndarray:
    """Vowels at a few pitches one after another (what the coder is fitted and tested on)."""
    parts = [vowel(seconds / 4, f0=f0, noise=0.005, seed=seed + i) for i, f0 in enumerate((100, 130, 170, 120))]
    return np.concatenate(parts)


def test_ceiling_reproduces_a_vowel_and_the_frame_rate_costs() -> None:
    x = _gliding()
    full = AnalysisCeiling().process(x, SAMPLE_RATE)
    held = AnalysisCeiling(frame_rate=True).process(x, SAMPLE_RATE)
    assert full.audio.shape == x.shape
    mel_full = metrics.mel_distance(x, full.audio, SAMPLE_RATE)
    assert mel_full < 0.5 and mel_full < metrics.mel_distance(x, held.audio, SAMPLE_RATE)


def test_hold_frames_keeps_each_frames_last_step() -> None:
    a = analyze(torch.from_numpy(_gliding())[None, None])
    held = hold_frames(a)
    assert torch.allclose(held.log_envelope[0, 7::8], a.log_envelope[0, 7::8], atol=1e-5)
    assert torch.allclose(held.f0[0, 7::8], a.f0[0, 7::8], rtol=1e-4)


def test_block_transform_floor_codes_at_its_bitrate_and_round_trips(tmp_path) -> None:
    from safetensors.torch import load_file, save_file

    cfg = AnalysisConfig()
    train = [analyze(torch.from_numpy(_gliding(seed=s))[None, None]) for s in range(4)]
    block = BlockTransform(cfg.bands, cfg.voicing_bands)
    assert not block.fitted
    block.fit(train)
    assert block.fitted and block.size == 36
    assert floor_bits_per_frame(block) == pytest.approx(36 * np.log2(21))
    save_file(block.state_dict(), str(tmp_path / "floor.safetensors"))
    again = BlockTransform(cfg.bands, cfg.voicing_bands)
    again.load_state_dict(load_file(str(tmp_path / "floor.safetensors")))
    a = analyze(torch.from_numpy(_gliding(seed=9))[None, None])
    # Unquantized, the transform's inverse gives back what its components span.
    envelope, _, log_f0 = again.reconstruct(again.coefficients(a))
    assert float((envelope - a.log_envelope).abs().mean()) < 0.3
    coded = floor_code(again, a)
    assert coded.log_envelope.shape == a.log_envelope.shape
    assert float((coded.log_envelope - a.log_envelope).abs().mean()) < 0.5
    out = AnalysisFloor(transform=again).process(_gliding(seed=9), SAMPLE_RATE)
    assert out.bitrate_kbps == pytest.approx(floor_bits_per_frame(block) * 12.5 / 1000, rel=0.01)
    missing = AnalysisFloor(transform=tmp_path / "none.safetensors")
    assert "benchmarks.fit_floor" in missing.unavailable_reason()
