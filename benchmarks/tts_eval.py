"""TTS benchmark: intelligibility, voice similarity, latency and the sampler sweep.

    python -m benchmarks.tts_eval [--model hylac-tts-tiny] [--corpus data/corpus/manifest.jsonl]
        [--sentences 50] [--sweep-sentences 10] [--threads 2] [--quick] [--out benchmarks/results]

Held-out English sentences of the corpus (``--split test``) are spoken with a voice
prompt taken from *another* utterance of the same held-out speaker. Measured:

1. Intelligibility: word error rate of ``pocketsphinx`` on the generated speech, next to
   the WER of the same recogniser on the ground-truth recordings of those sentences.
2. Speaker similarity: resemblyzer cosine between prompt and output, next to
   ground-truth pairs of the same speaker (prompt vs. recording) and of different speakers.
3. Speed on ``--threads`` CPU threads: time to first audio (text + prompt already
   encoded -> first 80 ms chunk out of the streaming decoder; prompt encoding is timed
   apart) and real-time factor (generation + decoding time / seconds of audio).
4. A sweep of Euler steps (1, 2, 4, 8, 16 at CFG 1.2) and of CFG alpha (1.0, 1.2, 2.0 at
   8 steps) on the first ``--sweep-sentences`` sentences: quality and speed per setting.

``--quick`` runs everything end to end on a tiny random model and a few espeak-ng
sentences (checks the pipeline, not the model). Writes ``tts_eval.json``,
``tts_eval.md`` and ``tts_eval.png`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

import tts
from benchmarks.common import REPO_ROOT, Panel, Report, Series, format_number, markdown_table
from codec import metrics as M

STEPS_SWEEP = (1, 2, 4, 8, 16)
CFG_SWEEP = (1.0, 1.2, 2.0)
DEFAULT_STEPS, DEFAULT_CFG = 8, 1.2
TARGETS = {"ttfa_ms": 200.0, "rtf": 0.5}


@dataclass
class Utterance:
    """One corpus recording: mono float32 ``audio [N]`` at ``sample_rate``."""

    id: str
    text: str
    lang: str
    speaker: str
    audio: np.ndarray
    sample_rate: int

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.sample_rate


@dataclass
class Pair:
    """A sentence to speak (its ground-truth recording) and the voice prompt to speak it with."""

    target: Utterance
    prompt: Utterance
    other_speaker: Utterance  # a recording of someone else, for the different-speaker baseline


@dataclass
class SettingResult:
    """Scores of one sampler setting over its sentences."""

    steps: int
    cfg: float
    sentences: int
    wer: float | None  # total word errors / total reference words
    speaker_similarity: float | None  # mean cosine(prompt, output)
    ttfa_ms: float  # median time to first audio chunk
    rtf: float  # total compute time / total seconds generated
    length_limit_hits: int  # outputs stopped by the max-length guard, not by end-of-audio
    mean_seconds: float  # mean output duration
    clips: list[dict[str, Any]] = field(default_factory=list)


def _read(path: Path) -> tuple[np.ndarray, int]:
    audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return audio.mean(axis=1), sr


def load_pairs(manifest: Path, split: str, lang: str, count: int) -> tuple[list[Pair], list[Utterance]]:
    """Up to ``count`` (target, prompt) pairs of ``lang`` from ``split``; the prompt is the
    speaker's next recording (cyclically). Also returns every utterance read."""
    root = manifest.parent
    entries = [json.loads(x) for x in manifest.read_text(encoding="utf-8").splitlines() if x.strip()]
    held = [e for e in entries if e.get("split") == split]
    if not held:
        raise SystemExit(f"{manifest}: no utterances in split {split!r}")
    by_speaker: dict[str, list[dict]] = {}
    for e in held:
        by_speaker.setdefault(e["speaker"], []).append(e)
    cache: dict[str, Utterance] = {}

    def utt(e: dict) -> Utterance:
        if e["path"] not in cache:
            audio, sr = _read(root / e["path"])
            cache[e["path"]] = Utterance(Path(e["path"]).stem, e["text"], e["lang"], e["speaker"], audio, sr)
        return cache[e["path"]]

    speakers = sorted(by_speaker)
    targets = [e for e in held if e["lang"] == lang and len(by_speaker[e["speaker"]]) > 1][:count]
    if not targets:
        raise SystemExit(f"{manifest}: no {lang!r} utterances of split {split!r} with a second utterance "
                         "of the same speaker to prompt with")
    if len(speakers) < 2:
        raise SystemExit(f"{manifest}: split {split!r} needs at least two speakers")
    pairs = []
    for e in targets:
        own = by_speaker[e["speaker"]]
        prompt = own[(own.index(e) + 1) % len(own)]
        other = speakers[(speakers.index(e["speaker"]) + 1) % len(speakers)]
        pairs.append(Pair(utt(e), utt(prompt), utt(by_speaker[other][0])))
    return pairs, list(cache.values())


