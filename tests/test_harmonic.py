"""The pitch estimator, the harmonic decoder head and its pitch loss."""

from __future__ import annotations

import math

import pytest
import torch
from step_helpers import AdamStepper, WavBatch, assert_causal_and_streams

import codec
from codec.losses import LossConfig, ReconstructionLoss, codec_train_step, f0_loss
from codec.modules import HarmonicHead
from codec.pitch import PitchConfig, estimate_f0

SR = 24000


def harmonic_tone(f0: torch.Tensor, harmonics: int = 10) -> torch.Tensor:
    """A voiced-like signal ``[N]`` with per-sample F0 ``f0 [N]`` and 1/k harmonic amplitudes."""
    phase = 2 * math.pi * torch.cumsum(f0.double() / SR, 0)
    k = torch.arange(1, harmonics + 1, dtype=torch.float64)
    return (0.3 * (torch.sin(phase[:, None] * k) / k).sum(-1) / 2).float()


def spectrum(x: torch.Tensor) -> torch.Tensor:
    """Hann-windowed magnitude spectrum of ``x [N]`` (1 s long: bin i is i Hz)."""
    return torch.fft.rfft(x.double() * torch.hann_window(x.numel(), dtype=torch.float64)).abs()


# ----------------------------------------------------------------------------- pitch estimation
@pytest.mark.parametrize("hz", [90.0, 147.0, 260.0, 410.0])
def test_estimate_f0_finds_steady_pitch(hz: float) -> None:
    x = harmonic_tone(torch.full((SR,), hz))
    f0, voiced = estimate_f0(x[None, None], hop=240)
    assert f0.shape == voiced.shape == (1, 100)
    inner = slice(5, 95)  # away from the zero padding at both ends
    assert bool(voiced[0, inner].all())
    cents = 1200 * torch.log2(f0[0, inner] / hz).abs()
    assert float(cents.max()) < 10.0


