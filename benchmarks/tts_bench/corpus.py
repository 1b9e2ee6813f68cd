"""Ground truth and the codec ceiling, on held-out corpus recordings.

Held-out English sentences of the corpus are scored as recorded, as passed through the
model's codec (encode + decode: the best a TTS generating in that latent space can do), and
as spoken by the TTS with a prompt from another recording of the same held-out speaker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

import tts
from benchmarks.systems.speakers import HylacTTS, Spoken
from benchmarks.tts_bench.data import Pair
from benchmarks.tts_bench.everyday import DEFAULT_CFG, DEFAULT_STEPS, log, sampling
from benchmarks.tts_bench.scoring import SystemRow, corpus_wer, cosine, embedding, score_row
from codec import metrics as M


@dataclass
class GroundTruth:
    """The recogniser and speaker encoder on real corpus recordings and through the codec."""

    sentences: int
    wer: float | None  # recordings
    same_speaker_similarity: float  # prompt recording vs target recording (same speaker)
    different_speaker_similarity: float  # another speaker's recording vs target recording
    codec_round_trip_wer: float | None  # recordings encoded + decoded by the model's codec
    codec_round_trip_speaker_similarity: float  # through-codec recording vs its prompt
    codec_round_trip_similarity_to_original: float  # through-codec recording vs the recording itself
    transcripts: list[dict[str, Any]] = field(default_factory=list)


def ground_truth(pairs: Sequence[Pair], synth: tts.Synthesizer) -> GroundTruth:
    log(f"ground truth on {len(pairs)} corpus sentences ...")
    transcripts = [(p.target.text, M.transcribe(p.target.audio, p.target.sample_rate)) for p in pairs]
    prompts = [embedding(p.prompt.audio, p.prompt.sample_rate) for p in pairs]
    targets = [embedding(p.target.audio, p.target.sample_rate) for p in pairs]
    codec_transcripts, codec_prompt, codec_original = [], [], []
    with torch.inference_mode():
        for prompt, target, p in zip(prompts, targets, pairs, strict=True):
            latents = synth.codec.encode(torch.from_numpy(p.target.audio), p.target.sample_rate)
            audio = synth.codec.decode(latents)[0, 0].numpy()
            codec_transcripts.append((p.target.text, M.transcribe(audio, synth.sample_rate)))
            decoded = embedding(audio, synth.sample_rate)
            codec_prompt.append(cosine(prompt, decoded))
            codec_original.append(cosine(target, decoded))
    diff = [cosine(embedding(p.other_speaker.audio, p.other_speaker.sample_rate), t) for p, t in zip(
        pairs, targets, strict=True)]
    return GroundTruth(
        sentences=len(pairs), wer=corpus_wer(transcripts),
        same_speaker_similarity=float(np.mean([cosine(a, b) for a, b in zip(prompts, targets, strict=True)])),
        different_speaker_similarity=float(np.mean(diff)),
        codec_round_trip_wer=corpus_wer(codec_transcripts),
        codec_round_trip_speaker_similarity=float(np.mean(codec_prompt)),
        codec_round_trip_similarity_to_original=float(np.mean(codec_original)),
        transcripts=[{"text": r, "asr": h} for r, h in transcripts],
    )


def tts_on_pairs(synth: tts.Synthesizer, model_name: str, pairs: Sequence[Pair], max_seconds: float,
                 seed: int) -> SystemRow:
    """The TTS speaking each held-out sentence with its speaker's other recording as the prompt."""
    log(f"{model_name} on {len(pairs)} corpus sentences (corpus prompts) ...")
    config = sampling(DEFAULT_STEPS, DEFAULT_CFG, max_seconds)
    spoken: list[Spoken] = []
    for i, p in enumerate(pairs):
        prompt = synth.voice_prompt(torch.from_numpy(p.prompt.audio), p.prompt.sample_rate)
        spoken.append(HylacTTS(model_name, synth, prompt, config).speak(p.target.text, p.target.lang, seed + i))
    return score_row(f"{model_name} (corpus prompt)", [p.target.text for p in pairs], "en", spoken,
                     [embedding(p.prompt.audio, p.prompt.sample_rate) for p in pairs])
