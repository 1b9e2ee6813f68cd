"""Every language spoken with the real-voice prompt: plausible length, and the phoneme error
rate of the output read by the codec's phoneme (CTC) head, next to the same head on the
ground-truth recordings of those sentences."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import tts
from benchmarks.systems.speakers import HylacTTS
from benchmarks.tts_bench.data import Sentence, language_sentences
from benchmarks.tts_bench.everyday import (
    DEFAULT_CFG,
    DEFAULT_STEPS,
    PromptInfo,
    log,
    sampling,
    speak_all,
)
from benchmarks.tts_bench.scoring import (
    PLAUSIBLE_RATIO,
    PhonemeReader,
    phoneme_score,
    score_row,
    total_per,
)
from codec import LANGUAGES


@dataclass
class LanguageRow:
    """One language: output durations against the expected, and phoneme error rates."""

    lang: str
    source: str  # "corpus <split>" (with ground-truth recordings) or "fixed" (none)
    sentences: int
    mean_seconds: float  # mean output duration
    expected_seconds: float | None  # mean ground-truth duration, or phonemes at a typical rate
    plausible: int  # outputs whose length / expected lies inside PLAUSIBLE_RATIO
    length_limit_hits: int
    similarity: float | None  # to the prompt
    per: float | None  # output, read by the codec's phoneme head
    ground_truth_per: float | None  # the recordings, read by the same head
    note: str = ""
    clips: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        return self.mean_seconds / self.expected_seconds if self.expected_seconds else None


def language_row(synth: tts.Synthesizer, lang: str, sentences: Sequence[Sentence], prompt: PromptInfo,
                 max_seconds: float, seed: int, reader: PhonemeReader, source: str) -> LanguageRow:
    speaker = HylacTTS(lang, synth, prompt.latents, sampling(DEFAULT_STEPS, DEFAULT_CFG, max_seconds))
    texts = [s.text for s in sentences]
    row = score_row(lang, texts, lang, speak_all(speaker, texts, lang, seed), [prompt.embedding] * len(texts),
                    reader)
    recorded = [s.recording for s in sentences if s.recording is not None]
    expected = [r.seconds for r in recorded] if len(recorded) == len(sentences) else None
    for i, clip in enumerate(row.clips):
        clip["expected_seconds"] = expected[i] if expected else row.expected_seconds
    gt_per = None
    if reader.reason is None and recorded:
        gt_per = total_per([phoneme_score(reader, r.audio, r.sample_rate, r.text, lang) for r in recorded])
    low, high = PLAUSIBLE_RATIO
    return LanguageRow(
        lang=lang, source=source, sentences=len(texts), mean_seconds=row.mean_seconds,
        expected_seconds=float(np.mean(expected)) if expected else row.expected_seconds,
        plausible=sum(low <= c["seconds"] / c["expected_seconds"] <= high for c in row.clips if c["expected_seconds"]),
        length_limit_hits=row.length_limit_hits, similarity=row.similarity, per=row.per, ground_truth_per=gt_per,
        note="" if recorded else "no recordings of these sentences: no ground-truth PER",
        clips=row.clips,
    )


def language_rows(synth: tts.Synthesizer, manifest: Path | None, split: str, count: int, prompt: PromptInfo,
                  max_seconds: float, seed: int, reader: PhonemeReader,
                  langs: Sequence[str] = LANGUAGES) -> list[LanguageRow]:
    rows = []
    for lang in langs:
        sentences = language_sentences(manifest, split, lang, count)
        source = f"corpus {split}" if sentences[0].recording is not None else "fixed"
        log(f"languages: {lang}, {len(sentences)} sentences ({source}) ...")
        rows.append(language_row(synth, lang, sentences, prompt, max_seconds, seed, reader, source))
    return rows
