"""The speech server's ASGI application: OpenAI-style ``/v1/audio/speech``, voices, health, page.

Every error a client can cause is a 4xx JSON body in OpenAI's shape
(``{"error": {"message", "type", "param", "code"}}``); an unexpected failure is a 500
with the same shape and no traceback (the traceback goes to the server log).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

import numpy as np
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from codec import AUDIO_FORMATS, audio_to_bytes, available_formats

from ..audio import read_upload
from ..config import DEFAULT_SEED, LIMITS, SamplingConfig
from ..synthesizer import Synthesizer
from .config import ServerConfig
from .middleware import BodyLimit, RequestLog, error_body
from .page import page_html
from .pool import ServerBusy, WorkerPool, worker_synthesizers
from .streaming import STREAMED_FORMATS, AudioStream, SpeechJob, pcm16, wav_stream_header
from .voices import UnknownVoice, VoiceConflict, VoiceLibrary, check_name, prepare_voice

log = logging.getLogger("tts.serve")
T = TypeVar("T")

#: OpenAI model names accepted as aliases of the served model, so existing clients work unchanged.
OPENAI_MODEL_ALIASES = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
#: Chunks between two checks that a client waiting for a whole-file encoding is still there.
_DISCONNECT_CHECK_EVERY = 12


class ApiError(Exception):
    """A request the server refuses: HTTP ``status`` and a message naming the problem."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind


class SpeechRequest(BaseModel):
    """The body of ``POST /v1/audio/speech``: OpenAI's fields, then hylac's own."""

    model_config = ConfigDict(extra="forbid")

    model: str
    input: str
    voice: str | dict[str, str]
    response_format: str = "wav"
    speed: float = 1.0
    instructions: str | None = None
    stream_format: str | None = None
    language: str | None = None
    steps: int | None = None
    cfg: float | None = None
    seed: int | None = None


@dataclass
class ServerState:
    """What the routes share: the model, its voices and the worker pool."""

    synth: Synthesizer
    config: ServerConfig
    voices: VoiceLibrary
    pool: WorkerPool
    model_name: str

    @property
    def languages(self) -> tuple[str, ...]:
        return self.synth.model.frontend.languages

    def formats(self) -> list[str]:
        return ["wav", "pcm", *(f for f in available_formats() if f != "wav")]


def _check(condition: bool, message: str, param: str, code: str = "invalid_value") -> None:
    if not condition:
        raise ApiError(400, message, param, code)


def _limited(name: str, value: float | None, default: float) -> float:
    if value is None:
        return default
    try:
        return LIMITS.check(name, value)
    except ValueError as err:
        raise ApiError(400, str(err), name, "out_of_range") from None


def speech_job(state: ServerState, req: SpeechRequest) -> tuple[SpeechJob, str]:
    """Validate a speech request into a job and its response format; :class:`ApiError` otherwise."""
    served = (state.model_name, *OPENAI_MODEL_ALIASES)
    if req.model not in served:
        raise ApiError(404, f"model {req.model!r} is not served here; use {state.model_name!r} "
                            f"(or an OpenAI name: {', '.join(OPENAI_MODEL_ALIASES)})", "model", "model_not_found")
    text = req.input.strip()
    _check(bool(text), "input is empty: give the text to speak", "input", "empty_input")
    limit = state.config.max_input_chars
    _check(len(text) <= limit, f"input is {len(text)} characters long; the limit is {limit}", "input", "input_too_long")
    fmt = req.response_format
    _check(fmt in state.formats(), f"unsupported response_format {fmt!r}; supported: {', '.join(state.formats())}",
           "response_format", "unsupported_format")
    _check(0.25 <= req.speed <= 4.0, f"speed must be between 0.25 and 4, got {req.speed:g}", "speed", "out_of_range")
    _check(req.speed == 1.0, f"speed {req.speed:g} cannot be honoured: {state.model_name} has no speaking-rate "
                             "control; send 1.0 or leave it out", "speed", "unsupported_value")
    _check(not req.instructions, "instructions are not supported: the voice comes from the reference recording",
           "instructions", "unsupported_value")
    _check(req.stream_format in (None, "audio"), f"stream_format {req.stream_format!r} is not supported; "
                                                 "audio streams as chunked bytes ('audio')", "stream_format")
    lang = req.language or state.config.default_language
    _check(lang in state.languages, f"unsupported language {lang!r}; supported: {', '.join(state.languages)}",
           "language", "unsupported_language")
    steps = int(_limited("steps", req.steps, SamplingConfig.steps))
    cfg = float(_limited("cfg", req.cfg, SamplingConfig.cfg))
    seed = int(_limited("seed", req.seed, DEFAULT_SEED))
    name = req.voice if isinstance(req.voice, str) else req.voice.get("id", "")
    try:
        voice = state.voices.get(name)
        state.synth.encode_text(text, lang)  # cheap checks before taking a worker
    except UnknownVoice as err:
        raise ApiError(404, str(err), "voice", "voice_not_found") from None
    except ValueError as err:
        raise ApiError(400, str(err), "input") from None
    sampling = SamplingConfig(steps=steps, cfg=cfg, max_seconds=state.config.max_seconds)
    return SpeechJob(text, lang, voice.latents, sampling, seed), fmt


