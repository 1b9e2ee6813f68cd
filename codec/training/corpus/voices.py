"""The synthetic voices of the corpus (three engines) and the speakers made from them."""


from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from codec.training.phonemes import ESPEAK_VOICES, LANGUAGES

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Voice:
    """One synthetic voice.

    Attributes:
        name: stable identifier used in speaker ids, e.g. ``"mb-us1"``, ``"fest-kal"``.
        lang: language code (one of `codec.training.phonemes.LANGUAGES`).
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
