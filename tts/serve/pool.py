"""A bounded pool of synthesis workers shared by all requests.

Each worker is one :class:`~tts.Synthesizer` with its own codec copy (the codec's
streaming decoder keeps per-stream state, so two streams must never share one) and runs
in its own thread: generation is CPU-bound torch code, which releases the GIL, so the
event loop stays free to accept requests and send audio while workers compute.

A request is first *admitted* (or refused with :class:`ServerBusy` when the workers and
the wait queue are all taken), then waits for a free worker, runs, and hands the worker
back the moment its thread returns, whatever the client does meanwhile.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from ..synthesizer import Synthesizer

log = logging.getLogger("tts.serve")
T = TypeVar("T")


class ServerBusy(Exception):
    """Every worker is busy and the wait queue is full."""

    def __init__(self, capacity: int, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"the server is busy ({capacity} requests running or queued); retry in {retry_after} s")


def worker_synthesizers(synth: Synthesizer, workers: int) -> list[Synthesizer]:
    """``workers`` synthesizers sharing ``synth``'s TTS network, each with its own codec copy.

    The TTS network holds no per-request state (each generation makes its own KV
    cache), so sharing it costs nothing; the codec is copied for its streaming state.
    """
    return [synth] + [Synthesizer(synth.model, copy.deepcopy(synth.codec)) for _ in range(workers - 1)]


class WorkerPool:
    """``len(synths)`` workers and up to ``max_queue`` admitted requests waiting for one.

    Args:
        synths: one synthesizer per worker (see :func:`worker_synthesizers`).
        max_queue: requests that may wait for a worker; one more is :class:`ServerBusy`.
        retry_after: seconds suggested to refused clients (``Retry-After``).
    """

    def __init__(self, synths: Sequence[Synthesizer], max_queue: int, retry_after: int = 5) -> None:
        if not synths:
            raise ValueError("a worker pool needs at least one synthesizer")
        self._synths = list(synths)
        self.workers = len(synths)
        self.capacity = self.workers + max_queue
        self.retry_after = retry_after
        self.admitted = 0  # running + waiting
        self.running = 0
        self._free: asyncio.Queue[Synthesizer] = asyncio.Queue()
        for s in synths:
            self._free.put_nowait(s)
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="tts-worker")

    @property
    def queued(self) -> int:
        return self.admitted - self.running

    def admit(self) -> Ticket:
        """A place in line, or :class:`ServerBusy` (call on the event loop)."""
        if self.admitted >= self.capacity:
            raise ServerBusy(self.capacity, self.retry_after)
        self.admitted += 1
        return Ticket(self)

    async def run(self, fn: Callable[[Synthesizer], T]) -> T:
        """Admit, wait for a worker and run ``fn(worker)`` in its thread (for one-shot jobs)."""
        ticket = self.admit()
        try:
            return await ticket.start(fn)
        finally:
            ticket.release()

    def warm_up(self) -> None:
        """Build each worker's traced codec step now, so the first request does not wait for it."""
        for synth in self._synths:
            with synth.codec.streaming(1, trace_frames=1):
                pass

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class Ticket:
    """One admitted request: waits for a worker, runs one job on it, then frees both."""

    def __init__(self, pool: WorkerPool) -> None:
        self._pool = pool
        self._started = False
        self._done = False

    async def start(self, fn: Callable[[Synthesizer], T]) -> T:
        """Wait for a free worker and run ``fn(worker)`` in its thread; returns its result.

        The worker returns to the pool when ``fn`` returns, even if this coroutine was
        cancelled meanwhile (the thread cannot be interrupted: ``fn`` must watch a flag
        of its own to stop early).
        """
        if self._started or self._done:
            raise RuntimeError("a ticket runs one job")
        pool = self._pool
        synth = await pool._free.get()
        self._started = True
        pool.running += 1
        loop = asyncio.get_running_loop()

        def _back(_: object) -> None:
            pool.running -= 1
            pool._free.put_nowait(synth)
            self._finish()

        future = loop.run_in_executor(pool._executor, fn, synth)
        future.add_done_callback(_back)
        # Shielded: a cancelled request must not drop the reference to a running thread.
        return await asyncio.shield(future)

    def release(self) -> None:
        """Give up the place in line if no job was started (idempotent)."""
        if not self._started:
            self._finish()

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            self._pool.admitted -= 1
