"""The data of ``hylac-tts finetune``: a user's recordings with transcripts, checked, split and encoded.

Two layouts are read: a folder of audio files each with a same-named ``.txt`` transcript
(UTF-8; subfolders are speakers, files directly in the folder one speaker), or a JSON-lines
manifest (``path``, ``text``, optional ``lang`` and ``speaker``; paths relative to it).
Every clip is checked before anything is written, and all problems are reported together
(:class:`DataError`, one line per kind of problem naming its first few clips). The clips
are then encoded with the TTS model's codec into ``.hylat`` files and a latent manifest,
the input of :class:`~tts.data.LatentPairDataset`.
"""

from __future__ import annotations

import math
import os
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from codec import (
    AUDIO_EXTENSIONS,
    FRAME_RATE,
    LANGUAGES,
    LATENT_SUFFIX,
    SAMPLE_RATE,
    AudioInputError,
    HybridCodec,
    LatentFileError,
    load_latents,
    num_frames,
    read_audio,
    read_manifest,
    save_latents,
    write_manifest,
)
from codec.training import phonemize_many

from .text import TextFrontend

#: Progress bars show only for steps slower than this (seconds), as in ``hylac-tts generate``.
PROGRESS_DELAY_S = 2.0
#: Offenders named per kind of problem; the rest are counted.
NAMED = 5
#: Speaker of the clips directly in a data folder, or of manifest lines without one.
DEFAULT_SPEAKER = "speaker"
#: Held-out speakers keep at least this many clips for training and give at least this many to
#: validation: every utterance's voice prompt is another utterance of its speaker in its split.
MIN_PER_SPLIT = 2


class DataError(ValueError):
    """The fine-tuning data cannot be used: one line per kind of problem, nothing written."""


@dataclass
class Clip:
    """One utterance to fine-tune on.

    Attributes:
        audio: the recording.
        name: how messages name it (its path relative to the data folder or manifest).
        key: path of its ``.hylat`` under the latent folder (the audio path + ``.hylat``,
            so that two recordings never share one).
        seconds: its duration; frames: its latent frames.
        phonemes: its IPA, for a model with the phoneme front-end.
    """

    audio: Path
    name: str
    key: str
    text: str
    lang: str
    speaker: str
    seconds: float = 0.0
    frames: int = 0
    phonemes: str | None = None
    split: str = "train"


@dataclass(frozen=True)
class ClipBounds:
    """What a clip must satisfy: its length, and room in the backbone for prompt + text + frames."""

    min_seconds: float
    max_seconds: float
    max_positions: int
    max_prompt_seconds: float


class _Problems:
    """Problems grouped by kind, each kind reported once with its first offenders."""

    def __init__(self) -> None:
        self.kinds: dict[str, list[str]] = {}

    def add(self, kind: str, offender: str) -> None:
        self.kinds.setdefault(kind, []).append(offender)

    def raise_any(self, source: Path, total: int) -> None:
        if not self.kinds:
            return
        lines = [f"{source}: cannot fine-tune on this data (nothing was written):"]
        for kind, names in self.kinds.items():
            more = f", and {len(names) - NAMED} more" if len(names) > NAMED else ""
            lines.append(f"  {len(names)} of {total} clips {kind}: {', '.join(names[:NAMED])}{more}")
        raise DataError("\n".join(lines))


