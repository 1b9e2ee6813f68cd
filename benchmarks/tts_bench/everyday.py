"""Everyday English sentences spoken with a real, unseen voice: hylac-tts next to Piper and
espeak-ng, the sampler sweep, and the reference similarities of real speakers."""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

import tts
from benchmarks.systems.speakers import Espeak, HylacTTS, Piper, Speaker, Spoken
from benchmarks.tts_bench.data import Utterance
from benchmarks.tts_bench.scoring import (
    PhonemeReader,
    SystemRow,
    corpus_wer,
    cosine,
    embedding,
    score_row,
)
from codec import Latents
from codec import metrics as M

STEPS_SWEEP = (1, 2, 4, 8, 16)
CFG_SWEEP = (1.0, 1.2, 2.0)
DEFAULT_STEPS, DEFAULT_CFG = 8, 1.2


@dataclass
class ReferenceSimilarity:
    """Speaker similarity of real recordings: the two bars a cloned voice is read against."""

    same_speaker: float | None  # mean cosine over pairs of the prompt reader's recordings
    same_pairs: int
    different_speakers: float | None  # mean cosine, a reader's recording vs another real speaker's
    different_pairs: int
    other_voices: list[str]  # the other real speakers
    real_wer: float | None  # the recogniser on the reader's recordings (their transcripts)
    real_clips: int
    note: str = ""


@dataclass
class SweepPoint:
    """One sampler setting on the first sweep sentences."""

    steps: int
    cfg: float
    row: SystemRow


@dataclass
class PromptInfo:
    """The voice prompt: which file, how long, and what encoding it cost."""

    name: str
    seconds: float
    encode_ms: float
    latents: Latents
    embedding: np.ndarray = field(repr=False)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def reference_similarities(reader: Sequence[Utterance], others: Sequence[Utterance],
                           others_reason: str | None) -> ReferenceSimilarity:
    emb = [embedding(u.audio, u.sample_rate) for u in reader]
    same = [cosine(a, b) for a, b in itertools.combinations(emb, 2)]
    other_emb = [embedding(u.audio, u.sample_rate) for u in others]
    diff = [cosine(a, b) for a in emb for b in other_emb]
    transcripts = [(u.text, M.transcribe(u.audio, u.sample_rate)) for u in reader if u.text]
    notes = []
    if len(emb) < 2:
        notes.append("fewer than two recordings of the reader: no same-speaker pairs")
    if others_reason:
        notes.append(f"different speakers skipped: {others_reason}")
    return ReferenceSimilarity(
        same_speaker=float(np.mean(same)) if same else None, same_pairs=len(same),
        different_speakers=float(np.mean(diff)) if diff else None, different_pairs=len(diff),
        other_voices=sorted({u.speaker for u in others}), real_wer=corpus_wer(transcripts),
        real_clips=len(transcripts), note="; ".join(notes))


def encode_prompt(synth: tts.Synthesizer, prompt: Utterance) -> PromptInfo:
    t0 = time.perf_counter()
    latents = synth.voice_prompt(torch.from_numpy(prompt.audio), prompt.sample_rate)
    encode_ms = 1000 * (time.perf_counter() - t0)
    return PromptInfo(prompt.id, prompt.seconds, encode_ms, latents, embedding(prompt.audio, prompt.sample_rate))


def sampling(steps: int, cfg: float, max_seconds: float) -> tts.SamplingConfig:
    return tts.SamplingConfig(steps=steps, cfg=cfg, max_seconds=max_seconds)


def speak_all(speaker: Speaker, texts: Sequence[str], lang: str, seed: int) -> list[Spoken]:
    return [speaker.speak(text, lang, seed + i) for i, text in enumerate(texts)]


def run_speaker(speaker: Speaker, texts: Sequence[str], prompt: PromptInfo, seed: int,
                reader: PhonemeReader | None) -> SystemRow:
    """Speak and score every sentence with one system; an unavailable system is an empty row saying why."""
    reason = speaker.unavailable_reason()
    if reason is not None:
        return SystemRow(speaker.name, 0, None, None, 0.0, None, None, None, None, 0, note=f"not run: {reason}")
    log(f"everyday sentences: {speaker.name} on {len(texts)} sentences ...")
    spoken = speak_all(speaker, texts, "en", seed)
    note = "" if speaker.clones else "fixed voice (cannot clone): its similarity is the floor"
    return score_row(speaker.name, texts, "en", spoken, [prompt.embedding] * len(texts), reader, note)


def everyday_rows(synth: tts.Synthesizer, model_name: str, texts: Sequence[str], prompt: PromptInfo,
                  max_seconds: float, seed: int, reader: PhonemeReader | None,
                  references: bool = True) -> list[SystemRow]:
    """hylac-tts at the default setting, then (with ``references``) Piper and espeak-ng."""
    hylac = HylacTTS(f"{model_name} (steps {DEFAULT_STEPS}, CFG {DEFAULT_CFG})", synth, prompt.latents,
                     sampling(DEFAULT_STEPS, DEFAULT_CFG, max_seconds))
    # The first stream of a loaded model traces the codec's decoder step (about a second):
    # a warm-up sentence keeps that out of the timings.
    hylac.speak("Hello there.", "en", seed)
    speakers: list[Speaker] = [hylac] + ([Piper(), Espeak()] if references else [])
    return [run_speaker(s, texts, prompt, seed, reader) for s in speakers]


def sweep(synth: tts.Synthesizer, texts: Sequence[str], prompt: PromptInfo, max_seconds: float,
          seed: int) -> list[SweepPoint]:
    """Euler steps at the default CFG, then CFG alpha at the default steps."""
    grid = [(s, DEFAULT_CFG) for s in STEPS_SWEEP] + [(DEFAULT_STEPS, c) for c in CFG_SWEEP if c != DEFAULT_CFG]
    points = []
    for steps, cfg in grid:
        log(f"sweep: steps {steps}, CFG {cfg} on {len(texts)} sentences ...")
        speaker = HylacTTS(f"steps {steps}, CFG {cfg}", synth, prompt.latents, sampling(steps, cfg, max_seconds))
        points.append(SweepPoint(steps, cfg, score_row(speaker.name, texts, "en", speak_all(speaker, texts, "en", seed),
                                                       [prompt.embedding] * len(texts))))
    return points
