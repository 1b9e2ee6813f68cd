"""A multilingual, multi-speaker speech corpus synthesised offline.

Voices come from three engines installed as Debian packages:
- MBROLA diphone voices (recorded human diphones) driven by espeak-ng (``espeak-ng -v mb-us1``);
- Festival voices (``text2wave``: diphone voices and the HTS voice ``cmu_us_slt_arctic_hts``);
- espeak-ng's own formant voices with variants (``en-us+m3``).

A *voice* is one of those; a *speaker* is a voice at one speaking rate and pitch, so one voice
yields `CorpusConfig.speakers_per_voice` speakers. Voices, not speakers, are assigned to the
train / valid / test splits, so no held-out voice is heard in training at any rate or pitch.

Sentences come from offline sources: the Debian ``fortunes`` packages (en de es it pt),
``faker`` lorem text (fr nl ar: real words of the language in random order) and
``wordfreq`` word lists composed into sentences (hi). Everything is seeded: the same
config gives the same sentences, speakers, files and manifest whatever the worker count.

Layout written under ``out``::

    audio/<lang>/<speaker>/<speaker>-<k>.flac   24 kHz mono 16-bit FLAC, about -20 dBFS RMS
    manifest.jsonl                              all splits, one JSON object per utterance
    train.jsonl  valid.jsonl  test.jsonl        the same records split by voice

Each record: ``{"path", "text", "phonemes", "lang", "speaker", "duration", "split"}`` with
``path`` relative to the manifest's folder. Building is resumable: an utterance whose FLAC
exists is not synthesised again (files are written under a temporary name and renamed).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import time
import unicodedata
import zlib
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from codec.phonemes import ESPEAK_VOICES, LANGUAGES, phonemize_many

SAMPLE_RATE = 24000
SPLITS = ("train", "valid", "test")
FORTUNE_DIR = Path("/usr/share/games/fortunes")


@dataclass(frozen=True)
class Voice:
    """One synthetic voice.

    Attributes:
        name: stable identifier used in speaker ids, e.g. ``"mb-us1"``, ``"fest-kal"``.
        lang: language code (one of `codec.phonemes.LANGUAGES`).
        engine: ``"espeak"`` (espeak-ng, including MBROLA voices) or ``"festival"``.
        voice: the engine's voice name: ``"mb-us1"``, ``"en-us+m3"``, ``"kal_diphone"``.
        split: ``"train"``, ``"valid"`` or ``"test"``.
    """

    name: str
    lang: str
    engine: str
    voice: str
    split: str = "train"

    def __post_init__(self) -> None:
        if self.engine not in ("espeak", "festival"):
            raise ValueError(f"voice {self.name}: unknown engine {self.engine!r}")
        if self.split not in SPLITS:
            raise ValueError(
                f"voice {self.name}: split must be one of {SPLITS}, not {self.split!r}"
            )
        if self.lang not in LANGUAGES:
            raise ValueError(f"voice {self.name}: unsupported language {self.lang!r}")


def _mb(name: str, lang: str, split: str = "train") -> Voice:
    return Voice(f"mb-{name}", lang, "espeak", f"mb-{name}", split)


def _es(lang: str, variant: str, split: str = "train") -> Voice:
    return Voice(
        f"espeak-{lang}-{variant}", lang, "espeak", f"{ESPEAK_VOICES[lang]}+{variant}", split
    )


def _fest(name: str, lang: str, voice: str, split: str = "train") -> Voice:
    return Voice(f"fest-{name}", lang, "festival", voice, split)


# The default voice table. Held-out voices: one MBROLA voice per language where two or more
# exist (so the test split has recorded-diphone speech, which pocketsphinx recognises in
# English), otherwise an espeak-ng variant. MBROLA's Spanish (es1-4, mx1-2), Hindi (in1-2),
# Dutch nl1 and Italian it1-2 voices are left out: espeak-ng asks them for 10-30% of diphones
# they lack, which come out as gaps of silence inside words.
VOICES: tuple[Voice, ...] = (
    # English
    _mb("us1", "en"),
    _mb("us2", "en"),
    _mb("us3", "en", "test"),
    _mb("en1", "en", "valid"),
    _fest("kal", "en", "kal_diphone"),
    _fest("ked", "en", "ked_diphone"),
    _fest("rab", "en", "rab_diphone"),
    _fest("slt", "en", "cmu_us_slt_arctic_hts"),
    _es("en", "m3"),
    _es("en", "f2"),
    _es("en", "m7"),
    _es("en", "f4", "test"),
    # French
    _mb("fr1", "fr"),
    _mb("fr2", "fr"),
    _mb("fr3", "fr"),
    _mb("fr4", "fr", "test"),
    _mb("fr5", "fr"),
    _mb("fr6", "fr", "valid"),
    _mb("fr7", "fr"),
    _es("fr", "m3"),
    _es("fr", "f2"),
    # German
    _mb("de1", "de"),
    _mb("de2", "de", "test"),
    _mb("de3", "de"),
    _mb("de4", "de"),
    _mb("de5", "de", "valid"),
    _mb("de6", "de"),
    _mb("de7", "de"),
    _es("de", "m3"),
    _es("de", "f2"),
    # Spanish
    _fest("el", "es", "el_diphone"),
    _es("es", "m3"),
    _es("es", "f2"),
    _es("es", "m1", "valid"),
    _es("es", "f4", "test"),
    # Italian
    _mb("it3", "it"),
    _mb("it4", "it", "test"),
    _fest("pc", "it", "pc_diphone"),
    _fest("lp", "it", "lp_diphone", "valid"),
    _es("it", "m3"),
    _es("it", "f2"),
    # Portuguese
    _mb("br1", "pt"),
    _mb("br2", "pt", "valid"),
    _mb("br3", "pt"),
    _mb("br4", "pt", "test"),
    _mb("pt1", "pt"),
    _es("pt", "m3"),
    _es("pt", "f2"),
    # Dutch
    _mb("nl2", "nl"),
    _mb("nl3", "nl", "test"),
    _es("nl", "m3"),
    _es("nl", "f2"),
    _es("nl", "m1", "valid"),
    # Hindi
    _es("hi", "m3"),
    _es("hi", "f2"),
    _es("hi", "m1"),
    _es("hi", "f4", "test"),
    _es("hi", "m7", "valid"),
    # Arabic
    _mb("ar1", "ar"),
    _mb("ar2", "ar", "test"),
    _es("ar", "m3"),
    _es("ar", "f2"),
    _es("ar", "m1", "valid"),
)

# Speaking rates (espeak-ng words per minute) and pitches (0-99) speakers are drawn from.
# Festival has no pitch option; its rate is applied as a duration stretch of 175 / rate.
RATES = (140, 155, 170, 185, 200)
PITCHES = (30, 40, 50, 60, 70)


@dataclass(frozen=True)
class Speaker:
    """A voice at one speaking rate and pitch; `id` names it in the manifest."""

    id: str
    voice: Voice
    rate: int
    pitch: int


@dataclass
class CorpusConfig:
    """What to build.

    Attributes:
        out: output folder.
        hours: target hours of *training* audio; valid and test add
            ``heldout_fraction`` of it each.
        seed: seeds sentence order and speaker rates/pitches.
        workers: synthesis processes (results do not depend on it).
        langs: languages to include.
        speakers_per_voice: distinct (rate, pitch) speakers made from each voice.
        heldout_fraction: size of valid and of test, relative to ``hours``.
        min_seconds, max_seconds: utterances outside this range are discarded.
        max_missing_diphones: an MBROLA utterance for which more diphones were missing
            (and replaced by silence) is discarded.
        voices: the voice table (default `VOICES`), filtered by ``langs``.
        sentences: sentence pools per language (default: `load_sentences`).
    """

    out: Path
    hours: float = 10.0
    seed: int = 0
    workers: int = 2
    langs: tuple[str, ...] = LANGUAGES
    speakers_per_voice: int = 2
    heldout_fraction: float = 0.05
    min_seconds: float = 1.5
    max_seconds: float = 8.0
    max_missing_diphones: int = 2
    voices: tuple[Voice, ...] = VOICES
    sentences: dict[str, list[str]] | None = None

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.langs = tuple(self.langs)
        for lang in self.langs:
            if lang not in LANGUAGES:
                raise ValueError(f"unsupported language {lang!r}: expected some of {LANGUAGES}")
        if self.hours <= 0:
            raise ValueError(f"hours must be positive, got {self.hours}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if not 1 <= self.speakers_per_voice <= len(RATES):
            raise ValueError(f"speakers_per_voice must be in 1..{len(RATES)}")
        if not 0 < self.min_seconds < self.max_seconds:
            raise ValueError("need 0 < min_seconds < max_seconds")


@dataclass
class CorpusSummary:
    """What `build_corpus` wrote."""

    manifest: Path
    utterances: dict[str, int]  # split -> count
    hours: dict[str, float]  # split -> hours of audio
    speakers: dict[str, int]  # split -> number of speakers
    synthesized: int  # utterances synthesised by this run (the rest existed already)
    discarded: int  # synthesis results outside the duration range or with missing diphones
    seconds: float  # wall time of the build
    per_lang_hours: dict[str, float] = field(default_factory=dict)


# ----------------------------------------------------------------------------- sentences

_EN_FORTUNES = (
    "fortunes",
    "literature",
    "riddles",
    "wisdom",
    "people",
    "humorists",
    "love",
    "pets",
    "food",
    "education",
    "platitudes",
    "science",
    "sports",
    "work",
    "men-women",
    "miscellaneous",
    "kids",
    "law",
    "medicine",
    "politics",
    "songs-poems",
    "tao",
    "magic",
    "goedel",
    "pratchett",
    "news",
    "definitions",
    "paradoxum",
    "computers",
    "startrek",
)
_FORTUNE_SUBDIRS = {"de": "de", "es": "es", "it": "it"}
_SKIP_FORTUNES = {"asciiart", "banner", "translations"}


def _fortune_files(lang: str) -> list[Path]:
    if lang == "en":
        return [FORTUNE_DIR / n for n in _EN_FORTUNES if (FORTUNE_DIR / n).is_file()]
    if lang == "pt":
        return [p for p in [FORTUNE_DIR / "brasil"] if p.is_file()]
    sub = FORTUNE_DIR / _FORTUNE_SUBDIRS.get(lang, "?")
    if not sub.is_dir():
        return []
    # Offensive sections live in an "off" subfolder, which is not descended into.
    return sorted(
        p
        for p in sub.iterdir()
        if p.is_file()
        and not p.name.endswith((".dat", ".u8", "-pre"))
        and p.name not in _SKIP_FORTUNES
    )


_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+")
_ABBREV = re.compile(
    r"(?:^|\s)(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|Sra|Prof|Sig|Dott|Hr|Fr|vs|etc|ca|bzw|usw|z|B|Nr|Av)\.$"
)
_IT_ACCENT = {"a'": "à", "e'": "è", "i'": "ì", "o'": "ò", "u'": "ù"}


def _split_fortunes(raw: str, lang: str) -> list[str]:
    sentences = []
    for cookie in raw.split("\n%\n"):
        lines = []
        for line in cookie.splitlines():
            s = line.strip()
            if s.startswith(("--", "—", "-- ")):
                break  # attribution: the author's name, not part of the text
            lines.append(s)
        text = " ".join(lines)
        if lang == "it":
            # Italian fortunes write accents as apostrophes: "perche'" -> "perchè".
            text = re.sub(r"([aeiou])'(?=[\s.,;:!?]|$)", lambda m: _IT_ACCENT[m.group(0)], text)
        for piece in _SENT_SPLIT.split(text):
            # Rejoin what was split after an abbreviation ("Dr. Smith", "z. B.").
            if sentences and _ABBREV.search(sentences[-1]) and piece[:1].isalpha():
                sentences[-1] += " " + piece
            else:
                sentences.append(piece)
    return sentences


def _script_ok(ch: str, lang: str) -> bool:
    if lang == "hi":
        return "\u0900" <= ch <= "\u097f"
    if lang == "ar":
        return "\u0600" <= ch <= "\u06ff"
    return unicodedata.name(ch, "").startswith("LATIN")


_PUNCT_OK = set(" ,.;:!?'-")


def clean_sentence(text: str, lang: str, min_chars: int = 15, max_chars: int = 110) -> str | None:
    """Normalise a candidate sentence, or None if it is unsuitable for reading aloud.

    Kept: letters of the language's script, spaces and ``, . ; : ! ? ' -``. Rejected: digits,
    other symbols, words in capitals (acronyms get spelled out), wrong length.
    """
    t = text.replace("’", "'").replace("`", "'")
    t = re.sub(r"[\"«»“”„()\[\]_*]", "", t)
    t = re.sub(r"\s+", " ", t).strip(" -'")
    if not min_chars <= len(t) <= max_chars:
        return None
    if lang in ("hi", "ar"):
        t = t.replace("।", ".").replace("؟", "?").replace("،", ",")
    for ch in t:
        if (
            ch not in _PUNCT_OK
            and not (ch.isalpha() and _script_ok(ch, lang))
            and not (
                lang in ("hi", "ar")
                and unicodedata.category(ch).startswith("M")
                and _script_ok(ch, lang)
            )
        ):
            return None
    if lang not in ("hi", "ar") and any(len(w) >= 2 and w.isupper() for w in re.findall(r"\w+", t)):
        return None
    if not any(ch.isalpha() for ch in t):
        return None
    if lang not in ("hi", "ar") and not t[0].isupper():
        return None  # a fragment: starts mid-sentence
    if t[-1] not in ".!?":
        t += "."
    return t


def _faker_sentences(lang: str, n: int, seed: int) -> list[str]:
    try:
        from faker import Faker
    except ImportError as e:
        raise RuntimeError(
            f"sentences for {lang!r} come from faker: pip install 'hylac[corpus]'"
        ) from e
    locale = {
        "fr": "fr_FR",
        "nl": "nl_NL",
        "ar": "ar_AA",
        "en": "en_US",
        "de": "de_DE",
        "es": "es_ES",
        "it": "it_IT",
    }[lang]
    fake = Faker(locale)
    fake.seed_instance(seed)
    rng = np.random.default_rng([seed, zlib.crc32(lang.encode())])
    return [
        fake.sentence(nb_words=int(rng.integers(5, 13)), variable_nb_words=False) for _ in range(n)
    ]


def _wordfreq_sentences(lang: str, n: int, seed: int) -> list[str]:
    try:
        import wordfreq
    except ImportError as e:
        raise RuntimeError(
            f"sentences for {lang!r} come from wordfreq: pip install 'hylac[corpus]'"
        ) from e
    words = [
        w
        for w in wordfreq.top_n_list(lang, 4000)
        if len(w) >= 2 and all(_script_ok(c, lang) for c in w)
    ]
    # Square-rooted frequencies: function words stay common, content words get a fair share.
    p = np.array([wordfreq.word_frequency(w, lang) for w in words]) ** 0.5
    p /= p.sum()
    rng = np.random.default_rng([seed, zlib.crc32(lang.encode())])
    end = "।" if lang == "hi" else "."
    out = []
    for _ in range(n):
        k = int(rng.integers(5, 13))
        out.append(" ".join(words[i] for i in rng.choice(len(words), size=k, p=p)) + end)
    return out


def load_sentences(lang: str, seed: int = 0, generated: int = 3000) -> list[str]:
    """The sentence pool for `lang`, cleaned, deduplicated and shuffled with `seed`.

    Sources: Debian fortunes (en de es it pt) when installed, else or additionally generated
    text: faker lorem (fr nl ar) or wordfreq words (hi), ``generated`` sentences.
    """
    if lang not in LANGUAGES:
        raise ValueError(f"unsupported language {lang!r}: expected one of {LANGUAGES}")
    raw: list[str] = []
    for path in _fortune_files(lang):
        raw.extend(_split_fortunes(path.read_text("utf-8", errors="replace"), lang))
    if lang in ("fr", "nl", "ar"):
        raw.extend(_faker_sentences(lang, generated, seed))
    elif lang == "hi":
        raw.extend(_wordfreq_sentences(lang, generated, seed))
    elif not raw:
        # fortunes not installed: fall back to faker's word lists for this language.
        raw.extend(
            _faker_sentences(lang, generated, seed)
            if lang != "pt"
            else _wordfreq_sentences(lang, generated, seed)
        )
    cleaned = sorted({c for s in raw if (c := clean_sentence(s, lang)) is not None})
    if not cleaned:
        raise RuntimeError(f"no usable sentences for {lang!r}: install fortunes packages or faker")
    rng = np.random.default_rng([seed, zlib.crc32(("sentences-" + lang).encode())])
    return [cleaned[i] for i in rng.permutation(len(cleaned))]


# ----------------------------------------------------------------------------- synthesis


def make_speakers(voices: Sequence[Voice], per_voice: int, seed: int) -> list[Speaker]:
    """`per_voice` speakers per voice with distinct (rate, pitch), drawn with `seed`."""
    if not 1 <= per_voice <= len(RATES):
        raise ValueError(f"speakers per voice must be in 1..{len(RATES)}, got {per_voice}")
    speakers = []
    for v in voices:
        rng = np.random.default_rng([seed, zlib.crc32(v.name.encode())])
        # Distinct rates and distinct pitches, so a voice's speakers differ in both.
        rates = rng.choice(RATES, size=per_voice, replace=False)
        pitches = rng.choice(PITCHES, size=per_voice, replace=False)
        if v.engine == "festival":
            pitches = [50] * per_voice  # text2wave has no pitch option
        for rate, pitch in sorted(zip(rates.tolist(), list(pitches), strict=True)):
            speakers.append(Speaker(f"{v.name}_r{rate}_p{pitch}", v, int(rate), int(pitch)))
    return speakers


def _which(cmd: str, package: str) -> None:
    if shutil.which(cmd) is None:
        raise RuntimeError(f"{cmd} not found: install the Debian package {package}")


def _espeak_one(speaker: Speaker, text: str, tmp: Path) -> tuple[np.ndarray, int, int]:
    wav = tmp / "out.wav"
    cmd = [
        "espeak-ng",
        "-v",
        speaker.voice.voice,
        "-s",
        str(speaker.rate),
        "-p",
        str(speaker.pitch),
        "-w",
        str(wav),
        "--stdin",
    ]
    res = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, timeout=120)
    err = res.stderr.decode("utf-8", errors="replace")
    if res.returncode != 0 or not wav.is_file() or wav.stat().st_size <= 44:
        raise RuntimeError(
            f"espeak-ng voice {speaker.voice.voice} failed on {text!r}: {err.strip()[:300]}"
        )
    x, sr = sf.read(str(wav), dtype="float32", always_2d=True)
    # MBROLA reports each diphone its voice lacks; it plays silence in its place.
    return x.mean(axis=1), sr, err.count("unknown, replaced")


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _festival_many(
    speaker: Speaker, texts: Sequence[str], tmp: Path
) -> list[tuple[np.ndarray, int, int]]:
    # One festival process for the whole batch: loading a voice costs far more than
    # synthesising a sentence. Output is identical to text2wave's, sentence by sentence.
    lines = [
        f"(voice_{speaker.voice.voice})",
        f"(Parameter.set 'Duration_Stretch {175.0 / speaker.rate:.3f})",
    ]
    for i, text in enumerate(texts):
        lines.append(
            f'(utt.save.wave (SynthText {_scheme_string(text)}) "{tmp / f"{i}.wav"}" \'riff)'
        )
    script = tmp / "batch.scm"
    # Festival reads 8-bit text; its Spanish and Italian voices expect Latin-1.
    script.write_bytes("\n".join(lines).encode("latin-1", errors="replace"))
    res = subprocess.run(["festival", "--batch", str(script)], capture_output=True, timeout=600)
    err = (res.stderr + res.stdout).decode("utf-8", errors="replace")
    out = []
    for i, text in enumerate(texts):
        wav = tmp / f"{i}.wav"
        if res.returncode != 0 or not wav.is_file() or wav.stat().st_size <= 44:
            raise RuntimeError(
                f"festival voice {speaker.voice.voice} failed on {text!r}: {err.strip()[:300]}"
            )
        x, sr = sf.read(str(wav), dtype="float32", always_2d=True)
        out.append((x.mean(axis=1), sr, 0))
    return out


def synthesize_many(speaker: Speaker, texts: Sequence[str]) -> list[tuple[np.ndarray, int, int]]:
    """Run the speaker's engine on each text.

    Returns:
        Per text: (samples [N] float32, sample rate, number of diphones MBROLA lacked and
        replaced with silence).

    Raises:
        RuntimeError: the engine failed (its message is included).
    """
    if not texts:
        return []
    with tempfile.TemporaryDirectory(prefix="hylac-tts-") as tmp:
        if speaker.voice.engine == "festival":
            return _festival_many(speaker, texts, Path(tmp))
        return [_espeak_one(speaker, t, Path(tmp)) for t in texts]


def finish_audio(x: np.ndarray, sr: int, target_db: float = -20.0) -> np.ndarray:
    """Resample to 24 kHz, trim silence at both ends (keeping 0.1 s), normalise the RMS.

    Args:
        x: [N] float samples at `sr`.
    Returns:
        [M] float32 at 24 kHz, RMS `target_db` dBFS unless that would push the peak past 0.99.
    """
    import soxr

    y = soxr.resample(x.astype(np.float64), sr, SAMPLE_RATE, quality="HQ").astype(np.float32)
    hop = SAMPLE_RATE // 100
    n = len(y) // hop
    if n == 0:
        return y
    rms = np.sqrt((y[: n * hop].reshape(n, hop) ** 2).mean(axis=1) + 1e-12)
    active = np.nonzero(rms > max(rms.max() * 10 ** (-40 / 20), 1e-4))[0]
    if len(active) == 0:
        return np.zeros(0, np.float32)
    margin = SAMPLE_RATE // 10
    y = y[max(0, active[0] * hop - margin) : min(len(y), (active[-1] + 1) * hop + margin)]
    gain = 10 ** (target_db / 20) / max(float(np.sqrt((y**2).mean())), 1e-8)
    gain = min(gain, 0.99 / max(float(np.abs(y).max()), 1e-8))
    return (y * gain).astype(np.float32)


@dataclass
class _Task:
    speaker: Speaker
    out: Path
    sentences: list[str]
    target_seconds: float
    min_seconds: float
    max_seconds: float
    max_missing_diphones: int
    seed: int


def _speaker_dir(out: Path, spk: Speaker) -> Path:
    return out / "audio" / spk.voice.lang / spk.id


def _run_speaker(task: _Task) -> tuple[list[dict], int, int]:
    """Synthesise one speaker's utterances until its target duration is reached.

    Sentences are drawn in a fixed order seeded by (seed, speaker), so the result depends on
    nothing else. Returns (records without phonemes, synthesised count, discarded count).
    """
    spk = task.speaker
    folder = _speaker_dir(task.out, spk)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([task.seed, zlib.crc32(spk.id.encode())])
    pool = task.sentences
    order = rng.permutation(len(pool))
    records: list[dict] = []
    total = 0.0
    synthesized = discarded = 0
    # Each candidate is tried once; after three passes over the pool the voice is taken to
    # be unable to produce more usable audio for these sentences.
    limit = 3 * len(pool)
    k = 0
    while total < task.target_seconds and k < limit:
        # Synthesise about as many candidates as the remaining duration needs (~3 s each),
        # in one batch; unused ones are dropped, so the result does not depend on batching.
        n = min(16, max(1, math.ceil((task.target_seconds - total) / 3.0)), limit - k)
        chunk = [(j, f"{spk.id}-{j:05d}", pool[order[j % len(pool)]]) for j in range(k, k + n)]
        k += n
        todo = [(j, text) for j, uid, text in chunk if not (folder / f"{uid}.flac").exists()]
        made = dict(
            zip([j for j, _ in todo], synthesize_many(spk, [t for _, t in todo]), strict=True)
        )
        for j, uid, text in chunk:
            if total >= task.target_seconds:
                break
            path = folder / f"{uid}.flac"
            if j not in made:
                duration = sf.info(str(path)).frames / SAMPLE_RATE
            else:
                x, sr, missing = made[j]
                y = finish_audio(x, sr)
                duration = len(y) / SAMPLE_RATE
                synthesized += 1
                if (
                    missing > task.max_missing_diphones
                    or not task.min_seconds <= duration <= task.max_seconds
                ):
                    discarded += 1
                    continue
                tmp = path.with_name(path.name + ".tmp")
                sf.write(str(tmp), y, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
                os.replace(tmp, path)
            records.append(
                {
                    "path": path.relative_to(task.out).as_posix(),
                    "text": text,
                    "lang": spk.voice.lang,
                    "speaker": spk.id,
                    "duration": round(duration, 4),
                    "split": spk.voice.split,
                }
            )
            total += duration
    return records, synthesized, discarded


def _write_jsonl(path: Path, records: Sequence[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def build_corpus(config: CorpusConfig) -> CorpusSummary:
    """Synthesise the corpus described by `config` and write its manifests.

    Per-speaker targets: the training hours are shared equally among the training speakers;
    valid and test each get ``heldout_fraction`` of them, shared among their speakers; every
    speaker gets at least one utterance.
    """
    t0 = time.time()
    _which("espeak-ng", "espeak-ng")
    voices = [v for v in config.voices if v.lang in config.langs]
    if any(v.engine == "festival" for v in voices):
        _which("festival", "festival")
    if not any(v.split == "train" for v in voices):
        raise ValueError("no training voice for the selected languages")
    speakers = make_speakers(voices, config.speakers_per_voice, config.seed)
    counts = {s: sum(1 for p in speakers if p.voice.split == s) for s in SPLITS}
    seconds = {
        "train": config.hours * 3600,
        "valid": config.hours * 3600 * config.heldout_fraction,
        "test": config.hours * 3600 * config.heldout_fraction,
    }
    pools = {}
    for lang in sorted({v.lang for v in voices}):
        given = (config.sentences or {}).get(lang)
        pools[lang] = list(given) if given else load_sentences(lang, config.seed)
    config.out.mkdir(parents=True, exist_ok=True)
    tasks = [
        _Task(
            speaker=s,
            out=config.out,
            sentences=pools[s.voice.lang],
            target_seconds=seconds[s.voice.split] / max(counts[s.voice.split], 1),
            min_seconds=config.min_seconds,
            max_seconds=config.max_seconds,
            max_missing_diphones=config.max_missing_diphones,
            seed=config.seed,
        )
        for s in speakers
    ]
    if config.workers == 1:
        results = [_run_speaker(t) for t in tasks]
    else:
        with ProcessPoolExecutor(config.workers) as pool:
            # map keeps task order, so the manifest does not depend on scheduling.
            results = list(pool.map(_run_speaker, tasks))
    records = [r for recs, _, _ in results for r in recs]
    for lang in pools:
        idx = [i for i, r in enumerate(records) if r["lang"] == lang]
        for i, ph in zip(idx, phonemize_many([records[i]["text"] for i in idx], lang), strict=True):
            records[i]["phonemes"] = ph
    keys = ("path", "text", "phonemes", "lang", "speaker", "duration", "split")
    records = [{k: r[k] for k in keys} for r in records]
    manifest = config.out / "manifest.jsonl"
    _write_jsonl(manifest, records)
    for split in SPLITS:
        _write_jsonl(config.out / f"{split}.jsonl", [r for r in records if r["split"] == split])
    return CorpusSummary(
        manifest=manifest,
        utterances={s: sum(1 for r in records if r["split"] == s) for s in SPLITS},
        hours={s: sum(r["duration"] for r in records if r["split"] == s) / 3600 for s in SPLITS},
        speakers={s: len({r["speaker"] for r in records if r["split"] == s}) for s in SPLITS},
        synthesized=sum(n for _, n, _ in results),
        discarded=sum(d for _, _, d in results),
        seconds=time.time() - t0,
        per_lang_hours={
            lang: sum(r["duration"] for r in records if r["lang"] == lang) / 3600 for lang in pools
        },
    )
