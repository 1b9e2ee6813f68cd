"""Long-audio benchmark: peak memory and speed of `hylac-codec encode` / `decode` on hour-long files.

    python -m benchmarks.long_audio [--minutes 10 60] [--model NAME_OR_PATH | --random-config small]
        [--device cpu] [--out benchmarks/results]

For each duration a speech-like synthetic signal (gliding harmonics gated at a syllable
rate, plus noise) is written block by block to a temporary 24 kHz WAV, then encoded and
decoded through the command line, each in its own child process. The peak resident
memory of each child comes from `os.wait4` (the kernel's `ru_maxrss` of exactly that
process); the real-time factor is processing time / audio duration (below 1 is faster
than real time). A child that only prints a file's info gives the memory of the
interpreter, torch and the codec before any audio is touched.

Streaming keeps memory flat in the duration: compare the rows. The target for a
one-hour file is a peak under 1.5 GB. Writes `long_audio.json`, `long_audio.md` and
`long_audio.png` under `--out`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from benchmarks.common import Panel, Report, Series, format_number, markdown_table, parse_with_out

SAMPLE_RATE = 24000
TARGET_MB = 1500.0


@dataclass
class Measurement:
    """One child process: what it ran, how long, how much memory at most."""

    step: str
    minutes: float
    wall_s: float
    peak_rss_mb: float
    rtf: float | None
    returncode: int


def write_speech_like(path: Path, seconds: float, seed: int = 0, block_seconds: float = 60.0) -> None:
    """Write ``seconds`` of speech-like 16-bit audio, one block at a time (memory stays small)."""
    rng = np.random.default_rng(seed)
    total = int(seconds * SAMPLE_RATE)
    block = int(block_seconds * SAMPLE_RATE)
    phase = 0.0
    with sf.SoundFile(str(path), "w", SAMPLE_RATE, 1, "PCM_16") as f:
        for start in range(0, total, block):
            t = (start + np.arange(min(block, total - start))) / SAMPLE_RATE
            f0 = 120 + 35 * np.sin(2 * np.pi * 0.23 * t) + 15 * np.sin(2 * np.pi * 1.7 * t)
            inst = phase + 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
            phase = float(inst[-1])  # keep the pitch continuous across blocks
            voiced = sum(np.sin(k * inst) / k for k in range(1, 10))
            syllables = np.clip(np.sin(2 * np.pi * 3.9 * t), 0, None) ** 2
            pauses = (np.sin(2 * np.pi * 0.15 * t) > -0.6).astype(np.float64)  # a pause every ~7 s
            x = 0.25 * voiced * syllables * pauses + 0.01 * rng.standard_normal(len(t))
            f.write(x.astype(np.float32))


def run_measured(cmd: Sequence[str], log_path: Path) -> tuple[float, float, int]:
    """Run ``cmd`` as a child; returns (wall seconds, peak RSS in MB of that child, exit code)."""
    with open(log_path, "wb") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 1024.0, proc.returncode  # ru_maxrss is in KiB on Linux


def prepare_model(args: argparse.Namespace, workdir: Path) -> str:
    """The --model argument for the children: as given, or an untrained model of a named config."""
    if args.random_config is None:
        return args.model
    import torch

    import codec

    torch.manual_seed(0)
    config = getattr(codec.CodecConfig, args.random_config)()
    return str(codec.HybridCodec(config).eval().save(workdir / f"random-{args.random_config}"))


def measure(args: argparse.Namespace) -> dict:
    results: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="hylac-long-", dir=args.tmp) as tmp:
        work = Path(tmp)
        model = prepare_model(args, work)
        base = [sys.executable, "-m", "codec"]
        common = ["--model", model, "--device", args.device, "--quiet", "--overwrite",
                  "--chunk-seconds", str(args.chunk_seconds)]
        for minutes in args.minutes:
            wav, lat, dec = work / f"{minutes:g}min.wav", work / f"{minutes:g}min.hylat", work / f"{minutes:g}min.dec.wav"
            print(f"[long_audio] writing {minutes:g} min of audio", flush=True)
            write_speech_like(wav, minutes * 60)
            seconds = minutes * 60
            for step, cmd in (
                ("encode", base + ["encode", str(wav), "-o", str(lat)] + common),
                ("decode", base + ["decode", str(lat), "-o", str(dec)] + common),
                ("startup", base + ["info", str(lat)]),
            ):
                wall, rss, code = run_measured(cmd, work / f"{step}.log")
                if code != 0:
                    raise RuntimeError(f"{step} failed ({code}): {(work / f'{step}.log').read_text()[-2000:]}")
                rtf = wall / seconds if step != "startup" else None
                results.append(Measurement(step, minutes, wall, rss, rtf, code))
                print(f"[long_audio] {minutes:g} min {step}: {wall:.1f} s, peak RSS {rss:.0f} MB"
                      + (f", RTF {rtf:.4f}" if rtf is not None else ""), flush=True)
            if sf.info(str(dec)).frames != sf.info(str(wav)).frames:
                raise RuntimeError("decoded length differs from the input")
            for p in (wav, lat, dec):
                p.unlink()
    return {"model": args.random_config and f"untrained CodecConfig.{args.random_config}()" or args.model,
            "device": args.device, "chunk_seconds": args.chunk_seconds, "target_peak_rss_mb": TARGET_MB,
            "results": [asdict(m) for m in results]}  # the report adds the environment


def report(data: dict, out: Path) -> None:
    rows = []
    for m in data["results"]:
        ok = "yes" if m["peak_rss_mb"] < TARGET_MB else "no"
        rows.append([m["step"], f"{m['minutes']:g}", format_number(m["wall_s"], 1),
                     format_number(m["rtf"], 4), format_number(m["peak_rss_mb"], 0), ok])
    table = markdown_table(["step", "audio (min)", "wall (s)", "RTF", "peak RSS (MB)", f"< {TARGET_MB:.0f} MB"], rows)
    intro = (f"Model: {data['model']}, device {data['device']}, chunks of {data['chunk_seconds']:g} s. "
             "RTF = processing time / audio duration, including process start-up and model loading. "
             "`startup` is a child that loads torch and the codec and reads one file header.")
    panels = []
    for key, label in (("peak_rss_mb", "peak RSS (MB)"), ("rtf", "real-time factor")):
        series = []
        for step in ("encode", "decode", "startup"):
            pts = [(m["minutes"], m[key]) for m in data["results"] if m["step"] == step and m[key] is not None]
            if pts:
                series.append(Series(step, [p[0] for p in pts], [p[1] for p in pts]))
        panels.append(Panel(label + " vs duration", "audio (minutes)", label, series))
    Report("long_audio", "Long audio: memory and speed").write(out, data, [intro, table], panels, data["model"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[10.0, 60.0], help="audio durations to measure")
    parser.add_argument("--model", default="hylac-tiny", help="codec name or folder (default: hylac-tiny)")
    parser.add_argument("--random-config", choices=("tiny", "small", "reference"), default=None,
                        help="measure an untrained model of this CodecConfig instead of --model")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--chunk-seconds", type=float, default=30.0)
    parser.add_argument("--tmp", type=Path, default=None, help="folder for the temporary audio (default: system temp)")
    args = parse_with_out(parser, argv)
    data = measure(args)
    report(data, args.out)
    print((args.out / "long_audio.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
