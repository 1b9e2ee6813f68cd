"""A multilingual, multi-speaker speech corpus built offline: synthetic voices, recorded
human speech and a natural-sounding neural voice.

Recorded speech and the Piper voice: :mod:`codec.training.corpus.recorded` (Asterisk
prompts in five languages, festvox-ru's database, CC0 Piper English). Synthetic voices
come from three engines installed as Debian packages:
- MBROLA diphone voices (recorded human diphones) driven by espeak-ng (``espeak-ng -v mb-us1``);
- Festival voices (``text2wave``: diphone voices and the HTS voice ``cmu_us_slt_arctic_hts``);
- espeak-ng's own formant voices with variants (``en-us+m3``).

A *voice* is one of those; a *speaker* is a voice at one speaking rate and pitch, so one voice
yields `CorpusConfig.speakers_per_voice` speakers. Voices, not speakers, are assigned to the
train / valid / test splits, so no held-out voice is heard in training at any rate or pitch.

Sentences come from offline sources: the Debian ``fortunes`` packages (en de es it pt),
``faker`` lorem text (fr nl ar: real words of the language in random order) and
``wordfreq`` word lists composed into sentences (hi). Everything is seeded: the same
config gives the same sentences, speakers, files and manifest whatever the worker count.

Layout written under ``out``::

    audio/<lang>/<speaker>/<speaker>-<k>.flac   24 kHz mono 16-bit FLAC, about -20 dBFS RMS
    manifest.jsonl                              all splits, one JSON object per utterance
    train.jsonl  valid.jsonl  test.jsonl        the same records split by voice

Each record: ``{"path", "text", "phonemes", "lang", "speaker", "duration", "split", "source",
"license"}`` with ``path`` relative to the manifest's folder (``phonemes`` is null for a
language outside the nine of :data:`LANGUAGES`). Building is resumable: an utterance whose FLAC
exists is not synthesised again (files are written under a temporary name and renamed).
"""

from __future__ import annotations

import math
import os
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from codec.io.manifest import write_manifest
from codec.latents import SAMPLE_RATE
from codec.training.corpus.recorded import RecordedConfig, build_recorded
from codec.training.corpus.sentences import load_sentences
from codec.training.corpus.synthesis import finish_audio, require_program, synthesize_many
from codec.training.corpus.voices import RATES, SPLITS, VOICES, Speaker, Voice, make_speakers
from codec.training.phonemes import LANGUAGES, phonemize_many