class AudioStreamResponse(StreamingResponse):
    """Chunked ``wav`` / ``pcm`` audio, sent as frames are generated; frees its worker however it ends."""

    def __init__(self, stream: AudioStream, first: np.ndarray | None, fmt: str, sample_rate: int) -> None:
        self.stream = stream
        media = AUDIO_FORMATS["wav"].media_type if fmt == "wav" else f"audio/L16;rate={sample_rate};channels=1"
        head = wav_stream_header(sample_rate) if fmt == "wav" else b""
        super().__init__(self._body(head, first), media_type=media,
                         headers={"X-Sample-Rate": str(sample_rate), "Cache-Control": "no-store"})

    async def _body(self, head: bytes, first: np.ndarray | None):
        yield head + (pcm16(first) if first is not None else b"")
        if first is None:
            return
        try:
            while (chunk := await self.stream.next_chunk()) is not None:
                yield pcm16(chunk)
        except Exception as err:
            # Headers are out: the only honest signal left is a cut connection.
            log.error("generation failed mid-stream: %s: %s", type(err).__name__, err)
            raise

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.stream.cancel()


async def _collect(stream: AudioStream, first: np.ndarray | None, request: Request) -> np.ndarray:
    parts = [] if first is None else [first]
    while first is not None and (chunk := await stream.next_chunk()) is not None:
        parts.append(chunk)
        if len(parts) % _DISCONNECT_CHECK_EVERY == 0 and await request.is_disconnected():
            raise ApiError(499, "client disconnected", code="client_closed")
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def _speech_routes(app: FastAPI, state: ServerState) -> None:
    @app.post("/v1/audio/speech")
    async def speech(req: SpeechRequest, request: Request) -> Response:
        job, fmt = speech_job(state, req)
        try:
            ticket = state.pool.admit()
        except ServerBusy as err:
            raise ApiError(503, str(err), code="server_busy", kind="server_busy") from None
        stream = AudioStream(ticket, job)
        try:
            await stream.start()
            first = await stream.next_chunk()  # errors in the first step are still a clean 4xx
            if fmt in STREAMED_FORMATS:
                return AudioStreamResponse(stream, first, fmt, state.synth.sample_rate)
            audio = await _collect(stream, first, request)
        except ValueError as err:
            stream.cancel()
            raise ApiError(400, str(err), "input") from None
        except BaseException:
            stream.cancel()
            raise
        stream.cancel()
        body = await asyncio.to_thread(audio_to_bytes, audio, state.synth.sample_rate, AUDIO_FORMATS[fmt])
        return Response(body, media_type=AUDIO_FORMATS[fmt].media_type)


def _voice_routes(app: FastAPI, state: ServerState) -> None:
    @app.get("/v1/voices")
    async def list_voices() -> dict[str, object]:
        return {"object": "list", "data": [v.to_dict() for v in state.voices.voices()]}

    @app.post("/v1/voices", status_code=201)
    async def add_voice(name: Annotated[str, Form(description="the new voice's id")],
                        file: Annotated[UploadFile, File(description="a recording of the voice (3-30 s)")],
                        ) -> dict[str, object]:
        try:
            check_name(name)
            state.voices.check_room(name)
        except VoiceConflict as err:
            raise ApiError(409, str(err), "name", "voice_conflict") from None
        except ValueError as err:
            raise ApiError(400, str(err), "name") from None
        data = await file.read()

        def encode(synth: Synthesizer):
            wav, _ = read_upload(data, file.filename)  # the checks of hylac-codec encode
            return prepare_voice(synth, name, file.filename or "upload", wav, synth.sample_rate)

        try:
            voice = await run_on_pool(state, encode)
            state.voices.add(voice)  # checked again: another upload may have taken the name meanwhile
        except VoiceConflict as err:
            raise ApiError(409, str(err), "name", "voice_conflict") from None
        except ValueError as err:
            raise ApiError(400, str(err), "file", "invalid_audio") from None
        log.info("voice %s added (%.1f s)", voice.name, voice.seconds)
        return voice.to_dict()


