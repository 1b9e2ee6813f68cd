"""Voice recordings in, through the codec's reader (the checks and errors of ``hylac-codec encode``).

Audio files, formats and atomic writing are the codec's (:func:`codec.read_audio`,
:func:`codec.read_audio_bytes`, :class:`codec.AudioWriter`, :data:`codec.AUDIO_FORMATS`);
this module only names what a voice that is not usable audio is.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor

from codec import (
    SAMPLE_RATE,
    AudioInfo,
    AudioInputError,
    InputFileError,
    read_audio,
    read_audio_bytes,
)


def read_voice(path: str | os.PathLike) -> Tensor:
    """A voice recording -> ``[N]`` float32 at 24 kHz (channels averaged, resampled).

    Raises:
        ValueError: ``"voice prompt <path>: <problem>"`` for what is not usable audio (no
            such file, a folder, empty, text, model weights, a truncated WAV, NaN samples, ...).
    """
    try:
        wav, _ = read_audio(path, SAMPLE_RATE)
    except AudioInputError as err:
        raise ValueError(f"voice prompt {err}") from None
    return torch.from_numpy(wav)


def read_upload(data: bytes, filename: str | None) -> tuple[Tensor, AudioInfo]:
    """An uploaded audio file -> ``[N]`` float32 at 24 kHz, and what the file held (its own
    sample rate and channel count).

    Raises:
        ValueError: ``"upload '<name>': <problem>"``, as :func:`read_voice`.
    """
    try:
        wav, info = read_audio_bytes(data, filename or "upload", SAMPLE_RATE)
    except AudioInputError as err:
        raise ValueError(upload_error(filename, err)) from None
    return torch.from_numpy(wav), info


def upload_error(filename: str | None, err: InputFileError) -> str:
    """The message of an unusable upload: the codec's problem, the file named as the client named it."""
    return f"upload {filename!r}: {err.problem}" if filename else f"upload: {err.problem}"