def test_estimate_f0_follows_a_glide_and_marks_silence_and_noise_unvoiced() -> None:
    glide = torch.linspace(120.0, 240.0, SR)
    x = torch.cat([harmonic_tone(glide), torch.zeros(SR // 2), 0.1 * torch.randn(SR // 2)])
    f0, voiced = estimate_f0(x[None, None], hop=240)
    # Step t is analysed around the end of the step, sample (t + 1) * 240.
    expected = glide[torch.arange(1, 101) * 240 - 1]
    inner = slice(5, 95)
    assert bool(voiced[0, inner].all())
    assert float((1200 * torch.log2(f0[0, inner] / expected[inner])).abs().max()) < 15.0
    assert not bool(voiced[0, 105:145].any())  # silence
    assert float(voiced[0, 155:195].float().mean()) < 0.1  # white noise


def test_estimate_f0_batches_items_independently_and_checks_input() -> None:
    a = harmonic_tone(torch.full((SR // 2,), 110.0))
    b = harmonic_tone(torch.full((SR // 2,), 330.0))
    f0, voiced = estimate_f0(torch.stack([a, b])[:, None], hop=240)
    alone, _ = estimate_f0(b[None, None], hop=240)
    torch.testing.assert_close(f0[1], alone[0])
    assert abs(float(f0[0, 20]) - 110.0) < 1.0 and abs(float(f0[1, 20]) - 330.0) < 2.0
    with pytest.raises(ValueError, match=r"\[B, 1, N\]"):
        estimate_f0(a[None], hop=240)
    with pytest.raises(ValueError, match="multiple of the hop"):
        estimate_f0(a[None, None, :1000], hop=240)
    # The search range is a setting: below 300 Hz, a 330 Hz tone reads as its subharmonic.
    low, _ = estimate_f0(b[None, None], hop=240, config=PitchConfig(f0_max=300.0))
    assert float((low[0, 5:45] - 165.0).abs().max()) < 2.0


# ----------------------------------------------------------------------------- harmonic head
def constant_head(f0: float, amps: list[float], harmonics: int = 8, dim: int = 4) -> HarmonicHead:
    """A head whose controls ignore the input: F0 ``f0`` and the given harmonic amplitudes."""
    head = HarmonicHead(dim, hop=240, size=960, harmonics=harmonics)
    with torch.no_grad():
        head.proj.weight.zero_()
        head.residual.proj.weight.zero_()
        head.residual.proj.bias.fill_(-30.0)  # residual magnitudes exp(-8): silent
        span = head.log_f0_max - head.log_f0_min
        head.proj.bias[0] = torch.logit(torch.tensor((math.log(f0) - head.log_f0_min) / span))
        for k, a in enumerate(amps):
            # Inverse of 0.2 * sigmoid(x) ** ln(10).
            head.proj.bias[1 + k] = torch.logit(torch.tensor((max(a, 1e-6) / 0.2) ** (1 / math.log(10.0))))
    return head


def test_harmonic_head_plays_the_predicted_harmonics() -> None:
    head = constant_head(200.0, [0.1, 0.0, 0.05] + [0.0] * 5)
    with torch.no_grad():
        out = head(torch.zeros(1, 110, 4))[0, 0]
    assert out.shape == (110 * 240,)
    steady = out[2400:2400 + SR]
    mag = spectrum(steady)
    assert int(mag.argmax()) == 200
    assert float(mag[600] / mag[200]) == pytest.approx(0.5, rel=0.05)
    assert float(mag[400]) < 1e-3 * float(mag[200])
    # Amplitudes as asked: sines of 0.1 and 0.05 have an RMS of sqrt((0.1^2 + 0.05^2) / 2).
    assert float(steady.pow(2).mean().sqrt()) == pytest.approx(math.sqrt(0.0125 / 2), rel=0.01)
    torch.testing.assert_close(head.f0(torch.zeros(1, 3, 4)), torch.full((1, 3), 200.0), rtol=1e-4, atol=1e-3)


def test_harmonic_head_mutes_harmonics_above_nyquist() -> None:
    # F0 500 Hz: harmonics 24..48 would sit at or above 12 kHz and fold back if played.
    head = constant_head(500.0, [0.02] * 48, harmonics=48)
    with torch.no_grad():
        steady = head(torch.zeros(1, 110, 4))[0, 0, 2400:2400 + SR]
    mag = spectrum(steady)
    freqs = torch.arange(mag.numel())
    on_grid = (freqs % 500 <= 2) | (freqs % 500 >= 498)
    assert float(mag[~on_grid].max()) < 1e-3 * float(mag.max())
    assert float(mag[11990:].max()) < 1e-3 * float(mag.max())


def test_harmonic_head_is_causal_and_streams_exactly() -> None:
    torch.manual_seed(0)
    head = HarmonicHead(16, hop=240, size=960, harmonics=12)
    with torch.no_grad():
        head.proj.bias[1:].fill_(0.0)  # audible harmonics
    assert_causal_and_streams(head, torch.randn(2, 23, 16), hop=240, atol=1e-5)


def test_harmonic_head_rejects_no_harmonics() -> None:
    with pytest.raises(ValueError, match="harmonics"):
        HarmonicHead(8, hop=240, size=960, harmonics=0)
    with pytest.raises(ValueError, match="harmonics"):
        codec.CodecConfig.tiny(decoder_head="harmonic", harmonics=0)
    with pytest.raises(ValueError, match="istft_size"):
        codec.CodecConfig.tiny(decoder_head="harmonic", istft_size=1000)


# ----------------------------------------------------------------------------- the codec with it
@pytest.fixture(scope="module")
def harmonic_codec() -> codec.HybridCodec:
    torch.manual_seed(0)
    m = codec.HybridCodec(codec.CodecConfig.tiny(decoder_head="harmonic", harmonics=16)).eval()
    with torch.no_grad():
        m.decoder.out.proj.bias[1:].fill_(0.0)  # audible harmonics, so that the checks below see them
    return m


def test_harmonic_codec_streams_like_offline_traced_too(harmonic_codec: codec.HybridCodec) -> None:
    m = harmonic_codec
    x = harmonic_tone(torch.linspace(100, 200, 1920 * 9))[None, None]
    latents = m.encode(x, SR)
    offline = m.decode(latents)
    assert float(offline.abs().max()) > 0.01
    for trace_frames in (None, 1):
        with m.streaming(1, trace_frames=trace_frames):
            out = torch.cat([m.decode_chunk(latents.frames(i, i + 1)) for i in range(9)], dim=-1)
        torch.testing.assert_close(out[..., : offline.shape[-1]], offline, atol=1e-4, rtol=1e-4)


def test_harmonic_codec_int8_keeps_the_head_float(harmonic_codec: codec.HybridCodec) -> None:
    m = harmonic_codec
    x = harmonic_tone(torch.full((1920 * 4,), 150.0))[None, None]
    latents = m.encode(x, SR)
    ref = m.decode(latents)
    m.use_int8()
    try:
        assert not m.decoder.out.__dict__["_int8"] and not m.decoder.out.residual.proj.__dict__["_int8"]
        assert m.decoder.inp.__dict__["_int8"]
        out = m.decode(latents)
    finally:
        m.use_int8(False)
    # The oscillators integrate F0, so small F0 differences move their phase: compare spectra.
    def mags(a: torch.Tensor) -> torch.Tensor:
        return torch.stft(a[0, 0], 1024, 256, window=torch.hann_window(1024), return_complex=True).abs()

    assert float((mags(out) - mags(ref)).abs().mean() / mags(ref).mean()) < 0.1


def test_f0_loss_scores_octaves_on_voiced_steps_only() -> None:
    x = torch.cat([harmonic_tone(torch.full((SR // 2,), 200.0)), torch.zeros(SR // 2)])[None, None]
    measured, voiced = estimate_f0(x, hop=240)
    predicted = torch.full((1, 100), 400.0, requires_grad=True)
    loss = f0_loss(predicted, measured, voiced)
    assert float(loss.detach()) == pytest.approx(1.0, abs=0.01)  # one octave off where voiced
    loss.backward()
    assert float(predicted.grad[0, 60:].abs().sum()) == 0.0  # silence: no pitch target
    unvoiced = torch.zeros(1, 10, dtype=torch.bool)
    silent = f0_loss(torch.full((1, 10), 300.0, requires_grad=True), torch.full((1, 10), 100.0), unvoiced)
    assert float(silent.detach()) == 0.0


def test_training_steps_teach_the_head_its_pitch() -> None:
    torch.manual_seed(0)
    m = codec.HybridCodec(codec.CodecConfig.tiny(decoder_head="harmonic", harmonics=8)).train()
    cfg = LossConfig(mel=1.0, mel_windows=(256, 1024), mel_bins=(40, 80), waveform=0.0, stft=0.0,
                     adversarial=0.0, distill=0.0, f0=10.0)
    recon = ReconstructionLoss(cfg)
    wav = torch.stack([harmonic_tone(torch.full((1920 * 3,), hz)) for hz in (110.0, 220.0)])[:, None]
    opt = AdamStepper(m.parameters())
    logs = [codec_train_step(m, None, None, recon, cfg, WavBatch(wav), step, opt) for step in range(40)]
    assert "f0" in logs[0]
    assert logs[-1]["f0"] < 0.5 * logs[0]["f0"]
    with torch.no_grad():
        out = m.eval()(wav)
    assert out.f0 is not None and out.f0.shape == (2, 3 * 8)
    measured, voiced = out.pitch
    assert measured.shape == voiced.shape == (2, 3 * 8) and bool(voiced[:, 2:-2].all())


def test_training_pass_drives_the_oscillators_with_the_measured_pitch() -> None:
    torch.manual_seed(0)
    wav = harmonic_tone(torch.full((1920 * 13,), 150.0))[None, None]

    def share_on_150hz_harmonics(forcing: float) -> float:
        m = codec.HybridCodec(codec.CodecConfig.tiny(decoder_head="harmonic", harmonics=16,
                                                     f0_forcing_prob=forcing)).train()
        with torch.no_grad():
            m.decoder.out.proj.bias[1:].fill_(0.0)
            m.decoder.out.residual.proj.weight.zero_()
            m.decoder.out.residual.proj.bias.fill_(-30.0)
            out = m(wav)
        mag = spectrum(out.audio[0, 0, 960:960 + SR]).pow(2)
        near = torch.zeros_like(mag, dtype=torch.bool)
        for k in range(1, 80):
            near[150 * k - 3:150 * k + 4] = True
        return float(mag[near].sum() / mag.sum())

    assert share_on_150hz_harmonics(1.0) > 0.95  # the measured 150 Hz drives them
    assert share_on_150hz_harmonics(0.0) < 0.5  # the untrained prediction (~170 Hz) does
    with pytest.raises(ValueError, match="f0_forcing_prob"):
        codec.CodecConfig.tiny(decoder_head="harmonic", f0_forcing_prob=1.5)
