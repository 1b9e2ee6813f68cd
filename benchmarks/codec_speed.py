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

Systems are the adapters of `benchmarks.systems` (`NeuralCodec`): peers are built from
`transformers` default configurations with random weights, which costs exactly the compute
of trained weights (Mimi, DAC in its released 24 kHz layout, EnCodec at 1.5 kbps). The hylac
reference configuration (`codec.CodecConfig.reference()`) also runs with random weights.

Writes `codec_speed.json`, `codec_speed.md` and `codec_speed.png` under `--out`.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.cli_memory import MemoryResult, measure_memory
from benchmarks.common import Panel, Report, Series, format_number, markdown_table, parse_with_out
from benchmarks.systems import PEERS, Hylac, HylacFrontEnd, NeuralCodec, sync

FRAME_SAMPLES_24K = 1920  # one 80 ms frame at 24 kHz (hylac and Mimi both use it)

#: Targets from the project's benchmark specification.
TARGET_SPEEDUP_VS_MIMI = 10.0  # hylac-tiny encode+decode vs Mimi, 2 threads
TARGET_STREAM_P99_MS = 8.0  # per 80 ms frame, one thread
TARGET_PEAK_RSS_GB = 1.5  # one hour through the CLI


# --------------------------------------------------------------------------- systems


def build_systems(models: Sequence[str], systems: Sequence[str], log=print, int8: bool = True,
                  ) -> tuple[list[NeuralCodec], dict[str, str]]:
    """hylac models (`--model`, each also with int8 weights unless `int8` is off), the reference
    configuration and peers, as asked in `systems`."""
    import codec

    built: list[NeuralCodec] = []
    skipped: dict[str, str] = {}
    if "hylac" in systems:
        for name in models:
            label = Path(name).name if Path(name).is_dir() else name
            model = Hylac(name, label)
            reason = model.unavailable_reason()
            if reason is not None:  # reported, the rest still runs
                skipped[name] = reason
                log(f"skipping {name}: {reason}")
                continue
            built.append(model)
            if int8:
                built.append(Hylac(name, f"{label} int8", int8=True))
            if "analysis" in model.model.config.frontend:
                built.append(HylacFrontEnd(name, f"{label} analysis front-end"))
    if "reference" in systems:
        torch.manual_seed(0)
        built.append(Hylac(codec.HybridCodec(codec.CodecConfig.reference()), "hylac-reference"))
    for peer in PEERS:
        if peer in systems:
            try:
                torch.manual_seed(0)
                built.append(PEERS[peer]())
            except Exception as exc:  # noqa: BLE001 - e.g. an older transformers without the model
                skipped[peer] = f"cannot build from transformers: {exc}"
                log(f"skipping {peer}: {skipped[peer]}")
    return built, skipped


# ----------------------------------------------------------------------- throughput


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


def time_system(subject: NeuralCodec, device: torch.device, threads: int, batch: int, seconds: float,
                 warmup: int, repeats: int) -> ThroughputResult:
    """Median encode / decode / encode+decode wall time of `batch` x `seconds` of noise-like audio."""
    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(0)
    n = int(seconds * subject.sample_rate)
    wav = (torch.randn(batch, 1, n, generator=generator) * 0.1).to(device)
    enc_times, dec_times = [], []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            sync(device)
            t0 = time.perf_counter()
            codes = subject.encode(wav)
            sync(device)
            t1 = time.perf_counter()
            subject.decode(codes)
            sync(device)
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


def measure_streaming(subject: NeuralCodec, num_frames: int, warmup: int, variant: str = "") -> StreamingResult:
    torch.set_num_threads(1)
    times, note = subject.stream(num_frames, warmup, variant)
    ms = np.asarray(times) * 1000.0
    return StreamingResult(
        system=f"{subject.name} {variant}".strip(), frames=len(times), p50_ms=float(np.percentile(ms, 50)),
        p99_ms=float(np.percentile(ms, 99)), mean_ms=float(ms.mean()), max_ms=float(ms.max()),
        frame_ms=1000.0 * FRAME_SAMPLES_24K / 24000, note=note,
    )


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
    return Report("codec_speed", "Codec speed", report.environment).write(
        out_dir, report.to_dict(), sections, panels, "Codec speed")


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
    args = parse_with_out(parser, argv)

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

    subjects, skipped = build_systems(args.model, args.systems, int8=not args.no_int8)
    if not subjects:
        print("nothing to measure: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()), file=sys.stderr)
        return 1
    primary = next((s.name for s in subjects if s.kind == "hylac"), None)
    max_threads = os.cpu_count() or 1
    report = SpeedReport(
        environment=Report("codec_speed", "Codec speed").environment,  # taken before any measurement
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
                        r = time_system(subject, device, threads, batch, settings["seconds"],
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
