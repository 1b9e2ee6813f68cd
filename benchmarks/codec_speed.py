"""Codec speed benchmark: hylac against Mimi, DAC and EnCodec in one run.

    python -m benchmarks.codec_speed [--model NAME_OR_PATH ...] [--systems ...] [--quick]
        [--out benchmarks/results]

Three measurements:

1. Throughput: encode, decode and encode+decode time for `--seconds` (10 s) of audio at
   each batch size (1 and 16) and CPU thread count (1 and 2), plus CUDA when present.
   Real-time factor (RTF) = compute time / seconds of audio processed (a batch of 16
   counts 16 x 10 s), so lower is better and < 1 is faster than real time. Each number
   is the median of `--repeats` runs after `--warmup` runs, under `torch.inference_mode`.
   Every peer's time is divided by the first hylac model's time from the same setting.
   Each hylac model also runs with int8 weights (`use_int8()`, CPU only; `--no-int8` skips).
2. Streaming: per-frame latency of one 80 ms frame in and one frame out (encode +
   decode) on one thread, p50 / p99 over `--stream-frames` frames; hylac models both
   plainly and with traced steps (`streaming(1, trace_frames=1)`).
3. Memory: peak RSS of `hylac-codec encode` and `hylac-codec decode` on a one-hour file
   (`--memory-seconds`), each in a fresh process.

Peers are built from `transformers` default configurations with random weights, which
costs exactly the compute of trained weights: `MimiModel(MimiConfig())`, `DacModel` with
the 24 kHz layout of the released DAC (strides 2, 4, 5, 8; 32 codebooks) and
`EncodecModel(EncodecConfig())` (24 kHz) at 1.5 kbps. The hylac reference configuration
(`codec.CodecConfig.reference()`) also runs with random weights.

Writes `codec_speed.json`, `codec_speed.md` and `codec_speed.png` under `--out`.
"""

from __future__ import annotations

import abc
import argparse
import importlib.util
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.common import (
    REPO_ROOT,
    Panel,
    Series,
    environment_info,
    format_number,
    markdown_table,
    save_plot,
    write_json,
    write_markdown,
)

PEERS: tuple[str, ...] = ("mimi", "dac", "encodec")
FRAME_SAMPLES_24K = 1920  # one 80 ms frame at 24 kHz (hylac and Mimi both use it)

#: Targets from the project's benchmark specification.
TARGET_SPEEDUP_VS_MIMI = 10.0  # hylac-tiny encode+decode vs Mimi, 2 threads
TARGET_STREAM_P99_MS = 8.0  # per 80 ms frame, one thread
TARGET_PEAK_RSS_GB = 1.5  # one hour through the CLI


# --------------------------------------------------------------------------- subjects


class Subject(abc.ABC):
    """A codec under test: batched `encode([B, 1, N]) -> codes`, `decode(codes) -> audio`."""

    name: str
    kind: str  # "hylac" or "peer"
    sample_rate: int
    module: torch.nn.Module

    @abc.abstractmethod
    def encode(self, wav: torch.Tensor) -> Any: ...

    @abc.abstractmethod
    def decode(self, codes: Any) -> torch.Tensor: ...

    #: Whether `stream` is implemented (the spec asks for hylac and Mimi).
    streams: bool = False
    #: Ways of streaming measured, each a row of its own ("" is the plain one).
    stream_variants: tuple[str, ...] = ("",)
    #: Whether the subject runs on the CPU only (int8 kernels).
    cpu_only: bool = False

    def stream(self, num_frames: int, warmup: int, variant: str = "") -> tuple[list[float], str]:
        """Per-frame encode+decode latencies (seconds) and a note on how they were taken."""
        raise NotImplementedError(f"{self.name} has no streaming measurement")

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.module.parameters())

    def to(self, device: torch.device) -> None:
        self.module.to(device)