def _relative(path: Path, root: Path) -> Path:
    """``path`` under ``root``, else its absolute path without the anchor (no key escapes the latent folder)."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(root.resolve())
    except ValueError:
        return resolved.relative_to(resolved.anchor)


def _clip(audio: Path, root: Path, text: str, lang: str, speaker: str, name: str | None = None) -> Clip:
    rel = _relative(audio, root)
    return Clip(audio, name or rel.as_posix(), rel.with_name(rel.name + LATENT_SUFFIX).as_posix(), " ".join(text.split()),
                lang, speaker)


def _read_transcript(path: Path) -> tuple[str | None, str | None]:
    """``(text, problem)`` of a ``.txt`` transcript."""
    if not path.is_file():
        return None, "without a transcript (a .txt file of the same name)"
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        return None, "with a transcript that is not UTF-8 text"
    except OSError as err:
        return None, f"with an unreadable transcript ({err.strerror})"
    return (text, None) if text.strip() else (None, "with an empty transcript")


def collect_folder(root: Path, lang: str, skip: Path | None = None) -> tuple[list[Clip], _Problems]:
    """Audio files under ``root`` (hidden ones and anything under ``skip`` left out) with their transcripts."""
    problems = _Problems()
    clips = []
    skip = skip.resolve() if skip is not None else None
    for audio in sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()):
        rel = audio.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or (skip is not None and audio.resolve().is_relative_to(skip)):
            continue
        speaker = rel.parent.as_posix() if rel.parent != Path(".") else DEFAULT_SPEAKER
        text, problem = _read_transcript(audio.with_suffix(".txt"))
        if problem is not None:
            problems.add(problem, rel.as_posix())
            continue
        clips.append(_clip(audio, root, text, lang, speaker))
    if not clips and not problems.kinds:
        extensions = " ".join(sorted(AUDIO_EXTENSIONS))
        raise DataError(f"{root}: no audio files ({extensions}) with transcripts in this folder")
    return clips, problems


def collect_manifest(path: Path, lang: str) -> tuple[list[Clip], _Problems]:
    """The lines of a JSON-lines manifest: ``path`` and ``text``, optional ``lang`` and ``speaker``."""
    problems = _Problems()
    clips: list[Clip] = []
    seen: set[Path] = set()
    for record in read_manifest(path, strict=False):
        where = f"line {record.line}"
        if record.error is not None:
            problems.add("on unusable manifest lines (not a JSON object with a \"path\")", where)
            continue
        fields = record.fields
        audio = record.path()
        name = f"{where} ({fields['path']})"
        text, line_lang, speaker = fields.get("text"), fields.get("lang", lang), fields.get("speaker", DEFAULT_SPEAKER)
        if not isinstance(text, str) or not text.strip():
            problems.add("with no text (a non-empty \"text\" field)", name)
        elif line_lang not in LANGUAGES:
            problems.add(f"in a language other than {' '.join(LANGUAGES)}", f"{name}: {line_lang!r}")
        elif audio.resolve() in seen:
            problems.add("listed more than once", name)
        else:
            seen.add(audio.resolve())
            clips.append(_clip(audio, path.parent, text, line_lang, str(speaker), name))
    if not clips and not problems.kinds:
        raise DataError(f"{path}: the manifest lists no clips")
    return clips, problems


def _check_audio(clips: list[Clip], bounds: ClipBounds, problems: _Problems, show: bool) -> list[Clip]:
    """Read every clip once: unreadable audio and clips too short or too long are problems."""
    good = []
    for clip in tqdm(clips, desc="check audio", unit="clip", disable=not show, leave=False, file=sys.stderr,
                     delay=PROGRESS_DELAY_S):
        try:
            _, info = read_audio(clip.audio)
        except AudioInputError as err:
            problems.add("with unreadable audio", f"{clip.name} [{err.problem}]")
            continue
        clip.seconds = info.duration
        clip.frames = num_frames(round(info.duration * SAMPLE_RATE))
        if clip.seconds < bounds.min_seconds:
            problems.add(f"shorter than {bounds.min_seconds:g} s", f"{clip.name} ({clip.seconds:.2f} s)")
        elif clip.seconds > bounds.max_seconds:
            problems.add(f"longer than {bounds.max_seconds:g} s (split them)", f"{clip.name} ({clip.seconds:.1f} s)")
        else:
            good.append(clip)
    return good


def _check_text(clips: list[Clip], frontend: TextFrontend, bounds: ClipBounds, problems: _Problems) -> None:
    """Text to token ids (phonemized once, kept for the manifest); text that gives nothing to speak, or a
    clip whose prompt + text + frames overflow the backbone, is a problem."""
    ipa: dict[int, str] = {}
    if frontend.kind == "phonemes":
        for lang in sorted({c.lang for c in clips}):
            mine = [i for i, c in enumerate(clips) if c.lang == lang]
            ipa.update(zip(mine, phonemize_many([clips[i].text for i in mine], lang), strict=True))
    prompt_frames = round(bounds.max_prompt_seconds * FRAME_RATE)
    for i, clip in enumerate(clips):
        try:
            ids = frontend.encode_phonemes(ipa[i], clip.lang) if i in ipa else frontend.encode(clip.text, clip.lang)
        except ValueError:
            problems.add(f"whose text gives no {frontend.kind} to speak", clip.name)
            continue
        clip.phonemes = ipa.get(i)
        if clip.frames and prompt_frames + len(ids) + clip.frames + 3 > bounds.max_positions:
            problems.add(f"too long for the model ({bounds.max_positions} positions for prompt, text and speech)",
                         clip.name)


def check_clips(clips: list[Clip], problems: _Problems, source: Path, frontend: TextFrontend,
                bounds: ClipBounds, show: bool) -> list[Clip]:
    """Every check on every clip; a :class:`DataError` listing all problems, or the clips."""
    total = len(clips) + sum(len(v) for v in problems.kinds.values())
    good = _check_audio(clips, bounds, problems, show)
    _check_text(good, frontend, bounds, problems)
    problems.raise_any(source, total)
    return good


def assign_splits(clips: list[Clip], valid_fraction: float, seed: int) -> None:
    """Hold out about ``valid_fraction`` of the clips (at least :data:`MIN_PER_SPLIT`) for validation,
    from the largest speakers, each keeping :data:`MIN_PER_SPLIT` for training; the same data and
    seed always give the same split (a resumed run validates on the same clips)."""
    by_speaker: dict[str, list[Clip]] = {}
    for clip in sorted(clips, key=lambda c: c.key):
        clip.split = "train"
        by_speaker.setdefault(clip.speaker, []).append(clip)
    if max(len(v) for v in by_speaker.values()) < MIN_PER_SPLIT:
        raise DataError(f"every speaker has a single clip; fine-tuning needs at least {MIN_PER_SPLIT} of one "
                        "speaker (the voice prompt of each clip is another clip of its speaker)")
    if valid_fraction == 0:
        return
    want = max(MIN_PER_SPLIT, math.ceil(valid_fraction * len(clips)))
    rng = random.Random(seed)
    held = 0
    for _, group in sorted(by_speaker.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        take = min(len(group) - MIN_PER_SPLIT, max(MIN_PER_SPLIT, want - held))
        if take < MIN_PER_SPLIT:
            continue
        for clip in rng.sample(group, take):
            clip.split = "valid"
        held += take
        if held >= want:
            break
    if not held:
        raise DataError(f"holding out clips for validation needs a speaker with at least {2 * MIN_PER_SPLIT} "
                        "clips (each split pairs clips of one speaker); add clips, or pass --valid-fraction 0 "
                        "to train without validation")


def _reusable(path: Path, clip: Clip, codec: HybridCodec) -> int | None:
    """Frames of an earlier encode of ``clip`` when it is intact, by this codec's latent space and newer
    than its audio; else None."""
    try:
        if path.stat().st_mtime_ns < clip.audio.stat().st_mtime_ns:
            return None
        latents, _ = load_latents(path, codec)
    except (OSError, LatentFileError):
        return None
    return latents.num_frames


def encode_clips(clips: list[Clip], codec: HybridCodec, latent_dir: Path, show: bool,
                 say: Callable[[str], None]) -> Path:
    """Encode every clip into ``latent_dir`` (keeping earlier encodes that are still valid) and write
    ``latent_dir/manifest.jsonl``; returns the manifest."""
    kept = 0
    entries = []
    for clip in tqdm(clips, desc="encode", unit="clip", disable=not show, leave=False, file=sys.stderr,
                     delay=PROGRESS_DELAY_S):
        out = latent_dir / clip.key
        frames = _reusable(out, clip, codec)
        if frames is None:
            wav, info = read_audio(clip.audio)
            latents = codec.encode(torch.from_numpy(wav), SAMPLE_RATE)
            out.parent.mkdir(parents=True, exist_ok=True)
            save_latents(out, latents, codec, channels=info.channels, original_sample_rate=info.sample_rate,
                         overwrite=True)
            frames = latents.num_frames
        else:
            kept += 1
        entry = {"path": os.fspath(clip.audio.resolve()), "text": clip.text, "lang": clip.lang,
                 "speaker": clip.speaker, "split": clip.split, "duration": round(clip.seconds, 3),
                 "latents": clip.key, "num_frames": frames}
        if clip.phonemes is not None:
            entry["phonemes"] = clip.phonemes
        entries.append(entry)
    manifest = latent_dir / "manifest.jsonl"
    write_manifest(manifest, entries)
    say(f"encoded {len(clips) - kept} clips, kept {kept} encoded before: {manifest}")
    return manifest
