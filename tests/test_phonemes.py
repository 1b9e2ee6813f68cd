import ctypes.util
import hashlib

import pytest

from codec.training import phonemes as P
from codec.training.phonemes import (
    BLANK_ID,
    LANGUAGES,
    NUM_PHONEMES,
    PHONEME_VOCAB,
    UNK_ID,
    WORD_BOUNDARY_ID,
    ids_to_phonemes,
    phoneme_ids,
    phonemize,
    phonemize_many,
)


def _has_espeak() -> bool:
    try:
        phonemize("a test", "en")
    except RuntimeError:
        return False
    return True


needs_espeak = pytest.mark.skipif(
    not _has_espeak(), reason="espeak-ng not installed (Debian package espeak-ng)"
)

SENTENCES = {
    "en": "The weather is nice today, and we walk to the market.",
    "fr": "Il fait beau aujourd'hui, et nous marchons vers le marché.",
    "es": "Hace buen tiempo hoy, y caminamos hacia el mercado.",
    "de": "Das Wetter ist heute schön, und wir gehen zum Markt.",
    "it": "Oggi fa bel tempo, e camminiamo verso il mercato.",
    "pt": "O tempo está bom hoje, e caminhamos até o mercado.",
    "nl": "Het weer is mooi vandaag, en we wandelen naar de markt.",
    "hi": "आज मौसम अच्छा है, और हम बाज़ार तक चलते हैं।",
    "ar": "الطقس جميل اليوم، ونحن نمشي إلى السوق.",
}

# The vocabulary as first written. Checkpoints store ids, so this prefix must never change;
# new symbols may only be appended.
VOCAB_V1_LEN = 160
VOCAB_V1_SHA256 = "a9999ece8dcbe57bc32df10bdd13f957793fdb65c3cfffe2b4d5e456e6dcaab8"


def test_vocabulary_is_fixed_and_well_formed():
    assert PHONEME_VOCAB[BLANK_ID] == "<blank>"
    assert PHONEME_VOCAB[UNK_ID] == "<unk>"
    assert PHONEME_VOCAB[WORD_BOUNDARY_ID] == " "
    assert NUM_PHONEMES == len(PHONEME_VOCAB)
    assert len(set(PHONEME_VOCAB)) == len(PHONEME_VOCAB), "duplicate symbols"
    # every symbol after the specials is a single code point (ids are per code point)
    assert all(len(s) == 1 for s in PHONEME_VOCAB[2:])
    digest = hashlib.sha256("\x00".join(PHONEME_VOCAB[:VOCAB_V1_LEN]).encode()).hexdigest()
    assert digest == VOCAB_V1_SHA256, (
        "the order of PHONEME_VOCAB changed: append new symbols instead"
    )


def test_phoneme_ids_round_trip_and_unknowns():
    ipa = "həlˈoʊ wˈɜːld bɔ̃ʒˈuʁ"
    ids = phoneme_ids(ipa)
    assert len(ids) == len(ipa)
    assert UNK_ID not in ids and BLANK_ID not in ids
    assert ids.count(WORD_BOUNDARY_ID) == 2
    assert ids_to_phonemes(ids) == ipa
    # whitespace runs collapse to one boundary, ends are stripped
    assert phoneme_ids("  a   b ") == phoneme_ids("a b")
    # unknown symbols map to <unk>, one per code point
    assert phoneme_ids("a€b") == [PHONEME_VOCAB.index("a"), UNK_ID, PHONEME_VOCAB.index("b")]
    assert ids_to_phonemes([UNK_ID]) == "<unk>"
    # a precomposed letter+diacritic is split into the vocabulary's two symbols
    assert phoneme_ids("\u1ebd") == phoneme_ids("e\u0303")
    # blanks are skipped when decoding (CTC output)
    assert ids_to_phonemes([BLANK_ID, ids[0], BLANK_ID]) == ipa[0]
    with pytest.raises(ValueError, match="outside the vocabulary"):
        ids_to_phonemes([NUM_PHONEMES])


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="unsupported language 'xx'"):
        phonemize("hello", "xx")
    with pytest.raises(ValueError, match="text 1 is empty"):
        phonemize_many(["hello", "  \n "], "en")


def test_missing_library_says_what_to_install(monkeypatch):
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: "libdoes-not-exist.so.9")
    with pytest.raises(RuntimeError, match="Debian package espeak-ng"):
        P._Espeak().phonemize(["hello"], "en-us")


@needs_espeak
@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_language_phonemizes_cleanly(lang):
    ipa = phonemize(SENTENCES[lang], lang)
    assert ipa and ipa == ipa.strip() and "  " not in ipa
    assert " " in ipa, "words are separated"
    assert "ˈ" in ipa, "stress marks are kept"
    for bad in "()-,.?\u200d":
        if bad == ".":
            continue  # espeak-ng's syllable break inside Hindi/Arabic words is a symbol
        assert bad not in ipa, f"{bad!r} left in {ipa!r}"
    ids = phoneme_ids(ipa)
    assert UNK_ID not in ids, f"unknown symbols in {ipa!r}"
    # a comma does not split the sentence into separate results
    assert len(phonemize_many([SENTENCES[lang]], lang)) == 1


@needs_espeak
def test_known_transcriptions_and_batch_consistency():
    assert phonemize("Hello world", "en") == "həlˈoʊ wˈɜːld"
    # German "UR" has no IPA in espeak-ng 1.51 ("??"); it is repaired
    assert "?" not in phonemize("Kurs und Wurst", "de")
    # foreign-word language switch markers are removed
    assert "(" not in phonemize("नमस्ते hello", "hi")
    texts = [SENTENCES["fr"], "Bonjour.", "Oui, non, peut-être."]
    assert phonemize_many(texts, "fr") == [phonemize(t, "fr") for t in texts]
    # switching languages between calls uses the right voice each time
    a = phonemize("chat", "fr")
    phonemize("chat", "en")
    assert phonemize("chat", "fr") == a
