"""``hylac-tts serve``: an OpenAI-compatible speech server with a browser page.

``create_app(synth, ServerConfig(...), voices)`` builds the ASGI application (FastAPI);
``tts.serve.server`` runs it with uvicorn. Both need the ``serve`` extra
(``pip install 'hylac[serve]'``); :class:`ServerConfig` alone does not, so the CLI can
show its defaults without them.
"""

from __future__ import annotations

from typing import Any

from .config import ServerConfig

__all__ = ["OPENAI_MODEL_ALIASES", "ServerConfig", "Voice", "VoiceLibrary", "create_app"]


def __getattr__(name: str) -> Any:
    # The application's names load FastAPI on first use, not on ``import tts.serve``.
    if name in ("OPENAI_MODEL_ALIASES", "create_app"):
        from . import app

        return getattr(app, name)
    if name in ("Voice", "VoiceLibrary"):
        from . import voices

        return getattr(voices, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
