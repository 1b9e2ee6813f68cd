"""Audio in and out: validation, down-mixing, resampling, block-wise reading, atomic writing.

Everything the codec reads goes through :class:`AudioReader`, which turns a file of any
rate and channel count into mono float32 blocks at the codec rate without ever holding
the whole file, and everything written goes through a temporary file in the target
folder that is renamed over the destination only once complete, so an interrupted or
failed run never leaves a partial or empty output behind.

Arrays here are numpy (``[N]`` mono float32 at the target rate), except in
:func:`prepare_waveform`, which checks and converts the tensors handed to the codec.
"""

from __future__ import annotations

import contextlib
import math
import os
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch
from torch import Tensor

from codec.latents import SAMPLE_RATE

#: Extensions picked up when a folder is given as input.
AUDIO_EXTENSIONS = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".caf", ".w64", ".rf64"}
)
#: Containers libsndfile cannot open; these are decoded through librosa (ffmpeg / audioread).
_LIBROSA_ONLY_EXTENSIONS = frozenset({".m4a", ".mp4", ".aac", ".wma", ".webm"})


class InputFileError(ValueError):
    """An input file that cannot be used. ``str(err)`` is ``"<path>: <problem>"``."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class AudioInputError(InputFileError):
    """An input that cannot be used as audio."""


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


@dataclass(frozen=True)
class AudioInfo:
    """What an audio file holds, before any conversion.

    Attributes:
        path: the file.
        sample_rate: the file's own sample rate (Hz).
        channels: the file's channel count (down-mixed to mono on reading).
        num_samples: samples per channel at ``sample_rate``.
        format: container / codec description, e.g. ``"WAV PCM_16"``.
    """

    path: Path
    sample_rate: int
    channels: int
    num_samples: int
    format: str

    @property
    def duration(self) -> float:
        """Seconds of audio."""
        return self.num_samples / self.sample_rate


def _describe_os_error(err: OSError) -> str:
    return err.strerror or type(err).__name__


def _check_path_readable(path: Path) -> None:
    if not path.exists():
        raise AudioInputError(path, "no such file")
    if path.is_dir():
        raise AudioInputError(path, "is a directory, not an audio file")
    try:
        size = path.stat().st_size
        with open(path, "rb"):
            pass
    except OSError as err:
        raise AudioInputError(path, f"cannot be read ({_describe_os_error(err)})") from err
    if size == 0:
        raise AudioInputError(path, "empty file (0 bytes)")


def _check_riff_complete(path: Path) -> None:
    """Fail on a WAV whose data chunk is shorter than its header says.

    libsndfile silently shortens such files to what is present, which would turn a
    copy cut off mid-transfer into a valid-looking shorter encoding.
    """
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return
        endian = "<" if head[:4] == b"RIFF" else ">"
        file_size = path.stat().st_size
        pos = 12
        while pos + 8 <= file_size:
            f.seek(pos)
            chunk_id, chunk_size = struct.unpack(endian + "4sI", f.read(8))
            if chunk_id == b"data":
                present = file_size - pos - 8
                # 0 and 0xFFFFFFFF are what streaming writers leave when they cannot seek back.
                if chunk_size not in (0, 0xFFFFFFFF) and chunk_size > present:
                    raise AudioInputError(
                        path,
                        f"truncated WAV: header declares {chunk_size} bytes of audio data "
                        f"but only {present} are present",
                    )
                return
            pos += 8 + chunk_size + (chunk_size & 1)  # chunks are word aligned
        raise AudioInputError(path, "truncated WAV: no audio data chunk before the end of the file")


def probe_audio(path: str | os.PathLike) -> AudioInfo:
    """Read an audio file's header and validate what can be validated without decoding.

    Raises:
        AudioInputError: missing/unreadable path, empty file, not audio, truncated WAV,
            zero-length audio.
    """
    path = Path(path)
    _check_path_readable(path)
    if path.suffix.lower() in _LIBROSA_ONLY_EXTENSIONS:
        info = _probe_librosa(path)
    else:
        try:
            sfi = sf.info(str(path))
        except sf.LibsndfileError as err:
            raise AudioInputError(path, f"not a readable audio file ({_libsndfile_reason(err)})") from err
        except (RuntimeError, TypeError) as err:
            raise AudioInputError(path, f"not a readable audio file ({err})") from err
        info = AudioInfo(path, int(sfi.samplerate), int(sfi.channels), int(sfi.frames), f"{sfi.format} {sfi.subtype}")
        if sfi.format in ("WAV", "WAVEX"):
            _check_riff_complete(path)
    if info.num_samples <= 0:
        raise AudioInputError(path, "contains no audio samples (zero-length audio)")
    if info.sample_rate <= 0 or info.channels <= 0:
        raise AudioInputError(path, f"invalid header (sample rate {info.sample_rate}, {info.channels} channels)")
    return info


def _libsndfile_reason(err: sf.LibsndfileError) -> str:
    text = getattr(err, "error_string", "") or str(err)
    return text.strip().rstrip(".")


def _probe_librosa(path: Path) -> AudioInfo:
    data, rate = _load_librosa(path)
    return AudioInfo(path, rate, data.shape[0], data.shape[1], path.suffix.lstrip(".").upper())


def _load_librosa(path: Path) -> tuple[np.ndarray, int]:
    """Decode a whole file with librosa: ``([C, N] float32, rate)``."""
    import librosa  # heavy import, only needed for containers libsndfile lacks

    try:
        data, rate = librosa.load(str(path), sr=None, mono=False, dtype=np.float32)
    except Exception as err:  # librosa/audioread raise a zoo of backend-specific types
        raise AudioInputError(path, f"not a readable audio file ({type(err).__name__}: {err})") from err
    data = np.atleast_2d(data)
    return data, int(rate)


def resample(x: np.ndarray, in_rate: int, out_rate: int) -> np.ndarray:
    """The project's one resampler (soxr, HQ): ``[..., N]`` float array at ``in_rate`` ->
    ``[..., output_length(N)]`` float32 at ``out_rate``, channel by channel.

    :class:`AudioReader` runs the same resampler block by block (``soxr.ResampleStream``),
    which gives the same samples as this one-shot call on the whole signal.
    """
    for name, rate in (("in_rate", in_rate), ("out_rate", out_rate)):
        if isinstance(rate, bool) or not isinstance(rate, int | np.integer) or rate <= 0:
            raise ValueError(f"{name} must be a positive integer, got {rate!r}")
    x = np.asarray(x, dtype=np.float32)
    if in_rate == out_rate:
        return x
    flat = x.reshape(-1, x.shape[-1])
    out = [soxr.resample(row, int(in_rate), int(out_rate), quality="HQ") for row in flat]
    return np.stack(out).reshape(*x.shape[:-1], -1).astype(np.float32, copy=False)


def output_length(num_samples: int, in_rate: int, out_rate: int) -> int:
    """Samples after resampling ``num_samples`` from ``in_rate`` to ``out_rate`` (what soxr produces)."""
    if in_rate == out_rate:
        return num_samples
    return round(num_samples * out_rate / in_rate)


class AudioReader:
    """Iterate over an audio file as mono float32 blocks at ``target_rate``.

    Every block has exactly ``block_size`` samples except the last, which is shorter
    (never empty). The file is decoded block by block and resampled with a streaming
    soxr resampler, so memory stays bounded by the block size for files of any length;
    the concatenated blocks equal ``soxr.resample`` of the whole down-mixed signal.

    Use as a context manager or call :meth:`close`.

    Raises (while iterating):
        AudioInputError: NaN/Inf samples, or decoding failure (corrupted / truncated data).
    """

    def __init__(
        self, path: str | os.PathLike, target_rate: int = SAMPLE_RATE, block_size: int = 30 * SAMPLE_RATE
    ) -> None:
        if block_size <= 0:
            raise ValueError(f"block_size must be positive, got {block_size}")
        self.path = Path(path)
        self.info = probe_audio(self.path)
        self.target_rate = target_rate
        self.block_size = block_size
        self._file: sf.SoundFile | None = None
        self._whole: np.ndarray | None = None  # [C, N] when decoded through librosa

    @property
    def num_samples(self) -> int:
        """Expected number of mono samples at ``target_rate``."""
        return output_length(self.info.num_samples, self.info.sample_rate, self.target_rate)

    @property
    def resampled(self) -> bool:
        return self.info.sample_rate != self.target_rate

    @property
    def downmixed(self) -> bool:
        return self.info.channels != 1

    def __enter__(self) -> AudioReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._whole = None

    def _raw_blocks(self, frames: int) -> Iterator[np.ndarray]:
        """Blocks of ``[n, C]`` float32 at the file's own rate."""
        if self.path.suffix.lower() in _LIBROSA_ONLY_EXTENSIONS:
            data, _ = _load_librosa(self.path)
            for start in range(0, data.shape[1], frames):
                yield data[:, start : start + frames].T
            return
        try:
            self._file = sf.SoundFile(str(self.path))
        except sf.LibsndfileError as err:
            raise AudioInputError(self.path, f"not a readable audio file ({_libsndfile_reason(err)})") from err
        read = 0
        while True:
            try:
                block = self._file.read(frames, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as err:
                raise AudioInputError(
                    self.path,
                    f"decoding failed after {read / self.info.sample_rate:.2f} s "
                    f"(corrupted or truncated file: {err})",
                ) from err
            if len(block) == 0:
                break
            read += len(block)
            yield block
        if read < self.info.num_samples:
            raise AudioInputError(
                self.path,
                f"truncated: header announces {self.info.num_samples} samples but only {read} could be decoded",
            )

    def __iter__(self) -> Iterator[np.ndarray]:
        in_rate = self.info.sample_rate
        raw_frames = max(1, math.ceil(self.block_size * in_rate / self.target_rate))
        resampler = (
            soxr.ResampleStream(in_rate, self.target_rate, 1, dtype="float32", quality="HQ") if self.resampled else None
        )
        pending: list[np.ndarray] = []
        pending_len = 0
        position = 0  # samples of the file already checked, for error messages
        for raw in self._raw_blocks(raw_frames):
            bad = ~np.isfinite(raw)
            if bad.any():
                first = position + int(np.argmax(bad.any(axis=1)))
                raise AudioInputError(
                    self.path, f"contains NaN or Inf samples (first at {first / in_rate:.3f} s, sample {first})"
                )
            position += len(raw)
            mono = raw.mean(axis=1, dtype=np.float32) if raw.shape[1] > 1 else raw[:, 0]
            if resampler is not None:
                mono = resampler.resample_chunk(np.ascontiguousarray(mono))
            if len(mono):
                pending.append(mono)
                pending_len += len(mono)
            while pending_len >= self.block_size:
                joined = np.concatenate(pending) if len(pending) > 1 else pending[0]
                yield np.ascontiguousarray(joined[: self.block_size])
                rest = joined[self.block_size :]
                pending, pending_len = ([rest], len(rest)) if len(rest) else ([], 0)
        if resampler is not None:
            tail = resampler.resample_chunk(np.zeros(0, np.float32), last=True)
            if len(tail):
                pending.append(tail)
                pending_len += len(tail)
        if pending_len == 0 and position > 0 and resampler is not None:
            raise AudioInputError(
                self.path, f"too short to resample ({position} samples at {in_rate} Hz give no samples at {self.target_rate} Hz)"
            )
        if pending_len:
            yield np.concatenate(pending) if len(pending) > 1 else pending[0]


def read_audio(path: str | os.PathLike, target_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, AudioInfo]:
    """Read a whole file as mono float32 ``[N]`` at ``target_rate`` (validated like :class:`AudioReader`)."""
    with AudioReader(path, target_rate) as reader:
        blocks = list(reader)
        return np.concatenate(blocks), reader.info


def _temp_sibling(path: Path) -> Path:
    # Hidden, unique, same folder (so os.replace is an atomic rename) and same suffix
    # (so writers that infer the format from the name still do).
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex[:12]}.tmp{path.suffix}")


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
        raise OutputWriteError(folder, _describe_os_error(err)) from err
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputWriteError(folder, "folder is not writable")
    return folder


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
        raise OutputWriteError(path, _describe_os_error(err)) from err
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_bytes_atomic(path: str | os.PathLike, data: bytes, overwrite: bool = False) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_output`."""
    with atomic_output(path, overwrite) as tmp, open(tmp, "wb") as f:
        f.write(data)


class AudioWriter:
    """Write mono audio block by block to a temporary file, renamed over ``path`` on :meth:`commit`.

    The container follows the suffix of ``path`` (wav, flac, ...). Samples are clipped
    to [-1, 1] for integer subtypes. Use as a context manager: leaving the block
    normally commits, leaving it with an exception discards everything.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        sample_rate: int = SAMPLE_RATE,
        subtype: str = "PCM_16",
        overwrite: bool = False,
    ) -> None:
        self.path = Path(path)
        fmt = self.path.suffix.lstrip(".").upper()
        if not sf.check_format(fmt, subtype):
            raise OutputWriteError(self.path, f"cannot write {subtype} audio to a .{fmt.lower()} file")
        self._clip = subtype.startswith("PCM") or subtype in ("ULAW", "ALAW")
        self.num_samples = 0
        self._ctx = atomic_output(self.path, overwrite)
        tmp = self._ctx.__enter__()
        try:
            self._file = sf.SoundFile(str(tmp), "w", samplerate=sample_rate, channels=1, subtype=subtype, format=fmt)
        except (sf.LibsndfileError, RuntimeError, OSError) as err:
            self._ctx.__exit__(type(err), err, err.__traceback__)
            raise OutputWriteError(self.path, str(err)) from err

    def write(self, samples: np.ndarray) -> None:
        """Append ``[n]`` float samples."""
        if self._clip:
            samples = np.clip(samples, -1.0, 1.0)
        self._file.write(samples.astype(np.float32, copy=False))
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


def prepare_waveform(wav: Tensor, sample_rate: int, target_rate: int = SAMPLE_RATE) -> Tensor:
    """Validate ``wav`` and bring it to ``[B, 1, N]`` float32 at ``target_rate``.

    Accepts ``[N]``, ``[C, N]`` or ``[B, C, N]``; channels are averaged (down-mix), other
    rates resampled. Raises ``TypeError`` / ``ValueError`` naming the problem for a
    non-tensor, a non-float dtype, a wrong rank, an empty signal or non-finite samples.
    """
    if not isinstance(wav, Tensor):
        raise TypeError(f"wav must be a torch.Tensor, got {type(wav).__name__}")
    if not wav.is_floating_point():
        raise TypeError(f"wav must be a floating-point tensor in [-1, 1], got dtype {wav.dtype}")
    if not isinstance(sample_rate, int) or isinstance(sample_rate, bool) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive int, got {sample_rate!r}")
    if wav.dim() == 1:
        wav = wav[None, None]
    elif wav.dim() == 2:
        wav = wav[None]
    elif wav.dim() != 3:
        raise ValueError(f"wav must be [N], [C, N] or [B, C, N], got shape {tuple(wav.shape)}")
    if wav.shape[0] == 0 or wav.shape[1] == 0 or wav.shape[2] == 0:
        raise ValueError(f"wav is empty (shape {tuple(wav.shape)})")
    if not torch.isfinite(wav).all():
        bad = int((~torch.isfinite(wav)).sum())
        raise ValueError(f"wav contains {bad} NaN or Inf sample(s)")
    wav = wav.to(torch.float32)
    if wav.shape[1] > 1:
        wav = wav.mean(dim=1, keepdim=True)
    if sample_rate != target_rate:
        # The same resampler as the file readers, so a file and its samples give the same codes.
        wav = torch.from_numpy(resample(wav.cpu().numpy(), sample_rate, target_rate)).to(wav.device)
    return wav
