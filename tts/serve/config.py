"""Settings of ``hylac-tts serve``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ServerConfig:
    """What the speech server accepts and how much work it takes on.

    Attributes:
        host: interface to bind (localhost by default: the server has no authentication).
        port: TCP port (0 = any free port).
        workers: syntheses that run at the same time (each holds a codec copy).
        max_queue: admitted requests that may wait for a worker; beyond, 503 + ``Retry-After``.
        retry_after: seconds suggested in ``Retry-After``.
        max_input_chars: longest ``input`` text, in characters.
        max_seconds: length limit of one generated utterance.
        max_body_bytes: largest request body (uploads included); beyond, 413.
        max_voices: voices the library holds (folder + uploads).
        default_language: language when a request names none.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    max_queue: int = 16
    retry_after: int = 5
    max_input_chars: int = 1000
    max_seconds: float = 30.0
    max_body_bytes: int = 25 * 2**20
    max_voices: int = 64
    default_language: str = "en"

    def __post_init__(self) -> None:
        checks = (
            ("port", 0 <= self.port <= 65535, "between 0 and 65535"),
            ("workers", 1 <= self.workers <= 64, "between 1 and 64"),
            ("max_queue", 0 <= self.max_queue <= 10000, "between 0 and 10000"),
            ("retry_after", 1 <= self.retry_after <= 3600, "between 1 and 3600 s"),
            ("max_input_chars", 1 <= self.max_input_chars <= 100000, "between 1 and 100000"),
            ("max_seconds", 0.08 <= self.max_seconds <= 120.0, "between 0.08 and 120 s"),
            ("max_body_bytes", 1024 <= self.max_body_bytes <= 2**31, "between 1 KiB and 2 GiB"),
            ("max_voices", 1 <= self.max_voices <= 10000, "between 1 and 10000"),
        )
        for name, ok, allowed in checks:
            if not ok:
                raise ValueError(f"{name} must be {allowed}, got {getattr(self, name)}")
