"""The codec over HTTP: ``POST /v1/codec/encode`` (audio -> ``.hylat``) and ``/v1/codec/decode``.

Both run on the worker pool, with the worker's own codec, and check their input the way
``hylac-codec`` does: audio that is not audio, latents of another codec, damaged or
newer-format files are each a 400 naming the problem.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from fastapi import FastAPI, File, Form, UploadFile
from fastapi.responses import Response

from codec import (
    AUDIO_FORMATS,
    LATENT_SUFFIX,
    LatentFileError,
    audio_to_bytes,
    latents_from_bytes,
    latents_to_bytes,
)

from ..audio import read_upload, upload_error
from ..synthesizer import Synthesizer

if TYPE_CHECKING:
    from .app import ServerState

#: Encodings ``/v1/codec/decode`` writes.
DECODE_FORMATS = ("wav", "flac")


def _stem(filename: str | None, default: str) -> str:
    """A safe file stem for ``Content-Disposition`` (the upload's own, cleaned)."""
    stem = Path(filename or "").stem
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._")
    return stem[:100] or default


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


def encode_upload(synth: Synthesizer, data: bytes, filename: str | None) -> bytes:
    """Audio file bytes -> ``.hylat`` file bytes written by the worker's codec (input checked
    as ``hylac-codec encode`` checks a file)."""
    wav, info = read_upload(data, filename)  # [N] at the codec's rate
    codec = synth.codec
    latents = codec.encode(wav, codec.sample_rate).to("cpu")
    return latents_to_bytes(latents, codec, channels=info.channels, original_sample_rate=info.sample_rate)


def decode_upload(synth: Synthesizer, data: bytes, filename: str | None, fmt: str) -> bytes:
    """``.hylat`` file bytes -> an audio file of exactly the original length."""
    codec = synth.codec
    try:
        latents, info = latents_from_bytes(data, filename or "upload", codec)
    except LatentFileError as err:
        raise ValueError(upload_error(filename, err)) from None
    audio = codec.decode(latents)[:, 0]  # [C, N]
    return audio_to_bytes(audio.T.cpu().numpy(), info.sample_rate, AUDIO_FORMATS[fmt])


def codec_routes(app: FastAPI, state: ServerState) -> None:
    from .app import ApiError, run_on_pool

    @app.post("/v1/codec/encode")
    async def encode(file: Annotated[UploadFile, File(description="an audio file")]) -> Response:
        data = await file.read()
        try:
            body = await run_on_pool(state, lambda synth: encode_upload(synth, data, file.filename))
        except ValueError as err:
            raise ApiError(400, str(err), "file", "invalid_audio") from None
        return Response(body, media_type="application/octet-stream",
                        headers=_attachment(_stem(file.filename, "audio") + LATENT_SUFFIX))

    @app.post("/v1/codec/decode")
    async def decode(file: Annotated[UploadFile, File(description="a .hylat file")],
                     response_format: Annotated[str, Form()] = "wav") -> Response:
        if response_format not in DECODE_FORMATS:
            raise ApiError(400, f"unsupported response_format {response_format!r}; supported: "
                                f"{', '.join(DECODE_FORMATS)}", "response_format", "unsupported_format")
        data = await file.read()
        try:
            body = await run_on_pool(state, lambda synth: decode_upload(synth, data, file.filename, response_format))
        except ValueError as err:
            raise ApiError(400, str(err), "file", "invalid_latents") from None
        fmt = AUDIO_FORMATS[response_format]
        return Response(body, media_type=fmt.media_type, headers=_attachment(_stem(file.filename, "decoded") + fmt.suffix))
