import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from codec.latents import SAMPLE_RATE
from codec.training.corpus import (
    VOICES,
    CorpusConfig,
    Voice,
    build_corpus,
    clean_sentence,
    finish_audio,
    make_speakers,
)
from codec.training.phonemes import LANGUAGES, phonemize

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng not installed (Debian package espeak-ng)"
)

HAS_MBROLA = shutil.which("mbrola") is not None and Path("/usr/share/mbrola/us1").exists()

SENTENCES = {
    "en": [
        "The quick brown fox jumps over the lazy dog.",
        "She sells sea shells by the sea shore.",
        "A journey of a thousand miles begins with one step.",
        "We walked home slowly through the quiet park.",
    ],
    "fr": [
        "Le petit chat dort sur le canapé.",
        "Nous allons au marché tous les samedis matin.",
        "Il fait froid ce soir, prends ton manteau.",
        "La musique adoucit les moeurs.",
    ],
}

TEST_VOICES = (
    Voice(
        "mb-us1" if HAS_MBROLA else "en-a", "en", "espeak", "mb-us1" if HAS_MBROLA else "en-us+m3"
    ),
    Voice("en-b", "en", "espeak", "en-us+f2", "test"),
    Voice("fr-a", "fr", "espeak", "fr+m3"),
    Voice("fr-b", "fr", "espeak", "fr+f2", "valid"),
)


def _config(out: Path, workers: int = 1) -> CorpusConfig:
    return CorpusConfig(
        out=out,
        hours=0.004,
        seed=3,
        workers=workers,
        langs=("en", "fr"),
        speakers_per_voice=1,
        voices=TEST_VOICES,
        sentences=SENTENCES,
    )


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    summary = build_corpus(_config(out))
    return out, summary


def test_manifest_schema_audio_and_splits(corpus):
    out, summary = corpus
    recs = _read_jsonl(out / "manifest.jsonl")
    assert len(recs) == sum(summary.utterances.values()) >= 4
    for r in recs:
        assert list(r) == ["path", "text", "phonemes", "lang", "speaker", "duration", "split", "source", "license"]
        assert r["source"] in ("mbrola", "festival", "espeak-ng") and r["license"]
        assert r["lang"] in ("en", "fr") and r["split"] in ("train", "valid", "test")
        assert r["text"] in SENTENCES[r["lang"]]
        assert r["phonemes"] == phonemize(r["text"], r["lang"])
        path = out / r["path"]
        assert path.suffix == ".flac" and path.is_relative_to(
            out / "audio" / r["lang"] / r["speaker"]
        )
        info = sf.info(str(path))
        assert (info.samplerate, info.channels, info.format) == (SAMPLE_RATE, 1, "FLAC")
        assert abs(info.frames / SAMPLE_RATE - r["duration"]) < 1e-3
        assert 1.5 <= r["duration"] <= 8.0
        x, _ = sf.read(str(path), dtype="float32")
        rms_db = 20 * np.log10(np.sqrt((x**2).mean()))
        assert np.abs(x).max() <= 0.995, "no clipping"
        assert -23 < rms_db < -17, f"loudness {rms_db:.1f} dBFS"
    # every split file holds exactly the manifest's records of that split
    for split in ("train", "valid", "test"):
        assert _read_jsonl(out / f"{split}.jsonl") == [r for r in recs if r["split"] == split]
    speakers = {
        s: {r["speaker"] for r in recs if r["split"] == s} for s in ("train", "valid", "test")
    }
    assert all(speakers.values()), "each split has speakers"
    assert not speakers["train"] & speakers["valid"]
    assert not speakers["train"] & speakers["test"]
    assert not speakers["valid"] & speakers["test"]
    # each voice's speakers all land in the voice's split
    for v in TEST_VOICES:
        assert {r["split"] for r in recs if r["speaker"].startswith(v.name + "_")} == {v.split}


