"""Audio in and out for ``tts``: reading voice recordings, encoding output, writing files atomically.

Read waveforms are ``[C, N]`` float32 tensors at the file's own rate (the codec
down-mixes and resamples); written audio is ``[N]`` float32 mono. Output files go to a
hidden temporary file beside the target, renamed over it only once complete, so a
failed or interrupted run never leaves a partial file under the final name.
"""

from __future__ import annotations

import contextlib
import io
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch import Tensor

LATENT_SUFFIX = ".hylat"


@dataclass(frozen=True)
class AudioFormat:
    """An output encoding: the libsndfile container and subtype, and the file suffix."""

    name: str
    container: str
    subtype: str
    suffix: str
    media_type: str

    @property
    def available(self) -> bool:
        """Whether this installation's libsndfile can write it (Opus and MP3 need libsndfile >= 1.1)."""
        try:
            return bool(sf.check_format(self.container, self.subtype))
        except (ValueError, TypeError):
            return False


#: Encodings by name (the OpenAI ``response_format`` names; ``ogg`` is Vorbis).
FORMATS: dict[str, AudioFormat] = {f.name: f for f in (
    AudioFormat("wav", "WAV", "PCM_16", ".wav", "audio/wav"),
    AudioFormat("flac", "FLAC", "PCM_16", ".flac", "audio/flac"),
    AudioFormat("opus", "OGG", "OPUS", ".opus", "audio/ogg"),
    AudioFormat("ogg", "OGG", "VORBIS", ".ogg", "audio/ogg"),
    AudioFormat("mp3", "MP3", "MPEG_LAYER_III", ".mp3", "audio/mpeg"),
)}


def available_formats() -> list[str]:
    """Names of the encodings this installation can write."""
    return [name for name, f in FORMATS.items() if f.available]


def format_for_path(path: str | os.PathLike) -> AudioFormat:
    """The encoding a file name asks for, by suffix; ``ValueError`` naming the choices otherwise."""
    suffix = Path(path).suffix.lower()
    for f in FORMATS.values():
        if f.suffix == suffix and f.available:
            return f
    choices = ", ".join(FORMATS[n].suffix for n in available_formats())
    raise ValueError(f"cannot write {str(path)!r}: unknown audio suffix {suffix or '(none)'!r} (use {choices})")


# --------------------------------------------------------------------------- reading


class AudioFileError(ValueError):
    """Something given as audio that is not usable audio; the message names what it is instead."""


def _what_it_is(head: bytes) -> str:
    """A short description of a file's kind from its first bytes (for error messages)."""
    if head.startswith((b"RIFF", b"RIFX")) and head[8:12] == b"WAVE":
        return "a RIFF/WAV file that cannot be decoded (damaged or an unsupported sample format)"
    if len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 1 << 24:
        return "a safetensors file (model weights or latents), not audio"
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive, not audio"
    if head.startswith(b"%PDF"):
        return "a PDF document, not audio"
    if head.lstrip().startswith((b"{", b"[")):
        return "a JSON text file, not audio"
    if head.lstrip()[:5].lower() in (b"<!doc", b"<html"):
        return "an HTML page, not audio"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "not a recognised audio format"
    if all(c.isprintable() or c in "\r\n\t" for c in text):
        return "a text file, not audio"
    return "not a recognised audio format"