class HylacSubject(Subject):
    """A hylac codec (`codec.HybridCodec`)."""

    streams = True
    stream_variants = ("", "traced")

    def __init__(self, name: str, model: Any) -> None:
        self.name, self.kind, self.module = name, "hylac", model.eval()
        self.sample_rate = int(model.sample_rate)
        self.cpu_only = bool(model.int8)

    def encode(self, wav: torch.Tensor) -> Any:
        return self.module.encode(wav, self.sample_rate)

    def decode(self, codes: Any) -> torch.Tensor:
        return self.module.decode(codes)

    def stream(self, num_frames: int, warmup: int, variant: str = "") -> tuple[list[float], str]:
        model = self.module
        device = next(model.parameters()).device
        chunk = torch.randn(1, 1, int(model.frame_size), device=device) * 0.1
        trace_frames = 1 if variant == "traced" else None
        times = []
        with torch.inference_mode(), model.streaming(1, trace_frames=trace_frames):
            for i in range(warmup + num_frames):
                start = time.perf_counter()
                model.decode_chunk(model.encode_chunk(chunk))
                _sync(device)
                if i >= warmup:
                    times.append(time.perf_counter() - start)
        how = "model.streaming(1, trace_frames=1): traced steps" if trace_frames else "model.streaming(1)"
        weights = ", int8 weights (use_int8)" if model.int8 else ""
        return times, f"true streaming: {how}{weights}, encode_chunk + decode_chunk per frame"


class MimiSubject(Subject):
    """transformers `MimiModel(MimiConfig())`: 24 kHz, 12.5 Hz, all default codebooks."""

    streams = True

    def __init__(self) -> None:
        from transformers import MimiConfig, MimiModel

        self.name, self.kind = "mimi", "peer"
        self.module = MimiModel(MimiConfig()).eval()
        self.sample_rate = int(self.module.config.sampling_rate)

    def encode(self, wav: torch.Tensor) -> Any:
        return self.module.encode(wav).audio_codes

    def decode(self, codes: Any) -> torch.Tensor:
        return self.module.decode(codes).audio_values

    def stream(self, num_frames: int, warmup: int, variant: str = "") -> tuple[list[float], str]:
        model = self.module
        device = next(model.parameters()).device
        frame = int(round(self.sample_rate / model.config.frame_rate))
        chunk = torch.randn(1, 1, frame, device=device) * 0.1
        enc_cache = padding_cache = dec_cache = None
        times = []
        with torch.inference_mode():
            for i in range(warmup + num_frames):
                start = time.perf_counter()
                out = model.encode(chunk, encoder_cache=enc_cache, padding_cache=padding_cache,
                                   use_streaming=True)
                enc_cache, padding_cache = out.encoder_cache, out.padding_cache
                dec = model.decode(out.audio_codes, decoder_cache=dec_cache, use_cache=True)
                dec_cache = dec.decoder_cache
                _sync(device)
                if i >= warmup:
                    times.append(time.perf_counter() - start)
        note = ("encoder streams with its transformer KV cache and conv padding cache "
                "(use_streaming=True); the decoder keeps its transformer KV cache, but the "
                "transformers implementation has no state for its transposed convolutions, so "
                "each frame is decoded without the conv overlap: the same compute per frame, "
                "not sample-exact audio")
        return times, note


class DacSubject(Subject):
    """transformers `DacModel` in the layout of the released 24 kHz DAC."""

    def __init__(self) -> None:
        from transformers import DacConfig, DacModel

        # DacConfig() defaults to the 16 kHz model; the 24 kHz release uses strides
        # 2, 4, 5, 8 (hop 320, 75 Hz) and 32 codebooks.
        config = DacConfig(sampling_rate=24000, downsampling_ratios=[2, 4, 5, 8], n_codebooks=32)
        self.name, self.kind = "dac", "peer"
        self.module = DacModel(config).eval()
        self.sample_rate = 24000

    def encode(self, wav: torch.Tensor) -> Any:
        return self.module.encode(wav).audio_codes

    def decode(self, codes: Any) -> torch.Tensor:
        return self.module.decode(audio_codes=codes).audio_values


class EncodecSubject(Subject):
    """transformers `EncodecModel(EncodecConfig())`: 24 kHz, 75 Hz, at 1.5 kbps."""

    def __init__(self) -> None:
        from transformers import EncodecConfig, EncodecModel

        self.name, self.kind = "encodec", "peer"
        self.module = EncodecModel(EncodecConfig()).eval()
        self.sample_rate = int(self.module.config.sampling_rate)
        self.bandwidth = float(min(self.module.config.target_bandwidths))

    def encode(self, wav: torch.Tensor) -> Any:
        out = self.module.encode(wav, bandwidth=self.bandwidth)
        return out.audio_codes, out.audio_scales

    def decode(self, codes: Any) -> torch.Tensor:
        audio_codes, audio_scales = codes
        return self.module.decode(audio_codes, audio_scales).audio_values


PEER_BUILDERS: dict[str, Callable[[], Subject]] = {
    "mimi": MimiSubject,
    "dac": DacSubject,
    "encodec": EncodecSubject,
}


