"""Load benchmark of ``hylac-tts serve``: concurrent streaming clients against one local server.

    python -m benchmarks.serve_load [--clients 1 4 16] [--seconds 20] [--model hylac-tts-tiny]
        [--voices codec/assets/real] [--workers 2] [--threads 1] [--queue 64] [--max-seconds 30]
        [--out benchmarks/results/serve]

Starts the server as its own process (``python -m tts serve --port 0``), asks once for each
prompt (a sentence and a seed) to learn the expected audio, then for each client count keeps
that many clients busy for ``--seconds``: each sends ``POST /v1/audio/speech`` with
``response_format=pcm`` (streamed), reads the stream to its end and checks it against the
expected audio. A client starts no new request after the time is up; requests in flight
finish and are counted.

Per client count: requests, errors (HTTP errors, broken streams, audio of the wrong length:
nothing may be lost or corrupted), responses bit-identical to the reference, time to the
first audio byte (p50 / p99), request latency (p50 / p99), RTF (latency / audio duration,
queueing included, p50), throughput (seconds of audio delivered per second, and requests
per second) and the server's peak resident memory (sampled during the run; VmHWM at the
end). Writes ``serve_load.json`` and ``serve_load.md`` under ``--out``.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import numpy as np

from benchmarks.common import (
    REPO_ROOT,
    RESULTS_DIR,
    Report,
    format_number,
    markdown_table,
    parse_with_out,
)

SAMPLE_RATE = 24000
PROMPTS: tuple[tuple[str, int], ...] = (
    ("The weather is lovely today, so we are going for a walk by the river.", 0),
    ("Please leave your message after the tone, and we will call you back.", 1),
    ("Turn left at the next corner, then keep going straight for two hundred metres.", 2),
    ("Your order has shipped and should arrive on Thursday afternoon.", 3),
)


@dataclass
class Expected:
    """What one prompt must come back as."""

    num_bytes: int
    sha256: str


@dataclass
class RequestResult:
    ok: bool
    error: str | None = None
    ttfb_s: float = float("nan")
    latency_s: float = float("nan")
    audio_s: float = 0.0
    identical: bool = False


@dataclass
class LevelResult:
    """Everything measured at one client count."""

    clients: int
    wall_s: float
    requests: int
    errors: int
    identical: int
    ttfb_p50_ms: float
    ttfb_p99_ms: float
    latency_p50_s: float
    latency_p99_s: float
    rtf_p50: float
    audio_seconds_per_s: float
    requests_per_s: float
    peak_rss_mb: float
    error_examples: list[str] = field(default_factory=list)


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


class Server:
    """``python -m tts serve`` in a child process on a free port, its log drained in a thread."""

    def __init__(self, args: argparse.Namespace) -> None:
        cmd = [sys.executable, "-m", "tts", "serve", "--port", "0", "--model", args.model, "--voices", str(args.voices),
               "--workers", str(args.workers), "--queue", str(args.queue), "--threads", str(args.threads),
               "--max-seconds", str(args.max_seconds), "-q"]
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        self.log: list[str] = []
        self.url = ""
        for line in self.proc.stderr:  # the line naming the address comes once the model is loaded
            self.log.append(line)
            if " on http://" in line:
                self.url = line.split(" on ")[1].split()[0]
                break
        if not self.url:
            raise RuntimeError("the server did not start:\n" + "".join(self.log))
        threading.Thread(target=lambda: self.log.extend(self.proc.stderr), daemon=True).start()

    def memory_mb(self, field_name: str) -> float:
        """``VmRSS`` (now) or ``VmHWM`` (peak so far) of the server process, in MB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


def speak(client: httpx.Client, url: str, voice: str, text: str, seed: int) -> tuple[bytes, float, float]:
    """One streamed request: ``(pcm bytes, seconds to the first byte, seconds in all)``."""
    body = {"model": "tts-1", "input": text, "voice": voice, "response_format": "pcm", "seed": seed}
    start = time.perf_counter()
    first = float("nan")
    parts = []
    with client.stream("POST", f"{url}/v1/audio/speech", json=body) as r:
        if r.status_code != 200:
            r.read()
            raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")
        for part in r.iter_raw():
            if not parts:
                first = time.perf_counter() - start
            parts.append(part)
    return b"".join(parts), first, time.perf_counter() - start


