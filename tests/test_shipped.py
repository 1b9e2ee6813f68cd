"""The models shipped inside the package load offline and work out of the box."""

from __future__ import annotations

import json
from pathlib import Path

import soundfile as sf
import torch

import codec
from codec import metrics

ASSETS = Path(codec.__file__).parent / "assets"


def test_hylac_tiny_is_shipped_and_round_trips_a_clip() -> None:
    assert "hylac-tiny" in codec.available_models()
    model = codec.load("hylac-tiny")
    assert model.name == "hylac-tiny" and not model.training
    assert abs(model.bitrate - 2139.04) < 0.1
    entry = json.loads((ASSETS / "manifest.jsonl").read_text(encoding="utf-8").splitlines()[0])
    wav, sr = sf.read(str(ASSETS / entry["path"]), dtype="float32")
    latents = model.encode(torch.from_numpy(wav), sr)
    n = round(len(wav) * 24000 / sr)
    assert latents.num_samples == n and latents.num_frames == -(-n // 1920)
    out = model.decode(latents)
    assert out.shape == (1, 1, n)
    assert torch.isfinite(out).all() and float(out.pow(2).mean().sqrt()) > 1e-3  # not silent
    # The output is on the input's timeline (the quality benchmark scores hylac without a
    # delay search): intelligibility is best unshifted, clearly lower 20 ms either way.
    x, y, shift = wav, out[0, 0].numpy(), 480  # the bundled clips are at 24 kHz
    stoi_at = {0: metrics.stoi(x, y, sr), shift: metrics.stoi(x[:-shift], y[shift:], sr),
               -shift: metrics.stoi(x[shift:], y[:-shift], sr)}
    assert stoi_at[0] > max(stoi_at[shift], stoi_at[-shift]) + 0.02, stoi_at


def test_shipped_model_card_and_size() -> None:
    folder = Path(codec.__file__).parent / "pretrained" / "hylac-tiny"
    assert (folder / "README.md").is_file()
    assert (folder / "model.safetensors").stat().st_size < 60 * 1024 * 1024


def test_bundled_clips_have_a_manifest() -> None:
    entries = [json.loads(line) for line in (ASSETS / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {e["lang"] for e in entries} == set(codec.LANGUAGES)
    for e in entries:
        info = sf.info(str(ASSETS / e["path"]))
        assert info.samplerate == 24000 and info.duration >= 3.0


def test_bundled_real_recordings_round_trip() -> None:
    """The public-domain human recordings (16 kHz, the corpus voices are all synthetic) are
    listed with transcripts and come back from hylac-tiny at their length, recognisably."""
    folder = ASSETS / "real"
    assert (folder / "README.md").is_file()
    entries = [json.loads(line) for line in (folder / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(entries) == 5
    for e in entries:
        info = sf.info(str(folder / e["path"]))
        assert info.samplerate == 16000 and info.channels == 1
        assert abs(info.duration - e["duration"]) < 0.01
        assert e["lang"] == "en" and e["split"] == "real" and e["text"] and e["phonemes"]
    model = codec.load("hylac-tiny")
    shortest = min(entries, key=lambda e: e["duration"])
    wav, sr = sf.read(str(folder / shortest["path"]), dtype="float32")
    out = model.decode(model.encode(torch.from_numpy(wav), sr))[0, 0]
    assert out.shape == (round(len(wav) * 24000 / sr),)
    ref = metrics.resample(wav, sr, 24000)
    # Another utterance scores about 0.2 and white noise 0.45; hylac-tiny about 0.85 here.
    assert metrics.stoi(ref, out.numpy(), 24000) > 0.75


def test_hylac_tts_tiny_is_shipped_and_speaks() -> None:
    import tts
    from tts.config import SamplingConfig

    assert "hylac-tts-tiny" in tts.available_models()
    folder = Path(tts.__file__).parent / "pretrained" / "hylac-tts-tiny"
    assert (folder / "README.md").is_file()
    assert (folder / "model.safetensors").stat().st_size < 60 * 1024 * 1024
    synth = tts.load("hylac-tts-tiny")
    entry = json.loads((ASSETS / "manifest.jsonl").read_text(encoding="utf-8").splitlines()[0])
    audio = synth.generate("Hello there.", entry["lang"], ASSETS / entry["path"],
                           sampling=SamplingConfig(max_seconds=4.0), seed=0)
    assert audio.dim() == 1 and 0 < audio.numel() <= 4 * 24000 + 1920
    assert torch.isfinite(audio).all() and float(audio.pow(2).mean().sqrt()) > 1e-3
