"""TTS benchmark: intelligibility and voice similarity with a real unseen voice, every language,
speed, the sampler sweep and the training curve, each against its target.

    python -m benchmarks.tts_eval [--model hylac-tts-tiny] [--prompt codec/assets/real/CLIP.flac]
        [--corpus data/corpus/manifest.jsonl] [--checkpoints runs/NAME/checkpoints/step_N ...]
        [--threads 2] [--quick] [--out benchmarks/results]

Sections of the report (the code of each is in :mod:`benchmarks.tts_bench`):

1. Everyday English (``benchmarks/data/everyday_en.txt``) spoken with a real human voice the
   models never trained on (the LibriVox reader of ``codec/assets/real/``; ``--prompt``):
   WER (pocketsphinx), speaker similarity to the prompt (resemblyzer cosine), phoneme error
   rate, durations, for hylac-tts, Piper's CC0 voice and espeak-ng; next to the similarity of
   two recordings of the reader and of the reader and other real speakers (Asterisk prompts).
2. Ground truth and the codec ceiling: held-out corpus recordings as recorded, through the
   model's codec, and spoken by the TTS with another recording of the same speaker as prompt.
3. Languages: a few test sentences of each of the nine languages with the real prompt:
   output duration against the expected one, and the phoneme error rate read by the codec's
   phoneme (CTC) head, next to the same head on the ground-truth recordings.
4. Speed on ``--threads``: time to the first 80 ms chunk of the streaming path (prompt
   already encoded; its encoding is timed apart) and real-time factor, p50 over sentences.
5. Sampler sweep (Euler steps; CFG alpha) on the first ``--sweep-sentences`` everyday sentences.
6. Training curve: WER and similarity on ``--curve-sentences`` everyday sentences for each of
   ``--checkpoints`` (training checkpoints are exported on the fly), plotted against the step.

``--quick`` runs everything end to end on tiny random models and a few espeak-ng recordings
(checks the pipeline, not the model). Writes ``tts_eval.json``, ``tts_eval.md`` and
``tts_eval.png`` under ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

import tts
from benchmarks.common import REPO_ROOT, RESULTS_DIR
from benchmarks.tts_bench import corpus, curve, everyday, languages
from benchmarks.tts_bench.data import (
    EVERYDAY_EN,
    Utterance,
    everyday_sentences,
    load_pairs,
    other_real_voices,
    read_utterance,
    real_clips,
)
from benchmarks.tts_bench.quick import quick_setup
from benchmarks.tts_bench.report import EvalResult, write_report
from benchmarks.tts_bench.scoring import PhonemeReader


@dataclass
class Counts:
    """How many sentences each section speaks, and the length limit per output."""

    everyday: int | None
    corpus: int
    sweep: int
    lang: int
    curve: int
    max_seconds: float


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="hylac-tts-tiny", help="TTS model name or folder")
    parser.add_argument("--prompt", type=Path, default=None,
                        help="voice prompt audio (default: the longest clip of codec/assets/real/)")
    parser.add_argument("--corpus", type=Path, default=REPO_ROOT / "data" / "corpus" / "manifest.jsonl",
                        help="audio corpus manifest (paths relative to its folder)")
    parser.add_argument("--split", default="test", help="the corpus split of the held-out sentences")
    parser.add_argument("--sentences", type=int, default=None, help="everyday sentences (default: all 30)")
    parser.add_argument("--corpus-sentences", type=int, default=20)
    parser.add_argument("--sweep-sentences", type=int, default=10)
    parser.add_argument("--lang-sentences", type=int, default=3, help="sentences per language")
    parser.add_argument("--checkpoints", type=Path, nargs="*", default=[],
                        help="training checkpoint (runs/NAME/checkpoints/step_N) or model folders for the curve")
    parser.add_argument("--curve-sentences", type=int, default=10)
    parser.add_argument("--max-seconds", type=float, default=20.0, help="length limit per output")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny random models + espeak-ng recordings")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default benchmarks/results, or benchmarks/results/quick)")
    return parser.parse_args(argv)


def voice_prompt(path: Path | None) -> Utterance:
    if path is not None:
        return read_utterance(path)
    return max(real_clips(), key=lambda u: u.seconds)


def run(args: argparse.Namespace, synth: tts.Synthesizer, model_name: str, manifest: Path,
        checkpoints: list[Path], counts: Counts, tmp: Path) -> EvalResult:
    t0 = time.perf_counter()
    reader_clips = real_clips()
    others, others_reason = other_real_voices()
    references = everyday.reference_similarities(reader_clips, others, others_reason)
    phonemes = PhonemeReader(synth.codec)
    prompt_utt = voice_prompt(args.prompt)
    prompt = everyday.encode_prompt(synth, prompt_utt)
    texts = everyday_sentences(EVERYDAY_EN, counts.everyday)
    rows = everyday.everyday_rows(synth, model_name, texts, prompt, counts.max_seconds, args.seed, phonemes)
    sweep = everyday.sweep(synth, texts[:counts.sweep], prompt, counts.max_seconds, args.seed)
    ground_truth = corpus_tts = None
    pairs, corpus_note = [], f"no corpus manifest at {manifest}"
    if manifest.is_file():
        try:
            pairs, corpus_note = load_pairs(manifest, args.split, "en", counts.corpus), ""
        except ValueError as exc:  # no held-out English of two speakers: the section says why
            corpus_note = str(exc)
    if pairs:
        ground_truth = corpus.ground_truth(pairs, synth)
        corpus_tts = corpus.tts_on_pairs(synth, model_name, pairs, counts.max_seconds, args.seed)
    langs = languages.language_rows(synth, manifest, args.split, counts.lang, prompt, counts.max_seconds,
                                    args.seed, phonemes)
    points = curve.curve(checkpoints, texts[:counts.curve], prompt_utt, counts.max_seconds, args.seed,
                         tmp / "exported", synth.codec)
    return EvalResult(
        model=model_name, quick=args.quick, threads=args.threads,
        prompt={"name": prompt.name, "seconds": prompt.seconds, "encode_ms": prompt.encode_ms,
                "source": ("given with --prompt" if args.prompt else
                           "the LibriVox reader of codec/assets/real/, a real voice no hylac model trains on")},
        references=references, everyday=rows, sweep=sweep, ground_truth=ground_truth, corpus_tts=corpus_tts,
        corpus_note=corpus_note, languages=langs, curve=points, phoneme_note=phonemes.reason,
        wall_seconds=time.perf_counter() - t0,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Short prompts are expected (corpus prompts, some real clips); the warning would repeat.
    warnings.filterwarnings("ignore", message="voice prompt is only")
    if args.out is None:
        args.out = RESULTS_DIR / ("quick" if args.quick else "")
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        if args.quick:
            setup = quick_setup(Path(tmp))
            synth, manifest, model_name = setup.synth, setup.manifest, "tiny random (quick)"
            checkpoints = args.checkpoints or setup.checkpoints
            counts = Counts(everyday=2, corpus=2, sweep=1, lang=1, curve=1, max_seconds=1.0)
        else:
            synth, manifest, model_name, checkpoints = tts.load(args.model), args.corpus, args.model, args.checkpoints
            counts = Counts(args.sentences, args.corpus_sentences, args.sweep_sentences, args.lang_sentences,
                            args.curve_sentences, args.max_seconds)
        result = run(args, synth, model_name, manifest, checkpoints, counts, Path(tmp))
    write_report(args.out, result)
    print((args.out / "tts_eval.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
