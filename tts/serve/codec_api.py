"""The codec over HTTP: ``POST /v1/codec/encode`` (audio -> ``.hylat``) and ``/v1/codec/decode``.

Both run on the worker pool, with the worker's own codec, and check their input the way
``hylac-codec`` does: audio that is not audio, latents of another codec, damaged or
newer-format files are each a 400 naming the problem.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from fastapi import FastAPI, File, Form, UploadFile
from fastapi.responses import Response

from codec import LatentFileError, load_latents, save_latents

from ..audio import FORMATS, LATENT_SUFFIX, AudioFileError, encode_audio, read_audio_bytes
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


def encode_upload(synth: Synthesizer, data: bytes, label: str) -> bytes:
    """Audio file bytes -> ``.hylat`` file bytes written by the worker's codec."""
    wav, rate = read_audio_bytes(data, label)  # [C, N]
    codec = synth.codec
    latents = codec.encode(wav, rate).to("cpu")
    with tempfile.TemporaryDirectory(prefix="hylac-serve-") as tmp:
        path = save_latents(Path(tmp) / f"upload{LATENT_SUFFIX}", latents, codec, channels=wav.shape[0],
                            original_sample_rate=rate)
        return path.read_bytes()


def decode_upload(synth: Synthesizer, data: bytes, label: str, fmt: str) -> bytes:
    """``.hylat`` file bytes -> an audio file of exactly the original length."""
    if not data:
        raise AudioFileError(f"{label} is empty (0 bytes)")
    codec = synth.codec
    with tempfile.TemporaryDirectory(prefix="hylac-serve-") as tmp:
        path = Path(tmp) / f"upload{LATENT_SUFFIX}"
        path.write_bytes(data)
        try:
            latents, info = load_latents(path, codec)
        except LatentFileError as err:  # its message starts with our temporary path: name the upload instead
            raise AudioFileError(f"{label}: {err.problem}") from None
    audio = codec.decode(latents)[:, 0]  # [C, N]
    return encode_audio(audio.T.cpu().numpy(), info.sample_rate, FORMATS[fmt])


def codec_routes(app: FastAPI, state: ServerState) -> None:
    from .app import ApiError, run_on_pool

    @app.post("/v1/codec/encode")
    async def encode(file: Annotated[UploadFile, File(description="an audio file")]) -> Response:
        data = await file.read()
        label = f"upload {file.filename!r}" if file.filename else "upload"
        try:
            body = await run_on_pool(state, lambda synth: encode_upload(synth, data, label))
        except (AudioFileError, ValueError) as err:
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
        label = f"upload {file.filename!r}" if file.filename else "upload"
        try:
            body = await run_on_pool(state, lambda synth: decode_upload(synth, data, label, response_format))
        except (AudioFileError, ValueError) as err:
            raise ApiError(400, str(err), "file", "invalid_latents") from None
        fmt = FORMATS[response_format]
        return Response(body, media_type=fmt.media_type, headers=_attachment(_stem(file.filename, "decoded") + fmt.suffix))
