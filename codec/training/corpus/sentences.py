"""Sentences to speak, from offline sources: fortunes, faker lorem text and wordfreq word lists."""


from __future__ import annotations

import importlib
import re
import unicodedata
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from codec.training.phonemes import LANGUAGES

FORTUNE_DIR = Path("/usr/share/games/fortunes")


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


def _corpus_package(name: str, lang: str) -> Any:
    """The optional package ``name`` that sentences for ``lang`` come from."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise RuntimeError(f"sentences for {lang!r} come from {name}: pip install 'hylac[corpus]'") from e


def _faker_sentences(lang: str, n: int, seed: int) -> list[str]:
    Faker = _corpus_package("faker", lang).Faker
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
    wordfreq = _corpus_package("wordfreq", lang)
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