def _embedding(audio: np.ndarray | torch.Tensor, sr: int) -> np.ndarray:
    return M.speaker_embedding(audio, sr)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


def _wer(pairs_text: list[tuple[str, str]]) -> float | None:
    """Corpus WER: per-sentence rates weighted by their reference word counts."""
    errors = words = 0.0
    for ref, hyp in pairs_text:
        n = len(M.normalize_text(ref).split())
        if n == 0:
            continue
        errors += M.word_error_rate(ref, hyp) * n
        words += n
    return errors / words if words else None


def ground_truth(pairs: list[Pair], synth: tts.Synthesizer) -> dict[str, Any]:
    """The recogniser and speaker-encoder baselines on the real recordings, and on the same
    recordings through the model's codec (encode + decode): the best a TTS model generating
    in that codec's latent space can score."""
    transcripts = [(p.target.text, M.transcribe(p.target.audio, p.target.sample_rate)) for p in pairs]
    prompts = [_embedding(p.prompt.audio, p.prompt.sample_rate) for p in pairs]
    same = [_cos(e, _embedding(p.target.audio, p.target.sample_rate)) for e, p in zip(prompts, pairs, strict=True)]
    codec_transcripts, codec_same = [], []
    with torch.inference_mode():
        for e, p in zip(prompts, pairs, strict=True):
            latents = synth.codec.encode(torch.from_numpy(p.target.audio), p.target.sample_rate)
            audio = synth.codec.decode(latents)[0, 0].numpy()
            codec_transcripts.append((p.target.text, M.transcribe(audio, synth.sample_rate)))
            codec_same.append(_cos(e, _embedding(audio, synth.sample_rate)))
    diff = [_cos(_embedding(p.other_speaker.audio, p.other_speaker.sample_rate),
                 _embedding(p.target.audio, p.target.sample_rate)) for p in pairs]
    return {
        "wer": _wer(transcripts),
        "same_speaker_similarity": float(np.mean(same)),
        "different_speaker_similarity": float(np.mean(diff)),
        "codec_round_trip_wer": _wer(codec_transcripts),
        "codec_round_trip_speaker_similarity": float(np.mean(codec_same)),
        "sentences": len(pairs),
        "transcripts": [{"text": r, "asr": h} for r, h in transcripts],
    }


def run_setting(synth: tts.Synthesizer, pairs: list[Pair], steps: int, cfg: float, max_seconds: float,
                seed: int) -> SettingResult:
    """Speak every pair with one sampler setting, streaming, and score it."""
    sampling = tts.SamplingConfig(steps=steps, cfg=cfg, max_seconds=max_seconds)
    clips, ttfa, compute, produced, hits = [], [], 0.0, 0.0, 0
    for i, pair in enumerate(pairs):
        t0 = time.perf_counter()
        prompt = synth.voice_prompt(torch.from_numpy(pair.prompt.audio), pair.prompt.sample_rate)
        encode_s = time.perf_counter() - t0
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            chunks = []
            for chunk in synth.stream(pair.target.text, pair.target.lang, prompt, sampling=sampling, seed=seed + i):
                if not chunks:
                    ttfa.append(time.perf_counter() - t0)
                chunks.append(chunk)
            seconds = time.perf_counter() - t0
        limit_hit = any("length limit" in str(w.message) for w in caught)
        hits += limit_hit
        audio = torch.cat(chunks).numpy() if chunks else np.zeros(0, dtype=np.float32)
        duration = len(audio) / synth.sample_rate
        compute += seconds
        produced += duration
        clip: dict[str, Any] = {"id": pair.target.id, "seconds": duration, "compute_s": seconds,
                                "prompt_encode_s": encode_s, "length_limit": limit_hit, "text": pair.target.text}
        if duration >= 0.5:
            clip["asr"] = M.transcribe(audio, synth.sample_rate)
            clip["speaker_similarity"] = _cos(_embedding(pair.prompt.audio, pair.prompt.sample_rate),
                                              _embedding(audio, synth.sample_rate))
        else:  # too short to score: counts as all words deleted
            clip["asr"] = ""
        clips.append(clip)
    sims = [c["speaker_similarity"] for c in clips if "speaker_similarity" in c]
    return SettingResult(
        steps=steps, cfg=cfg, sentences=len(pairs),
        wer=_wer([(c["text"], c["asr"]) for c in clips]),
        speaker_similarity=float(np.mean(sims)) if sims else None,
        ttfa_ms=1000 * statistics.median(ttfa) if ttfa else float("nan"),
        rtf=compute / produced if produced else float("nan"),
        length_limit_hits=hits, mean_seconds=produced / len(pairs), clips=clips,
    )


