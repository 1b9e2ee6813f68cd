"""Outputs: audio formats by suffix, checks before any work, atomic writing.

Everything the project writes goes through a temporary file in the target folder that
is renamed over the destination only once complete (:func:`atomic_output`), so an
interrupted or failed run never leaves a partial or empty output behind under the final
name. Audio is ``[N]`` mono float samples (numpy); the container follows the file suffix
(:data:`AUDIO_FORMATS`).
"""

from __future__ import annotations

import contextlib
import io
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from codec.latents import SAMPLE_RATE


class OutputExistsError(FileExistsError):
    """The destination exists and overwriting was not asked for."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        super().__init__(f"{path}: output exists (pass --overwrite to replace it)")


class OutputWriteError(OSError):
    """The destination (or its folder) cannot be created or written."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: cannot write output ({problem})")


# --------------------------------------------------------------------------- formats


@dataclass(frozen=True)
class AudioFormat:
    """An audio encoding: its name, libsndfile container and default subtype, suffix and media type."""

    name: str
    container: str
    subtype: str
    suffix: str
    media_type: str

    @property
    def available(self) -> bool:
        """Whether this installation's libsndfile writes it (Opus and MP3 need libsndfile >= 1.1)."""
        try:
            return bool(sf.check_format(self.container, self.subtype))
        except (ValueError, TypeError):
            return False


#: Encodings written by name (``ogg`` is Vorbis; the names are those of OpenAI's ``response_format``).
AUDIO_FORMATS: dict[str, AudioFormat] = {f.name: f for f in (
    AudioFormat("wav", "WAV", "PCM_16", ".wav", "audio/wav"),
    AudioFormat("flac", "FLAC", "PCM_16", ".flac", "audio/flac"),
    AudioFormat("opus", "OGG", "OPUS", ".opus", "audio/ogg"),
    AudioFormat("ogg", "OGG", "VORBIS", ".ogg", "audio/ogg"),
    AudioFormat("mp3", "MP3", "MPEG_LAYER_III", ".mp3", "audio/mpeg"),
)}


def available_formats() -> list[str]:
    """Names of the :data:`AUDIO_FORMATS` this installation can write."""
    return [name for name, f in AUDIO_FORMATS.items() if f.available]


def format_for_path(path: str | os.PathLike) -> AudioFormat:
    """The encoding a file name asks for, by suffix; ``ValueError`` naming the choices otherwise."""
    suffix = Path(path).suffix.lower()
    for f in AUDIO_FORMATS.values():
        if f.suffix == suffix and f.available:
            return f
    choices = ", ".join(AUDIO_FORMATS[n].suffix for n in available_formats())
    raise ValueError(f"cannot write {str(path)!r}: unknown audio suffix {suffix or '(none)'!r} (use {choices})")


def audio_to_bytes(wav: np.ndarray, sample_rate: int, fmt: AudioFormat | str = "wav") -> bytes:
    """``[N]`` (or ``[N, C]``) float samples -> the bytes of a complete file in ``fmt`` (clipped to [-1, 1])."""
    fmt = AUDIO_FORMATS[fmt] if isinstance(fmt, str) else fmt
    buf = io.BytesIO()
    sf.write(buf, np.clip(wav, -1.0, 1.0), sample_rate, format=fmt.container, subtype=fmt.subtype)
    return buf.getvalue()


# --------------------------------------------------------------------------- checks


def check_output(path: str | os.PathLike, overwrite: bool = False) -> None:
    """Refuse an output before any work is done, creating nothing.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
        OutputWriteError: ``path`` is a folder, a file stands where a folder would be
            made, or the folder is not writable.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputWriteError(path, "it is a folder")
    if path.exists() and not overwrite:
        raise OutputExistsError(path)
    folder = path.absolute().parent
    while not folder.exists():  # the folders still to be made must be makeable
        folder = folder.parent
    if not folder.is_dir():
        raise OutputWriteError(path, f"{str(folder)!r} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputWriteError(path, f"folder {str(folder)!r} is not writable")


def prepare_output_dir(folder: str | os.PathLike) -> Path:
    """Create ``folder`` (and parents) and check it is a writable directory.

    Raises:
        OutputWriteError: it exists as a file, cannot be created, or is not writable.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError as err:
        raise OutputWriteError(folder, "exists and is not a folder") from err
    except OSError as err:
        raise OutputWriteError(folder, err.strerror or type(err).__name__) from err
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputWriteError(folder, "folder is not writable")
    return folder


# --------------------------------------------------------------------------- writing