def build_subjects(models: Sequence[str], systems: Sequence[str], log=print, int8: bool = True,
                   ) -> tuple[list[Subject], dict[str, str]]:
    """hylac models (`--model`, each also with int8 weights unless `int8` is off), the reference
    configuration and peers, as asked in `systems`."""
    import codec

    subjects: list[Subject] = []
    skipped: dict[str, str] = {}
    if "hylac" in systems:
        for name in models:
            try:
                model = codec.load(name)
            except Exception as exc:  # noqa: BLE001 - reported, the rest still runs
                skipped[name] = f"cannot load codec model: {exc}"
                log(f"skipping {name}: {skipped[name]}")
                continue
            label = Path(name).name if Path(name).is_dir() else name
            subjects.append(HylacSubject(label, model))
            if int8:
                subjects.append(HylacSubject(f"{label} int8", codec.load(name).use_int8()))
    if "reference" in systems:
        torch.manual_seed(0)
        subjects.append(HylacSubject("hylac-reference", codec.HybridCodec(codec.CodecConfig.reference())))
    for peer in PEERS:
        if peer in systems:
            try:
                torch.manual_seed(0)
                subjects.append(PEER_BUILDERS[peer]())
            except Exception as exc:  # noqa: BLE001 - e.g. an older transformers without the model
                skipped[peer] = f"cannot build from transformers: {exc}"
                log(f"skipping {peer}: {skipped[peer]}")
    return subjects, skipped


# ----------------------------------------------------------------------- throughput


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class ThroughputResult:
    """Median times (s) for one subject, device, thread count and batch size."""

    system: str
    device: str
    threads: int
    batch: int
    seconds_audio: float
    encode_s: float
    decode_s: float
    encode_decode_s: float

    @property
    def audio_seconds(self) -> float:
        return self.batch * self.seconds_audio

    def rtf(self, op: str) -> float:
        return getattr(self, f"{op}_s") / self.audio_seconds

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update({f"rtf_{op}": self.rtf(op) for op in ("encode", "decode", "encode_decode")})
        return d


def time_subject(subject: Subject, device: torch.device, threads: int, batch: int, seconds: float,
                 warmup: int, repeats: int) -> ThroughputResult:
    """Median encode / decode / encode+decode wall time of `batch` x `seconds` of noise-like audio."""
    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(0)
    n = int(seconds * subject.sample_rate)
    wav = (torch.randn(batch, 1, n, generator=generator) * 0.1).to(device)
    enc_times, dec_times = [], []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            _sync(device)
            t0 = time.perf_counter()
            codes = subject.encode(wav)
            _sync(device)
            t1 = time.perf_counter()
            subject.decode(codes)
            _sync(device)
            t2 = time.perf_counter()
            if i >= warmup:
                enc_times.append(t1 - t0)
                dec_times.append(t2 - t1)
    return ThroughputResult(
        system=subject.name, device=device.type, threads=threads, batch=batch,
        seconds_audio=seconds, encode_s=statistics.median(enc_times),
        decode_s=statistics.median(dec_times),
        encode_decode_s=statistics.median(e + d for e, d in zip(enc_times, dec_times, strict=True)),
    )


def speed_ratios(results: Sequence[ThroughputResult], baseline: str) -> list[dict[str, Any]]:
    """Each other system's time / the baseline's time, per (device, threads, batch, op)."""
    base = {(r.device, r.threads, r.batch): r for r in results if r.system == baseline}
    ratios = []
    for r in results:
        b = base.get((r.device, r.threads, r.batch))
        if r.system == baseline or b is None:
            continue
        ratios.append({
            "system": r.system, "relative_to": baseline, "device": r.device,
            "threads": r.threads, "batch": r.batch,
            **{op: getattr(r, f"{op}_s") / getattr(b, f"{op}_s")
               for op in ("encode", "decode", "encode_decode")},
        })
    return ratios


# ------------------------------------------------------------------------ streaming


@dataclass
class StreamingResult:
    """Per-frame latency statistics (milliseconds) of one subject on one thread."""

    system: str
    frames: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    frame_ms: float
    note: str


def measure_streaming(subject: Subject, num_frames: int, warmup: int, variant: str = "") -> StreamingResult:
    torch.set_num_threads(1)
    times, note = subject.stream(num_frames, warmup, variant)
    ms = np.asarray(times) * 1000.0
    return StreamingResult(
        system=f"{subject.name} {variant}".strip(), frames=len(times), p50_ms=float(np.percentile(ms, 50)),
        p99_ms=float(np.percentile(ms, 99)), mean_ms=float(ms.mean()), max_ms=float(ms.max()),
        frame_ms=1000.0 * FRAME_SAMPLES_24K / 24000, note=note,
    )


