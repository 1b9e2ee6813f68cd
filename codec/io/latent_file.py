"""The ``.hylat`` latent file: one encoded recording, as safetensors (never pickle).

Tensors:
    ``semantic``  uint16 ``[T]`` semantic codes (``[C, T]`` is read as a batch of C streams).
    ``acoustic``  uint8  ``[T, A]`` FSQ codes ``0 .. levels-1`` (``[C, T, A]`` alongside ``[C, T]``).

String metadata (all values are strings, as safetensors requires):
    ``format`` = ``"hylat"``, ``format_version``, ``codec_name``, ``codec_weights_sha256``
    (all the codec's weights), ``codec_latent_sha256`` (its latent space: encoder and
    quantizers; absent from files written before it was recorded),
    ``sample_rate``, ``frame_rate``, ``num_samples`` (at ``sample_rate``; decoding returns
    exactly this many), ``channels`` and ``original_sample_rate`` (of the input, for
    information), ``semantic_codebook_size``, ``acoustic_levels``, ``data_sha256``
    (checksum of the code bytes, so corruption is detected rather than decoded).

Files are written atomically (temporary file + rename), so a reader never sees a
partial file under the final name.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from codec.io.audio import InputFileError
from codec.io.output import write_bytes_atomic
from codec.latents import FRAME_SIZE, Latents, bits_per_frame, num_frames

FORMAT_NAME = "hylat"
FORMAT_VERSION = 1
SUFFIX = ".hylat"


class LatentFileError(InputFileError):
    """A ``.hylat`` file that cannot be used. ``str(err)`` is ``"<path>: <problem>"``."""


class UnsupportedVersionError(LatentFileError):
    """Written by a newer format version than this code reads."""


class CodecMismatchError(LatentFileError):
    """Written by a codec with another latent space than the one asked to decode it."""


class CodecIdentity(Protocol):
    """What a latent file needs to know about the codec that wrote it.

    Read-only members, so that a model's properties and a frozen :class:`CodecStamp` both
    satisfy it.
    """

    @property
    def name(self) -> str: ...

    @property
    def weights_hash(self) -> str:
        """SHA-256 (hex) of all the weights: identifies exactly one codec."""

    @property
    def latent_hash(self) -> str:
        """SHA-256 (hex) of the latent space (layout, encoder and quantizers)."""

    @property
    def sample_rate(self) -> int: ...

    @property
    def frame_rate(self) -> float: ...

    @property
    def semantic_codebook_size(self) -> int: ...

    @property
    def acoustic_levels(self) -> int: ...


@dataclass(frozen=True)
class CodecStamp:
    """A codec's identity, taken once (hashing the weights of a large model is not free).

    Pass it wherever a model is accepted as :class:`CodecIdentity` when writing or
    checking many files with the same, unchanging codec.
    """

    name: str
    weights_hash: str
    latent_hash: str
    sample_rate: int
    frame_rate: float
    semantic_codebook_size: int
    acoustic_levels: int

    @classmethod
    def of(cls, model: CodecIdentity) -> CodecStamp:
        return cls(model.name, model.weights_hash, model.latent_hash, int(model.sample_rate),
                   float(model.frame_rate), int(model.semantic_codebook_size), int(model.acoustic_levels))


@dataclass(frozen=True)
class LatentFileInfo:
    """The metadata of a ``.hylat`` file.

    Attributes:
        format_version: file format version.
        codec_name: name of the codec that wrote it (e.g. ``"hylac-tiny"``).
        codec_weights_sha256: sha256 of that codec's weights; identifies it exactly.
        codec_latent_sha256: sha256 of its latent space (``HybridCodec.latent_hash``): any
            codec with the same one decodes the file. Empty in files written before it
            was recorded; those need the exact weights.
        sample_rate: rate of the audio the codes stand for (24000).
        frame_rate: latent frames per second (12.5).
        num_samples: samples at ``sample_rate`` that decoding returns.
        num_frames: latent frames stored.
        channels: channel count of the original input (it was down-mixed to mono).
        original_sample_rate: sample rate of the original input.
        semantic_codebook_size: semantic VQ codebook entries.
        acoustic_levels: FSQ levels per acoustic dimension.
        acoustic_dim: acoustic dimensions per frame.
    """

    format_version: int
    codec_name: str
    codec_weights_sha256: str
    codec_latent_sha256: str
    sample_rate: int
    frame_rate: float
    num_samples: int
    num_frames: int
    channels: int
    original_sample_rate: int
    semantic_codebook_size: int
    acoustic_levels: int
    acoustic_dim: int

    @property
    def duration(self) -> float:
        """Seconds of audio."""
        return self.num_samples / self.sample_rate

    @property
    def bitrate(self) -> float:
        """Bits per second of the codes (frame rate x bits per frame)."""
        return self.frame_rate * bits_per_frame(self.semantic_codebook_size, self.acoustic_dim, self.acoustic_levels)

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "duration": self.duration, "bitrate": self.bitrate}


def codec_description(name: str, weights_hash: str) -> str:
    return f"'{name}' (weights {weights_hash[:12]})"


def same_latent_space(info: LatentFileInfo, model: CodecIdentity) -> bool:
    """Whether ``model`` reads the codes of a file described by ``info``: the same latent
    hash, or for files without one, the very same weights."""
    if info.codec_latent_sha256:
        return info.codec_latent_sha256 == model.latent_hash
    return info.codec_weights_sha256 == model.weights_hash and info.codec_name == model.name


def check_codec(info: LatentFileInfo, model: CodecIdentity, path: str | os.PathLike) -> None:
    """Raise :class:`CodecMismatchError` unless ``model`` shares the latent space of the
    codec that wrote the file."""
    if not same_latent_space(info, model):
        raise CodecMismatchError(
            path,
            f"written by codec {codec_description(info.codec_name, info.codec_weights_sha256)} but the "
            f"loaded codec is {codec_description(model.name, model.weights_hash)}, with another latent "
            f"space; decode it with --model {info.codec_name} (the codec that wrote it)",
        )


def _data_checksum(semantic: torch.Tensor, acoustic: torch.Tensor) -> str:
    h = hashlib.sha256()
    h.update(semantic.contiguous().numpy().tobytes())
    h.update(acoustic.contiguous().numpy().tobytes())
    return h.hexdigest()


def latents_to_bytes(
    latents: Latents, model: CodecIdentity, channels: int = 1, original_sample_rate: int | None = None
) -> bytes:
    """Serialise one item (``B == 1``) of ``latents`` to ``.hylat`` bytes."""
    if latents.batch_size != 1:
        raise ValueError(f"a .hylat file holds one recording; got a batch of {latents.batch_size} (save each item)")
    if model.semantic_codebook_size > 1 << 16:
        raise ValueError(f"semantic codebook of {model.semantic_codebook_size} entries does not fit uint16")
    if latents.acoustic_levels > 1 << 8:
        raise ValueError(f"{latents.acoustic_levels} acoustic levels do not fit uint8")
    if latents.acoustic_levels != model.acoustic_levels:
        raise ValueError(f"latents have {latents.acoustic_levels} acoustic levels, the codec {model.acoustic_levels}")
    if latents.num_frames != num_frames(latents.num_samples):
        raise ValueError(f"{latents.num_frames} frames do not match {latents.num_samples} samples")
    semantic = latents.semantic[0].detach().cpu()
    acoustic = latents.acoustic_codes[0].detach().cpu()
    if semantic.numel() and (int(semantic.min()) < 0 or int(semantic.max()) >= model.semantic_codebook_size):
        raise ValueError("semantic codes out of the codebook range")
    if acoustic.numel() and (int(acoustic.min()) < 0 or int(acoustic.max()) >= latents.acoustic_levels):
        raise ValueError("acoustic codes out of the FSQ range")
    # uint16 via int32: torch has no direct int64 -> uint16 path on every version.
    semantic = semantic.to(torch.int32).to(torch.uint16).contiguous()
    acoustic = acoustic.to(torch.uint8).contiguous()
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "codec_name": model.name,
        "codec_weights_sha256": model.weights_hash,
        "codec_latent_sha256": model.latent_hash,
        "sample_rate": str(model.sample_rate),
        "frame_rate": repr(float(model.frame_rate)),
        "num_samples": str(latents.num_samples),
        "channels": str(channels),
        "original_sample_rate": str(original_sample_rate or model.sample_rate),
        "semantic_codebook_size": str(model.semantic_codebook_size),
        "acoustic_levels": str(latents.acoustic_levels),
        "data_sha256": _data_checksum(semantic, acoustic),
    }
    return st_save({"semantic": semantic, "acoustic": acoustic}, metadata=metadata)


def save_latents(
    path: str | os.PathLike,
    latents: Latents,
    model: CodecIdentity,
    *,
    channels: int = 1,
    original_sample_rate: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write one recording's latents (``B == 1``) to a ``.hylat`` file, atomically.

    Args:
        path: destination (conventionally ending in ``.hylat``).
        latents: ``semantic [1, T]``, ``acoustic_codes [1, T, A]``.
        model: the codec that produced them (its name and weights hash are recorded).
        channels, original_sample_rate: the original input's, for information.
        overwrite: replace an existing file (otherwise :class:`~codec.io.output.OutputExistsError`).

    Returns:
        the path written.
    """
    path = Path(path)
    write_bytes_atomic(path, latents_to_bytes(latents, model, channels, original_sample_rate), overwrite)
    return path


