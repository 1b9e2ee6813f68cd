"""What the TTS benchmark speaks and listens to: sentences, real voices, corpus recordings.

- the everyday English sentences (``benchmarks/data/everyday_en.txt``);
- the real human voice of the prompt: the LibriVox reader of ``codec/assets/real/``, which
  no hylac model trains on (``--prompt`` takes another file);
- other real speakers for the different-speaker reference: Debian's Asterisk prompts
  (decoded from G.722 with ffmpeg), when installed;
- corpus recordings: held-out (target, prompt) pairs of one speaker for the ground-truth
  section, and a few test sentences per language (fixed sentences when the corpus has none).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from benchmarks.common import REPO_ROOT

EVERYDAY_EN = REPO_ROOT / "benchmarks" / "data" / "everyday_en.txt"
REAL_DIR = REPO_ROOT / "codec" / "assets" / "real"
ASTERISK_SOUNDS = Path("/usr/share/asterisk/sounds")
#: Asterisk voices used as "another real speaker": one per speaker (es_MX is Allison again).
OTHER_VOICES = ("en_US_f_Allison", "fr_CA_f_June", "it_IT_m_Carlo")
# G.722 at 64 kbit/s is 8000 bytes a second: pick prompts of 3-15 s by file size alone.
G722_BYTES_PER_SECOND = 8000

#: Sentences spoken when the corpus has no test recordings of a language.
FIXED_SENTENCES: dict[str, tuple[str, ...]] = {
    "en": ("The sun is shining today.", "Where is the train station?"),
    "fr": ("Il fait beau aujourd'hui.", "Où est la gare, s'il vous plaît ?"),
    "es": ("Hoy hace buen tiempo.", "¿Dónde está la estación de tren?"),
    "de": ("Heute ist das Wetter schön.", "Wo ist der Bahnhof, bitte?"),
    "it": ("Oggi il tempo è bello.", "Dov'è la stazione, per favore?"),
    "pt": ("Hoje o tempo está bonito.", "Onde fica a estação de trem?"),
    "nl": ("Het is mooi weer vandaag.", "Waar is het station, alstublieft?"),
    "hi": ("आज मौसम अच्छा है।", "रेलवे स्टेशन कहाँ है?"),
    "ar": ("الطقس جميل اليوم.", "أين محطة القطار؟"),
}


@dataclass
class Utterance:
    """One recording: mono float32 ``audio [N]`` at ``sample_rate``."""

    id: str
    text: str
    lang: str
    speaker: str
    audio: np.ndarray
    sample_rate: int

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.sample_rate


@dataclass
class Pair:
    """A sentence to speak (its ground-truth recording) and the voice prompt to speak it with."""

    target: Utterance
    prompt: Utterance
    other_speaker: Utterance  # a recording of someone else, for the different-speaker baseline


@dataclass
class Sentence:
    """A sentence of the language section, with its ground-truth recording when it has one."""

    text: str
    lang: str
    recording: Utterance | None = None


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """Mono float32 ``[N]`` and its rate, from any soundfile format or a raw ``.g722`` prompt."""
    if path.suffix == ".g722":
        raw = subprocess.run(["ffmpeg", "-v", "error", "-f", "g722", "-i", str(path), "-f", "f32le", "-ac", "1",
                              "-ar", "16000", "-"], check=True, capture_output=True).stdout
        return np.frombuffer(raw, dtype=np.float32).copy(), 16000
    audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return audio.mean(axis=1), int(sr)


def read_utterance(path: Path, text: str = "", lang: str = "en", speaker: str = "") -> Utterance:
    audio, sr = read_audio(path)
    return Utterance(path.stem, text, lang, speaker or path.stem, audio, sr)


def everyday_sentences(path: Path = EVERYDAY_EN, count: int | None = None) -> list[str]:
    """The first ``count`` sentences of a one-per-line file (all when ``None``)."""
    lines = [x.strip() for x in path.read_text(encoding="utf-8").splitlines()]
    return [x for x in lines if x and not x.startswith("#")][:count]


def _manifest(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def real_clips(folder: Path = REAL_DIR) -> list[Utterance]:
    """The real recordings of ``folder/manifest.jsonl`` (the LibriVox reader), with transcripts."""
    return [read_utterance(folder / e["path"], e["text"], e["lang"], e["speaker"])
            for e in _manifest(folder / "manifest.jsonl")]


def other_real_voices(per_voice: int = 2) -> tuple[list[Utterance], str | None]:
    """Recordings of real speakers other than the prompt's (Asterisk prompts), or why there are none."""
    if shutil.which("ffmpeg") is None:
        return [], "ffmpeg is not installed (it decodes the Asterisk G.722 prompts)"
    clips = []
    for voice in OTHER_VOICES:
        folder = ASTERISK_SOUNDS / voice
        if not folder.is_dir():
            continue
        files = sorted((p for p in folder.glob("*.g722")
                        if 3 * G722_BYTES_PER_SECOND <= p.stat().st_size <= 15 * G722_BYTES_PER_SECOND),
                       key=lambda p: (-p.stat().st_size, p.name))
        clips += [read_utterance(p, speaker=voice) for p in files[:per_voice]]
    if not clips:
        return [], (f"no Asterisk prompts under {ASTERISK_SOUNDS} ({', '.join(OTHER_VOICES)}; "
                    "apt-get install asterisk-core-sounds-en-g722)")
    return clips, None