# --------------------------------------------------------------------------- memory


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


# --------------------------------------------------------------------------- output


@dataclass
class SpeedReport:
    environment: dict[str, Any]
    config: dict[str, Any]
    subjects: list[dict[str, Any]]
    throughput: list[ThroughputResult] = field(default_factory=list)
    ratios: list[dict[str, Any]] = field(default_factory=list)
    streaming: list[StreamingResult] = field(default_factory=list)
    memory: list[MemoryResult] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    targets: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "benchmark": "codec_speed",
            "environment": self.environment,
            "config": self.config,
            "subjects": self.subjects,
            "throughput": [r.to_dict() for r in self.throughput],
            "ratios": self.ratios,
            "streaming": [asdict(s) for s in self.streaming],
            "memory": [asdict(m) for m in self.memory],
            "targets": self.targets,
            "skipped": self.skipped,
        }


def evaluate_targets(report: SpeedReport, primary: str | None) -> list[dict[str, Any]]:
    """Check the specification's targets for the primary hylac model; says by how much."""
    targets: list[dict[str, Any]] = []
    if primary is None:
        return targets
    for r in report.ratios:
        if r["system"] == "mimi" and r["device"] == "cpu" and r["threads"] == 2 and r["batch"] == 1:
            targets.append({"target": f"{primary} encode+decode >= {TARGET_SPEEDUP_VS_MIMI:g}x faster "
                                      "than Mimi (2 threads, batch 1)",
                            "value": r["encode_decode"], "goal": TARGET_SPEEDUP_VS_MIMI, "unit": "x",
                            "met": r["encode_decode"] >= TARGET_SPEEDUP_VS_MIMI})
    for s in report.streaming:
        if s.system == primary or s.system.startswith(primary + " "):  # and its int8 / traced variants
            targets.append({"target": f"{s.system} streaming p99 < {TARGET_STREAM_P99_MS:g} ms per 80 ms frame",
                            "value": s.p99_ms, "goal": TARGET_STREAM_P99_MS, "unit": "ms",
                            "met": s.p99_ms < TARGET_STREAM_P99_MS})
    full_hour = [m for m in report.memory if m.seconds_audio >= 3600 and m.returncode == 0]
    if full_hour:
        peak = max(m.peak_rss_mb for m in full_hour) / 1024.0
        targets.append({"target": f"one hour through the CLI < {TARGET_PEAK_RSS_GB:g} GB peak RSS",
                        "value": peak, "goal": TARGET_PEAK_RSS_GB, "unit": "GB",
                        "met": peak < TARGET_PEAK_RSS_GB})
    return targets


def _rtf(value: float) -> str:
    """Three significant digits: GPU real-time factors reach 1e-4 and below."""
    return format_number(value, significant=3)


