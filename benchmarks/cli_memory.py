"""Peak memory of ``hylac-codec encode`` / ``decode`` on a long file, each command in a fresh process
(the memory part of ``python -m benchmarks.codec_speed``)."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class MemoryResult:
    """Peak resident memory of one CLI command on a long file."""

    command: str
    seconds_audio: float
    peak_rss_mb: float
    wall_s: float
    returncode: int
    error: str | None = None


# Runs the command as its child and prints the child's peak RSS (KiB on Linux), so each
# command gets its own figure rather than the maximum over everything run so far.
_RSS_WRAPPER = (
    "import resource, subprocess, sys\n"
    "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)\n"
    "sys.stderr.write(r.stderr[-2000:])\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(r.returncode)\n"
)


def cli_command() -> list[str] | None:
    """How to run the codec CLI from this environment, or None when it is not installed."""
    if importlib.util.find_spec("codec.cli") is None:
        return None
    return [sys.executable, "-m", "codec"]


def run_with_peak_rss(cmd: Sequence[str]) -> tuple[float, float, int, str]:
    """Run `cmd`; returns (peak RSS in MB, wall seconds, return code, stderr tail)."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _RSS_WRAPPER, *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - start
    lines = proc.stdout.strip().splitlines()
    kib = float(lines[-1]) if lines and lines[-1].strip().isdigit() else math.nan
    return kib / 1024.0, wall, proc.returncode, proc.stderr.strip()[-1000:]


def write_long_file(path: Path, seconds: float, sample_rate: int = 24000) -> None:
    """A 16-bit WAV of speech-like noise bursts, written block by block (bounded memory)."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    block = sample_rate * 60
    with sf.SoundFile(str(path), "w", samplerate=sample_rate, channels=1, subtype="PCM_16") as f:
        remaining = int(seconds * sample_rate)
        while remaining > 0:
            n = min(block, remaining)
            t = np.arange(n) / sample_rate
            envelope = 0.5 * (1 + np.sin(2 * np.pi * 3.0 * t))  # syllable-rate modulation
            f.write((0.1 * envelope * rng.standard_normal(n)).astype(np.float32))
            remaining -= n


def measure_memory(model: str, seconds: float, workdir: Path) -> tuple[list[MemoryResult], str | None]:
    """Peak RSS of CLI encode and decode of a `seconds`-long file; (results, skip reason)."""
    base = cli_command()
    if base is None:
        return [], "the codec CLI (codec.cli) is not installed"
    wav, lat, out = workdir / "long.wav", workdir / "long.hylat", workdir / "long.decoded.wav"
    write_long_file(wav, seconds)
    results = []
    for label, args in (
        ("encode", ["encode", str(wav), "-o", str(lat), "-m", model, "--device", "cpu", "-q", "--overwrite"]),
        ("decode", ["decode", str(lat), "-o", str(out), "-m", model, "--device", "cpu", "-q", "--overwrite"]),
    ):
        rss, wall, rc, err = run_with_peak_rss([*base, *args])
        results.append(MemoryResult(command=f"hylac-codec {label}", seconds_audio=seconds,
                                    peak_rss_mb=rss, wall_s=wall, returncode=rc,
                                    error=err if rc != 0 else None))
        if rc != 0:
            break
    return results, None