def audio_container(head: bytes) -> str | None:
    """The audio container whose magic bytes start ``head`` (the file's first 12 bytes or more),
    e.g. ``"RIFF/WAV"``; None for anything else."""
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return f"{head[:4].decode()}/WAV"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "AIFF"
    if head[4:8] == b"ftyp":
        return "MP4/M4A"
    for magic, name in ((b"fLaC", "FLAC"), (b"OggS", "Ogg"), (b"ID3", "MP3"), (b".snd", "AU"), (b"caff", "CAF")):
        if head.startswith(magic):
            return name
    # An MPEG audio frame: 11 sync bits, then a version and a layer that are not "reserved".
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x18 != 0x08 and head[1] & 0x06:
        return "MP3"
    return None


def _read_header(path: Path, data: bytes) -> dict[str, str]:
    if len(data) == 0:
        raise LatentFileError(path, "empty file (0 bytes)")
    # A safetensors header (JSON) starts at byte 8; anything else there may be an audio file
    # handed to a command that reads latents.
    container = audio_container(data[:12]) if data[8:9] != b"{" else None
    if container is not None:
        raise LatentFileError(path, f"is a {container} audio file, not a {SUFFIX} latent file "
                                    f"(to encode it: hylac-codec encode {path})")
    if len(data) < 8:
        raise LatentFileError(path, "truncated: too short to be a latent file")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > len(data) - 8:
        raise LatentFileError(
            path, f"not a complete latent file (header of {header_len} bytes, file of {len(data)} bytes): truncated?"
        )
    try:
        header = json.loads(data[8 : 8 + header_len])
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise LatentFileError(path, "not a latent file (unreadable safetensors header): corrupted?") from err
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise LatentFileError(path, f"not a {SUFFIX} latent file (no '{FORMAT_NAME}' format marker)")
    return metadata


