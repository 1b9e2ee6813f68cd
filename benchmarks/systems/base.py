"""The adapter interface of every system the benchmarks compare.

A :class:`System` is a function from input audio to output audio at a bitrate:
``process(wav [N], sample_rate) -> SystemOutput`` (the decoded signal at the input's rate
and length, and the bits it spent). That is all the quality benchmark asks of a row. A
new row is one small class: subclass :class:`Transform` and write ``transform``, which
sees the input at the codec's 24 kHz and may use a codec model (``self.model``, loaded on
first use from the ``model`` given, a name, folder or loaded codec; the row is
unavailable, with the reason, when it cannot load).

Systems with a torch network also time batched ``encode`` / ``decode`` for the speed
benchmark: :class:`~benchmarks.systems.neural.NeuralCodec`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from codec.metrics import as_mono_array, resample

if TYPE_CHECKING:
    from codec import HybridCodec

CODEC_RATE = 24000


class SystemUnavailable(RuntimeError):
    """A system cannot run here (a tool or model is missing); the message says why."""


@dataclass
class SystemOutput:
    """Decoded signal and measured bitrate of one system on one clip.

    `audio`: float32 `[N]` at the input rate, same length as the input.
    """

    audio: np.ndarray
    bitrate_kbps: float
    file_kbps: float | None = None


class System(abc.ABC):
    """A codec under test: `process(wav [N], sr) -> SystemOutput`."""

    name: str
    nominal_kbps: float | None = None
    #: Largest delay the scorer searches by cross-correlation for this system's output.
    max_alignment_delay_s: float = 0.25

    def unavailable_reason(self) -> str | None:
        """Why this system cannot run here, or `None` when it can."""
        return None

    @abc.abstractmethod
    def _run(self, wav: np.ndarray, sample_rate: int) -> SystemOutput: ...

    def process(self, wav: np.ndarray, sample_rate: int) -> SystemOutput:
        """Encode and decode a mono signal `[N]` at `sample_rate`.

        Raises `SystemUnavailable` when the system's tools are missing and `ValueError`
        for empty, non-finite or multi-channel input.
        """
        reason = self.unavailable_reason()
        if reason is not None:
            raise SystemUnavailable(f"{self.name}: {reason}")
        if int(sample_rate) <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        x = as_mono_array(wav, "wav").astype(np.float32)
        out = self._run(x, int(sample_rate))
        out.audio = fit_length(np.asarray(out.audio, dtype=np.float32).reshape(-1), x.size)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def fit_length(x: np.ndarray, length: int) -> np.ndarray:
    """Zero-pad or cut `x [M]` to `[length]` (frame-based decoders drop the last partial frame)."""
    if x.size >= length:
        return x[:length]
    return np.concatenate([x, np.zeros(length - x.size, dtype=x.dtype)])


class CodecRef:
    """A hylac codec model given loaded, or as a name / folder for `codec.load`, loaded on first use.

    `int8` runs it with int8 weights (`use_int8()`). A model that cannot load makes the
    systems using it unavailable, with the reason.
    """

    def __init__(self, model: HybridCodec | str | Path, int8: bool = False) -> None:
        self._model = None if isinstance(model, str | Path) else model.eval()
        self.source = model if isinstance(model, str | Path) else None
        self.int8 = int8
        self._load_error: str | None = None

    @property
    def label(self) -> str:
        """A row name: the folder's or shipped name, or the loaded model's."""
        if self.source is not None:
            return Path(str(self.source)).name
        return str(getattr(self._model, "name", "hylac"))

    def get(self) -> HybridCodec:
        """The model (loaded now if need be); `SystemUnavailable` when it cannot load."""
        if self._model is None and self._load_error is None:
            try:
                import codec

                model = codec.load(str(self.source)).eval()
                self._model = model.use_int8() if self.int8 else model
            except Exception as exc:  # noqa: BLE001 - any load failure makes it unavailable
                self._load_error = f"cannot load codec model {str(self.source)!r}: {exc}"
        if self._model is None:
            raise SystemUnavailable(self._load_error)
        return self._model

    def unavailable_reason(self) -> str | None:
        try:
            self.get()
        except SystemUnavailable as exc:
            return str(exc)
        return None


class Transform(System):
    """A row that is a function of the input at the codec rate, optionally with a codec model.

    Subclasses write :meth:`transform`: `wav [N]` float32 at 24 kHz -> (audio `[M]` at
    24 kHz, bits spent on the clip). The input is resampled to 24 kHz and the output back
    with the project's one resampler; the output is scored on the input's timeline (no
    cross-correlation search, as a hylac decoder's).
    """

    max_alignment_delay_s = 0.0

    def __init__(self, name: str, model: HybridCodec | str | Path | None = None, int8: bool = False,
                 nominal_kbps: float | None = None) -> None:
        self.name = name
        self.nominal_kbps = nominal_kbps
        self.codec = CodecRef(model, int8) if model is not None else None

    @property
    def model(self) -> HybridCodec:
        """The codec model this row was given (loaded on first use)."""
        if self.codec is None:
            raise SystemUnavailable(f"{self.name}: no codec model was given")
        return self.codec.get()

    def unavailable_reason(self) -> str | None:
        reason = self.codec.unavailable_reason() if self.codec is not None else None
        return f"{self.name}: {reason}" if reason else None

    @abc.abstractmethod
    def transform(self, wav: np.ndarray) -> tuple[np.ndarray, float]:
        """`wav [N]` float32 at 24 kHz -> (output `[M]` at 24 kHz, bits spent)."""

    def _run(self, wav: np.ndarray, sample_rate: int) -> SystemOutput:
        audio, bits = self.transform(resample(wav, sample_rate, CODEC_RATE).astype(np.float32))
        return SystemOutput(audio=resample(np.asarray(audio), CODEC_RATE, sample_rate),
                            bitrate_kbps=bits / (wav.size / sample_rate) / 1000.0)
