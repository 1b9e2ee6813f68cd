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


def _split(entry: str) -> tuple[str, str]:
    """``"us3:test"`` -> ``("us3", "test")``; an entry without a suffix is a training voice."""
    name, _, split = entry.partition(":")
    return name, split or "train"


def _language(lang: str, mbrola: str = "", festival: str = "", espeak: str = "") -> list[Voice]:
    """One language's voices, one argument per engine, so the table shows each language at a glance.

    Each argument is a space-separated list: MBROLA voice names (``"us1"``), Festival
    ``name=voice`` pairs (``"kal=kal_diphone"``) and espeak-ng variants (``"m3"``); a
    ``:valid`` or ``:test`` suffix holds that voice out. Voices come MBROLA first, then
    Festival, then espeak-ng, each in the order given.
    """
    voices = [_mb(name, lang, split) for name, split in map(_split, mbrola.split())]
    for pair, split in map(_split, festival.split()):
        name, voice = pair.split("=")
        voices.append(_fest(name, lang, voice, split))
    voices += [_es(lang, variant, split) for variant, split in map(_split, espeak.split())]
    return voices


# The default voice table. Held-out voices: one MBROLA voice per language where two or more
# exist (so the test split has recorded-diphone speech, which pocketsphinx recognises in
# English), otherwise an espeak-ng variant. MBROLA's Spanish (es1-4, mx1-2), Hindi (in1-2),
# Dutch nl1 and Italian it1-2 voices are left out: espeak-ng asks them for 10-30% of diphones
# they lack, which come out as gaps of silence inside words.
VOICES: tuple[Voice, ...] = (
    *_language(
        "en",
        mbrola="us1 us2 us3:test en1:valid",
        festival="kal=kal_diphone ked=ked_diphone rab=rab_diphone slt=cmu_us_slt_arctic_hts",
        espeak="m3 f2 m7 f4:test",
    ),
    *_language("fr", mbrola="fr1 fr2 fr3 fr4:test fr5 fr6:valid fr7", espeak="m3 f2"),
    *_language("de", mbrola="de1 de2:test de3 de4 de5:valid de6 de7", espeak="m3 f2"),
    *_language("es", festival="el=el_diphone", espeak="m3 f2 m1:valid f4:test"),
    *_language(
        "it", mbrola="it3 it4:test", festival="pc=pc_diphone lp=lp_diphone:valid", espeak="m3 f2"
    ),
    *_language("pt", mbrola="br1 br2:valid br3 br4:test pt1", espeak="m3 f2"),
    *_language("nl", mbrola="nl2 nl3:test", espeak="m3 f2 m1:valid"),
    *_language("hi", espeak="m3 f2 m1 f4:test m7:valid"),
    *_language("ar", mbrola="ar1 ar2:test", espeak="m3 f2 m1:valid"),
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
