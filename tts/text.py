"""Text front-ends: text (or IPA) plus a language tag -> token ids for the backbone.

Token layout (one table for both front-ends): ids ``0 .. len(LANGUAGES) - 1`` are the
language tags, the symbols follow (256 UTF-8 byte values, or the phoneme inventory).
Every encoded sequence starts with its language tag.
"""

from __future__ import annotations

import unicodedata

from codec import LANGUAGES
from codec.training import PHONEME_VOCAB, phoneme_ids, phonemize

from .config import TEXT_FRONTENDS


class TextFrontend:
    """Turns text into token ids.

    Args:
        kind: ``"phonemes"`` (espeak-ng IPA, for small data) or ``"bytes"`` (UTF-8,
            language-agnostic).
    """

    def __init__(self, kind: str = "phonemes") -> None:
        if kind not in TEXT_FRONTENDS:
            raise ValueError(f"text front-end must be one of {TEXT_FRONTENDS}, got {kind!r}")
        self.kind = kind
        self.languages: tuple[str, ...] = tuple(LANGUAGES)
        self.num_symbols = len(PHONEME_VOCAB) if kind == "phonemes" else 256

    @property
    def vocab_size(self) -> int:
        """Number of distinct token ids (language tags + symbols)."""
        return len(self.languages) + self.num_symbols

    def language_token(self, lang: str) -> int:
        """Token id of a language tag; an unsupported language is a ``ValueError``."""
        if lang not in self.languages:
            raise ValueError(f"unsupported language {lang!r}; supported: {', '.join(self.languages)}")
        return self.languages.index(lang)

    def encode(self, text: str, lang: str) -> list[int]:
        """Text in language ``lang`` -> ``[lang tag, symbol ids ...]``.

        The phoneme front-end runs espeak-ng; empty text (or text that yields no
        symbols, e.g. only punctuation) is a ``ValueError``.
        """
        tag = self.language_token(lang)
        text = self._clean(text)
        if self.kind == "bytes":
            return [tag, *self._symbols(list(text.encode("utf-8")), text)]
        return [tag, *self._symbols(phoneme_ids(phonemize(text, lang)), text)]

    def encode_phonemes(self, ipa: str, lang: str) -> list[int]:
        """Already phonemized IPA (e.g. a corpus manifest's ``phonemes``) -> token ids."""
        if self.kind != "phonemes":
            raise ValueError("encode_phonemes needs the phoneme front-end; this one reads bytes")
        tag = self.language_token(lang)
        ipa = self._clean(ipa)
        return [tag, *self._symbols(phoneme_ids(ipa), ipa)]

    def _clean(self, text: str) -> str:
        if not isinstance(text, str):
            raise ValueError(f"text must be a str, got {type(text).__name__}")
        # NFC so that the same visible text always gives the same bytes.
        text = unicodedata.normalize("NFC", text).strip()
        if not text:
            raise ValueError("text is empty")
        return text

    def _symbols(self, ids: list[int], source: str) -> list[int]:
        if not ids:
            raise ValueError(f"text {source!r} gives no {self.kind} to speak")
        offset = len(self.languages)
        out = []
        for i in ids:
            if not 0 <= i < self.num_symbols:
                raise ValueError(f"symbol id {i} outside the {self.kind} inventory of {self.num_symbols}")
            out.append(offset + i)
        return out
