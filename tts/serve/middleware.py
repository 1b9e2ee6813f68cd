"""ASGI middleware: a request-body size limit, and one log line per request with its latency."""

from __future__ import annotations

import json
import logging
import time

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("tts.serve")


def error_body(message: str, kind: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict[str, object]:
    """The OpenAI error shape, which the ``openai`` client turns into its exception's message."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than the server's limit of {limit / 2**20:g} MiB")


class BodyLimit:
    """Refuse bodies over ``max_bytes`` with a 413, whether announced (``Content-Length``) or streamed.

    A streamed body is counted as it is read; the first read past the limit raises
    :class:`BodyTooLarge` inside the application, whose handler answers the 413, so
    the whole body is never buffered.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await _send_json(send, 413, error_body(str(BodyTooLarge(self.max_bytes).detail), code="body_too_large"))
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited, send)


async def _send_json(send: Send, status: int, body: dict[str, object]) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


class RequestLog:
    """Log ``METHOD path status bytes, first byte after .. ms, done after .. ms`` for each request.

    For a stream, "first byte" is when the first audio left and "done" when the last
    did; a client that went away mid-stream is logged as ``disconnected``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0
        sent = 0
        first: float | None = None
        finished = False

        async def logged(message: Message) -> None:
            nonlocal status, sent, first, finished
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                body = message.get("body", b"")
                if body and first is None:
                    first = time.perf_counter()
                sent += len(body)
                finished = not message.get("more_body", False)
            await send(message)

        failed = False
        try:
            await self.app(scope, receive, logged)
        except Exception:
            failed = True
            raise
        finally:
            total = (time.perf_counter() - start) * 1000
            ttfb = f"{(first - start) * 1000:.0f} ms" if first is not None else "-"
            state = status if finished else "500 (failed)" if failed and not status else f"{status or '-'} disconnected"
            log.info("%s %s %s %d bytes, first byte after %s, done after %.0f ms",
                     scope["method"], scope["path"], state, sent, ttfb, total)
