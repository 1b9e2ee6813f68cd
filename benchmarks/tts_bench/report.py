"""The TTS benchmark's result, its targets, and the report (``tts_eval.{json,md,png}``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import Panel, Report, Series, format_number, markdown_table
from benchmarks.tts_bench.corpus import GroundTruth
from benchmarks.tts_bench.curve import CurvePoint
from benchmarks.tts_bench.everyday import (
    DEFAULT_CFG,
    DEFAULT_STEPS,
    ReferenceSimilarity,
    SweepPoint,
)
from benchmarks.tts_bench.languages import LanguageRow
from benchmarks.tts_bench.scoring import PLAUSIBLE_RATIO, SystemRow

#: The goals of issue 21; each is reported next to its measured value.
TARGETS = {"wer": 0.5, "wer_moonshot_piper": 0.27, "similarity": 0.75, "ttfa_ms": 150.0, "rtf": 0.3}


@dataclass
class EvalResult:
    """Everything one run measured (the JSON report is its ``asdict`` plus the environment)."""

    model: str
    quick: bool
    threads: int
    prompt: dict[str, Any]  # name, seconds, encode_ms, source
    references: ReferenceSimilarity
    everyday: list[SystemRow]  # hylac-tts first, then Piper and espeak-ng
    sweep: list[SweepPoint]
    ground_truth: GroundTruth | None
    corpus_tts: SystemRow | None
    corpus_note: str
    languages: list[LanguageRow]
    curve: list[CurvePoint]
    phoneme_note: str | None  # why the phoneme error rates are missing
    wall_seconds: float = 0.0
    targets: dict[str, float] = field(default_factory=lambda: dict(TARGETS))


@dataclass
class Target:
    """One goal and how this run measured against it (``met`` None: not measured)."""

    name: str
    goal: str
    measured: str
    met: bool | None


def _f(value: float | None, digits: int = 3) -> str:
    return format_number(value, digits)


def _row(result: EvalResult, prefix: str) -> SystemRow | None:
    return next((r for r in result.everyday if r.name.startswith(prefix)), None)


def _below(value: float | None, bound: float | None, strict: bool = False) -> bool | None:
    if value is None or bound is None or not math.isfinite(value):
        return None
    return value < bound if strict else value <= bound


def targets(result: EvalResult) -> list[Target]:
    hylac, refs = result.everyday[0], result.references
    piper, espeak = _row(result, "Piper"), _row(result, "espeak")
    piper_wer, espeak_wer = (piper.wer if piper else None), (espeak.wer if espeak else None)
    sim, diff = hylac.similarity, refs.different_speakers
    low, high = PLAUSIBLE_RATIO
    plausible = [r for r in result.languages if r.sentences and r.plausible == r.sentences]
    with_per = [r for r in result.languages if r.per is not None]
    n = len(result.languages)
    return [
        Target("English WER, everyday sentences, real unseen voice", f"≤ {TARGETS['wer']}", _f(hylac.wer),
               _below(hylac.wer, TARGETS["wer"])),
        Target("... better than espeak-ng", f"< {_f(espeak_wer)} (espeak-ng, this run)", _f(hylac.wer),
               _below(hylac.wer, espeak_wer, strict=True)),
        Target("... moonshot: at or below Piper", f"≤ {_f(piper_wer)} (Piper, this run; "
               f"{TARGETS['wer_moonshot_piper']} expected)", _f(hylac.wer), _below(hylac.wer, piper_wer)),
        Target("Speaker similarity to the prompt", f"≥ {TARGETS['similarity']}", _f(sim),
               None if sim is None else sim >= TARGETS["similarity"]),
        Target("... closer than two different real speakers", f"> {_f(diff)} (different real speakers)", _f(sim),
               None if sim is None or diff is None else sim > diff),
        Target(f"Time to first audio, {result.threads} CPU threads", f"≤ {TARGETS['ttfa_ms']:.0f} ms",
               f"{_f(hylac.ttfa_ms, 0)} ms", _below(hylac.ttfa_ms, TARGETS["ttfa_ms"])),
        Target(f"Real-time factor, {result.threads} CPU threads", f"≤ {TARGETS['rtf']}", _f(hylac.rtf),
               _below(hylac.rtf, TARGETS["rtf"])),
        Target("Every language speaks with a plausible length", f"all {n} languages, every sentence within "
               f"{low:g}-{high:g} x expected", f"{len(plausible)} of {n}", len(plausible) == n if n else None),
        Target("Phoneme error rates reported", f"all {n} languages", f"{len(with_per)} of {n}"
               + (f" ({result.phoneme_note})" if result.phoneme_note else ""), len(with_per) == n if n else None),
    ]


def _yes(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "–"}[met]


def _system_cells(r: SystemRow) -> list[str]:
    return [r.name, str(r.sentences), _f(r.wer), _f(r.similarity), _f(r.per), _f(r.mean_seconds, 2),
            _f(r.expected_seconds, 2), _f(r.ttfa_ms, 0), _f(r.rtf), str(r.length_limit_hits), r.note]


def everyday_section(result: EvalResult) -> str:
    refs = result.references
    blank = ["–"] * 6  # PER, durations and speed: not measured for recordings
    rows = [_system_cells(r) for r in result.everyday] + [
        ["real reader, two of its recordings (same speaker)", str(refs.same_pairs), "–", _f(refs.same_speaker),
         *blank, ""],
        ["real reader vs other real speakers", str(refs.different_pairs), "–", _f(refs.different_speakers),
         *blank, ", ".join(refs.other_voices) or refs.note],
        ["real reader's recordings (the recogniser on real speech)", str(refs.real_clips), _f(refs.real_wer), "–",
         *blank, ""],
    ]
    headers = ["system", "n", "WER", "sim. to prompt", "PER", "mean s", "expected s", "first audio (ms)",
               "RTF p50", "length-limit stops", "note"]
    p = result.prompt
    return (f"## Everyday English, real unseen voice\n\nVoice prompt `{p['name']}` ({p['seconds']:.1f} s, "
            f"{p['source']}); similarity = resemblyzer cosine to the prompt; n = sentences (recording pairs in "
            "the reference rows); PER = phoneme error rate read by the codec's phoneme head"
            + (f" ({result.phoneme_note})" if result.phoneme_note else "") + ". Expected s = the sentence's "
            "phonemes at a typical rate.\n\n" + markdown_table(headers, rows)
            + (f"\n\nReference notes: {refs.note}" if refs.note else ""))


def corpus_section(result: EvalResult) -> str:
    gt = result.ground_truth
    if gt is None:
        return f"## Ground truth and the codec ceiling (corpus)\n\nSkipped: {result.corpus_note}"
    rows = [["ground-truth recordings", str(gt.sentences), _f(gt.wer), _f(gt.same_speaker_similarity)],
            ["recordings through the codec (TTS ceiling)", str(gt.sentences), _f(gt.codec_round_trip_wer),
             _f(gt.codec_round_trip_speaker_similarity)]]
    if result.corpus_tts is not None:
        r = result.corpus_tts
        rows.append([r.name, str(r.sentences), _f(r.wer), _f(r.similarity)])
    return ("## Ground truth and the codec ceiling (corpus)\n\nHeld-out corpus sentences; similarity to a prompt "
            "that is another recording of the same held-out speaker.\n\n"
            + markdown_table(["system", "sentences", "WER", "sim. to prompt"], rows)
            + f"\n\nThrough-codec recordings vs the originals: similarity "
            f"{gt.codec_round_trip_similarity_to_original:.3f}. Different corpus speakers: "
            f"{gt.different_speaker_similarity:.3f}.")


def languages_section(result: EvalResult) -> str:
    rows = [[r.lang, r.source, str(r.sentences), _f(r.mean_seconds, 2), _f(r.expected_seconds, 2), _f(r.ratio, 2),
             f"{r.plausible} of {r.sentences}", str(r.length_limit_hits), _f(r.similarity), _f(r.per),
             _f(r.ground_truth_per), r.note] for r in result.languages]
    low, high = PLAUSIBLE_RATIO
    return (f"## Languages\n\nSpoken with the same real-voice prompt. Expected s = the ground-truth recording's "
            f"duration (corpus sentences) or the phonemes at a typical rate (fixed sentences); plausible = "
            f"{low:g}-{high:g} x expected. PER: the codec's phoneme head on the re-encoded output against "
            "espeak-ng's phonemes of the text (word boundaries ignored), and the same head on the recordings"
            + (f" ({result.phoneme_note})" if result.phoneme_note else "") + ".\n\n"
            + markdown_table(["lang", "sentences from", "n", "mean s", "expected s", "ratio", "plausible",
                              "length-limit stops", "sim. to prompt", "PER", "ground-truth PER", "note"], rows))


def sweep_section(result: EvalResult) -> str:
    rows = [[p.row.name, str(p.row.sentences), _f(p.row.wer), _f(p.row.similarity), _f(p.row.ttfa_ms, 0),
             _f(p.row.rtf), str(p.row.length_limit_hits)] for p in result.sweep]
    return ("## Sampler sweep (everyday sentences, real prompt)\n\n" + markdown_table(
        ["setting", "sentences", "WER", "sim. to prompt", "first audio (ms)", "RTF p50", "length-limit stops"], rows))


def curve_section(result: EvalResult) -> str:
    if not result.curve:
        return "## Training curve\n\nNot run (no `--checkpoints`)."
    rows = [[format_number(p.step), Path(p.folder).name, str(p.sentences), _f(p.wer), _f(p.similarity),
             _f(p.mean_seconds, 2), str(p.length_limit_hits), p.note] for p in result.curve]
    return ("## Training curve (everyday sentences, real prompt)\n\n" + markdown_table(
        ["step", "checkpoint", "sentences", "WER", "sim. to prompt", "mean s", "length-limit stops", "note"], rows))


def _series(label: str, xs: Sequence[float], ys: Sequence[float | None]) -> Series:
    return Series(label, [float(x) for x in xs], [float("nan") if y is None else float(y) for y in ys])


def panels(result: EvalResult) -> list[Panel]:
    out = []
    stepped = [p for p in result.curve if p.step is not None]
    if stepped:
        steps = [p.step for p in stepped]
        series = [_series("WER", steps, [p.wer for p in stepped]),
                  _series("similarity", steps, [p.similarity for p in stepped])]
        if len(set(steps)) > 1:  # the goals as flat lines across the run
            ends = [min(steps), max(steps)]
            series += [_series(f"WER goal {TARGETS['wer']}", ends, [TARGETS["wer"]] * 2),
                       _series(f"similarity goal {TARGETS['similarity']}", ends, [TARGETS["similarity"]] * 2)]
        out.append(Panel("Training curve (everyday sentences)", "training step", "WER / similarity", series))
    by_steps = sorted((p for p in result.sweep if p.cfg == DEFAULT_CFG), key=lambda p: p.steps)
    by_cfg = sorted((p for p in result.sweep if p.steps == DEFAULT_STEPS), key=lambda p: p.cfg)
    out.append(Panel(f"Euler steps (CFG {DEFAULT_CFG})", "steps", "WER / RTF",
                     [_series("WER", [p.steps for p in by_steps], [p.row.wer for p in by_steps]),
                      _series("RTF", [p.steps for p in by_steps], [p.row.rtf for p in by_steps])], xlog=True))
    out.append(Panel(f"CFG alpha ({DEFAULT_STEPS} steps)", "alpha", "WER / similarity",
                     [_series("WER", [p.cfg for p in by_cfg], [p.row.wer for p in by_cfg]),
                      _series("similarity", [p.cfg for p in by_cfg], [p.row.similarity for p in by_cfg])]))
    return out


def write_report(out: Path, result: EvalResult) -> dict[str, Path]:
    """Write tts_eval.{json,md,png} under ``out``."""
    goals = targets(result)
    hylac = result.everyday[0]
    header = (f"Model `{result.model}`; {result.threads} CPU threads; voice prompt `{result.prompt['name']}` "
              f"(encoding it: {result.prompt['encode_ms']:.0f} ms, not in the first-audio time). "
              f"Speed: first audio p50 {_f(hylac.ttfa_ms, 0)} ms, RTF p50 {_f(hylac.rtf)} "
              f"(total {_f(hylac.rtf_total)}) over the everyday sentences."
              + (" **Quick mode: tiny random models, pipeline check only.**" if result.quick else ""))
    sections = [header, "## Targets\n\n" + markdown_table(
        ["target", "goal", "measured", "met"], [[t.name, t.goal, t.measured, _yes(t.met)] for t in goals]),
        everyday_section(result), corpus_section(result), languages_section(result), sweep_section(result),
        curve_section(result)]
    data = {"benchmark": "tts_eval", **asdict(result), "target_checks": [asdict(t) for t in goals]}
    return Report("tts_eval", "TTS evaluation").write(out, data, sections, panels(result),
                                                      f"TTS evaluation ({result.model})")