def _parse_info(path: Path, metadata: dict[str, str], tensors: dict[str, torch.Tensor] | None) -> LatentFileInfo:
    try:
        version = int(metadata["format_version"])
    except (KeyError, ValueError) as err:
        raise LatentFileError(path, "missing or invalid format version") from err
    if version > FORMAT_VERSION:
        raise UnsupportedVersionError(
            path,
            f"written in latent format version {version}, newer than this hylac reads "
            f"(up to {FORMAT_VERSION}); upgrade hylac to read it",
        )
    if version < 1:
        raise LatentFileError(path, f"invalid format version {version}")
    try:
        num_samples = int(metadata["num_samples"])
        frame_rate = float(metadata["frame_rate"])
        sample_rate = int(metadata["sample_rate"])
        frame_size = round(sample_rate / frame_rate)
        frames = -(-num_samples // frame_size)
        acoustic_dim = -1
        if tensors is not None:
            acoustic_dim = int(tensors["acoustic"].shape[-1])
        info = LatentFileInfo(
            format_version=version,
            codec_name=metadata["codec_name"],
            codec_weights_sha256=metadata["codec_weights_sha256"],
            codec_latent_sha256=metadata.get("codec_latent_sha256", ""),
            sample_rate=sample_rate,
            frame_rate=frame_rate,
            num_samples=num_samples,
            num_frames=frames,
            channels=int(metadata["channels"]),
            original_sample_rate=int(metadata["original_sample_rate"]),
            semantic_codebook_size=int(metadata["semantic_codebook_size"]),
            acoustic_levels=int(metadata["acoustic_levels"]),
            acoustic_dim=acoustic_dim,
        )
    except (KeyError, ValueError, ZeroDivisionError) as err:
        raise LatentFileError(path, f"invalid metadata ({type(err).__name__}: {err})") from err
    if num_samples <= 0:
        raise LatentFileError(path, f"invalid metadata: num_samples={num_samples}")
    return info


def _header_acoustic_dim(path: Path, data: bytes) -> int:
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len])
    try:
        return int(header["acoustic"]["shape"][-1])
    except (KeyError, IndexError, TypeError, ValueError) as err:
        raise LatentFileError(path, "no acoustic tensor in the file") from err


