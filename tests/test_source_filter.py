"""The source-filter decoder head, its minimum-phase filters, and training its controls."""

from __future__ import annotations

import math

import pytest
import torch
from step_helpers import AdamStepper, WavBatch, assert_causal_and_streams

import codec
from codec.analysis import analyze
from codec.heads import SourceFilterHead
from codec.heads.dsp import minimum_phase
from codec.nn.int8 import is_int8
from codec.training.losses import LossConfig, ReconstructionLoss, codec_train_step

SR = 24000
BANDS, VBANDS = 16, 4


def spectrum(x: torch.Tensor) -> torch.Tensor:
    """Hann-windowed magnitude spectrum of ``x [N]`` (1 s long: bin i is i Hz)."""
    return torch.fft.rfft(x.double() * torch.hann_window(x.numel(), dtype=torch.float64)).abs()


def constant_head(hz: float, voicing: float, envelope: torch.Tensor | float = -3.0) -> SourceFilterHead:
    """A head whose every step asks for F0 ``hz``, voicing logit ``voicing`` (all bands) and
    log envelope ``envelope`` (``[BANDS]`` or one value), whatever its input."""
    head = SourceFilterHead(4, hop=240, size=960, bands=BANDS, voicing_bands=VBANDS)
    s = (math.log(hz) - math.log(head.f0_min)) / (math.log(head.f0_max) - math.log(head.f0_min))
    with torch.no_grad():
        head.proj.weight.zero_()
        head.proj.bias[0] = math.log(s / (1 - s))
        head.proj.bias[1:1 + BANDS] = torch.as_tensor(envelope, dtype=torch.float32).expand(BANDS)
        head.proj.bias[1 + BANDS:] = voicing
    return head