def write_outputs(out_dir: Path, report: SpeedReport, primary: str | None) -> dict[str, Path]:
    paths = {"json": write_json(out_dir / "codec_speed.json", report.to_dict())}
    sections = []

    params = markdown_table(
        ["system", "parameters (M)", "sample rate"],
        [[s["name"], format_number(s["parameters"] / 1e6, 1), str(s["sample_rate"])] for s in report.subjects],
    )
    sections.append(params)

    ratio_of = {(r["system"], r["device"], r["threads"], r["batch"]): r for r in report.ratios}
    rows = []
    for r in report.throughput:
        ratio = ratio_of.get((r.system, r.device, r.threads, r.batch))
        rows.append([r.system, r.device, str(r.threads), str(r.batch),
                     _rtf(r.rtf("encode")), _rtf(r.rtf("decode")), _rtf(r.rtf("encode_decode")),
                     format_number(ratio["encode_decode"], 1) + "x" if ratio else "–"])
    seconds = report.config["seconds"]
    ratio_header = f"time / {primary}" if primary else "time / ours"
    sections.append(
        f"## Throughput ({seconds:g} s of audio per item)\n\n"
        + markdown_table(["system", "device", "threads", "batch", "RTF enc", "RTF dec", "RTF enc+dec",
                          ratio_header], rows)
        + "\n\nRTF = compute seconds per second of audio (lower is better; a batch of 16 "
        f"counts 16 x {seconds:g} s). Median of {report.config['repeats']} runs after "
        f"{report.config['warmup']} warm-up runs. The last column is the system's encode+decode "
        f"time divided by {primary or 'ours'}'s in the same setting (higher = {primary or 'ours'} faster)."
    )
    if report.streaming:
        rows = [[s.system, str(s.frames), format_number(s.p50_ms), format_number(s.p99_ms),
                 format_number(s.max_ms)] for s in report.streaming]
        notes = "\n".join(f"- {s.system}: {s.note}." for s in report.streaming)
        sections.append("## Streaming (one thread, one 80 ms frame in and out)\n\n"
                        + markdown_table(["system", "frames", "p50 (ms)", "p99 (ms)", "max (ms)"], rows)
                        + "\n\n" + notes)
    if report.memory:
        rows = [[m.command, format_number(m.seconds_audio / 3600.0, 3), format_number(m.peak_rss_mb, 0),
                 format_number(m.wall_s, 1), "ok" if m.returncode == 0 else f"failed ({m.returncode})"]
                for m in report.memory]
        sections.append("## Memory (CLI, fresh process each)\n\n"
                        + markdown_table(["command", "hours of audio", "peak RSS (MB)", "wall (s)", "status"], rows))
    if report.targets:
        rows = [[t["target"], format_number(t["value"], 2) + " " + t["unit"],
                 format_number(t["value"] / t["goal"], 2) + "x", "met" if t["met"] else "missed"]
                for t in report.targets]
        sections.append("## Targets\n\n" + markdown_table(["target", "measured", "measured / goal",
                                                             "status"], rows))
    env = report.environment
    notes = [f"Measured {env['date']} at commit {env['git_commit']}, torch {env['torch']}, "
             f"{env['cpu_count']} CPUs ({env['processor']}), CUDA: {env['cuda'] or 'none'}, "
             f"1-minute load average at the start: {format_number(env['load_average_1min'])}."]
    if report.skipped:
        notes.append("Skipped: " + "; ".join(f"{k} ({v})" for k, v in report.skipped.items()))
    sections.append("\n\n".join(notes))
    paths["md"] = write_markdown(out_dir / "codec_speed.md", "Codec speed", sections)

    panels = []
    cpu = [r for r in report.throughput if r.device == "cpu"]
    settings = sorted({(r.threads, r.batch) for r in cpu})
    systems = list(dict.fromkeys(r.system for r in report.throughput))
    if cpu:
        by = {(r.system, r.threads, r.batch): r.rtf("encode_decode") for r in cpu}
        series = [Series(s, [], [by.get((s, t, b), math.nan) for t, b in settings]) for s in systems]
        panels.append(Panel("Encode+decode RTF (CPU, log)", "threads / batch", "RTF", series,
                            kind="bar", ylog=True, categories=[f"{t} thr / B{b}" for t, b in settings]))
    if report.streaming:
        series = [Series("p50", [], [s.p50_ms for s in report.streaming]),
                  Series("p99", [], [s.p99_ms for s in report.streaming])]
        panels.append(Panel("Streaming latency per 80 ms frame (1 thread)", "system", "ms", series,
                            kind="bar", categories=[s.system for s in report.streaming]))
    if panels:
        paths["png"] = save_plot(out_dir / "codec_speed.png", panels, "Codec speed")
    return paths