def load_pairs(manifest: Path, split: str, lang: str, count: int) -> list[Pair]:
    """Up to ``count`` (target, prompt) pairs of ``lang`` from ``split``; the prompt is the
    speaker's next recording (cyclically), the other speaker's the next speaker's first."""
    root = manifest.parent
    held = [e for e in _manifest(manifest) if e.get("split") == split]
    if not held:
        raise ValueError(f"{manifest}: no utterances in split {split!r}")
    by_speaker: dict[str, list[dict]] = {}
    for e in held:
        by_speaker.setdefault(e["speaker"], []).append(e)
    cache: dict[str, Utterance] = {}

    def utt(e: dict) -> Utterance:
        if e["path"] not in cache:
            cache[e["path"]] = read_utterance(root / e["path"], e["text"], e["lang"], e["speaker"])
        return cache[e["path"]]

    speakers = sorted(by_speaker)
    targets = [e for e in held if e["lang"] == lang and len(by_speaker[e["speaker"]]) > 1][:count]
    if not targets:
        raise ValueError(f"{manifest}: no {lang!r} utterances of split {split!r} with a second utterance "
                         "of the same speaker to prompt with")
    if len(speakers) < 2:
        raise ValueError(f"{manifest}: split {split!r} needs at least two speakers")
    pairs = []
    for e in targets:
        own = by_speaker[e["speaker"]]
        prompt = own[(own.index(e) + 1) % len(own)]
        other = speakers[(speakers.index(e["speaker"]) + 1) % len(speakers)]
        pairs.append(Pair(utt(e), utt(prompt), utt(by_speaker[other][0])))
    return pairs


def language_sentences(manifest: Path | None, split: str, lang: str, count: int) -> list[Sentence]:
    """``count`` test sentences of ``lang`` with their recordings, spread over the split's
    speakers; the fixed sentences (no recordings) when the corpus has none of that language."""
    if manifest is not None and manifest.is_file():
        entries = [e for e in _manifest(manifest) if e.get("split") == split and e.get("lang") == lang]
        # Round-robin over speakers: a language's test voices differ (rate, pitch, engine).
        by_speaker: dict[str, list[dict]] = {}
        for e in entries:
            by_speaker.setdefault(e["speaker"], []).append(e)
        picked: list[dict] = []
        queues = [by_speaker[s] for s in sorted(by_speaker)]
        while len(picked) < count and any(queues):
            for q in queues:
                if q and len(picked) < count:
                    picked.append(q.pop(0))
        if picked:
            root = manifest.parent
            return [Sentence(e["text"], lang, read_utterance(root / e["path"], e["text"], lang, e["speaker"]))
                    for e in picked]
    return [Sentence(text, lang) for text in FIXED_SENTENCES[lang][:count]]
