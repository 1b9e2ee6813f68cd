"""Speech generation end to end with a tiny random codec: voice prompts, streaming, loading, CLI."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from codec import FRAME_SIZE, CodecConfig, HybridCodec, save_latents
from tts import SamplingConfig, Synthesizer, TTSConfig, TTSModel, load
from tts.cli import main

SR = 24000
FAST = SamplingConfig(steps=2, max_seconds=0.8)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def synth(tiny_synth: Synthesizer) -> Synthesizer:
    """The tiny random TTS model and codec these tests speak with."""
    return tiny_synth


@pytest.fixture(scope="module")
def model_dir(tiny_tts_dir: Path) -> str:
    """`synth` as a model folder (a string, as the command line gets it)."""
    return str(tiny_tts_dir)


def _voice(seconds: float, sr: int = SR, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * sr)) / sr
    return 0.3 * torch.sin(2 * torch.pi * 180 * t) + 0.05 * torch.randn(t.shape, generator=g)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def test_generate_returns_24khz_audio_of_whole_frames(synth):
    audio = _quiet(synth.generate, "Hello there.", "en", _voice(3.2), SR, sampling=FAST, seed=0)
    assert audio.dim() == 1 and audio.numel() == 10 * FRAME_SIZE
    assert torch.isfinite(audio).all() and audio.abs().max() <= 1.0


def test_same_seed_same_audio(synth):
    a = _quiet(synth.generate, "Hello there.", "en", _voice(3.2), SR, sampling=FAST, seed=3)
    b = _quiet(synth.generate, "Hello there.", "en", _voice(3.2), SR, sampling=FAST, seed=3)
    assert torch.equal(a, b)


def test_stream_equals_offline_decode_of_the_same_frames(synth):
    voice = _voice(3.2)
    latents = _quiet(synth.generate_latents, "Bonjour.", "fr", voice, SR, sampling=FAST, seed=5)
    chunks = _quiet(lambda: list(synth.stream("Bonjour.", "fr", voice, SR, sampling=FAST, seed=5)))
    assert len(chunks) == latents.num_frames == 10
    assert all(c.shape == (FRAME_SIZE,) for c in chunks)
    offline = synth.codec.decode(latents)[0, 0]
    torch.testing.assert_close(torch.cat(chunks), offline, rtol=0, atol=1e-5)
    # And the streamed audio is what generate() returns.
    audio = _quiet(synth.generate, "Bonjour.", "fr", voice, SR, sampling=FAST, seed=5)
    torch.testing.assert_close(torch.cat(chunks), audio, rtol=0, atol=1e-5)


def test_first_chunk_arrives_before_the_rest_is_generated(synth):
    made = []
    model = synth.model
    original = model.sample_acoustic

    def counting(*args, **kwargs):
        made.append(1)
        return original(*args, **kwargs)

    model.sample_acoustic = counting
    try:
        stream = _quiet(synth.stream, "Hola.", "es", _voice(3.2), SR, sampling=FAST, seed=0)
        first = _quiet(next, stream)
        assert first.shape == (FRAME_SIZE,) and len(made) == 1
        stream.close()
    finally:
        del model.sample_acoustic


def test_voice_prompt_lengths(synth):
    with pytest.raises(ValueError, match=r"0\.50 s long; at least 1 s"):
        synth.voice_prompt(_voice(0.5), SR)
    with pytest.warns(UserWarning, match="only 1.50 s"):
        p = synth.voice_prompt(_voice(1.5), SR)
    assert p.num_frames == 19
    with pytest.warns(UserWarning, match="first 30 s"):
        p = synth.voice_prompt(_voice(31.0, sr=8000), 8000)
    assert p.num_samples == 30 * SR and p.num_frames == 375
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = synth.voice_prompt(_voice(4.0, sr=16000), 16000)  # resampled, no warning
    assert p.num_samples == 4 * SR
    # Already-encoded prompts go through the same checks.
    with pytest.warns(UserWarning, match="first 30 s"):
        long = synth.voice_prompt(synth.codec.encode(_voice(32.0, sr=8000), 8000))
    assert long.num_frames == 375
    with pytest.raises(ValueError, match="at least 1 s"):
        synth.voice_prompt(synth.codec.encode(_voice(0.5), SR))


def test_voice_prompt_from_file_and_bad_inputs(synth, tmp_path):
    path = tmp_path / "ref.wav"
    stereo = torch.stack([_voice(3.5, 22050), _voice(3.5, 22050, seed=1)], dim=1).numpy()
    sf.write(str(path), stereo, 22050)
    p = synth.voice_prompt(str(path))
    assert p.batch_size == 1 and p.num_samples == round(3.5 * SR)
    # The checks and messages of hylac-codec encode; whatever is not audio is named for what it is.
    with pytest.raises(ValueError, match="missing.wav: no such file"):
        synth.voice_prompt(tmp_path / "missing.wav")
    (tmp_path / "junk.wav").write_bytes(b"not audio")
    with pytest.raises(ValueError, match=r"junk.wav: not a readable audio file \(a text file"):
        synth.voice_prompt(tmp_path / "junk.wav")
    with pytest.raises(ValueError, match="is a folder, not an audio file"):
        synth.voice_prompt(tmp_path)
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty.wav: empty file \(0 bytes\)"):
        synth.voice_prompt(tmp_path / "empty.wav")
    (tmp_path / "cut.wav").write_bytes(path.read_bytes()[:40])
    with pytest.raises(ValueError, match="cut.wav: not a readable audio file .a RIFF/WAV file that cannot be decoded"):
        synth.voice_prompt(tmp_path / "cut.wav")
    with pytest.raises(ValueError, match="needs its sample_rate"):
        synth.voice_prompt(_voice(3.0))
    with pytest.raises(ValueError, match="only with a waveform"):
        synth.voice_prompt(path, 16000)
    with pytest.raises(ValueError, match=r"\[N\] or \[C, N\]"):
        synth.voice_prompt(torch.zeros(1, 1, 1, 72000), SR)
    with pytest.raises(TypeError, match="voice must be"):
        synth.voice_prompt(np.zeros(72000), SR)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="NaN"):
        synth.voice_prompt(torch.full((72000,), float("nan")), SR)


def test_voice_prompt_from_a_latent_file(synth, tmp_path):
    latents = synth.codec.encode(_voice(3.2), SR)
    save_latents(tmp_path / "ref.hylat", latents, synth.codec)
    p = synth.voice_prompt(tmp_path / "ref.hylat")
    assert torch.equal(p.semantic, latents.semantic) and p.num_samples == latents.num_samples
    torch.manual_seed(7)
    other = HybridCodec(CodecConfig.tiny()).eval()
    save_latents(tmp_path / "other.hylat", other.encode(_voice(3.2), SR), other)
    with pytest.raises(ValueError, match="voice prompt .*other.hylat"):
        synth.voice_prompt(tmp_path / "other.hylat")


def test_bad_text_is_refused_before_any_work(synth):
    with pytest.raises(ValueError, match="unsupported language 'klingon'"):
        synth.generate("Hello", "klingon", _voice(3.0), SR)
    with pytest.raises(ValueError, match="text is empty"):
        synth.generate("  ", "en", _voice(3.0), SR)
    # Text errors come before voice errors (cheap checks first).
    with pytest.raises(ValueError, match="text is empty"):
        synth.generate("", "en", _voice(0.1), SR)


def test_load_folder_with_relative_codec(model_dir, synth):
    again = load(model_dir)
    assert again.codec.weights_hash == synth.codec.weights_hash
    a = _quiet(again.generate, "Hallo.", "de", _voice(3.2), SR, sampling=FAST, seed=2)
    b = _quiet(synth.generate, "Hallo.", "de", _voice(3.2), SR, sampling=FAST, seed=2)
    torch.testing.assert_close(a, b)


def test_a_decoder_fine_tune_of_the_codec_is_accepted(model_dir, tiny_codec):
    tuned = HybridCodec(CodecConfig.tiny()).eval()
    tuned.load_state_dict(tiny_codec.state_dict())
    with torch.no_grad():
        for p in tuned.decoder.parameters():
            p.mul_(1.01)
    assert tuned.weights_hash != tiny_codec.weights_hash
    assert load(model_dir, codec=tuned).codec is tuned


def test_load_refuses_another_codec_and_unknown_models(model_dir):
    torch.manual_seed(99)
    other = HybridCodec(CodecConfig.tiny()).eval()
    with pytest.raises(ValueError, match="latent hash"):
        load(model_dir, codec=other)
    with pytest.raises(ValueError, match="different latent layouts"):
        Synthesizer(TTSModel(TTSConfig.tiny()), other)  # semantic_dim 256 vs the codec's 16
    with pytest.raises(FileNotFoundError, match="no TTS model 'nope'"):
        load("nope")


def test_cli_generate_writes_audio(model_dir, tmp_path, capsys):
    ref = tmp_path / "ref.wav"
    sf.write(str(ref), _voice(3.2).numpy(), SR)
    out = tmp_path / "out" / "speech.wav"
    rc = _quiet(main, ["generate", "--model", model_dir, "--text", "Ciao a tutti.", "--lang", "it",
                       "--voice", str(ref), "-o", str(out), "--steps", "2", "--cfg", "1.5", "--temperature", "0.7",
                       "--top-k", "10", "--seed", "1", "--max-seconds", "0.4"])
    assert rc == 0
    audio, sr = sf.read(str(out))
    assert sr == SR and len(audio) == 5 * FRAME_SIZE
    assert "RTF" in capsys.readouterr().out


def test_cli_reports_bad_input(model_dir, tmp_path, capsys):
    ref = tmp_path / "ref.wav"
    sf.write(str(ref), _voice(0.4).numpy(), SR)
    rc = main(["generate", "--model", model_dir, "--text", "Hi", "--lang", "en", "--voice", str(ref),
               "-o", str(tmp_path / "o.wav")])
    assert rc == 1
    assert "at least 1 s" in capsys.readouterr().err
    assert not (tmp_path / "o.wav").exists() and not list(tmp_path.glob(".o.*"))
    rc = main(["generate", "--model", model_dir, "--text", "Hi", "--lang", "xx", "--voice", str(ref),
               "-o", str(tmp_path / "o.wav")])
    assert rc == 2
    assert "invalid choice: 'xx'" in capsys.readouterr().err


def test_cli_demo_speaks_each_language_with_a_held_out_voice(model_dir, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    lines = []
    for lang, seconds in (("en", 3.2), ("fr", 2.0), ("de", 3.5)):
        sf.write(str(corpus / f"{lang}.wav"), _voice(seconds).numpy(), SR)
        lines.append({"path": f"{lang}.wav", "text": "x", "lang": lang, "speaker": lang, "duration": seconds,
                      "split": "test"})
    lines.append({"path": "en.wav", "text": "x", "lang": "it", "speaker": "it", "duration": 3.2, "split": "train"})
    (corpus / "manifest.jsonl").write_text("".join(__import__("json").dumps(x) + "\n" for x in lines))
    import tts.demo

    sampling = SamplingConfig(steps=1, max_seconds=0.4)
    synth = load(model_dir)
    written = _quiet(tts.demo.speak_demo, synth, corpus / "manifest.jsonl", tmp_path / "out", sampling=sampling)
    assert sorted(p.name for p in written) == ["tts_de.wav", "tts_en.wav", "tts_fr.wav"]
    assert (tmp_path / "out" / "tts_en_prompt.wav").is_file()
    written = _quiet(tts.demo.speak_demo, synth, corpus / "manifest.jsonl", tmp_path / "out", sampling=sampling,
                     prefix="tts_real")
    assert sorted(p.name for p in written) == ["tts_real_de.wav", "tts_real_en.wav", "tts_real_fr.wav"]
    rc = _quiet(main, ["demo", "--model", model_dir, "--corpus", str(corpus / "manifest.jsonl"),
                       "--out", str(tmp_path / "out2"), "--split", "train", "--max-seconds", "0.4"])
    assert rc == 0 and (tmp_path / "out2" / "tts_it.wav").is_file()
