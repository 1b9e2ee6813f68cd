"""Codec core: frame arithmetic, causality, streaming, quantizers, teachers, files, learning, bad input."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch
from safetensors.torch import load_file

import codec
from codec.heads import PatchHeadConfig, SourceFilterHeadConfig
from codec.latents import fsq_codes_to_values, fsq_values_to_codes, snap_to_grid
from codec.nn.int8 import is_int8
from codec.quantize import FSQ, SemanticVQ
from codec.training.discriminator import DiscriminatorConfig, MultiResolutionDiscriminator
from codec.training.losses import LossConfig, ReconstructionLoss, codec_train_step
from codec.training.teachers import PhonemeCTCTeacher, SSLTeacher, TeacherConfig


@pytest.fixture(scope="module")
def model() -> codec.HybridCodec:
    torch.manual_seed(0)
    return codec.HybridCodec(codec.CodecConfig.tiny()).eval()


def speechlike(seconds: float, seed: int = 0, sr: int = 24000) -> torch.Tensor:
    """A voiced, formant-filtered pulse train with a moving pitch: a cheap stand-in for speech. ``[N]``."""
    g = torch.Generator().manual_seed(seed)
    n = int(seconds * sr)
    t = torch.arange(n) / sr
    f0 = 120 + 30 * torch.sin(2 * math.pi * 1.5 * t + float(torch.rand(1, generator=g)) * 6)
    phase = torch.cumsum(2 * math.pi * f0 / sr, 0)
    src = sum(torch.sin(k * phase) / k for k in range(1, 30))
    formants = sum(torch.sin(2 * math.pi * f * t) * 0.2 for f in (500, 1500, 2500))
    env = 0.5 + 0.5 * torch.sin(2 * math.pi * 3 * t).clamp(min=0)
    x = src * (1 + formants) * env + 0.01 * torch.randn(n, generator=g)
    return (0.3 * x / x.abs().max()).float()


# ----------------------------------------------------------------------------- frames
def test_bitrate_and_constants(model: codec.HybridCodec) -> None:
    assert model.sample_rate == 24000 and model.frame_size == 1920 and model.frame_rate == 12.5
    assert abs(codec.CodecConfig().bitrate - 12.5 * (13 + 36 * math.log2(21))) < 1e-6
    assert 2100 < model.bitrate < 2200


def test_one_second_is_13_frames(model: codec.HybridCodec) -> None:
    lat = model.encode(torch.zeros(24000), 24000)
    assert lat.num_frames == 13 == codec.num_frames(24000)


@pytest.mark.parametrize("n", [1, 1919, 1920, 1921, 48000])
def test_lengths_round_trip(model: codec.HybridCodec, n: int) -> None:
    lat = model.encode(0.1 * torch.randn(n), 24000)
    assert lat.num_frames == math.ceil(n / 1920)
    assert lat.semantic.dtype == torch.int64 and lat.semantic.shape == (1, lat.num_frames)
    assert lat.acoustic_codes.shape == (1, lat.num_frames, 36)
    assert int(lat.semantic.max()) < 8192 and 0 <= int(lat.acoustic_codes.min()) <= int(lat.acoustic_codes.max()) <= 20
    out = model.decode(lat)
    assert out.shape == (1, 1, n)


def test_input_shapes_rates_and_channels(model: codec.HybridCodec) -> None:
    x = speechlike(0.5)
    a = model.encode(x, 24000)
    b = model.encode(torch.stack([x, x]), 24000)  # [C, N]: down-mixed to the same signal
    assert torch.equal(a.semantic, b.semantic) and torch.equal(a.acoustic_codes, b.acoustic_codes)
    c = model.encode(torch.stack([x[None], x[None]]), 24000)  # [B, C, N]
    assert c.batch_size == 2
    d = model.encode(speechlike(0.5, sr=16000), 16000)  # resampled
    assert d.num_samples == 12000 and d.num_frames == 7


# ----------------------------------------------------------------------------- causality / streaming
def test_encoder_is_causal(model: codec.HybridCodec) -> None:
    x = speechlike(1.0)
    full = model.encode(x, 24000)
    prefix = model.encode(x[: 1920 * 5], 24000)
    assert torch.equal(prefix.semantic, full.semantic[:, :5])
    assert torch.equal(prefix.acoustic_codes, full.acoustic_codes[:, :5])
    zx = model.encoder(torch.nn.functional.pad(x, (0, 1920 * 13 - 24000))[None, None])
    zp = model.encoder(x[None, None, : 1920 * 5])
    torch.testing.assert_close(zp, zx[:, :5], atol=1e-5, rtol=1e-5)


def test_decoder_is_causal(model: codec.HybridCodec) -> None:
    lat = model.encode(speechlike(1.0), 24000)
    full = model.decode(lat)
    part = model.decode(lat.frames(0, 6))
    torch.testing.assert_close(part, full[..., : 6 * 1920], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("chunk_frames", [1, 2, 3, 7])
def test_streaming_equals_offline(model: codec.HybridCodec, chunk_frames: int) -> None:
    x = torch.stack([speechlike(1.5, seed=1), speechlike(1.5, seed=2)])[:, None, : 1920 * 18]
    offline = model.encode(x, 24000)
    audio = model.decode(offline)
    step = chunk_frames * 1920
    with model.streaming(2):
        parts = [model.encode_chunk(x[..., i:i + step]) for i in range(0, x.shape[-1], step)]
        streamed = codec.Latents.cat(parts)
        out = torch.cat([model.decode_chunk(p) for p in parts], dim=-1)
    assert torch.equal(streamed.semantic, offline.semantic)
    # Float reassociation may flip an acoustic code that sits exactly on a rounding boundary.
    assert (streamed.acoustic_codes != offline.acoustic_codes).float().mean() < 1e-3
    torch.testing.assert_close(out, audio, atol=1e-4, rtol=1e-4)


def test_offline_chunking_equals_single_pass() -> None:
    torch.manual_seed(0)
    m = codec.HybridCodec(codec.CodecConfig.tiny(offline_chunk_frames=4)).eval()
    big = codec.HybridCodec(codec.CodecConfig.tiny(offline_chunk_frames=1000)).eval()
    big.load_state_dict(m.state_dict())
    x = speechlike(2.0)
    a, b = m.encode(x, 24000), big.encode(x, 24000)
    assert torch.equal(a.semantic, b.semantic)
    torch.testing.assert_close(m.decode(a), big.decode(a), atol=1e-4, rtol=1e-4)


def test_streaming_chunk_errors(model: codec.HybridCodec) -> None:
    with pytest.raises(RuntimeError, match="streaming"):
        model.encode_chunk(torch.zeros(1, 1, 1920))
    with model.streaming(1):
        with pytest.raises(ValueError, match="multiple of 1920"):
            model.encode_chunk(torch.zeros(1, 1, 1000))
        with pytest.raises(ValueError, match="batch"):
            model.encode_chunk(torch.zeros(2, 1, 1920))
        with pytest.raises(RuntimeError, match="encode_chunk"):
            model.encode(torch.zeros(1920), 24000)
    with pytest.raises(ValueError, match="multiple of 1920"):
        with model.streaming(1):
            model.encode_chunk(torch.zeros(1, 1, 3000))


# ----------------------------------------------------------------------------- traced steps, int8
def _stream(model: codec.HybridCodec, x: torch.Tensor, sizes: list[int], trace_frames: int | None
            ) -> tuple[codec.Latents, torch.Tensor]:
    """Encode and decode ``x [B, 1, N]`` in chunks of ``sizes`` frames (cycled) in one session."""
    parts, audio, start, i = [], [], 0, 0
    with model.streaming(x.shape[0], trace_frames=trace_frames):
        while start < x.shape[-1]:
            step = sizes[i % len(sizes)] * 1920
            lat = model.encode_chunk(x[..., start:start + step])
            parts.append(lat)
            audio.append(model.decode_chunk(lat))
            start, i = start + step, i + 1
    return codec.Latents.cat(parts), torch.cat(audio, dim=-1)


@pytest.mark.parametrize("trace_frames,sizes", [(1, [1]), (2, [2, 1, 2, 3, 2])])
def test_traced_streaming_equals_untraced(model: codec.HybridCodec, monkeypatch: pytest.MonkeyPatch,
                                          trace_frames: int, sizes: list[int]) -> None:
    from codec.nn.trace import TracedStep as _TracedStep

    calls: list[int] = []
    traced_step = _TracedStep.step
    monkeypatch.setattr(_TracedStep, "step", lambda self, *a: calls.append(1) or traced_step(self, *a))
    x = torch.stack([speechlike(1.5, seed=1), speechlike(1.5, seed=2)])[:, None, : 1920 * 18]
    eager_lat, eager_audio = _stream(model, x, sizes, None)
    assert not calls
    lat, audio = _stream(model, x, sizes, trace_frames)
    # The first chunks run untraced until the windows are full; later chunks of the traced
    # size, mixed with other sizes, go through the traces and carry the same states.
    assert len(calls) >= 4
    assert torch.equal(lat.semantic, eager_lat.semantic)
    assert (lat.acoustic_codes != eager_lat.acoustic_codes).float().mean() < 1e-3
    torch.testing.assert_close(audio, eager_audio, atol=1e-5, rtol=1e-5)
    assert model._traces == {}  # dropped with the session


def test_traces_are_reused_until_the_weights_change() -> None:
    torch.manual_seed(4)
    m = codec.HybridCodec(codec.CodecConfig.tiny()).eval()
    x = speechlike(1.0)[None, None, : 1920 * 12]
    with m.streaming(1, trace_frames=1):
        first = m._traces["decode"].traced
    with m.streaming(1, trace_frames=1):
        assert m._traces["decode"].traced is first  # same weights: nothing rebuilt
    with m.streaming(1, trace_frames=2):
        assert m._traces["decode"].traced is not first  # another chunk size: its own trace
    with torch.no_grad():
        m.decoder.out.proj.bias.add_(0.01)  # in place: same storage, new version
    lat, audio = _stream(m, x, [1], 1)
    entries = m._trace_cache._entries
    assert entries and all(entry[1]["decode"].traced is not first for entry in entries.values())
    torch.testing.assert_close(audio, _stream(m, x, [1], None)[1], atol=1e-5, rtol=1e-5)
    m.use_int8()
    with m.streaming(1, trace_frames=1):
        assert m._traces["decode"].traced is not first


def test_trace_frames_errors(model: codec.HybridCodec) -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="trace_frames"):
            with model.streaming(1, trace_frames=bad):
                pass
    with pytest.raises(ValueError, match="batch_size"):
        with model.streaming(0):
            pass


@pytest.fixture()
def int8_pair() -> tuple[codec.HybridCodec, codec.HybridCodec]:
    torch.manual_seed(3)
    float_model = codec.HybridCodec(codec.CodecConfig.tiny()).eval()
    int8_model = codec.HybridCodec(codec.CodecConfig.tiny()).eval()
    int8_model.load_state_dict(float_model.state_dict())
    return float_model, int8_model.use_int8()


def test_int8_follows_float_and_leaves_the_output_head_in_float(int8_pair) -> None:
    ref, m = int8_pair
    assert m.int8 and not ref.int8
    int8 = {name for name, mod in m.named_modules() if is_int8(mod)}
    assert {"encoder.stages.0.layers.0.attn.qkv", "decoder.stages.0.layers.0.mlp.0", "encoder.downs.0.conv",
            "decoder.ups.1.conv", f"decoder.stages.{len(m.decoder.stages) - 1}.layers.0.attn.qkv"} <= int8
    assert not any(name.startswith(("decoder.out", "quantizer")) for name in int8)
    assert m.state_dict().keys() == ref.state_dict().keys() and m.weights_hash == ref.weights_hash
    x = speechlike(2.0)
    lat_ref, lat = ref.encode(x, 24000), m.encode(x, 24000)
    assert (lat.semantic == lat_ref.semantic).float().mean() > 0.8
    assert (lat.acoustic_codes == lat_ref.acoustic_codes).float().mean() > 0.8
    a, b = ref.decode(lat_ref), m.decode(lat_ref)
    assert not torch.equal(a, b)  # int8 kernels really ran
    snr = 10 * torch.log10(a.pow(2).sum() / (a - b).pow(2).sum())
    assert snr > 20, f"int8 decode SNR {snr:.1f} dB"
    m.use_int8(False)
    assert not any(is_int8(mod) for mod in m.modules())
    assert torch.equal(m.decode(lat_ref), a)


def test_int8_streaming_traced_equals_untraced_and_training_stays_float(int8_pair) -> None:
    ref, m = int8_pair
    x = speechlike(1.2)[None, None, : 1920 * 15]
    eager = _stream(m, x, [1], None)[1]
    traced = _stream(m, x, [1], 1)[1]
    torch.testing.assert_close(traced, eager, atol=1e-5, rtol=1e-5)
    # Autograd on: the int8 copies are not used, the training pass is the float one.
    m.train(), ref.train()
    torch.manual_seed(0)
    out = m(x).audio
    torch.manual_seed(0)
    torch.testing.assert_close(out, ref(x).audio, atol=0, rtol=0)
    m.eval(), ref.eval()


def test_int8_copies_follow_weight_changes(int8_pair) -> None:
    ref, m = int8_pair
    x = speechlike(1.0)
    before = m.decode(m.encode(x, 24000))
    with torch.no_grad():
        for model in (ref, m):
            model.decoder.stages[0].layers[0].mlp[0].weight.mul_(-1.0)
    fresh = codec.HybridCodec(codec.CodecConfig.tiny()).eval()
    fresh.load_state_dict(ref.state_dict())
    after = m.decode(m.encode(x, 24000))
    assert not torch.equal(after, before)
    torch.testing.assert_close(after, fresh.use_int8().decode(fresh.encode(x, 24000)), atol=0, rtol=0)
    with m.streaming(1):
        with pytest.raises(RuntimeError, match="use_int8"):
            m.use_int8(False)


# ----------------------------------------------------------------------------- quantizers
def test_fsq_codes_values_round_trip() -> None:
    codes = torch.arange(21)
    values = fsq_codes_to_values(codes, 21)
    assert values[0] == -1 and values[-1] == 1 and torch.allclose(values[10], torch.tensor(0.0))
    assert torch.equal(fsq_values_to_codes(values, 21), codes)
    x = torch.rand(1000) * 2 - 1
    snapped = snap_to_grid(x, 21)
    assert (snapped - x).abs().max() <= 0.05 + 1e-6
    assert torch.equal(snap_to_grid(snapped, 21), snapped)


def test_fsq_straight_through_and_schedule() -> None:
    fsq = FSQ(21)
    z = torch.randn(3, 5, 36, requires_grad=True)
    out = fsq(z, torch.tensor([0, 1, 2]))
    assert torch.allclose(out.values[0], fsq_codes_to_values(out.codes[0], 21))  # quantized
    assert torch.allclose(out.values[2], torch.tanh(z[2]))  # continuous
    assert (out.values[1] - torch.tanh(z[1])).abs().max() <= 0.05 + 1e-6  # dithered within one level
    out.values.sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0


def test_vq_codes_valid_and_gradient_reaches_encoder() -> None:
    torch.manual_seed(0)
    m = codec.HybridCodec(codec.CodecConfig.tiny()).train()
    out = m(speechlike(0.32)[None, None, : 1920 * 4])
    assert out.quantized.semantic.codes.shape == (1, 4) and int(out.quantized.semantic.codes.max()) < 8192
    (out.audio.pow(2).mean() + out.quantized.semantic.commitment_loss).backward()
    first = m.encoder.inp.conv.weight.grad
    assert first is not None and first.abs().sum() > 0


def test_vq_straight_through() -> None:
    vq = SemanticVQ(16, 64, 4, dead_code_threshold=0.0, usage_decay=0.99)
    z = torch.randn(2, 8, 16, requires_grad=True)
    out = vq(z, torch.tensor([True, True]))
    torch.testing.assert_close(out.vector, vq.embed(out.codes))  # forward is the codebook vector
    out.vector.sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0  # backward skips the argmax


def test_dead_code_restart_revives_unused_entries() -> None:
    torch.manual_seed(0)
    vq = SemanticVQ(16, 256, 4, dead_code_threshold=0.1, usage_decay=0.9).train()
    z = torch.randn(4, 64, 16)
    used_before = set(vq.encode(z).unique().tolist())
    with torch.no_grad():  # all but a handful of codes have gone unused
        vq.usage.zero_()
        vq.usage[:8] = 1.0
    before = vq.codebook.detach().clone()
    vq(z)  # a training forward triggers the restart on this batch's encoder outputs
    moved = (vq.codebook.detach() - before).abs().sum(-1) > 0
    # Every code neither kept alive before nor picked by this batch is moved; live ones stay.
    unused = torch.ones(256, dtype=torch.bool)
    unused[:8] = False
    unused[list(used_before)] = False
    assert bool(moved[unused].all()) and not bool(moved[:8].any()) and int(moved.sum()) > 100
    assert bool((vq.usage > 0).all())
    used_after = set(vq.encode(z).unique().tolist())
    assert len(used_after) > len(used_before)


# ----------------------------------------------------------------------------- teachers
@pytest.fixture(scope="module")
def tiny_ssl_folder(tmp_path_factory: pytest.TempPathFactory) -> str:
    from transformers import WavLMConfig, WavLMModel

    cfg = WavLMConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                      conv_dim=(16, 16, 16), conv_stride=(5, 4, 4), conv_kernel=(10, 4, 4),
                      num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("wavlm")
    WavLMModel(cfg).save_pretrained(folder)
    return str(folder)


@dataclass
class Batch:
    wav: torch.Tensor
    lengths: torch.Tensor
    phonemes: torch.Tensor
    phoneme_lengths: torch.Tensor


def make_batch(x: torch.Tensor, phonemes: list[list[int]] | None = None) -> Batch:
    b = x.shape[0]
    ph = phonemes or [[] for _ in range(b)]
    width = max(1, max(len(p) for p in ph))
    return Batch(x, torch.full((b,), x.shape[-1]), torch.tensor([p + [0] * (width - len(p)) for p in ph]),
                 torch.tensor([len(p) for p in ph]))


class PlainOptimize:
    """Minimal optimizer runner for tests: backward then step the named optimizer."""

    def __init__(self, **optimizers: torch.optim.Optimizer) -> None:
        self.optimizers = optimizers

    def step(self, name: str, loss: torch.Tensor) -> None:
        self.optimizers[name].zero_grad()
        loss.backward()
        self.optimizers[name].step()


@pytest.mark.parametrize("arch", ["wavlm", "hubert"])
def test_ssl_teacher_loads_offline_and_distils(tmp_path, monkeypatch, tiny_ssl_folder: str, arch: str) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tiny_ssl_folder
    if arch == "hubert":
        from transformers import HubertConfig, HubertModel

        cfg = HubertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                           conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 4),
                           num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
        HubertModel(cfg).save_pretrained(tmp_path / "hubert")
        folder = str(tmp_path / "hubert")
    torch.manual_seed(0)
    model = codec.HybridCodec(codec.CodecConfig.tiny()).train()
    teacher = SSLTeacher(folder, layer=1, semantic_dim=model.config.semantic_dim)
    batch = make_batch(torch.stack([speechlike(0.64, seed=s) for s in range(2)])[:, None])
    params = list(model.parameters()) + list(teacher.parameters())
    opt = torch.optim.Adam(params, lr=3e-3)
    losses = []
    for _ in range(15):
        loss = teacher(model(batch.wav).quantized.semantic.vector, batch)
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.8 * losses[0]
    model.save(tmp_path / "codec")
    saved = load_file(str(tmp_path / "codec" / "model.safetensors"))
    assert not any("teacher" in k or "wavlm" in k.lower() or "hubert" in k.lower() for k in saved)
    assert set(saved) == set(model.state_dict())
    assert not any(p is q for p in teacher.teacher.parameters() for q in teacher.parameters())


def test_ssl_teacher_missing_model_is_clear(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="local folder"):
        SSLTeacher(str(tmp_path / "nope"), layer=1, semantic_dim=16)
    with pytest.raises(ValueError, match="teacher.model"):
        TeacherConfig(kind="ssl")


def test_phoneme_ctc_teacher_learns() -> None:
    torch.manual_seed(0)
    head = PhonemeCTCTeacher(semantic_dim=16, num_phonemes=10, upsample=4)
    semantic = torch.randn(2, 6, 16, requires_grad=True)
    batch = make_batch(torch.zeros(2, 1, 6 * 1920), [[3, 4, 5, 6, 7], [2, 2, 9]])
    opt = torch.optim.Adam([semantic, *head.parameters()], lr=0.05)
    first = None
    for _ in range(30):
        loss = head(semantic, batch)
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.3 * first
    empty = make_batch(torch.zeros(2, 1, 1920))
    assert float(head(semantic, empty).detach()) == 0.0


# ----------------------------------------------------------------------------- files
def test_save_load_bit_identical(tmp_path, model: codec.HybridCodec) -> None:
    model.save(tmp_path / "m")
    loaded = codec.load(tmp_path / "m")
    assert not loaded.training
    x = speechlike(1.0, seed=3)
    a, b = model.encode(x, 24000), loaded.encode(x, 24000)
    assert torch.equal(a.semantic, b.semantic) and torch.equal(a.acoustic_codes, b.acoustic_codes)
    assert loaded.weights_hash == model.weights_hash
    assert loaded.config == model.config


def test_load_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no codec"):
        codec.load(tmp_path / "missing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        codec.load(tmp_path / "bad")
    (tmp_path / "bad" / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="cannot read weights"):
        codec.load(tmp_path / "bad")
    (tmp_path / "bad" / "config.json").write_text('{"dimm": 3}')
    with pytest.raises(ValueError, match="unknown codec config key"):
        codec.load(tmp_path / "bad")


# ----------------------------------------------------------------------------- learning
def test_tiny_codec_learns_a_clip() -> None:
    torch.manual_seed(0)
    cfg = codec.CodecConfig.tiny(dim=64, semantic_vq_prob=1.0, acoustic_quantize_prob=1.0, acoustic_dither_prob=0.0)
    model = codec.HybridCodec(cfg).train()
    disc = MultiResolutionDiscriminator(DiscriminatorConfig(n_ffts=(512, 256), channels=8))
    loss_cfg = LossConfig(mel_windows=(128, 512, 2048), mel_bins=(20, 40, 80), adversarial_start=40,
                          adversarial_segment=0.5)
    recon = ReconstructionLoss(loss_cfg)
    batch = make_batch(speechlike(1.28, seed=4)[None, None, : 1920 * 16])
    opt = PlainOptimize(gen=torch.optim.Adam(model.parameters(), lr=2e-3),
                        disc=torch.optim.Adam(disc.parameters(), lr=1e-4))
    model.eval()
    with torch.no_grad():
        start = float(recon(model(batch.wav).audio, batch.wav, with_stft=False)[0])
    model.train()
    for step in range(80):
        logs = codec_train_step(model, disc, None, recon, loss_cfg, batch, step, opt)
        assert math.isfinite(logs["loss"])
    assert "adv" in logs and "disc" in logs
    model.eval()
    with torch.no_grad():
        end = float(recon(model(batch.wav).audio, batch.wav, with_stft=False)[0])
    assert end < 0.6 * start, (start, end)


def test_adversarial_segment_takes_the_same_span_of_both() -> None:
    from codec.training.losses import _adversarial_segment

    wav = torch.arange(24000.0).view(1, 1, -1)
    real, fake = _adversarial_segment(wav, -wav, 0.25)
    assert real.shape[-1] == 6000 and torch.equal(fake, -real)
    assert torch.equal(real[0, 0], torch.arange(6000.0) + real[0, 0, 0])
    assert _adversarial_segment(wav, -wav, 0.0)[0] is wav and _adversarial_segment(wav, -wav, 2.0)[0] is wav
    with pytest.raises(ValueError, match="adversarial_segment"):
        LossConfig(adversarial_segment=-1.0)


def test_band_envelope_loss_compares_band_rises_and_falls() -> None:
    from codec.training.losses import BandEnvelopeLoss

    loss = BandEnvelopeLoss()
    x = speechlike(2.0, seed=1)[None, None]
    assert float(loss(x, x)) < 1e-5
    assert float(loss(0.3 * x, x)) < 1e-5  # a correlation: the level is the mel losses' business
    # Same spectrum, other rises and falls (the clip reversed) scores far worse than the clip
    # with a little noise.
    noisy = x + 0.05 * x.std() * torch.randn_like(x)
    assert float(loss(x.flip(-1), x)) > 0.3 > 3 * float(loss(noisy, x))
    est = noisy.clone().requires_grad_()
    loss(est, x).backward()
    assert est.grad is not None and bool(est.grad.abs().sum() > 0)
    silent = torch.zeros_like(x)
    assert float(loss(x, silent)) == 0.0  # no segment of the reference is loud enough to count
    with pytest.raises(ValueError, match="at least 30 frames"):
        loss(x[..., :4000], x[..., :4000])


def test_train_step_adds_the_envelope_loss_when_weighted() -> None:
    torch.manual_seed(0)
    model = codec.HybridCodec(codec.CodecConfig.tiny(dim=32)).train()
    batch = make_batch(speechlike(0.96, seed=2)[None, None, : 1920 * 12])
    opt = PlainOptimize(gen=torch.optim.Adam(model.parameters(), lr=1e-3))
    for weight in (0.0, 2.0):
        cfg = LossConfig(mel_windows=(128, 512), mel_bins=(20, 40), adversarial=0.0, envelope=weight)
        logs = codec_train_step(model, None, None, ReconstructionLoss(cfg), cfg, batch, 0, opt)
        assert ("envelope" in logs) == (weight > 0) and math.isfinite(logs["loss"])


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "wav, rate, exc, match",
    [
        (torch.zeros(0), 24000, ValueError, "empty"),
        (torch.zeros(2, 0), 24000, ValueError, "empty"),
        (torch.tensor([0.0, float("nan"), 0.0]), 24000, ValueError, "NaN"),
        (torch.tensor([0.0, float("inf")]), 24000, ValueError, "NaN or Inf"),
        (torch.zeros(100, dtype=torch.int16), 24000, TypeError, "floating-point"),
        (torch.zeros(1, 1, 1, 100), 24000, ValueError, "shape"),
        ([0.0, 0.1], 24000, TypeError, "torch.Tensor"),
        (torch.zeros(100), 0, ValueError, "sample_rate"),
    ],
)
def test_encode_rejects_bad_input(model: codec.HybridCodec, wav, rate, exc, match) -> None:
    with pytest.raises(exc, match=match):
        model.encode(wav, rate)


def test_decode_rejects_bad_latents(model: codec.HybridCodec) -> None:
    lat = model.encode(torch.zeros(1920), 24000)
    with pytest.raises(ValueError, match="semantic codes"):
        model.decode(codec.Latents(lat.semantic + 9000, lat.acoustic_codes, 1920))
    with pytest.raises(ValueError, match="acoustic codes"):
        model.decode(codec.Latents(lat.semantic, lat.acoustic_codes + 30, 1920))
    with pytest.raises(ValueError, match="acoustic_codes must be"):
        codec.Latents(lat.semantic, lat.acoustic_codes[:, :, 0], 1920)
    with pytest.raises(TypeError, match="Latents"):
        model.decode(lat.semantic)


def test_silence_encodes(model: codec.HybridCodec) -> None:
    out = model.decode(model.encode(torch.zeros(24000), 24000))
    assert out.shape == (1, 1, 24000) and torch.isfinite(out).all()


# ----------------------------------------------------------------------------- head configs
def test_head_config_round_trips_and_rejects_unknown_heads(tmp_path) -> None:
    cfg = codec.CodecConfig.tiny(head={"kind": "source_filter", "envelope_bands": 16})
    assert isinstance(cfg.head, SourceFilterHeadConfig) and cfg.head.envelope_bands == 16
    cfg.save(tmp_path / "c.json")
    assert codec.CodecConfig.from_json(tmp_path / "c.json") == cfg
    assert codec.CodecConfig.tiny().head == PatchHeadConfig()
    with pytest.raises(ValueError, match="unknown head kind 'vocos'"):
        codec.CodecConfig.tiny(head={"kind": "vocos"})
    with pytest.raises(ValueError, match="harmonics"):
        codec.CodecConfig.tiny(head={"kind": "source_filter", "harmonics": 8})