def read_latent_info(path: str | os.PathLike) -> LatentFileInfo:
    """Read and validate a ``.hylat`` file's metadata (the header only, not the codes).

    Raises:
        LatentFileError: missing, empty, not a latent file, truncated header, bad metadata.
        UnsupportedVersionError: written by a newer format version.
    """
    path = Path(path)
    data = _read_file(path, header_only=True)
    metadata = _read_header(path, data)
    info = _parse_info(path, metadata, None)
    return LatentFileInfo(**{**asdict(info), "acoustic_dim": _header_acoustic_dim(path, data)})


def _read_file(path: Path, header_only: bool = False) -> bytes:
    try:
        with open(path, "rb") as f:
            if not header_only:
                return f.read()
            head = f.read(8)
            if len(head) < 8:
                return head
            (header_len,) = struct.unpack("<Q", head)
            # A header beyond 100 MB means garbage, not a latent file; don't try to read it.
            return head + f.read(min(header_len, 100 << 20))
    except FileNotFoundError as err:
        raise LatentFileError(path, "no such file") from err
    except IsADirectoryError as err:
        raise LatentFileError(path, "is a directory, not a latent file") from err
    except OSError as err:
        raise LatentFileError(path, f"cannot be read ({err.strerror or type(err).__name__})") from err


def load_latents(
    path: str | os.PathLike, model: CodecIdentity | None = None
) -> tuple[Latents, LatentFileInfo]:
    """Read a ``.hylat`` file.

    Args:
        path: the file.
        model: if given, the file must have been written by this codec (same name and
            weights hash), otherwise :class:`CodecMismatchError` names both.

    Returns:
        ``(latents, info)``: latents with ``semantic [1, T]`` / ``acoustic_codes [1, T, A]``
        (``[C, ...]`` for a multi-stream file), on the CPU; and the file's metadata.

    Raises:
        LatentFileError: missing, empty, not a latent file, truncated, corrupted
            (checksum mismatch), inconsistent shapes or out-of-range codes.
        UnsupportedVersionError: written by a newer format version.
        CodecMismatchError: written by another codec than ``model``.
    """
    path = Path(path)
    return latents_from_bytes(_read_file(path), path, model)


def latents_from_bytes(
    data: bytes, name: str | os.PathLike, model: CodecIdentity | None = None
) -> tuple[Latents, LatentFileInfo]:
    """:func:`load_latents` for a file held in memory (an upload); ``name`` stands for it in errors."""
    path = Path(name)
    metadata = _read_header(path, data)
    _parse_info(path, metadata, None)  # version check before anything else can fail
    try:
        tensors = st_load(data)
    except (SafetensorError, RuntimeError, ValueError) as err:
        raise LatentFileError(path, f"damaged latent file: truncated or corrupted ({err})") from err
    if set(tensors) != {"semantic", "acoustic"}:
        raise LatentFileError(path, f"expected tensors 'semantic' and 'acoustic', found {sorted(tensors)}")
    info = _parse_info(path, metadata, tensors)
    semantic, acoustic = tensors["semantic"], tensors["acoustic"]
    if semantic.dtype != torch.uint16 or acoustic.dtype != torch.uint8:
        raise LatentFileError(path, f"unexpected dtypes semantic {semantic.dtype}, acoustic {acoustic.dtype}")
    if metadata.get("data_sha256") != _data_checksum(semantic, acoustic):
        raise LatentFileError(path, "corrupted: the codes do not match the file's checksum")
    if semantic.dim() == 1:
        semantic, acoustic = semantic[None], acoustic[None]
    if semantic.dim() != 2 or acoustic.dim() != 3 or acoustic.shape[:2] != semantic.shape:
        raise LatentFileError(
            path, f"inconsistent shapes semantic {tuple(semantic.shape)}, acoustic {tuple(acoustic.shape)}"
        )
    if semantic.shape[1] != info.num_frames:
        raise LatentFileError(
            path, f"holds {semantic.shape[1]} frames but its metadata needs {info.num_frames} for {info.num_samples} samples"
        )
    semantic = semantic.to(torch.int64)
    acoustic = acoustic.to(torch.int64)
    if semantic.numel() and int(semantic.max()) >= info.semantic_codebook_size:
        raise LatentFileError(path, "semantic codes out of the codebook range")
    if acoustic.numel() and int(acoustic.max()) >= info.acoustic_levels:
        raise LatentFileError(path, "acoustic codes out of the FSQ range")
    if model is not None:
        check_codec(info, model, path)
    if info.sample_rate != round(info.frame_rate * FRAME_SIZE):
        raise LatentFileError(path, f"unsupported frame layout ({info.sample_rate} Hz at {info.frame_rate} frames/s)")
    return Latents(semantic, acoustic, info.num_samples, info.acoustic_levels), info
