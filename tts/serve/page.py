"""The browser page served at ``GET /``: one static file, no build step, no external assets.

It asks the server for languages, voices and limits (``/health``, ``/v1/voices``), plays
``pcm`` from ``/v1/audio/speech`` as it streams in (Web Audio, each chunk scheduled right
after the previous one), offers the result as a WAV download and uploads new voices.
"""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def page_html() -> str:
    return resources.files(__package__).joinpath("static/index.html").read_text(encoding="utf-8")