def test_deterministic_and_resumable(corpus, tmp_path):
    out, _ = corpus
    again = tmp_path / "again"
    build_corpus(_config(again, workers=2))  # a different worker count changes nothing
    assert (again / "manifest.jsonl").read_bytes() == (out / "manifest.jsonl").read_bytes()
    recs = _read_jsonl(out / "manifest.jsonl")
    for r in recs:
        assert (again / r["path"]).read_bytes() == (out / r["path"]).read_bytes()
    # resume: a missing file is made again, existing ones are reused as they are
    (again / recs[0]["path"]).unlink()
    mtimes = {r["path"]: (again / r["path"]).stat().st_mtime_ns for r in recs[1:]}
    summary = build_corpus(_config(again))
    # discarded candidates (too short or long) are tried again; one file is written
    assert summary.synthesized - summary.discarded == 1
    assert all((again / p).stat().st_mtime_ns == m for p, m in mtimes.items())
    assert (again / recs[0]["path"]).read_bytes() == (out / recs[0]["path"]).read_bytes()
    assert (again / "manifest.jsonl").read_bytes() == (out / "manifest.jsonl").read_bytes()
    assert not list(again.rglob("*.tmp"))


def test_other_seed_changes_the_corpus(corpus, tmp_path):
    out, _ = corpus
    cfg = _config(tmp_path / "s4")
    cfg.seed = 4
    build_corpus(cfg)
    assert (tmp_path / "s4" / "manifest.jsonl").read_text() != (out / "manifest.jsonl").read_text()


def test_default_voice_table():
    speakers = make_speakers(VOICES, 2, seed=0)
    assert make_speakers(VOICES, 2, seed=0) == speakers
    ids = [s.id for s in speakers]
    assert len(set(ids)) == len(ids)
    assert sum(s.voice.split == "train" for s in speakers) >= 30
    for lang in LANGUAGES:
        splits = {v.split for v in VOICES if v.lang == lang}
        assert splits == {"train", "valid", "test"}, lang
    # two speakers of one voice differ in rate and (outside festival) in pitch
    by_voice = {}
    for s in speakers:
        by_voice.setdefault(s.voice.name, []).append(s)
    for a, b in by_voice.values():
        assert a.rate != b.rate
        assert a.pitch != b.pitch or a.voice.engine == "festival"
    # English test voices include a recorded-diphone (MBROLA) voice
    assert any(v.lang == "en" and v.split == "test" and v.voice.startswith("mb-") for v in VOICES)


def test_clean_sentence():
    assert clean_sentence("“Eloquence is logic on fire”", "en") == "Eloquence is logic on fire."
    assert clean_sentence("It costs 5 dollars at least.", "en") is None  # digits
    assert clean_sentence("The NASA mission was a success.", "en") is None  # acronym
    assert clean_sentence("and then he left the room.", "en") is None  # fragment
    assert clean_sentence("Too short.", "en") is None
    assert clean_sentence("Das Wetter ist heute schön.", "de") == "Das Wetter ist heute schön."
    assert clean_sentence("Hello привет everyone here.", "en") is None  # other script
    assert clean_sentence("आज मौसम अच्छा है और हम चलते हैं।", "hi") == "आज मौसम अच्छा है और हम चलते हैं."


def test_finish_audio_resamples_trims_and_normalises():
    sr = 16000
    t = np.arange(sr) / sr
    tone = 0.05 * np.sin(2 * np.pi * 220 * t)
    x = np.concatenate([np.zeros(sr), tone, np.zeros(sr)]).astype(np.float32)
    y = finish_audio(x, sr)
    # 1 s of tone kept plus 0.1 s margins at 24 kHz (to within a 10 ms analysis frame)
    assert abs(len(y) - 1.2 * SAMPLE_RATE) <= 0.02 * SAMPLE_RATE
    assert abs(20 * np.log10(np.sqrt((y**2).mean())) + 20) < 0.5
    assert np.abs(y).max() <= 0.99


def test_bad_config_is_named(tmp_path):
    with pytest.raises(ValueError, match="unsupported language 'xx'"):
        CorpusConfig(out=tmp_path, langs=("en", "xx"))
    with pytest.raises(ValueError, match="hours"):
        CorpusConfig(out=tmp_path, hours=0)
    with pytest.raises(ValueError, match="engine"):
        Voice("v", "en", "sapi", "x")