# ----------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", nargs="+", default=["hylac-tiny"],
                        help="hylac codec names or folders; the first is the one peers are compared with")
    parser.add_argument("--systems", nargs="+", default=["hylac", "reference", *PEERS],
                        choices=["hylac", "reference", *PEERS])
    parser.add_argument("--quick", action="store_true",
                        help="small run: 2 s of audio, batches 1 and 4, 2 repeats, 100 streaming "
                             "frames, a one-minute memory file")
    parser.add_argument("--seconds", type=float, default=None, help="audio per item (default 10)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None, help="default 1 16")
    parser.add_argument("--threads", type=int, nargs="+", default=None, help="default 1 2")
    parser.add_argument("--warmup", type=int, default=None, help="default 1")
    parser.add_argument("--repeats", type=int, default=None, help="default 3")
    parser.add_argument("--stream-frames", type=int, default=None, help="default 500 (0 skips)")
    parser.add_argument("--memory-seconds", type=float, default=None,
                        help="length of the CLI memory test file (default 3600; 0 skips)")
    parser.add_argument("--devices", nargs="+", choices=["cpu", "cuda"], default=None,
                        help="devices to time (default: cpu, and cuda when present); streaming and "
                             "memory are always measured on the CPU")
    parser.add_argument("--no-int8", action="store_true",
                        help="skip the int8 copy of each hylac model (CPU rows, `use_int8()`)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)

    quick = args.quick
    settings = {
        "seconds": args.seconds if args.seconds is not None else (2.0 if quick else 10.0),
        "batch_sizes": args.batch_sizes or ([1, 4] if quick else [1, 16]),
        "threads": args.threads or [1, 2],
        "warmup": args.warmup if args.warmup is not None else 1,
        "repeats": args.repeats if args.repeats is not None else (2 if quick else 3),
        "stream_frames": args.stream_frames if args.stream_frames is not None else (100 if quick else 500),
        "memory_seconds": args.memory_seconds if args.memory_seconds is not None else (60.0 if quick else 3600.0),
    }
    for key in ("batch_sizes", "threads"):
        if any(v < 1 for v in settings[key]):
            parser.error(f"--{key.replace('_', '-')} values must be >= 1")
    if settings["repeats"] < 1 or settings["seconds"] <= 0:
        parser.error("--repeats must be >= 1 and --seconds > 0")

    wanted = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    if "cuda" in wanted and not torch.cuda.is_available():
        parser.error("--devices cuda: CUDA is not available here")
    devices = [torch.device(d) for d in dict.fromkeys(wanted)]

    subjects, skipped = build_subjects(args.model, args.systems, int8=not args.no_int8)
    if not subjects:
        print("nothing to measure: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()), file=sys.stderr)
        return 1
    primary = next((s.name for s in subjects if s.kind == "hylac"), None)
    max_threads = os.cpu_count() or 1
    report = SpeedReport(
        environment=environment_info(),
        config={**settings, "models": args.model, "systems": args.systems, "devices": [d.type for d in devices]},
        subjects=[{"name": s.name, "kind": s.kind, "parameters": s.parameters, "sample_rate": s.sample_rate}
                  for s in subjects],
        skipped=skipped,
    )
    original_threads = torch.get_num_threads()
    try:
        for device in devices:
            for subject in subjects:
                if subject.cpu_only and device.type != "cpu":
                    skipped[f"{subject.name} on {device.type}"] = "int8 kernels run on the CPU only"
                    continue
                subject.to(device)
                thread_counts = settings["threads"] if device.type == "cpu" else [max_threads]
                for threads in thread_counts:
                    if threads > max_threads:
                        skipped[f"{threads} threads"] = f"only {max_threads} CPUs"
                        continue
                    for batch in settings["batch_sizes"]:
                        r = time_subject(subject, device, threads, batch, settings["seconds"],
                                         settings["warmup"], settings["repeats"])
                        report.throughput.append(r)
                        print(f"{r.system:16s} {r.device} {threads} thr B{batch:<3d} RTF enc {_rtf(r.rtf('encode'))} "
                              f"dec {_rtf(r.rtf('decode'))} enc+dec {_rtf(r.rtf('encode_decode'))}", flush=True)
                subject.to(torch.device("cpu"))
        if primary is not None:
            report.ratios = speed_ratios(report.throughput, primary)
        if settings["stream_frames"] > 0:
            for subject in subjects:
                if not subject.streams:
                    continue
                for variant in subject.stream_variants:
                    s = measure_streaming(subject, settings["stream_frames"], warmup=10, variant=variant)
                    report.streaming.append(s)
                    print(f"{s.system:24s} streaming p50 {s.p50_ms:.2f} ms p99 {s.p99_ms:.2f} ms", flush=True)
    finally:
        torch.set_num_threads(original_threads)
    if settings["memory_seconds"] > 0:
        hylac_models = [m for m in args.model if m not in skipped] if "hylac" in args.systems else []
        if not hylac_models:
            skipped["memory"] = "no hylac model to run through the CLI"
        else:
            with tempfile.TemporaryDirectory(prefix="hylac-speed-") as tmp:
                memory, reason = measure_memory(hylac_models[0], settings["memory_seconds"], Path(tmp))
            if reason:
                skipped["memory"] = reason
                print(f"skipping memory: {reason}")
            report.memory = memory
            for m in memory:
                print(f"{m.command}: peak RSS {m.peak_rss_mb:.0f} MB, {m.wall_s:.1f} s"
                      + (f" FAILED: {m.error}" if m.error else ""))
    report.targets = evaluate_targets(report, primary)
    paths = write_outputs(args.out, report, primary)
    print((args.out / "codec_speed.md").read_text())
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
