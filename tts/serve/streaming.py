"""Speech as a stream of bytes: generation in a worker thread, chunks handed to the event loop.

Audio chunks are ``[1920]`` float32 arrays (one 80 ms frame at 24 kHz). ``pcm`` is raw
16-bit little-endian mono; ``wav`` is the same behind a header whose sizes say "unknown
length" (``0xFFFFFFFF``), as streaming WAV writers do, since the length is known only at
the end. Whole-file encodings (flac, opus, mp3, ogg) are made once the utterance is done.
"""

from __future__ import annotations

import asyncio
import struct
import threading
from dataclasses import dataclass

import numpy as np
import torch

from codec import Latents

from ..config import SamplingConfig
from ..synthesizer import Synthesizer
from .pool import Ticket

#: Formats sent chunk by chunk while frames are generated.
STREAMED_FORMATS = ("wav", "pcm")
_END = object()


def wav_stream_header(sample_rate: int, channels: int = 1, bits: int = 16) -> bytes:
    """A 44-byte PCM WAV header of unknown length (RIFF and data sizes ``0xFFFFFFFF``)."""
    block = channels * bits // 8
    return (b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, sample_rate, sample_rate * block, block, bits)
            + b"data" + struct.pack("<I", 0xFFFFFFFF))


def pcm16(chunk: np.ndarray) -> bytes:
    """``[n]`` float samples in [-1, 1] -> 16-bit little-endian PCM bytes."""
    return (np.clip(chunk, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


@dataclass(frozen=True)
class SpeechJob:
    """One validated synthesis request.

    Attributes:
        text: what to say (non-empty, within the server's length limit).
        language: a language of the model's front-end.
        voice: voice-prompt latents ``[1, T]``.
        sampling: sampling settings.
        seed: random seed (same job, same audio).
    """

    text: str
    language: str
    voice: Latents
    sampling: SamplingConfig
    seed: int


class AudioStream:
    """Runs one :class:`SpeechJob` on a pool worker; iterate it for ``[1920]`` float32 chunks.

    The worker thread checks a cancel flag between frames, so :meth:`cancel` (a client
    that went away) frees the worker after at most one more frame.
    """

    def __init__(self, ticket: Ticket, job: SpeechJob) -> None:
        self.ticket = ticket
        self.job = job
        self.frames = 0
        self._cancel = threading.Event()
        self._chunks: asyncio.Queue[object] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def _produce(self, synth: Synthesizer, loop: asyncio.AbstractEventLoop) -> None:
        job = self.job
        put = self._chunks.put_nowait
        try:
            with torch.inference_mode():
                stream = synth.stream(job.text, job.language, job.voice, sampling=job.sampling, seed=job.seed)
                try:
                    for chunk in stream:
                        if self._cancel.is_set():
                            break
                        self.frames += 1
                        loop.call_soon_threadsafe(put, chunk.numpy())
                finally:
                    # Close here, in this thread: it ends the codec's streaming state before
                    # the worker is handed to the next request.
                    stream.close()
            loop.call_soon_threadsafe(put, _END)
        except Exception as err:  # handed to the request, which reports it
            loop.call_soon_threadsafe(put, err)

    async def start(self) -> None:
        """Wait for a worker and start generating (returns at once when it has started)."""
        loop = asyncio.get_running_loop()
        self._task = asyncio.ensure_future(self.ticket.start(lambda synth: self._produce(synth, loop)))

    async def next_chunk(self) -> np.ndarray | None:
        """The next chunk, ``None`` at the end; re-raises a generation error."""
        item = await self._chunks.get()
        if item is _END:
            return None
        if isinstance(item, BaseException):
            raise item
        return item  # type: ignore[return-value]

    def cancel(self) -> None:
        """Stop generating after the current frame and free the place in line (idempotent)."""
        self._cancel.set()
        if self._task is not None and not self._task.done():
            self._task.cancel()  # still waiting for a worker: leave the queue
        self.ticket.release()

    async def collect(self) -> np.ndarray:
        """All remaining chunks as one ``[N]`` array (for whole-file encodings)."""
        parts = []
        while (chunk := await self.next_chunk()) is not None:
            parts.append(chunk)
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)
