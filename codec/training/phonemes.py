"""Grapheme-to-phoneme conversion with espeak-ng, and the fixed phoneme vocabulary.

`phonemize(text, lang)` returns IPA as espeak-ng writes it with ``espeak-ng -q --ipa -v VOICE``:
words separated by single spaces, primary/secondary stress marks (ˈ ˌ) and length marks kept,
no tie bars. The text is converted in-process through ``libespeak-ng`` (the library behind the
``espeak-ng`` program, same rules and dictionaries), which keeps a sentence a single unit even
when it contains commas (the command-line program would print one line per clause) and costs
well under a millisecond per sentence, so corpora of thousands of sentences phonemize in seconds.

Normalisation applied to espeak-ng's output, so that one spoken form has one transcription:
- clauses are joined with a space;
- language-switch markers such as ``(en)`` / ``(fr)``, which espeak-ng inserts around words it
  reads with another language's rules, are removed (the phonemes themselves are kept);
- the hyphen espeak-ng writes after unstressed function words (``ʒə- syˌi``) is removed: it
  marks no sound;
- zero-width joiners and tie bars are removed (they only group symbols);
- German: espeak-ng 1.51 has no IPA for its phoneme ``UR`` (as in "Kurs") and prints ``??``;
  it is written ``ʊɾ``, as espeak-ng writes the same sounds elsewhere.

`phoneme_ids` maps an IPA string to ids in `PHONEME_VOCAB`, one id per Unicode code point
(combining marks such as the nasal tilde are symbols of their own). The vocabulary is a fixed
tuple: id 0 is the CTC blank, id 1 the unknown symbol, id 2 the word boundary ``" "``. Model
checkpoints store ids, so the tuple may only ever grow at its end.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import threading
import unicodedata
from collections.abc import Sequence

from codec.languages import ESPEAK_VOICES, LANGUAGES

BLANK = "<blank>"
UNK = "<unk>"
WORD_BOUNDARY = " "

# The fixed vocabulary. Append only: never reorder or remove an entry.
# fmt: off
PHONEME_VOCAB: tuple[str, ...] = (
    BLANK, UNK, WORD_BOUNDARY,
    # suprasegmentals
    "ˈ", "ˌ", "ː", "ˑ", "̆",
    # Latin letters used as IPA consonants and vowels
    "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m",
    "n", "o", "p", "q", "r", "s", "t", "u", "v", "w", "x", "y", "z",
    # IPA vowels
    "æ", "ɐ", "ɑ", "ɒ", "ɔ", "ə", "ɘ", "ɚ", "ɛ", "ɜ", "ɝ", "ɞ", "ɤ", "ɨ", "ɪ", "ɯ", "ɵ",
    "ɶ", "ʉ", "ʊ", "ʌ", "ʏ", "ø", "œ", "ᵻ", "ɩ",
    # IPA consonants
    "ç", "ð", "ŋ", "ɓ", "ɕ", "ɖ", "ɗ", "ɟ", "ɠ", "ɡ", "ɢ", "ɣ", "ɥ", "ɦ", "ɧ", "ɬ", "ɭ",
    "ɮ", "ɰ", "ɱ", "ɲ", "ɳ", "ɴ", "ɸ", "ɹ", "ɺ", "ɻ", "ɽ", "ɾ", "ʀ", "ʁ", "ʂ", "ʃ", "ʄ",
    "ʈ", "ʋ", "ʍ", "ʎ", "ʐ", "ʑ", "ʒ", "ʔ", "ʕ", "ʙ", "ʛ", "ʜ", "ʝ", "ʟ", "ʡ", "ʢ", "β",
    "θ", "χ", "ħ", "ǀ", "ǁ", "ǂ", "ǃ", "ɫ", "ʧ", "ʤ", "ʦ", "ʣ",
    # modifier letters (aspiration, palatalisation, pharyngealisation, rhoticity, ...)
    "ʰ", "ʱ", "ʲ", "ʷ", "ˠ", "ˤ", "ʼ", "˞", "ⁿ", "ˡ",
    # combining diacritics: nasal, syllabic, non-syllabic, dental, voiceless, retracted, ...
    "̃", "̩", "̯", "̪", "̥", "̊", "̠", "̟", "̝", "̞", "̘", "̙", "̤", "̰", "̈", "̽", "̚", "̹", "̜",
    "̺", "̻", "̼", "̴", "̍",
    # other marks espeak-ng may emit inside a word (syllable break, linking)
    "'", ".", "‿",
)
# fmt: on

_ID: dict[str, int] = {}
for _i, _sym in enumerate(PHONEME_VOCAB):
    # setdefault: a symbol listed twice keeps its first id.
    _ID.setdefault(_sym, _i)

BLANK_ID = 0
UNK_ID = 1
WORD_BOUNDARY_ID = 2
NUM_PHONEMES = len(PHONEME_VOCAB)

# espeak-ng API constants (speak_lib.h).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_PHONEMES_IPA = 0x02

_LANG_SWITCH = re.compile(r"\([a-z]{2,3}(?:-[a-z0-9]+)?\)")
_DROP = str.maketrans("", "", "-\u200d\u0361\u035c")
_SPACES = re.compile(r"\s+")
# Per-language repairs of espeak-ng output (see the module docstring).
_FIXES: dict[str, tuple[tuple[str, str], ...]] = {"de": (("??", "ʊɾ"),)}


class _Espeak:
    """Process-wide handle on libespeak-ng; its state is global, hence the lock."""

    def __init__(self) -> None:
        self._lib: ctypes.CDLL | None = None
        self._voice: str | None = None
        self._lock = threading.Lock()

    def _load(self) -> ctypes.CDLL:
        name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        try:
            lib = ctypes.CDLL(name)
        except OSError as e:
            raise RuntimeError(
                "espeak-ng is not installed (libespeak-ng not found): install the Debian package "
                "espeak-ng (apt-get install espeak-ng)"
            ) from e
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_TextToPhonemes.argtypes = [
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.c_int,
            ctypes.c_int,
        ]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        if lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INITIALIZE_DONT_EXIT) <= 0:
            raise RuntimeError(
                "espeak-ng failed to initialise (its data files are missing?): reinstall the "
                "Debian packages espeak-ng and espeak-ng-data"
            )
        return lib

    def phonemize(self, texts: Sequence[str], voice: str) -> list[str]:
        with self._lock:
            if self._lib is None:
                self._lib = self._load()
            lib = self._lib
            if self._voice != voice:
                if lib.espeak_SetVoiceByName(voice.encode()) != 0:
                    raise RuntimeError(f"espeak-ng has no voice {voice!r}")
                self._voice = voice
            out = []
            for text in texts:
                buf = ctypes.create_string_buffer(text.encode("utf-8"))
                ptr = ctypes.c_void_p(ctypes.addressof(buf))
                clauses = []
                # Each call converts one clause and advances `ptr`; NULL marks the end.
                while ptr.value:
                    res = lib.espeak_TextToPhonemes(ctypes.byref(ptr), _CHARS_UTF8, _PHONEMES_IPA)
                    if res:
                        clauses.append(res.decode("utf-8", errors="replace"))
                out.append(" ".join(clauses))
            return out


_ESPEAK = _Espeak()


def _check_lang(lang: str) -> str:
    if lang not in ESPEAK_VOICES:
        raise ValueError(f"unsupported language {lang!r}: expected one of {', '.join(LANGUAGES)}")
    return ESPEAK_VOICES[lang]


def _clean_ipa(ipa: str, lang: str) -> str:
    for bad, good in _FIXES.get(lang, ()):
        ipa = ipa.replace(bad, good)
    ipa = _LANG_SWITCH.sub("", ipa).translate(_DROP)
    return _SPACES.sub(" ", ipa).strip()


def phonemize_many(texts: Sequence[str], lang: str) -> list[str]:
    """IPA transcriptions of many texts in one language, in order.

    Args:
        texts: sentences (any length; newlines are treated as spaces).
        lang: one of `LANGUAGES`.

    Returns:
        One normalised IPA string per text (see the module docstring).

    Raises:
        ValueError: unsupported language, or an empty text (its index is named).
        RuntimeError: espeak-ng is not installed.
    """
    voice = _check_lang(lang)
    cleaned = []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"text {i} is a {type(text).__name__}, not a str")
        t = _SPACES.sub(" ", text).strip()
        if not t:
            raise ValueError(f"text {i} is empty: nothing to phonemize")
        cleaned.append(t)
    return [_clean_ipa(p, lang) for p in _ESPEAK.phonemize(cleaned, voice)]


def phonemize(text: str, lang: str) -> str:
    """IPA transcription of `text` in language `lang` (one of `LANGUAGES`).

    Example: ``phonemize("Hello world", "en") == "həlˈoʊ wˈɜːld"``.
    """
    return phonemize_many([text], lang)[0]


def phoneme_ids(ipa: str) -> list[int]:
    """Ids in `PHONEME_VOCAB` for an IPA string, one per code point; unknown -> `UNK_ID`.

    Runs of whitespace count as one word boundary; leading/trailing whitespace is dropped.
    """
    ipa = _SPACES.sub(" ", ipa).strip()
    # Text that went through NFC normalisation may hold a base letter and a combining mark as
    # one code point (e + ̃ -> ẽ); the vocabulary holds them apart, so decompose those.
    ids = []
    for ch in ipa:
        if ch in _ID:
            ids.append(_ID[ch])
        else:
            parts = unicodedata.normalize("NFD", ch)
            ids.extend(_ID.get(p, UNK_ID) for p in parts)
    return ids


def ids_to_phonemes(ids: Sequence[int]) -> str:
    """Inverse of `phoneme_ids`: joins the symbols, skipping blanks; unknown ids -> ``"<unk>"``.

    Raises:
        ValueError: an id outside ``0 .. NUM_PHONEMES - 1``.
    """
    out = []
    for i in ids:
        i = int(i)
        if not 0 <= i < NUM_PHONEMES:
            raise ValueError(f"phoneme id {i} outside the vocabulary (0..{NUM_PHONEMES - 1})")
        if i != BLANK_ID:
            out.append(PHONEME_VOCAB[i])
    return "".join(out)