async def run_on_pool(state: ServerState, fn: Callable[[Synthesizer], T]) -> T:
    """Run ``fn(worker)`` on the pool; a full pool is a 503."""
    try:
        return await state.pool.run(fn)
    except ServerBusy as err:
        raise ApiError(503, str(err), code="server_busy", kind="server_busy") from None


def _info_routes(app: FastAPI, state: ServerState) -> None:
    @app.get("/", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        return HTMLResponse(page_html())

    @app.get("/health")
    async def health() -> dict[str, object]:
        pool, cfg = state.pool, state.config
        return {
            "status": "ok", "model": state.model_name, "sample_rate": state.synth.sample_rate,
            "languages": list(state.languages), "default_language": cfg.default_language,
            "formats": state.formats(), "voices": state.voices.names(),
            "workers": pool.workers, "running": pool.running, "queued": pool.queued,
            "limits": {"max_input_chars": cfg.max_input_chars, "max_seconds": cfg.max_seconds,
                       "max_body_bytes": cfg.max_body_bytes, "max_queue": cfg.max_queue,
                       "steps": list(LIMITS.steps), "cfg": list(LIMITS.cfg), "seed": list(LIMITS.seed)},
        }

    @app.get("/v1/models")
    async def models() -> dict[str, object]:
        return {"object": "list", "data": [{"id": state.model_name, "object": "model", "owned_by": "hylac"}]}


def _validation_message(err: RequestValidationError) -> tuple[str, str | None]:
    problems = err.errors()
    for p in problems:
        if p.get("type") == "json_invalid":
            return f"malformed JSON body: {p.get('ctx', {}).get('error', p.get('msg'))}", None
    parts, param = [], None
    for p in problems:
        loc = [str(x) for x in p.get("loc", ()) if x not in ("body", "query", "form")]
        param = param or (loc[0] if loc else None)
        where = ".".join(loc) or "body"
        parts.append(f"{where}: extra field not allowed" if p.get("type") == "extra_forbidden"
                     else f"{where}: {p.get('msg')}")
    return "; ".join(parts) or "invalid request", param


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, err: ApiError) -> JSONResponse:
        headers = {"Retry-After": str(app.state.server.pool.retry_after)} if err.status == 503 else None
        return JSONResponse(error_body(err.message, err.kind, err.param, err.code), err.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(err)
        return JSONResponse(error_body(message, param=param, code="invalid_request"), 400)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, err: HTTPException) -> JSONResponse:
        return JSONResponse(error_body(str(err.detail)), err.status_code, headers=err.headers)

    @app.exception_handler(Exception)
    async def internal(_: Request, err: Exception) -> JSONResponse:
        # Starlette re-raises after this response is sent, so the traceback reaches the server log.
        return JSONResponse(error_body("internal server error (details are in the server log)", "server_error"), 500)


def create_app(synth: Synthesizer, config: ServerConfig | None = None, voices: VoiceLibrary | None = None,
               model_name: str = "hylac-tts") -> FastAPI:
    """The server application for ``synth``.

    Args:
        synth: the loaded model (worker copies of its codec are made here).
        config: limits and pool size (defaults: :class:`ServerConfig`).
        voices: the voice library (default: empty).
        model_name: the name clients pass as ``model``.
    """
    config = config or ServerConfig()
    voices = voices if voices is not None else VoiceLibrary(config.max_voices)
    pool = WorkerPool(worker_synthesizers(synth, config.workers), config.max_queue, config.retry_after)
    state = ServerState(synth, config, voices, pool, model_name)
    app = FastAPI(title="hylac-tts", summary="OpenAI-compatible speech synthesis with hylac", version="1")
    app.state.server = state
    _error_handlers(app)
    _info_routes(app, state)
    _speech_routes(app, state)
    _voice_routes(app, state)
    from .codec_api import codec_routes  # the codec endpoints share the pool and the error handlers

    codec_routes(app, state)
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    app.add_middleware(RequestLog)
    app.router.add_event_handler("shutdown", pool.shutdown)
    return app
