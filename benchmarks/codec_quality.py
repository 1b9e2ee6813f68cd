"""Codec quality benchmark: hylac models against Opus, Codec2 and the original signal.

    python -m benchmarks.codec_quality [--data DIR_OR_MANIFEST ...] [--model NAME_OR_PATH ...]
        [--systems original opus-6k ...] [--metrics pesq_wb stoi ...] [--max-clips N]
        [--out benchmarks/results]

Every clip goes through every system; each decoded signal is delay-compensated by
cross-correlation and scored against its input (PESQ and STOI at 16 kHz, see
`codec.metrics`). dWER is computed for English clips only: the pocketsphinx transcript
of the decoded audio against the pocketsphinx transcript of the original.

Data (all that apply): the corpus's held-out test manifest (`data/corpus/test.jsonl`,
JSON lines with `path` relative to the manifest, `text`, `lang`), the clips bundled in
`codec/assets/`, and every `--data` folder or `.jsonl` manifest. A folder with a
`manifest.jsonl` is read through it; otherwise its audio files are read recursively and
their language is `--data-lang`. Writes `codec_quality.json` (per clip and means,
plus the environment), `codec_quality.md` and `codec_quality.png` under `--out`.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (
    REPO_ROOT,
    Panel,
    Report,
    Series,
    format_number,
    markdown_table,
    parse_with_out,
)
from benchmarks.systems import BASELINE_NAMES, Hylac, System, SystemUnavailable, build_baseline
from codec import metrics as M
from codec.io.audio import read_audio
from codec.io.manifest import read_manifest

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
DEFAULT_MANIFEST = REPO_ROOT / "data" / "corpus" / "test.jsonl"
ASSETS_DIR = REPO_ROOT / "codec" / "assets"

#: Table columns: (header, metric key, decimals).
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("PESQ-WB", "pesq_wb", 2),
    ("PESQ-NB", "pesq_nb", 2),
    ("STOI", "stoi", 3),
    ("ESTOI", "estoi", 3),
    ("SI-SDR (dB)", "si_sdr", 1),
    ("mel", "mel_distance", 3),
    ("F0 err (cents)", "f0_error", 0),
    ("VDE", "vde", 3),
    ("spk-sim", "speaker_similarity", 3),
    ("dWER", "dwer", 3),
)


@dataclass
class Clip:
    """One test recording: mono float32 `audio [N]` at `sample_rate`."""

    id: str
    path: Path
    audio: np.ndarray
    sample_rate: int
    lang: str | None = None
    text: str | None = None


@dataclass
class SystemResult:
    """All scores of one system over the clips."""

    name: str
    nominal_kbps: float | None
    clips: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def mean(self, key: str) -> float | None:
        values = [c[key] for c in self.clips if c.get(key) is not None]
        values = [v for v in values if math.isfinite(float(v))]
        return float(np.mean(values)) if values else None

    def summary(self) -> dict[str, Any]:
        means = {key: self.mean(key) for key in M.METRICS}
        return {
            "name": self.name,
            "nominal_kbps": self.nominal_kbps,
            "kbps": self.mean("kbps"),
            "file_kbps": self.mean("file_kbps"),
            "num_clips": len(self.clips),
            "seconds": self.seconds,
            "means": means,
            "clips": self.clips,
        }


# ----------------------------------------------------------------------------- data


def read_clip(path: Path, clip_id: str, lang: str | None, text: str | None,
              max_seconds: float | None) -> Clip:
    """Read an audio file as mono float32 at its own rate (channels averaged; the codec's reader
    and its checks), cut to `max_seconds`."""
    mono, info = read_audio(path, target_rate=None)
    if max_seconds is not None:
        mono = mono[: int(max_seconds * info.sample_rate)]
    return Clip(id=clip_id, path=path, audio=np.ascontiguousarray(mono), sample_rate=info.sample_rate,
                lang=lang, text=text)


def clips_from_manifest(manifest: Path, max_seconds: float | None) -> list[Clip]:
    """Clips of a JSON-lines manifest (`path` relative to the manifest, `text`, `lang`)."""
    return [read_clip(record.path().resolve(), f"{manifest.stem}:{Path(record.fields['path']).stem}",
                      record.fields.get("lang"), record.fields.get("text"), max_seconds)
            for record in read_manifest(manifest)]


def clips_from_folder(folder: Path, lang: str | None, max_seconds: float | None) -> list[Clip]:
    """Every audio file under `folder` (recursive, sorted), in language `lang`."""
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    return [read_clip(p, f"{folder.name}:{p.relative_to(folder).with_suffix('')}", lang, None,
                      max_seconds) for p in paths]


def gather_clips(data: Sequence[str] | None, data_lang: str | None, max_clips: int | None,
                 max_seconds: float | None) -> list[Clip]:
    """Clips from `data` (folders or manifests), or the default test data when empty.

    With `max_clips`, that many clips evenly spaced over the full list are kept.
    """
    sources: list[Path] = [Path(d) for d in data] if data else []
    if not sources:
        sources = [p for p in (DEFAULT_MANIFEST, ASSETS_DIR) if p.exists()]
    clips: list[Clip] = []
    for src in sources:
        if src.is_dir() and (src / "manifest.jsonl").is_file():
            clips += clips_from_manifest(src / "manifest.jsonl", max_seconds)
        elif src.is_dir():
            clips += clips_from_folder(src, data_lang, max_seconds)
        elif src.is_file() and src.suffix == ".jsonl":
            clips += clips_from_manifest(src, max_seconds)
        elif src.is_file() and src.suffix.lower() in AUDIO_SUFFIXES:
            clips.append(read_clip(src, src.stem, data_lang, None, max_seconds))
        else:
            raise FileNotFoundError(f"--data {src}: not a folder, .jsonl manifest or audio file")
    if not clips:
        raise FileNotFoundError(
            "no test clips found: pass --data DIR_OR_MANIFEST (default data is "
            f"{DEFAULT_MANIFEST.relative_to(REPO_ROOT)} and {ASSETS_DIR.relative_to(REPO_ROOT)}/)"
        )
    if max_clips and len(clips) > max_clips:
        # Evenly spaced picks keep every language and voice of a sorted corpus represented.
        picks = np.linspace(0, len(clips) - 1, max_clips).round().astype(int)
        clips = [clips[i] for i in picks]
    return clips


def band_limited(clip: Clip, rate: int) -> Clip:
    """The clip as heard through a channel sampled at `rate` (resampled there and back)."""
    if rate >= clip.sample_rate:
        return clip
    audio = M.resample(M.resample(clip.audio, clip.sample_rate, rate), rate, clip.sample_rate)
    audio = np.ascontiguousarray(audio[: clip.audio.size], dtype=np.float32)
    return dataclasses.replace(clip, audio=np.pad(audio, (0, clip.audio.size - audio.size)))


# -------------------------------------------------------------------------- running


def build_systems(models: Sequence[str], baselines: Sequence[str], int8: bool = False) -> list[System]:
    """hylac models first (in the given order; with `int8`, each also with int8 weights),
    then the named classic systems."""
    systems: list[System] = []
    for m in models:
        systems.append(Hylac(m))
        if int8:
            systems.append(Hylac(m, name=f"{Path(m).name} int8", int8=True))
    systems += [build_baseline(name) for name in baselines]
    return systems


def run_benchmark(clips: Sequence[Clip], systems: Sequence[System], metrics: Sequence[str],
                  log=print) -> tuple[list[SystemResult], dict[str, str]]:
    """Score every available system on every clip; returns results and skipped systems."""
    transcripts: dict[str, str] = {}
    results: list[SystemResult] = []
    skipped: dict[str, str] = {}
    for system in systems:
        reason = system.unavailable_reason()
        if reason is not None:
            skipped[system.name] = reason
            log(f"skipping {system.name}: {reason}")
            continue
        result = SystemResult(system.name, system.nominal_kbps)
        start = time.perf_counter()
        for clip in clips:
            try:
                out = system.process(clip.audio, clip.sample_rate)
            except SystemUnavailable as exc:
                skipped[system.name] = str(exc)
                break
            wanted = [m for m in metrics if m != "dwer" or _is_english(clip.lang)]
            if "dwer" in wanted and clip.id not in transcripts:
                transcripts[clip.id] = M.transcribe(clip.audio, clip.sample_rate)
            scores = M.score_pair(clip.audio, out.audio, clip.sample_rate, wanted,
                                  max_delay_s=system.max_alignment_delay_s,
                                  reference_transcript=transcripts.get(clip.id), on_error="record")
            row = {"clip": clip.id, "lang": clip.lang, "seconds": clip.audio.size / clip.sample_rate,
                   "kbps": out.bitrate_kbps, "file_kbps": out.file_kbps,
                   "delay_ms": 1000.0 * scores.delay_samples / clip.sample_rate}
            row.update(scores.to_dict())
            result.clips.append(row)
        result.seconds = time.perf_counter() - start
        if system.name not in skipped:
            results.append(result)
            mean = result.mean("pesq_wb")
            log(f"{system.name}: {len(result.clips)} clips, {format_number(result.mean('kbps'))} kbps, "
                f"PESQ-WB {format_number(mean)} ({result.seconds:.1f} s)")
    return results, skipped


def _is_english(lang: str | None) -> bool:
    return lang is not None and (lang.lower() == "en" or lang.lower().startswith("en-"))


def write_outputs(out_dir: Path, results: Sequence[SystemResult], skipped: dict[str, str],
                  clips: Sequence[Clip], metrics: Sequence[str], args: dict[str, Any]) -> dict[str, Path]:
    """Write codec_quality.{json,md,png}; returns their paths."""
    report = Report("codec_quality", "Codec quality")
    data = {
        "benchmark": "codec_quality",
        "environment": report.environment,
        "config": args,
        "data": {"num_clips": len(clips), "clips": [
            {"id": c.id, "path": str(c.path), "lang": c.lang, "sample_rate": c.sample_rate,
             "seconds": c.audio.size / c.sample_rate} for c in clips]},
        "metrics": list(metrics),
        "bitrate_note": BITRATE_NOTE,
        "systems": [r.summary() for r in results],
        "skipped": skipped,
    }
    columns = [c for c in COLUMNS if c[1] in metrics]
    headers = ["system", "kbps"] + [c[0] for c in columns]
    rows = [[r.name, format_number(r.mean("kbps"))] + [format_number(r.mean(k), d) for _, k, d in columns]
            for r in results]
    total_s = sum(c.audio.size / c.sample_rate for c in clips)
    notes = [
        f"{len(clips)} clips, {total_s:.1f} s in total; means over clips "
        f"(dWER over English clips only). Higher is better except mel distance, F0 error (median "
        f"cents over the 10 ms steps voiced in both), VDE (share of steps voiced in one only) and dWER.",
        BITRATE_NOTE,
        "Decoded signals are delay-compensated before scoring (waveform codecs by "
        "cross-correlation, Codec2 by its fixed 20 ms decoder delay); "
        "PESQ-WB, STOI and ESTOI at 16 kHz, PESQ-NB at 8 kHz, mel distance at 24 kHz.",
    ]
    if skipped:
        notes.append("Skipped: " + "; ".join(f"{k} ({v})" for k, v in skipped.items()))
    env = data["environment"]
    notes.append(f"Measured {env['date']} at commit {env['git_commit']}, torch {env['torch']}.")
    panels = []
    for key, label in (("pesq_wb", "PESQ-WB"), ("stoi", "STOI")):
        if key in metrics:
            series = [Series(r.name, [r.mean("kbps") or math.nan], [r.mean(key) or math.nan])
                      for r in results]
            panels.append(Panel(f"{label} vs bitrate", "bitrate (kbps, log)", label, series, xlog=True))
    return report.write(out_dir, data, [markdown_table(headers, rows), "\n\n".join(notes)], panels,
                        "Codec quality vs bitrate")


BITRATE_NOTE = (
    "kbps = measured payload bitrate: Opus audio packets without Ogg pages and headers, "
    "Codec2 frames without the file header, hylac code bits of the frames produced; "
    "the original is 16-bit PCM at its own rate. Whole-file rates are in the JSON (file_kbps)."
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", help="folders, .jsonl manifests or audio files")
    parser.add_argument("--data-lang", default="en",
                        help="language of clips from --data folders (dWER only for 'en'; default en)")
    parser.add_argument("--model", nargs="+", default=["hylac-tiny"],
                        help="hylac codec names or checkpoint folders (default hylac-tiny)")
    parser.add_argument("--systems", nargs="*", default=list(BASELINE_NAMES),
                        help=f"classic systems (default: {' '.join(BASELINE_NAMES)})")
    parser.add_argument("--metrics", nargs="+", default=list(M.METRICS), choices=M.METRICS)
    parser.add_argument("--max-clips", type=int, default=30,
                        help="score N clips spread evenly over the data (default 30; 0: all)")
    parser.add_argument("--max-seconds", type=float, default=20.0,
                        help="cut each clip to this length (default 20 s)")
    parser.add_argument("--band", type=int, default=0, metavar="HZ",
                        help="narrow-band input: every clip resampled to HZ (e.g. 8000, telephone) and back "
                             "before scoring, so systems get, and are scored against, the band-limited signal")
    parser.add_argument("--int8", action="store_true",
                        help="also score each hylac model with int8 weights (`use_int8()`, CPU)")
    args = parse_with_out(parser, argv)

    clips = gather_clips(args.data, args.data_lang, args.max_clips, args.max_seconds)
    if args.band:
        clips = [band_limited(c, args.band) for c in clips]
    print(f"{len(clips)} clips")
    systems = build_systems(args.model, args.systems, int8=args.int8)
    results, skipped = run_benchmark(clips, systems, args.metrics)
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    paths = write_outputs(args.out, results, skipped, clips, args.metrics, config)
    print((args.out / "codec_quality.md").read_text())
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
