"""The server's voices: reference recordings turned into voice-prompt latents once, then reused.

A voice is named by its file stem (``DIR/alice.wav`` is ``alice``); ``.hylat`` files of
the served codec are used as they are. Voices added over HTTP live until the server stops.
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from torch import Tensor

from codec import AUDIO_EXTENSIONS, LATENT_SUFFIX, SAMPLE_RATE, Latents

from ..synthesizer import Synthesizer

log = logging.getLogger("tts.serve")

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
#: Files picked up from a voices folder: the audio ``hylac-codec encode`` picks up in a folder, and latents.
VOICE_SUFFIXES = AUDIO_EXTENSIONS | {LATENT_SUFFIX}


class UnknownVoice(LookupError):
    def __init__(self, name: str, known: list[str]) -> None:
        listed = ", ".join(known) if known else "none yet: start the server with --voices DIR or POST /v1/voices"
        super().__init__(f"unknown voice {name!r}; known voices: {listed}")


class VoiceConflict(ValueError):
    """The name is taken, or the library is full."""


@dataclass(frozen=True)
class Voice:
    """A voice prompt ready for generation.

    Attributes:
        name: its id in requests.
        latents: voice-prompt latents ``[1, T]`` (at most the model's prompt limit).
        source: where it came from (a file name, or ``"upload"``).
        warnings: what was noted while preparing it (e.g. a short recording).
    """

    name: str
    latents: Latents
    source: str
    warnings: tuple[str, ...] = field(default=())

    @property
    def seconds(self) -> float:
        return self.latents.num_samples / SAMPLE_RATE

    def to_dict(self) -> dict[str, object]:
        return {"id": self.name, "object": "voice", "name": self.name, "seconds": round(self.seconds, 3),
                "source": self.source, "warnings": list(self.warnings)}


def check_name(name: str) -> str:
    """``name`` if it is a usable voice id; ``ValueError`` saying what is allowed otherwise."""
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"voice name {name!r} is not allowed: use 1-64 letters, digits, '_', '-' or '.', "
                         f"starting with a letter or digit")
    return name


def prepare_voice(synth: Synthesizer, name: str, source: str, voice: str | Path | Tensor,
                  sample_rate: int | None = None) -> Voice:
    """Encode a recording (path, or ``[N]`` / ``[C, N]`` waveform with its rate) into a :class:`Voice`.

    Raises ``ValueError`` for audio that cannot be a voice prompt (not audio, shorter than
    the model's minimum, another codec's latents).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        latents = synth.voice_prompt(voice, sample_rate)
    return Voice(check_name(name), latents.to("cpu"), source, tuple(str(w.message) for w in caught))


class VoiceLibrary:
    """Named voices (insertion order), at most ``max_voices`` of them."""

    def __init__(self, max_voices: int = 64) -> None:
        self.max_voices = max_voices
        self._voices: dict[str, Voice] = {}

    @classmethod
    def from_folder(cls, synth: Synthesizer, folder: str | Path, max_voices: int = 64) -> VoiceLibrary:
        """Every recording directly in ``folder``; files that cannot be used are logged and skipped.

        Raises:
            NotADirectoryError: ``folder`` is not a folder.
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise NotADirectoryError(f"--voices {str(folder)!r} is not a folder")
        library = cls(max_voices)
        for path in sorted(folder.iterdir()):
            if path.name.startswith(".") or not path.is_file() or path.suffix.lower() not in VOICE_SUFFIXES:
                continue
            try:
                if path.stem in library:
                    raise VoiceConflict(f"voice {path.stem!r} is already taken by another file")
                voice = prepare_voice(synth, path.stem, path.name, path)
                library.add(voice)
            except (ValueError, OSError) as err:
                log.warning("voice %s skipped: %s", path, err)
                continue
            for note in voice.warnings:
                log.warning("voice %s: %s", voice.name, note)
        log.info("%d voice(s) from %s: %s", len(library), folder, ", ".join(library.names()) or "none")
        return library

    def __contains__(self, name: str) -> bool:
        return name in self._voices

    def __len__(self) -> int:
        return len(self._voices)

    def names(self) -> list[str]:
        return list(self._voices)

    def voices(self) -> list[Voice]:
        return list(self._voices.values())

    def get(self, name: str) -> Voice:
        try:
            return self._voices[name]
        except KeyError:
            raise UnknownVoice(name, self.names()) from None

    def check_room(self, name: str) -> None:
        """``VoiceConflict`` if ``name`` is taken or no voice can be added."""
        if name in self._voices:
            raise VoiceConflict(f"voice {name!r} already exists; pick another name")
        if len(self._voices) >= self.max_voices:
            raise VoiceConflict(f"the voice library is full ({self.max_voices} voices)")

    def add(self, voice: Voice) -> Voice:
        self.check_room(voice.name)
        self._voices[voice.name] = voice
        return voice
