"""The languages hylac speaks, and the espeak-ng voice that phonemizes (and, in the synthetic
corpus, speaks) each of them."""

from __future__ import annotations

LANGUAGES: tuple[str, ...] = ("en", "fr", "es", "de", "it", "pt", "nl", "hi", "ar")

ESPEAK_VOICES: dict[str, str] = {
    "en": "en-us",
    "fr": "fr",
    "es": "es",
    "de": "de",
    "it": "it",
    "pt": "pt-br",
    "nl": "nl",
    "hi": "hi",
    "ar": "ar",
}