def _temp_sibling(path: Path) -> Path:
    # Hidden, unique, same folder (so os.replace is an atomic rename) and same suffix
    # (so writers that infer the format from the name still do).
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex[:12]}.tmp{path.suffix}")


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` only if the block succeeds.

    On any exception the temporary file is removed and ``path`` is left untouched, so
    no partial or empty output is ever visible under the final name.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is False (checked before and
            again just before the rename).
        OutputWriteError: the folder cannot be created or the file cannot be written.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(path)
    prepare_output_dir(path.parent)
    tmp = _temp_sibling(path)
    try:
        yield tmp
        if not tmp.exists():
            raise OutputWriteError(path, "nothing was written")
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        if path.exists() and not overwrite:
            raise OutputExistsError(path)
        os.replace(tmp, path)
    except OSError as err:
        if isinstance(err, (OutputExistsError, OutputWriteError)):
            raise
        raise OutputWriteError(path, err.strerror or type(err).__name__) from err
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_bytes_atomic(path: str | os.PathLike, data: bytes, overwrite: bool = False) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_output`."""
    with atomic_output(path, overwrite) as tmp, open(tmp, "wb") as f:
        f.write(data)


class AudioWriter:
    """Write mono audio block by block to a temporary file, renamed over ``path`` on :meth:`commit`.

    The container follows the suffix of ``path`` (:data:`AUDIO_FORMATS`: wav, flac, opus,
    ogg, mp3; another suffix names a libsndfile container, e.g. ``.aiff``); ``subtype``
    defaults to the format's own (PCM_16 for wav and flac). Samples are clipped to
    [-1, 1] except for float subtypes. Use as a context manager: leaving the block
    normally commits, leaving it with an exception discards everything.

    Raises:
        OutputExistsError, OutputWriteError: as :func:`atomic_output`, or a container that
            cannot hold ``subtype``.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        sample_rate: int = SAMPLE_RATE,
        subtype: str | None = None,
        overwrite: bool = False,
    ) -> None:
        self.path = Path(path)
        known = next((f for f in AUDIO_FORMATS.values() if f.suffix == self.path.suffix.lower()), None)
        container = known.container if known else self.path.suffix.lstrip(".").upper()
        subtype = subtype or (known.subtype if known else "PCM_16")
        try:
            supported = bool(sf.check_format(container, subtype))
        except (ValueError, TypeError):
            supported = False
        if not supported:
            raise OutputWriteError(self.path, f"cannot write {subtype} audio to a {self.path.suffix or 'suffix-less'} file")
        self._clip = subtype not in ("FLOAT", "DOUBLE")
        self.num_samples = 0
        self._ctx = atomic_output(self.path, overwrite)
        tmp = self._ctx.__enter__()
        try:
            self._file = sf.SoundFile(str(tmp), "w", samplerate=sample_rate, channels=1, subtype=subtype,
                                      format=container)
        except (sf.LibsndfileError, RuntimeError, OSError) as err:
            self._ctx.__exit__(type(err), err, err.__traceback__)
            raise OutputWriteError(self.path, str(err)) from err

    def write(self, samples: np.ndarray) -> None:
        """Append ``[n]`` float samples."""
        if self._clip:
            samples = np.clip(samples, -1.0, 1.0)
        self._file.write(np.asarray(samples).astype(np.float32, copy=False))
        self.num_samples += len(samples)

    def commit(self) -> None:
        self._file.close()
        self._ctx.__exit__(None, None, None)

    def abort(self, exc: BaseException | None = None) -> None:
        self._file.close()
        err = exc if exc is not None else RuntimeError("aborted")
        with contextlib.suppress(BaseException):
            self._ctx.__exit__(type(err), err, err.__traceback__)

    def __enter__(self) -> AudioWriter:
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            self.commit()
        else:
            self.abort(exc)


def write_audio(path: str | os.PathLike, wav: np.ndarray, sample_rate: int = SAMPLE_RATE, *,
                overwrite: bool = False, subtype: str | None = None) -> Path:
    """Write a whole mono signal ``[N]`` to ``path`` atomically (see :class:`AudioWriter`); returns ``path``.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
        OutputWriteError: the folder or file cannot be written, or the suffix cannot hold ``subtype``.
    """
    wav = np.asarray(wav)
    if wav.ndim != 1:
        raise ValueError(f"write_audio writes mono [N] samples, got shape {wav.shape}")
    with AudioWriter(path, sample_rate, subtype, overwrite=overwrite) as writer:
        writer.write(wav)
    return writer.path
