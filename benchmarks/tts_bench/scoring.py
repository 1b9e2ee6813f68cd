"""Scores of the TTS benchmark: WER (pocketsphinx), speaker similarity (resemblyzer), the
phoneme error rate read by the codec's phoneme head, and a row of them per system."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from benchmarks.systems.speakers import Spoken
from codec import HybridCodec
from codec import metrics as M
from codec.training.phonemes import WORD_BOUNDARY_ID, ids_to_phonemes, phoneme_ids, phonemize

#: Shorter outputs are not scored (the recogniser and speaker encoder need some speech):
#: their words count as deleted.
MIN_SCORED_SECONDS = 0.5
#: Typical speaking rate in phoneme symbols (stress and length marks excluded) per second:
#: the LibriVox reader speaks 9-12, the corpus voices 10-21.
PHONEMES_PER_SECOND = 12.0
#: Output / expected duration inside these bounds reads as "plausible length".
PLAUSIBLE_RATIO = (0.5, 2.0)
_SUPRASEGMENTAL = {phoneme_ids(s)[0] for s in ("ˈ", "ˌ", "ː")}


def embedding(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    return M.speaker_embedding(audio, sample_rate)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


def corpus_wer(pairs: Sequence[tuple[str, str]]) -> float | None:
    """WER over sentences: per-sentence rates weighted by their reference word counts."""
    errors = words = 0.0
    for ref, hyp in pairs:
        n = len(M.normalize_text(ref).split())
        if n == 0:
            continue
        errors += M.word_error_rate(ref, hyp) * n
        words += n
    return errors / words if words else None


def edit_distance(a: Sequence[int], b: Sequence[int]) -> int:
    """Levenshtein distance between two id sequences (substitutions, insertions, deletions)."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def expected_seconds(text: str, lang: str) -> float:
    """A typical duration of ``text`` read aloud: its phonemes at :data:`PHONEMES_PER_SECOND`."""
    ids = [i for i in phoneme_ids(phonemize(text, lang)) if i != WORD_BOUNDARY_ID and i not in _SUPRASEGMENTAL]
    return len(ids) / PHONEMES_PER_SECOND


class PhonemeReader:
    """The codec's phoneme (CTC) head as a recogniser: audio -> phoneme ids, word boundaries dropped.

    ``reason`` says why it is missing (a codec exported without its phoneme teacher).
    """

    def __init__(self, model: HybridCodec) -> None:
        self.model = model
        self.reason = (None if model.phonemes is not None else
                       f"codec {model.name!r} has no phoneme head (exported without its phoneme teacher, "
                       "config.phoneme_upsample = 0)")

    def read(self, audio: np.ndarray, sample_rate: int) -> list[int]:
        with torch.inference_mode():
            latents = self.model.encode(torch.from_numpy(np.asarray(audio, dtype=np.float32)), sample_rate)
            ids = self.model.recognize_phonemes(latents)[0]
        return [i for i in ids if i != WORD_BOUNDARY_ID]

    @staticmethod
    def reference(text: str, lang: str) -> list[int]:
        return [i for i in phoneme_ids(phonemize(text, lang)) if i != WORD_BOUNDARY_ID]


@dataclass
class PhonemeScore:
    """Phoneme errors of one clip against its text (``per = errors / reference length``)."""

    errors: int
    length: int
    heard: str  # IPA the head read
    expected: str  # IPA of the text

    @property
    def per(self) -> float:
        return self.errors / max(self.length, 1)


def phoneme_score(reader: PhonemeReader, audio: np.ndarray, sample_rate: int, text: str, lang: str) -> PhonemeScore:
    ref = reader.reference(text, lang)
    hyp = reader.read(audio, sample_rate) if len(audio) else []
    return PhonemeScore(edit_distance(ref, hyp), len(ref), ids_to_phonemes(hyp), ids_to_phonemes(ref))


def total_per(scores: Sequence[PhonemeScore]) -> float | None:
    """Phoneme error rate over clips: total edits / total reference phonemes."""
    length = sum(s.length for s in scores)
    return sum(s.errors for s in scores) / length if length else None


@dataclass
class SystemRow:
    """Scores of one system over its sentences (``None``: not measured, with ``note`` saying why)."""

    name: str
    sentences: int
    wer: float | None  # total word errors / total reference words
    similarity: float | None  # mean cosine(prompt, output)
    mean_seconds: float  # mean output duration
    expected_seconds: float | None  # mean duration at a typical speaking rate
    ttfa_ms: float | None  # median time to the first 80 ms chunk (streaming systems)
    rtf: float | None  # median over sentences of compute time / seconds produced
    rtf_total: float | None  # total compute time / total seconds produced
    length_limit_hits: int  # outputs stopped by the length guard, not by end-of-audio
    per: float | None = None  # phoneme error rate read by the codec's phoneme head
    note: str = ""
    clips: list[dict[str, Any]] = field(default_factory=list)


def score_row(name: str, texts: Sequence[str], lang: str, spoken: Sequence[Spoken],
              prompts: Sequence[np.ndarray | None], reader: PhonemeReader | None = None,
              note: str = "") -> SystemRow:
    """Score outputs ``spoken[i]`` of ``texts[i]``; ``prompts[i]`` is the embedding to compare with."""
    clips = []
    for text, out, prompt in zip(texts, spoken, prompts, strict=True):
        clip: dict[str, Any] = {"text": text, "seconds": out.seconds, "compute_s": out.compute_s,
                                "first_audio_s": out.first_audio_s, "length_limit": out.length_limit, "asr": ""}
        if out.seconds >= MIN_SCORED_SECONDS:
            if lang == "en":
                clip["asr"] = M.transcribe(out.audio, out.sample_rate)
            if prompt is not None:
                clip["similarity"] = cosine(prompt, embedding(out.audio, out.sample_rate))
        if reader is not None and reader.reason is None:
            score = phoneme_score(reader, out.audio, out.sample_rate, text, lang)
            clip.update(phoneme_errors=score.errors, phonemes=score.length, heard=score.heard,
                        expected_phonemes=score.expected)
        clips.append(clip)
    sims = [c["similarity"] for c in clips if "similarity" in c]
    rates = [c["compute_s"] / c["seconds"] for c in clips if c["seconds"] > 0]
    firsts = [c["first_audio_s"] for c in clips if c["first_audio_s"] is not None]
    produced = sum(c["seconds"] for c in clips)
    per_scores = [PhonemeScore(c["phoneme_errors"], c["phonemes"], "", "") for c in clips if "phonemes" in c]
    return SystemRow(
        name=name, sentences=len(clips),
        wer=corpus_wer([(c["text"], c["asr"]) for c in clips]) if lang == "en" else None,
        similarity=float(np.mean(sims)) if sims else None,
        mean_seconds=produced / max(len(clips), 1),
        expected_seconds=float(np.mean([expected_seconds(t, lang) for t in texts])) if texts else None,
        ttfa_ms=1000 * statistics.median(firsts) if firsts else None,
        rtf=statistics.median(rates) if rates else None,
        rtf_total=sum(c["compute_s"] for c in clips) / produced if produced else None,
        length_limit_hits=sum(bool(c["length_limit"]) for c in clips),
        per=total_per(per_scores), note=note, clips=clips,
    )
