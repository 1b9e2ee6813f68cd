"""Fine-tuning benchmark: how far ``hylac-tts finetune`` on a few minutes of a new real speaker
moves a TTS model toward that voice, at what cost in CPU minutes, and whether it stays
intelligible.

    python -m benchmarks.tts_finetune [--model hylac-tts-tiny] [--manifest data/corpus/manifest.jsonl]
        [--speaker asterisk-it_IT_m_Carlo] [--minutes 10] [--test 8] [--steps 100 300 600]
        [--english 5] [--threads 2] [--work DIR] [--out benchmarks/results]

1. The speaker's recordings in ``--manifest`` are split with a fixed seed: ``--test``
   held-out sentences (1.5-6 s), one held-out voice prompt (3-6 s), and up to ``--minutes``
   of the rest to fine-tune on (written as a manifest in the work folder). The speaker must
   be one the model never trained on: ``hylac-tts-tiny`` left the Italian Asterisk speaker
   Carlo out for this.
2. Step 0 is the model as shipped (zero-shot cloning from the prompt). At every point the
   model speaks the held-out sentences in the speaker's language with the prompt, and
   ``--english`` everyday English sentences with the same prompt.
   - similarity: resemblyzer cosine of each output to the mean embedding of the speaker's
     held-out recordings, over all outputs;
   - WER: pocketsphinx on the English outputs (the recogniser knows English only: this checks
     that fine-tuning keeps the model intelligible, whatever the speaker's language).
3. ``tts.finetune`` then trains to each count of ``--steps`` in turn (each run resumes the
   last), timed in CPU minutes, and every exported model is measured as in 2.
4. The bars: each held-out recording against the mean of the others (the same speaker),
   the same through the model's codec (what the latents keep of the voice), and the
   held-out recordings against other real speakers in the manifest (different speakers).

Writes ``tts_finetune.json``, ``tts_finetune.md`` and ``tts_finetune.png`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

import tts
from benchmarks import common
from benchmarks.systems.speakers import HylacTTS
from benchmarks.tts_bench.data import Utterance, everyday_sentences, read_utterance
from benchmarks.tts_bench.everyday import DEFAULT_CFG, DEFAULT_STEPS, log, sampling
from benchmarks.tts_bench.scoring import MIN_SCORED_SECONDS, corpus_wer, cosine, embedding
from codec import metrics as M
from tts.finetune import FinetuneConfig, finetune

SEED = 0
TEST_SECONDS = (1.5, 6.0)
PROMPT_SECONDS = (3.0, 6.0)
TRAIN_SECONDS = (1.0, 20.0)  # what `hylac-tts finetune` accepts by default
#: A zero-shot English WER this high means the model is not intelligible to begin with: that
#: fine-tuning "keeps" it says nothing, and the report says so.
CHANCE_WER = 0.9
CHANCE_NOTE = " (but the model is not intelligible before fine-tuning, so the WER half of the target tells nothing)"


@dataclass
class Point:
    """The model after ``step`` fine-tuning steps (0: as shipped)."""

    step: int
    cpu_minutes: float  # CPU time of the fine-tuning up to this point (all threads of this process)
    wall_minutes: float
    similarity: float | None  # mean cosine of the outputs to the speaker's held-out recordings
    similarity_own_language: float | None
    similarity_english: float | None
    wer_english: float | None
    mean_seconds: float
    clips: list[dict] = field(default_factory=list)


@dataclass
class Bars:
    """What the similarity is read against."""

    same_speaker: float | None  # each held-out recording vs the mean of the others
    through_codec: float | None  # the same, the recordings encoded and decoded by the model's codec
    different_speakers: float | None  # held-out recordings vs other real speakers' recordings
    other_speakers: list[str]


@dataclass
class Split:
    test: list[dict]
    prompt: dict
    train: list[dict]

    @property
    def train_minutes(self) -> float:
        return sum(r["duration"] for r in self.train) / 60


def _records(manifest: Path) -> list[dict]:
    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    for r in rows:
        r["path"] = str((manifest.parent / r["path"]).resolve())
    return rows


def split_speaker(records: Sequence[dict], speaker: str, minutes: float, test: int) -> Split:
    """Held-out sentences, a held-out prompt and up to ``minutes`` of training clips of ``speaker``."""
    own = [r for r in records if r.get("speaker") == speaker]
    if not own:
        raise ValueError(f"no recording of speaker {speaker!r} in the manifest")
    rng = random.Random(SEED)
    rng.shuffle(own)
    held = [r for r in own if TEST_SECONDS[0] <= r["duration"] <= TEST_SECONDS[1]][:test]
    prompt = next((r for r in own if r not in held and PROMPT_SECONDS[0] <= r["duration"] <= PROMPT_SECONDS[1]), None)
    if len(held) < 2 or prompt is None:
        raise ValueError(f"speaker {speaker!r} has too few recordings of 1.5-6 s for {test} test sentences and a 3-6 s prompt")
    train, total = [], 0.0
    for r in own:
        if (r in held or r is prompt or total + r["duration"] > minutes * 60
                or not TRAIN_SECONDS[0] <= r["duration"] <= TRAIN_SECONDS[1]):
            continue
        train.append(r)
        total += r["duration"]
    if len(train) < 4:
        raise ValueError(f"speaker {speaker!r} leaves {len(train)} clips to fine-tune on; need at least 4")
    return Split(held, prompt, train)


def _utterance(r: dict) -> Utterance:
    return read_utterance(Path(r["path"]), r.get("text", ""), r.get("lang", "en"), r.get("speaker", ""))


def bars(synth: tts.Synthesizer, test: Sequence[Utterance], others: Sequence[Utterance]) -> Bars:
    def leave_one_out(embs: list[np.ndarray]) -> float:
        return float(np.mean([cosine(e, np.mean([f for j, f in enumerate(embs) if j != i], axis=0))
                              for i, e in enumerate(embs)]))

    embs = [embedding(u.audio, u.sample_rate) for u in test]
    coded = []
    for u in test:
        wav = torch.from_numpy(u.audio)[None, None]
        with torch.no_grad():
            out = synth.codec.decode(synth.codec.encode(wav, u.sample_rate))
        coded.append(embedding(out[0, 0].numpy(), synth.codec.sample_rate))
    other = [embedding(u.audio, u.sample_rate) for u in others]
    return Bars(
        same_speaker=leave_one_out(embs),
        through_codec=float(np.mean([cosine(c, np.mean([f for j, f in enumerate(embs) if j != i], axis=0))
                                     for i, c in enumerate(coded)])),
        different_speakers=float(np.mean([cosine(a, b) for a in embs for b in other])) if other else None,
        other_speakers=sorted({u.speaker for u in others}))


def measure(synth: tts.Synthesizer, prompt: Utterance, test: Sequence[Utterance], english: Sequence[str],
            reference: np.ndarray, step: int, cpu_minutes: float, wall_minutes: float, max_seconds: float) -> Point:
    """Speak the held-out sentences and the English ones with the prompt, and score them."""
    latents = synth.voice_prompt(torch.from_numpy(prompt.audio), prompt.sample_rate)
    speaker = HylacTTS("hylac-tts", synth, latents, sampling(DEFAULT_STEPS, DEFAULT_CFG, max_seconds))
    clips = []
    for i, (text, lang) in enumerate([(u.text, u.lang) for u in test] + [(t, "en") for t in english]):
        out = speaker.speak(text, lang, SEED + i)
        clip = {"text": text, "lang": lang, "seconds": out.seconds, "english": i >= len(test), "asr": ""}
        if out.seconds >= MIN_SCORED_SECONDS:
            clip["similarity"] = cosine(reference, embedding(out.audio, out.sample_rate))
            if clip["english"]:
                clip["asr"] = M.transcribe(out.audio, out.sample_rate)
        clips.append(clip)

    def mean_sim(rows: list[dict]) -> float | None:
        sims = [c["similarity"] for c in rows if "similarity" in c]
        return float(np.mean(sims)) if sims else None

    en = [c for c in clips if c["english"]]
    return Point(step, cpu_minutes, wall_minutes, mean_sim(clips), mean_sim([c for c in clips if not c["english"]]),
                 mean_sim(en), corpus_wer([(c["text"], c["asr"]) for c in en]) if en else None,
                 float(np.mean([c["seconds"] for c in clips])), clips)


def _sections(args: argparse.Namespace, split: Split, bar: Bars, points: Sequence[Point]) -> list[str]:
    f = common.format_number
    rows = [[str(p.step), f(p.cpu_minutes, 1), f(p.wall_minutes, 1), f(p.similarity, 3), f(p.similarity_own_language, 3),
             f(p.similarity_english, 3), f(p.wer_english, 2), f(p.mean_seconds, 2)] for p in points]
    table = common.markdown_table(["steps", "CPU min", "wall min", "similarity", "own language", "English",
                                   "WER (English)", "mean s"], rows)
    first, best = points[0], max(points[1:], key=lambda p: p.similarity or -1, default=None)
    lines = [
        f"Model `{args.model}` fine-tuned on {split.train_minutes:.1f} minutes ({len(split.train)} clips) of "
        f"`{args.speaker}`; {len(split.test)} held-out sentences of that speaker and {args.english} everyday "
        f"English sentences spoken with a held-out {split.prompt['duration']:.1f} s prompt of the speaker; "
        f"{args.threads} threads. Similarity: resemblyzer cosine to the mean embedding of the held-out recordings.",
        table,
        "Bars: the same speaker (each held-out recording vs the others) "
        f"{f(bar.same_speaker, 3)}; through the model's codec {f(bar.through_codec, 3)}; different real speakers "
        f"{f(bar.different_speakers, 3)} ({', '.join(bar.other_speakers) or 'none'}).",
    ]
    if best is not None and first.similarity is not None and best.similarity is not None:
        raised = best.similarity > first.similarity
        wer_kept = (first.wer_english is None or best.wer_english is None or best.wer_english <= first.wer_english + 1e-9)
        lines.append(f"Target (similarity above zero-shot without a higher WER, in under an hour on "
                     f"{args.threads} threads): similarity {f(first.similarity, 3)} -> {f(best.similarity, 3)} at step {best.step}, "
                     f"WER {f(first.wer_english, 2)} -> {f(best.wer_english, 2)}, "
                     f"{f(best.wall_minutes, 1)} wall minutes: "
                     f"{'met' if raised and wer_kept and best.wall_minutes < 60 else 'not met'}"
                     f"{CHANCE_NOTE if (first.wer_english or 0) >= CHANCE_WER else ''}.")
    return lines


def _panels(bar: Bars, points: Sequence[Point]) -> list[common.Panel]:
    xs = [p.wall_minutes for p in points]
    sims = [common.Series("hylac-tts", xs, [p.similarity for p in points])]
    for label, value in (("same speaker", bar.same_speaker), ("through codec", bar.through_codec),
                         ("different speakers", bar.different_speakers)):
        if value is not None:
            sims.append(common.Series(label, [xs[0], xs[-1]], [value, value]))
    return [common.Panel("similarity to the new speaker", "fine-tuning wall minutes", "cosine", sims),
            common.Panel("intelligibility (English)", "fine-tuning wall minutes", "WER",
                         [common.Series("hylac-tts", xs, [p.wer_english for p in points])])]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.tts_finetune", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="hylac-tts-tiny", help="shipped name or model folder to fine-tune")
    ap.add_argument("--manifest", type=Path, default=common.REPO_ROOT / "data" / "corpus" / "manifest.jsonl")
    ap.add_argument("--speaker", default="asterisk-it_IT_m_Carlo", help="a speaker the model never trained on")
    ap.add_argument("--minutes", type=float, default=10.0, help="minutes of the speaker to fine-tune on")
    ap.add_argument("--test", type=int, default=8, help="held-out sentences of the speaker")
    ap.add_argument("--english", type=int, default=5, help="everyday English sentences for the WER")
    ap.add_argument("--steps", type=int, nargs="+", default=[100, 300, 600], help="fine-tuning steps to measure at")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--others", type=int, default=3, help="other real speakers for the different-speaker bar")
    ap.add_argument("--max-seconds", type=float, default=10.0, help="longest output")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", type=Path, default=None, help="folder of the runs (default: a temporary one)")
    args = common.parse_with_out(ap, argv)
    if sorted(set(args.steps)) != args.steps or args.steps[0] < 1:
        ap.error("--steps must be increasing positive counts")
    if not args.manifest.is_file():
        ap.error(f"manifest {str(args.manifest)!r} does not exist (`make corpus` builds the default one)")
    if args.minutes <= 0 or args.test < 2 or args.english < 0 or args.threads < 1:
        ap.error("--minutes must be > 0, --test >= 2, --english >= 0 and --threads >= 1")
    torch.set_num_threads(args.threads)
    report = common.Report("tts_finetune", "TTS fine-tuning on a new speaker")
    records = _records(args.manifest)
    try:
        split = split_speaker(records, args.speaker, args.minutes, args.test)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    base = tts.load(args.model)
    test = [_utterance(r) for r in split.test]
    prompt = _utterance(split.prompt)
    others_seen: dict[str, dict] = {}
    for r in records:
        if (r.get("source") == "asterisk" and r.get("speaker") != args.speaker and r["speaker"] not in others_seen
                and "-x" not in r["speaker"] and TEST_SECONDS[0] <= r["duration"] <= TEST_SECONDS[1]):
            others_seen[r["speaker"]] = r
    others = [_utterance(r) for r in list(others_seen.values())[:args.others]]
    english = everyday_sentences(count=args.english)
    reference = np.mean([embedding(u.audio, u.sample_rate) for u in test], axis=0)
    log(f"bars on {len(test)} held-out recordings ...")
    bar = bars(base, test, others)
    log("step 0 (the model as shipped) ...")
    points = [measure(base, prompt, test, english, reference, 0, 0.0, 0.0, args.max_seconds)]
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        data = work / "data.jsonl"
        data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in split.train), encoding="utf-8")
        out = work / "finetuned"
        cpu = wall = 0.0
        for i, steps in enumerate(args.steps):
            log(f"fine-tuning to {steps} steps ...")
            c0, w0 = time.process_time(), time.perf_counter()
            finetune(FinetuneConfig(
                data=data, out=out, model=args.model, lang=split.train[0].get("lang", "en"), steps=steps,
                batch_size=args.batch_size, lr=args.lr, threads=args.threads, device="cpu", progress=False,
                resume=i > 0, overwrite=i == 0, checkpoint_every=max(10, steps // 4)))
            cpu += (time.process_time() - c0) / 60
            wall += (time.perf_counter() - w0) / 60
            log(f"measuring step {steps} ...")
            points.append(measure(tts.load(out), prompt, test, english, reference, steps, cpu, wall, args.max_seconds))
    data = {"model": str(args.model), "speaker": args.speaker, "train_minutes": split.train_minutes,
            "train_clips": len(split.train), "test": [r["path"] for r in split.test], "prompt": split.prompt["path"],
            "threads": args.threads, "batch_size": args.batch_size, "lr": args.lr, "bars": asdict(bar),
            "points": [asdict(p) for p in points]}
    paths = report.write(args.out, data, _sections(args, split, bar, points), _panels(bar, points))
    print("\n".join(_sections(args, split, bar, points)))
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
