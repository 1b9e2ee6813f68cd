"""Audio in: validation, down-mixing, resampling, block-wise reading (writing: :mod:`codec.io.output`).

Everything the codec reads goes through :class:`AudioReader`, which turns a file of any
rate and channel count into mono float32 blocks at the codec rate without ever holding
the whole file. Whatever is not usable audio is an :class:`AudioInputError` saying what
it is instead (a folder, an empty file, text, model weights, a truncated WAV, NaN
samples, ...): :func:`read_audio` and :func:`read_audio_bytes` (an upload) make the same
checks as ``hylac-codec encode``.

Arrays here are numpy (``[N]`` mono float32 at the target rate), except in
:func:`prepare_waveform`, which checks and converts the tensors handed to the codec.
"""

from __future__ import annotations

import math
import os
import struct
import tempfile
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


def _check_path_readable(path: Path) -> bytes:
    """The file's first bytes, once it is known to be a readable, non-empty file."""
    if not path.exists():
        raise AudioInputError(path, "no such file")
    if path.is_dir():
        raise AudioInputError(path, "is a folder, not an audio file")
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as err:
        raise AudioInputError(path, f"cannot be read ({_describe_os_error(err)})") from err
    if not head:
        raise AudioInputError(path, "empty file (0 bytes)")
    return head


def describe_file(head: bytes) -> str | None:
    """What a file that is not decodable audio is, from its first bytes (for error messages)."""
    if head.startswith((b"RIFF", b"RIFX")) and head[8:12] == b"WAVE":
        return "a RIFF/WAV file that cannot be decoded: damaged, or an unsupported sample format"
    if len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 1 << 24:
        return "a safetensors file: model weights or latents, not audio"
    for magic, what in ((b"PK\x03\x04", "a zip archive"), (b"%PDF", "a PDF document")):
        if head.startswith(magic):
            return what
    stripped = head.lstrip()
    if stripped.startswith((b"{", b"[")):
        return "a JSON text file"
    if stripped[:5].lower() in (b"<!doc", b"<html"):
        return "an HTML page"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "a text file" if all(c.isprintable() or c in "\r\n\t" for c in text) else None


def _unreadable(path: Path, head: bytes, reason: str) -> AudioInputError:
    what = describe_file(head)
    return AudioInputError(path, f"not a readable audio file ({what + '; ' if what else ''}{reason})")


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
    head = _check_path_readable(path)
    if path.suffix.lower() in _LIBROSA_ONLY_EXTENSIONS:
        info = _probe_librosa(path)
    else:
        try:
            sfi = sf.info(str(path))
        except sf.LibsndfileError as err:
            raise _unreadable(path, head, f"libsndfile: {_libsndfile_reason(err)}") from err
        except (RuntimeError, TypeError) as err:
            raise _unreadable(path, head, str(err)) from err
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
    """Iterate over an audio file as mono float32 blocks at ``target_rate`` (None: the file's own rate).

    Every block has exactly ``block_size`` samples except the last, which is shorter
    (never empty). The file is decoded block by block and resampled with a streaming
    soxr resampler, so memory stays bounded by the block size for files of any length;
    the concatenated blocks equal ``soxr.resample`` of the whole down-mixed signal.

    Use as a context manager or call :meth:`close`.

    Raises (while iterating):
        AudioInputError: NaN/Inf samples, or decoding failure (corrupted / truncated data).
    """

    def __init__(
        self, path: str | os.PathLike, target_rate: int | None = SAMPLE_RATE, block_size: int = 30 * SAMPLE_RATE
    ) -> None:
        if block_size <= 0:
            raise ValueError(f"block_size must be positive, got {block_size}")
        self.path = Path(path)
        self.info = probe_audio(self.path)
        self.target_rate = self.info.sample_rate if target_rate is None else target_rate
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


def read_audio(path: str | os.PathLike, target_rate: int | None = SAMPLE_RATE) -> tuple[np.ndarray, AudioInfo]:
    """Read a whole file as mono float32 ``[N]`` at ``target_rate`` (None: the file's own rate).

    The checks and the decoder are those of ``hylac-codec encode`` (:class:`AudioReader`):
    channels are averaged, other rates resampled with the one resampler, containers that
    libsndfile lacks (m4a, ...) decoded through librosa. Returns the samples and what the
    file held (its own rate and channel count).

    Raises:
        AudioInputError: no such file, a folder, an empty or unreadable file, not audio
            (the message says what it is), a truncated WAV, zero samples, NaN or Inf.
    """
    with AudioReader(path, target_rate) as reader:
        blocks = list(reader)
        return np.concatenate(blocks), reader.info


def read_audio_bytes(data: bytes, name: str, target_rate: int | None = SAMPLE_RATE) -> tuple[np.ndarray, AudioInfo]:
    """:func:`read_audio` for a file held in memory (an upload): ``name`` is the file's name, whose
    suffix picks the decoder as a path's would, and stands for the file in error messages."""
    if not data:
        raise AudioInputError(name, "empty file (0 bytes)")
    suffix = Path(name).suffix.lower()
    with tempfile.TemporaryDirectory(prefix="hylac-audio-") as tmp:
        # A real file, so an upload goes through exactly the checks and decoders of a path.
        path = Path(tmp) / f"upload{suffix if suffix.isascii() and len(suffix) <= 8 else ''}"
        path.write_bytes(data)
        try:
            wav, info = read_audio(path, target_rate)
        except AudioInputError as err:  # named by the upload, not by the temporary file
            raise AudioInputError(name, err.problem.replace(str(path), name)) from None
    return wav, AudioInfo(Path(name), info.sample_rate, info.channels, info.num_samples, info.format)


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