# ----------------------------------------------------------------------------- quick mode
def quick_setup(folder: Path) -> tuple[tts.Synthesizer, Path]:
    """A tiny random codec + TTS model and a six-utterance espeak-ng corpus of two speakers."""
    import codec

    torch.manual_seed(0)
    codec_model = codec.HybridCodec(codec.CodecConfig.tiny()).eval()
    cfg = tts.TTSConfig.tiny(semantic_dim=codec_model.semantic_dim, codec_latent_hash=codec_model.latent_hash)
    synth = tts.Synthesizer(tts.TTSModel(cfg), codec_model)
    sentences = ["The quick brown fox jumps over the lazy dog.", "Please call me back before noon tomorrow.",
                 "We will meet at the station at seven."]
    lines = []
    for speaker, pitch in (("low", 30), ("high", 70)):
        for k, text in enumerate(sentences):
            path = folder / f"{speaker}-{k}.wav"
            subprocess.run(["espeak-ng", "-v", "en-us", "-p", str(pitch), "-w", str(path), text], check=True)
            lines.append(json.dumps({"path": path.name, "text": text, "lang": "en", "speaker": speaker,
                                     "split": "test", "duration": sf.info(str(path)).duration}))
    manifest = folder / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return synth, manifest


# ----------------------------------------------------------------------------- report
def write_report(out: Path, result: dict[str, Any]) -> None:
    """Write tts_eval.{json,md,png} (the report adds the environment to the JSON)."""
    gt, default, runs = result["ground_truth"], result["default"], result["sweep"]
    main_rows = [
        ["ground truth", format_number(gt["wer"], 3), format_number(gt["same_speaker_similarity"], 3), "–", "–"],
        ["ground truth through the codec (TTS ceiling)", format_number(gt["codec_round_trip_wer"], 3),
         format_number(gt["codec_round_trip_speaker_similarity"], 3), "–", "–"],
        [f"{result['model']} (steps {DEFAULT_STEPS}, CFG {DEFAULT_CFG})", format_number(default["wer"], 3),
         format_number(default["speaker_similarity"], 3), format_number(default["ttfa_ms"], 0),
         format_number(default["rtf"], 3)],
    ]
    sweep_rows = [
        [f"steps {r['steps']}, CFG {r['cfg']}", str(r["sentences"]), format_number(r["wer"], 3),
         format_number(r["speaker_similarity"], 3), format_number(r["ttfa_ms"], 0), format_number(r["rtf"], 3),
         str(r["length_limit_hits"])]
        for r in runs
    ]
    sections = [
        f"Model `{result['model']}`; {result['sentences']} held-out English sentences "
        f"(split `{result['split']}`), voice prompt = another recording of the same speaker; "
        f"{result['threads']} CPU threads. Targets: first audio < {TARGETS['ttfa_ms']:.0f} ms, "
        f"RTF < {TARGETS['rtf']}." + (" **Quick mode: tiny random model, pipeline check only.**"
                                       if result["quick"] else ""),
        markdown_table(["system", "WER", "speaker sim.", "first audio (ms)", "RTF"], main_rows),
        f"Speaker similarity of ground-truth pairs: same speaker {gt['same_speaker_similarity']:.3f}, "
        f"different speakers {gt['different_speaker_similarity']:.3f}. Prompt encoding (not in first-audio "
        f"time): median {1000 * result['prompt_encode_s_median']:.0f} ms. Outputs stopped by the length "
        f"limit at the default setting: {default['length_limit_hits']} of {default['sentences']}.",
        "## Sampler sweep\n\n" + markdown_table(
            ["setting", "sentences", "WER", "speaker sim.", "first audio (ms)", "RTF", "length-limit stops"],
            sweep_rows),
    ]
    steps_runs = sorted([r for r in runs if r["cfg"] == DEFAULT_CFG], key=lambda r: r["steps"])
    cfg_runs = sorted([r for r in runs if r["steps"] == DEFAULT_STEPS], key=lambda r: r["cfg"])

    def series(rows: list[dict], x: str, y: str, label: str) -> Series:
        return Series(label, [float(r[x]) for r in rows], [float(r[y]) if r[y] is not None else float("nan")
                                                            for r in rows])

    Report("tts_eval", "TTS evaluation").write(out, result, sections, [
        Panel("Euler steps (CFG 1.2)", "steps", "WER / RTF", [series(steps_runs, "steps", "wer", "WER"),
                                                             series(steps_runs, "steps", "rtf", "RTF")], xlog=True),
        Panel("CFG alpha (8 steps)", "alpha", "WER / speaker sim.",
              [series(cfg_runs, "cfg", "wer", "WER"), series(cfg_runs, "cfg", "speaker_similarity", "speaker sim.")]),
    ], f"TTS sampler sweep ({result['model']})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="hylac-tts-tiny", help="TTS model name or folder")
    parser.add_argument("--corpus", type=Path, default=REPO_ROOT / "data" / "corpus" / "manifest.jsonl",
                        help="audio corpus manifest (paths relative to its folder)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--lang", default="en", help="language of the sentences (the recogniser is English)")
    parser.add_argument("--sentences", type=int, default=50)
    parser.add_argument("--sweep-sentences", type=int, default=10)
    parser.add_argument("--max-seconds", type=float, default=20.0, help="length limit per output")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny random model + espeak-ng sentences")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default benchmarks/results, or benchmarks/results/quick)")
    args = parser.parse_args(argv)
    # Short held-out prompts are expected here; the warning would repeat for every sentence.
    warnings.filterwarnings("ignore", message="voice prompt is only")
    if args.out is None:
        args.out = REPO_ROOT / "benchmarks" / "results" / ("quick" if args.quick else "")
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        if args.quick:
            synth, manifest = quick_setup(Path(tmp))
            model_name, sentences, sweep_n, max_seconds = "tiny random (quick)", 2, 1, 1.0
        else:
            synth, manifest = tts.load(args.model), args.corpus
            model_name, sentences, sweep_n, max_seconds = args.model, args.sentences, args.sweep_sentences, args.max_seconds
        pairs, _ = load_pairs(manifest, args.split, args.lang, sentences)
        sweep_pairs = pairs[:sweep_n]
        t_start = time.perf_counter()
        print(f"ground truth on {len(pairs)} sentences ...", file=sys.stderr)
        gt = ground_truth(pairs, synth)
        print(f"default setting (steps {DEFAULT_STEPS}, CFG {DEFAULT_CFG}) ...", file=sys.stderr)
        default = run_setting(synth, pairs, DEFAULT_STEPS, DEFAULT_CFG, max_seconds, args.seed)
        sweep: list[SettingResult] = []
        grid = [(s, DEFAULT_CFG) for s in STEPS_SWEEP] + [(DEFAULT_STEPS, c) for c in CFG_SWEEP if c != DEFAULT_CFG]
        for steps, cfg in grid:
            print(f"sweep: steps {steps}, CFG {cfg} on {len(sweep_pairs)} sentences ...", file=sys.stderr)
            sweep.append(run_setting(synth, sweep_pairs, steps, cfg, max_seconds, args.seed))
    encode_times = [c["prompt_encode_s"] for c in default.clips]
    result = {
        "benchmark": "tts_eval",
        "model": model_name,
        "quick": args.quick,
        "split": args.split,
        "lang": args.lang,
        "threads": args.threads,
        "sentences": len(pairs),
        "sweep_sentences": len(sweep_pairs),
        "max_seconds": max_seconds,
        "targets": TARGETS,
        "ground_truth": gt,
        "prompt_encode_s_median": statistics.median(encode_times),
        "default": asdict(default),
        "sweep": [asdict(s) for s in sweep],
        "wall_seconds": time.perf_counter() - t_start,
    }
    write_report(args.out, result)
    print((args.out / "tts_eval.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