@dataclass
class CorpusConfig:
    """What to build.

    Attributes:
        out: output folder.
        hours: target hours of *training* audio; valid and test add
            ``heldout_fraction`` of it each.
        seed: seeds sentence order and speaker rates/pitches.
        workers: synthesis processes (results do not depend on it).
        langs: languages to include.
        speakers_per_voice: distinct (rate, pitch) speakers made from each voice.
        heldout_fraction: size of valid and of test, relative to ``hours``.
        min_seconds, max_seconds: utterances outside this range are discarded.
        max_missing_diphones: an MBROLA utterance for which more diphones were missing
            (and replaced by silence) is discarded.
        voices: the voice table (default `VOICES`), filtered by ``langs``.
        sentences: sentence pools per language (default: `load_sentences`).
        recorded: the recorded and Piper sources (None: synthetic voices only).
    """

    out: Path
    hours: float = 10.0
    seed: int = 0
    workers: int = 2
    langs: tuple[str, ...] = LANGUAGES
    speakers_per_voice: int = 2
    heldout_fraction: float = 0.05
    min_seconds: float = 1.5
    max_seconds: float = 8.0
    max_missing_diphones: int = 2
    voices: tuple[Voice, ...] = VOICES
    sentences: dict[str, list[str]] | None = None
    recorded: RecordedConfig | None = None

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.langs = tuple(self.langs)
        for lang in self.langs:
            if lang not in LANGUAGES:
                raise ValueError(f"unsupported language {lang!r}: expected some of {LANGUAGES}")
        if self.hours <= 0:
            raise ValueError(f"hours must be positive, got {self.hours}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if not 1 <= self.speakers_per_voice <= len(RATES):
            raise ValueError(f"speakers_per_voice must be in 1..{len(RATES)}")
        if not 0 < self.min_seconds < self.max_seconds:
            raise ValueError("need 0 < min_seconds < max_seconds")


@dataclass
class CorpusSummary:
    """What `build_corpus` wrote."""

    manifest: Path
    utterances: dict[str, int]  # split -> count
    hours: dict[str, float]  # split -> hours of audio
    speakers: dict[str, int]  # split -> number of speakers
    synthesized: int  # utterances synthesised by this run (the rest existed already)
    discarded: int  # synthesis results outside the duration range or with missing diphones
    seconds: float  # wall time of the build
    per_lang_hours: dict[str, float] = field(default_factory=dict)


# ----------------------------------------------------------------------------- sentences


@dataclass
class _Task:
    speaker: Speaker
    out: Path
    sentences: list[str]
    target_seconds: float
    min_seconds: float
    max_seconds: float
    max_missing_diphones: int
    seed: int


def _provenance(voice: Voice) -> dict[str, str]:
    """Engine and licence of a synthetic voice's audio (for the manifest and the model card)."""
    if voice.voice.startswith("mb-"):
        return {"source": "mbrola", "license": f"MBROLA voice {voice.voice[3:]} (Debian non-free: "
                                              "non-commercial, non-military use)"}
    if voice.engine == "festival":
        return {"source": "festival", "license": f"Festival voice {voice.voice} (Debian main, free licence)"}
    return {"source": "espeak-ng", "license": "espeak-ng formant synthesis (GPL-3.0-or-later program)"}


def _speaker_dir(out: Path, spk: Speaker) -> Path:
    return out / "audio" / spk.voice.lang / spk.id


def _run_speaker(task: _Task) -> tuple[list[dict], int, int]:
    """Synthesise one speaker's utterances until its target duration is reached.

    Sentences are drawn in a fixed order seeded by (seed, speaker), so the result depends on
    nothing else. Returns (records without phonemes, synthesised count, discarded count).
    """
    spk = task.speaker
    folder = _speaker_dir(task.out, spk)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([task.seed, zlib.crc32(spk.id.encode())])
    pool = task.sentences
    order = rng.permutation(len(pool))
    records: list[dict] = []
    total = 0.0
    synthesized = discarded = 0
    # Each candidate is tried once; after three passes over the pool the voice is taken to
    # be unable to produce more usable audio for these sentences.
    limit = 3 * len(pool)
    k = 0
    while total < task.target_seconds and k < limit:
        # Synthesise about as many candidates as the remaining duration needs (~3 s each),
        # in one batch; unused ones are dropped, so the result does not depend on batching.
        n = min(16, max(1, math.ceil((task.target_seconds - total) / 3.0)), limit - k)
        chunk = [(j, f"{spk.id}-{j:05d}", pool[order[j % len(pool)]]) for j in range(k, k + n)]
        k += n
        todo = [(j, text) for j, uid, text in chunk if not (folder / f"{uid}.flac").exists()]
        made = dict(
            zip([j for j, _ in todo], synthesize_many(spk, [t for _, t in todo]), strict=True)
        )
        for j, uid, text in chunk:
            if total >= task.target_seconds:
                break
            path = folder / f"{uid}.flac"
            if j not in made:
                duration = sf.info(str(path)).frames / SAMPLE_RATE
            else:
                x, sr, missing = made[j]
                y = finish_audio(x, sr)
                duration = len(y) / SAMPLE_RATE
                synthesized += 1
                if (
                    missing > task.max_missing_diphones
                    or not task.min_seconds <= duration <= task.max_seconds
                ):
                    discarded += 1
                    continue
                tmp = path.with_name(path.name + ".tmp")
                sf.write(str(tmp), y, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
                os.replace(tmp, path)
            records.append(
                {
                    "path": path.relative_to(task.out).as_posix(),
                    "text": text,
                    "lang": spk.voice.lang,
                    "speaker": spk.id,
                    "duration": round(duration, 4),
                    "split": spk.voice.split,
                    **_provenance(spk.voice),
                }
            )
            total += duration
    return records, synthesized, discarded


def build_corpus(config: CorpusConfig) -> CorpusSummary:
    """Synthesise the corpus described by `config` and write its manifests.

    Per-speaker targets: the training hours are shared equally among the training speakers;
    valid and test each get ``heldout_fraction`` of them, shared among their speakers; every
    speaker gets at least one utterance.
    """
    t0 = time.time()
    require_program("espeak-ng", "espeak-ng")
    voices = [v for v in config.voices if v.lang in config.langs]
    if any(v.engine == "festival" for v in voices):
        require_program("festival", "festival")
    if not any(v.split == "train" for v in voices):
        raise ValueError("no training voice for the selected languages")
    speakers = make_speakers(voices, config.speakers_per_voice, config.seed)
    counts = {s: sum(1 for p in speakers if p.voice.split == s) for s in SPLITS}
    seconds = {
        "train": config.hours * 3600,
        "valid": config.hours * 3600 * config.heldout_fraction,
        "test": config.hours * 3600 * config.heldout_fraction,
    }
    pools = {}
    for lang in sorted({v.lang for v in voices}):
        given = (config.sentences or {}).get(lang)
        pools[lang] = list(given) if given else load_sentences(lang, config.seed)
    config.out.mkdir(parents=True, exist_ok=True)
    tasks = [
        _Task(
            speaker=s,
            out=config.out,
            sentences=pools[s.voice.lang],
            target_seconds=seconds[s.voice.split] / max(counts[s.voice.split], 1),
            min_seconds=config.min_seconds,
            max_seconds=config.max_seconds,
            max_missing_diphones=config.max_missing_diphones,
            seed=config.seed,
        )
        for s in speakers
    ]
    if config.workers == 1:
        results = [_run_speaker(t) for t in tasks]
    else:
        with ProcessPoolExecutor(config.workers) as pool:
            # map keeps task order, so the manifest does not depend on scheduling.
            results = list(pool.map(_run_speaker, tasks))
    records = [r for recs, _, _ in results for r in recs]
    if config.recorded is not None:
        records.extend(build_recorded(config.out, config.recorded))
    for lang in sorted({r["lang"] for r in records}):
        idx = [i for i, r in enumerate(records) if r["lang"] == lang]
        phonemes = (phonemize_many([records[i]["text"] for i in idx], lang) if lang in LANGUAGES
                    else [None] * len(idx))
        for i, ph in zip(idx, phonemes, strict=True):
            records[i]["phonemes"] = ph
    keys = ("path", "text", "phonemes", "lang", "speaker", "duration", "split", "source", "license")
    records = [{k: r[k] for k in keys} for r in records]
    manifest = config.out / "manifest.jsonl"
    write_manifest(manifest, records)
    for split in SPLITS:
        write_manifest(config.out / f"{split}.jsonl", [r for r in records if r["split"] == split])
    return CorpusSummary(
        manifest=manifest,
        utterances={s: sum(1 for r in records if r["split"] == s) for s in SPLITS},
        hours={s: sum(r["duration"] for r in records if r["split"] == s) / 3600 for s in SPLITS},
        speakers={s: len({r["speaker"] for r in records if r["split"] == s}) for s in SPLITS},
        synthesized=sum(n for _, n, _ in results),
        discarded=sum(d for _, _, d in results),
        seconds=time.time() - t0,
        per_lang_hours={
            lang: sum(r["duration"] for r in records if r["lang"] == lang) / 3600
            for lang in sorted({r["lang"] for r in records})
        },
    )