def _from_soundfile(source: str | io.BytesIO, label: str, head: bytes) -> tuple[Tensor, int]:
    try:
        data, rate = sf.read(source, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        reason = (getattr(err, "error_string", "") or str(err)).strip().rstrip(".")
        raise AudioFileError(f"{label} is {_what_it_is(head)} (libsndfile: {reason})") from None
    if data.shape[0] == 0:
        raise AudioFileError(f"{label} holds no audio samples (zero-length audio)")
    if not np.isfinite(data).all():
        raise AudioFileError(f"{label} contains NaN or Inf samples")
    return torch.from_numpy(np.ascontiguousarray(data.T)), int(rate)  # [C, N]


def read_audio(path: str | os.PathLike, what: str = "audio file") -> tuple[Tensor, int]:
    """Read an audio file as ``([C, N] float32, sample_rate)``.

    Raises:
        FileNotFoundError: nothing at ``path``.
        AudioFileError: a folder, an empty file, or a file that is not audio (the message
            says what it is: text, JSON, safetensors, a damaged WAV, ...), zero samples, NaN.
    """
    path = Path(path)
    label = f"{what} {str(path)!r}"
    if path.is_dir():
        raise AudioFileError(f"{label} is a folder, not an audio file")
    if not path.exists():
        raise FileNotFoundError(f"{label} does not exist")
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as err:
        raise AudioFileError(f"{label} cannot be read ({err.strerror or type(err).__name__})") from None
    if not head:
        raise AudioFileError(f"{label} is an empty file (0 bytes)")
    return _from_soundfile(str(path), label, head)


def read_audio_bytes(data: bytes, what: str = "upload") -> tuple[Tensor, int]:
    """:func:`read_audio` for an in-memory file (an HTTP upload): ``([C, N] float32, sample_rate)``."""
    if not data:
        raise AudioFileError(f"{what} is empty (0 bytes)")
    return _from_soundfile(io.BytesIO(data), what, data[:64])


# --------------------------------------------------------------------------- writing


class OutputError(OSError):
    """An output that cannot be written (or exists, and replacing it was not asked for)."""


def encode_audio(audio: np.ndarray, sample_rate: int, fmt: AudioFormat) -> bytes:
    """``[N]`` float samples -> the bytes of a complete file in ``fmt``."""
    buf = io.BytesIO()
    sf.write(buf, np.clip(audio, -1.0, 1.0), sample_rate, format=fmt.container, subtype=fmt.subtype)
    return buf.getvalue()


class AtomicAudioWriter:
    """Write mono audio to a temporary file beside ``path``, renamed over ``path`` once complete.

    Use as a context manager: leaving the block normally renames the file into place;
    leaving it with an exception removes it and leaves ``path`` untouched. The encoding
    follows the suffix (:func:`format_for_path`). Errors of the writing itself are
    :class:`OutputError`; errors of the code inside the block pass through unchanged.

    Raises:
        ValueError: unknown suffix.
        OutputError: ``path`` exists and ``overwrite`` is False (checked on entry and again
            just before the rename), or the folder / file cannot be created or written.
    """

    def __init__(self, path: str | os.PathLike, sample_rate: int, overwrite: bool = False) -> None:
        self.path = Path(path)
        self.format = format_for_path(self.path)
        self.sample_rate = sample_rate
        self.overwrite = overwrite
        self.frames = 0
        self._tmp = self.path.with_name(f".{self.path.stem}.{uuid.uuid4().hex[:12]}.tmp{self.path.suffix}")

    def _error(self, err: BaseException) -> OutputError:
        reason = getattr(err, "strerror", None) or getattr(err, "error_string", None) or str(err)
        return OutputError(f"cannot write {str(self.path)!r} ({reason})")

    def __enter__(self) -> AtomicAudioWriter:
        path = self.path
        if path.is_dir():
            raise OutputError(f"cannot write {str(path)!r}: it is a folder")
        if path.exists() and not self.overwrite:
            raise OutputError(f"{str(path)!r} exists (pass --overwrite to replace it)")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Opened by Python first, so a failure carries the system's reason ("Permission denied").
            self._raw = open(self._tmp, "xb")  # noqa: SIM115 (closed in __exit__)
            self._file = sf.SoundFile(self._raw, "w", samplerate=self.sample_rate, channels=1,
                                      format=self.format.container, subtype=self.format.subtype)
        except (OSError, sf.LibsndfileError, RuntimeError) as err:
            self._discard()
            raise self._error(err) from err
        return self

    def write(self, samples: np.ndarray) -> None:
        """Append ``[n]`` float samples (clipped to [-1, 1])."""
        try:
            self._file.write(np.clip(samples, -1.0, 1.0).astype(np.float32, copy=False))
        except (OSError, sf.LibsndfileError, RuntimeError) as err:
            raise self._error(err) from err
        self.frames += len(samples)

    def _discard(self) -> None:
        for close in (getattr(self, "_file", None), getattr(self, "_raw", None)):
            with contextlib.suppress(Exception):
                if close is not None:
                    close.close()
        with contextlib.suppress(OSError):
            self._tmp.unlink()

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: object) -> None:
        if exc is not None:
            self._discard()
            return
        try:
            self._file.close()
            self._raw.flush()
            os.fsync(self._raw.fileno())
            self._raw.close()
            if self.path.exists() and not self.overwrite:
                raise OutputError(f"{str(self.path)!r} appeared while writing (pass --overwrite to replace it)")
            os.replace(self._tmp, self.path)
        except OutputError:
            self._discard()
            raise
        except (OSError, sf.LibsndfileError, RuntimeError) as err:
            self._discard()
            raise self._error(err) from err