def test_minimum_phase_filter_has_the_asked_magnitude_and_a_causal_front_loaded_response() -> None:
    n = 960
    freqs = torch.linspace(0, 1, n // 2 + 1)
    log_mag = -3.0 * freqs + 0.8 * torch.exp(-((freqs - 0.1) / 0.03) ** 2)  # tilt and one formant
    spec = minimum_phase(log_mag[None], n)[0]
    torch.testing.assert_close(spec.abs().log(), log_mag, atol=1e-3, rtol=0)
    response = torch.fft.irfft(spec, n=n)
    energy = response.pow(2)
    assert float(energy[:240].sum() / energy.sum()) > 0.99  # no energy before 0 (wrapped to the end)


def test_voiced_head_plays_every_harmonic_of_its_f0() -> None:
    head = constant_head(200.0, voicing=12.0)
    with torch.no_grad():
        out = head(torch.zeros(1, 110, 4))[0, 0]
    assert out.shape == (110 * 240,)
    steady = out[2400:2400 + SR]
    mag = spectrum(steady)
    freqs = torch.arange(mag.numel())
    on_grid = (freqs % 200 <= 3) | (freqs % 200 >= 197)
    assert float(mag[~on_grid].pow(2).sum() / mag.pow(2).sum()) < 1e-3
    # Flat envelope: harmonics near and far from the fundamental alike, none above Nyquist.
    assert float(mag[4000] / mag[200]) == pytest.approx(1.0, rel=0.1)
    assert float(mag[11990:].max()) < 1e-2 * float(mag[200])
    # Unit-power excitation times e^-3.
    assert float(steady.pow(2).mean().sqrt()) == pytest.approx(math.exp(-3.0), rel=0.05)
    a = analyze(out[None, None], causal=False)
    assert bool(a.voiced[0, 10:100].all())
    assert float((1200 * torch.log2(a.f0[0, 10:100] / 200.0)).abs().max()) < 5.0
    # On the analysis's scale the head's envelope is what it was asked for (log e^-3).
    assert float(a.log_envelope[0, 10:100, 2:-2].mean()) == pytest.approx(-3.0, abs=0.15)


def test_unvoiced_head_makes_noise_shaped_by_the_envelope() -> None:
    envelope = torch.where(torch.arange(BANDS) < BANDS // 2, -2.0, -7.0)  # loud low half, quiet top
    head = constant_head(200.0, voicing=-12.0, envelope=envelope)
    with torch.no_grad():
        out = head(torch.zeros(1, 110, 4))[0, 0]
    assert float(analyze(out[None, None], causal=False).voiced.float().mean()) < 0.05
    mag = spectrum(out[2400:2400 + SR]).pow(2)
    assert float(mag[200:1000].mean() / mag[8000:11000].mean()) > 100.0  # 20 dB and more
    # Noise read at the absolute sample position: a later call goes on, it does not repeat.
    assert not torch.allclose(out[2400:4800], out[4800:7200])


def test_source_filter_head_is_causal_and_streams_exactly() -> None:
    torch.manual_seed(0)
    head = SourceFilterHead(16, hop=240, size=960, bands=BANDS, voicing_bands=VBANDS)
    with torch.no_grad():
        head.proj.bias[1:1 + BANDS].fill_(-2.0)
    assert_causal_and_streams(head, torch.randn(2, 23, 16), hop=240, atol=1e-4)


def test_source_filter_head_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="two hops"):
        SourceFilterHead(8, hop=240, size=240)
    with pytest.raises(ValueError, match="multiple of the hop"):
        SourceFilterHead(8, hop=240, size=1000)
    with pytest.raises(ValueError, match="bands"):
        SourceFilterHead(8, hop=240, size=960, bands=1)
    with pytest.raises(ValueError, match="voicing_bands"):
        codec.CodecConfig.tiny(head={"kind": "source_filter", "voicing_bands": 1})
    with pytest.raises(ValueError, match="head kind"):
        codec.CodecConfig.tiny(head={"kind": "source-filter"})


# ----------------------------------------------------------------------------- the codec with it
@pytest.fixture(scope="module")
def sf_codec() -> codec.HybridCodec:
    torch.manual_seed(0)
    cfg = codec.CodecConfig.tiny(head={"kind": "source_filter", "envelope_bands": BANDS, "voicing_bands": VBANDS})
    m = codec.HybridCodec(cfg).eval()
    with torch.no_grad():
        m.decoder.out.proj.bias[1:1 + BANDS].fill_(-2.0)  # audible, so that the checks below see it
    return m


def tone(hz: float, n: int) -> torch.Tensor:
    t = torch.arange(n, dtype=torch.float64) / SR
    k = torch.arange(1, 9, dtype=torch.float64)
    return (0.1 * (torch.sin(2 * math.pi * hz * t[:, None] * k) / k).sum(-1)).float()


def test_source_filter_codec_streams_like_offline_traced_too(sf_codec: codec.HybridCodec) -> None:
    m = sf_codec
    latents = m.encode(tone(140.0, 1920 * 9)[None, None], SR)
    offline = m.decode(latents)
    assert float(offline.abs().max()) > 0.01
    for trace_frames in (None, 1):
        with m.streaming(1, trace_frames=trace_frames):
            out = torch.cat([m.decode_chunk(latents.frames(i, i + 1)) for i in range(9)], dim=-1)
        # Float noise of the decoder moves the predicted F0 by ~1e-6, and the pulses integrate
        # it over up to 80 harmonics: equal up to a small share of the level.
        error = (out[..., : offline.shape[-1]] - offline).abs().max()
        assert float(error) < 0.01 * float(offline.abs().max())


def test_source_filter_codec_int8_keeps_the_head_float(sf_codec: codec.HybridCodec) -> None:
    m = sf_codec
    m.use_int8()
    try:
        assert not any(is_int8(mod) for mod in m.decoder.out.modules()) and is_int8(m.decoder.inp)
    finally:
        m.use_int8(False)


def test_training_steps_teach_the_head_pitch_and_voicing() -> None:
    torch.manual_seed(0)
    cfg = codec.CodecConfig.tiny(head={"kind": "source_filter", "envelope_bands": BANDS, "voicing_bands": VBANDS})
    m = codec.HybridCodec(cfg).train()
    loss_cfg = LossConfig(mel=1.0, mel_windows=(256, 1024), mel_bins=(40, 80), waveform=0.0, stft=0.0,
                          adversarial=0.0, distill=0.0, control=10.0)
    recon = ReconstructionLoss(loss_cfg)
    n = 1920 * 3
    wav = torch.stack([tone(110.0, n), torch.cat([tone(220.0, n // 2), torch.zeros(n // 2)])])[:, None]
    opt = AdamStepper(m.parameters())
    logs = [codec_train_step(m, None, None, recon, loss_cfg, WavBatch(wav), step, opt) for step in range(40)]
    assert logs[-1]["control_f0"] < 0.5 * logs[0]["control_f0"]
    assert logs[-1]["control_voicing"] < 0.9 * logs[0]["control_voicing"]
    assert logs[-1]["control_envelope"] < 0.6 * logs[0]["control_envelope"]
    with torch.no_grad():
        out = m.eval()(wav)
    assert out.head.controls["voicing"].shape == out.head.targets["voicing"].shape == (2, 24, VBANDS)
    assert out.head.controls["envelope"].shape == out.head.targets["envelope"].shape == (2, 24, BANDS)
    assert out.head.controls["f0"].shape == out.head.targets["voiced"].shape == (2, 24)