def run_level(server: Server, voice: str, expected: dict[int, Expected], clients: int, seconds: float) -> LevelResult:
    results: list[RequestResult] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds
    rss_peak = [0.0]
    running = threading.Event()
    running.set()

    def client_loop(index: int) -> None:
        with httpx.Client(timeout=600) as client:
            i = index
            while time.perf_counter() < deadline:
                text, seed = PROMPTS[i % len(PROMPTS)]
                want = expected[i % len(PROMPTS)]
                i += clients
                try:
                    pcm, ttfb, latency = speak(client, server.url, voice, text, seed)
                    if len(pcm) != want.num_bytes:
                        raise RuntimeError(f"got {len(pcm)} bytes of audio, expected {want.num_bytes}")
                    r = RequestResult(True, None, ttfb, latency, len(pcm) / 2 / SAMPLE_RATE,
                                      hashlib.sha256(pcm).hexdigest() == want.sha256)
                except (httpx.HTTPError, RuntimeError) as err:
                    r = RequestResult(False, f"{type(err).__name__}: {err}")
                with lock:
                    results.append(r)

    def sample_rss() -> None:
        while running.is_set():
            rss_peak[0] = max(rss_peak[0], server.memory_mb("VmRSS"))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample_rss, daemon=True)
    sampler.start()
    start = time.perf_counter()
    threads = [threading.Thread(target=client_loop, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    running.clear()
    sampler.join()
    good = [r for r in results if r.ok]
    audio = sum(r.audio_s for r in good)
    return LevelResult(
        clients=clients, wall_s=wall, requests=len(results), errors=len(results) - len(good),
        identical=sum(r.identical for r in good),
        ttfb_p50_ms=1000 * percentile([r.ttfb_s for r in good], 50),
        ttfb_p99_ms=1000 * percentile([r.ttfb_s for r in good], 99),
        latency_p50_s=percentile([r.latency_s for r in good], 50),
        latency_p99_s=percentile([r.latency_s for r in good], 99),
        rtf_p50=percentile([r.latency_s / r.audio_s for r in good if r.audio_s], 50),
        audio_seconds_per_s=audio / wall, requests_per_s=len(good) / wall, peak_rss_mb=rss_peak[0],
        error_examples=sorted({r.error for r in results if r.error})[:5],
    )


def references(server: Server, voice: str) -> dict[int, Expected]:
    """Each prompt once, alone: the audio every later response must match."""
    out = {}
    with httpx.Client(timeout=600) as client:
        for i, (text, seed) in enumerate(PROMPTS):
            pcm, _, _ = speak(client, server.url, voice, text, seed)
            out[i] = Expected(len(pcm), hashlib.sha256(pcm).hexdigest())
    return out


def report(levels: list[LevelResult], args: argparse.Namespace, expected: dict[int, Expected],
           vm_hwm_mb: float) -> str:
    headers = ["clients", "requests", "errors", "identical", "TTFB p50 (ms)", "TTFB p99 (ms)", "latency p50 (s)",
               "latency p99 (s)", "RTF p50", "audio s / s", "requests / s", "peak RSS (MB)"]
    rows = [[str(lv.clients), str(lv.requests), str(lv.errors), str(lv.identical),
             format_number(lv.ttfb_p50_ms, 0), format_number(lv.ttfb_p99_ms, 0),
             format_number(lv.latency_p50_s, 2), format_number(lv.latency_p99_s, 2), format_number(lv.rtf_p50, 2),
             format_number(lv.audio_seconds_per_s, 2), format_number(lv.requests_per_s, 2),
             format_number(lv.peak_rss_mb, 0)] for lv in levels]
    lengths = ", ".join(f"{e.num_bytes / 2 / SAMPLE_RATE:.2f} s" for e in expected.values())
    setup = (f"`python -m benchmarks.serve_load --clients {' '.join(map(str, args.clients))} --seconds {args.seconds:g} "
             f"--workers {args.workers} --threads {args.threads}`: model `{args.model}`, {args.workers} worker(s) x "
             f"{args.threads} torch thread(s), streamed `pcm`, {len(PROMPTS)} prompts ({lengths} of audio), "
             f"each client sending its next request as soon as the last one ended, for {args.seconds:g} s per row. "
             f"TTFB: request sent -> first audio byte (queueing included). RTF: request latency / audio duration. "
             f"\"identical\": responses bit-identical to the prompt's reference. Server peak RSS over the whole run "
             f"(VmHWM): {vm_hwm_mb:.0f} MB.")
    return setup + "\n\n" + markdown_table(headers, rows)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--seconds", type=float, default=20.0, help="duration of each client count")
    p.add_argument("--model", default="hylac-tts-tiny")
    p.add_argument("--voices", type=Path, default=REPO_ROOT / "codec" / "assets" / "real",
                   help="voices folder for the server; the first voice speaks")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch threads of the server")
    p.add_argument("--queue", type=int, default=64)
    p.add_argument("--max-seconds", type=float, default=30.0, help="the server's length limit of one utterance")
    args = parse_with_out(p, argv, RESULTS_DIR / "serve")
    if not args.voices.is_dir():
        p.error(f"--voices {args.voices} is not a folder")
    output = Report("serve_load", "hylac-tts serve under load")  # the environment before the load
    server = Server(args)
    try:
        voices = httpx.get(f"{server.url}/v1/voices", timeout=60).json()["data"]
        if not voices:
            p.error(f"--voices {args.voices} holds no usable recording")
        voice = voices[0]["id"]
        expected = references(server, voice)
        levels = []
        for n in args.clients:
            levels.append(run_level(server, voice, expected, n, args.seconds))
            lv = levels[-1]
            print(f"{n:>3} clients: {lv.requests} requests, {lv.errors} errors, TTFB p50 {lv.ttfb_p50_ms:.0f} ms "
                  f"p99 {lv.ttfb_p99_ms:.0f} ms, {lv.audio_seconds_per_s:.2f} s of audio / s", flush=True)
        vm_hwm = server.memory_mb("VmHWM")
    finally:
        server.stop()
    table = report(levels, args, expected, vm_hwm)
    output.write(args.out, {
        "environment": output.environment, "settings": {k: str(v) if isinstance(v, Path) else v
                                                        for k, v in vars(args).items()},
        "voice": voice, "prompts": [{"text": t, "seed": s, **asdict(expected[i])} for i, (t, s) in enumerate(PROMPTS)],
        "server_vm_hwm_mb": vm_hwm, "levels": [asdict(lv) for lv in levels],
    }, [table])
    print(table)
    return 1 if any(lv.errors for lv in levels) else 0


if __name__ == "__main__":
    sys.exit(main())
