"""Training data: finding utterances in common corpus layouts, reading and batching audio.

Shapes: waveforms are ``[C, N]`` per item and ``[B, 1, N]`` per batch, at 24 kHz.

Randomness never comes from global RNG state: `AudioDataset` is indexed with
``(item_index, seed)`` and derives its random crop from that pair alone, so a training run
that records the seeds it drew resumes with exactly the same batches.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from codec.io.audio import resample
from codec.io.manifest import read_manifest
from codec.latents import FRAME_SIZE, SAMPLE_RATE
from codec.training.phonemes import LANGUAGES, phoneme_ids, phonemize

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
LAYOUTS = ("manifest", "libritts", "ljspeech", "vctk", "folder")


class AudioFileError(RuntimeError):
    """An audio file that cannot be read; the message names the file."""


@dataclass(frozen=True)
class Utterance:
    """One audio file and what is known about it.

    Attributes:
        path: absolute path of the audio file.
        text: transcript, or None.
        phonemes: IPA transcription (see `codec.training.phonemes`), or None.
        lang: language code, or None.
        speaker: speaker id, prefixed with the corpus name for public corpora (``"vctk/p225"``).
        duration: seconds, or None when not known without opening the file.
    """

    path: Path
    text: str | None = None
    phonemes: str | None = None
    lang: str | None = None
    speaker: str = "unknown"
    duration: float | None = None


# ----------------------------------------------------------------------------- layouts


def _split_of_libritts_subset(name: str) -> str | None:
    if name.startswith("train"):
        return "train"
    if name.startswith("dev"):
        return "valid"
    if name.startswith("test"):
        return "test"
    return None


def detect_layout(source: str | Path) -> str:
    """The layout of `source`: one of `LAYOUTS`.

    A ``.jsonl`` file, or a folder holding ``manifest.jsonl``, is a manifest; ``metadata.csv``
    + ``wavs/`` is LJSpeech; ``wav48_silence_trimmed/`` or ``wav48/`` + ``txt/`` is VCTK;
    ``*.normalized.txt`` next to the audio is LibriTTS(-R); any other folder is a folder of audio.
    """
    src = Path(source)
    if not src.exists():
        raise FileNotFoundError(f"data source {src} does not exist")
    if src.is_file():
        if src.suffix == ".jsonl":
            return "manifest"
        raise ValueError(f"data source {src} is a file but not a .jsonl manifest")
    if (src / "manifest.jsonl").is_file():
        return "manifest"
    if (src / "metadata.csv").is_file() and (src / "wavs").is_dir():
        return "ljspeech"
    if (src / "wav48_silence_trimmed").is_dir() or (
        (src / "wav48").is_dir() and (src / "txt").is_dir()
    ):
        return "vctk"
    for depth in range(1, 5):
        if next(src.glob("/".join(["*"] * depth) + ".normalized.txt"), None) is not None:
            return "libritts"
    return "folder"


def _load_manifest(path: Path, split: str | None) -> list[Utterance]:
    if path.is_dir():
        path = path / "manifest.jsonl"
    items = []
    for rec in read_manifest(path):
        if split is not None and rec.fields.get("split") != split:
            continue
        duration = rec.fields.get("duration")
        items.append(
            Utterance(
                path=rec.path().resolve(),
                text=rec.fields.get("text"),
                phonemes=rec.fields.get("phonemes"),
                lang=rec.fields.get("lang"),
                speaker=str(rec.fields.get("speaker", "unknown")),
                duration=float(duration) if duration is not None else None,
            )
        )
    return items


def _read_text(path: Path) -> str | None:
    if not path.is_file():
        return None
    text = re.sub(r"\s+", " ", path.read_text(encoding="utf-8", errors="replace")).strip()
    return text or None


def _load_libritts(root: Path, split: str | None) -> list[Utterance]:
    items = []
    for txt in sorted(root.rglob("*.normalized.txt")):
        wav = txt.with_name(txt.name[: -len(".normalized.txt")] + ".wav")
        if not wav.is_file():
            continue
        if split is not None:
            rel = wav.relative_to(root).parts
            # The subset folder (train-clean-100, dev-clean, ...) is the root or a parent.
            subsets = [_split_of_libritts_subset(p) for p in (root.name, *rel[:-1])]
            subsets = [s for s in subsets if s is not None]
            if not subsets:
                raise ValueError(
                    f"LibriTTS folder {root} has no train-*/dev-*/test-* subset folders: "
                    "pass split=None"
                )
            if subsets[-1] != split:
                continue
        items.append(
            Utterance(
                path=wav,
                text=_read_text(txt),
                lang="en",
                speaker="libritts/" + wav.name.split("_")[0],
            )
        )
    return items


def _load_ljspeech(root: Path) -> list[Utterance]:
    items = []
    with open(root / "metadata.csv", encoding="utf-8", newline="") as f:
        for n, row in enumerate(csv.reader(f, delimiter="|", quoting=csv.QUOTE_NONE), 1):
            if not row:
                continue
            if len(row) < 2:
                raise ValueError(
                    f"{root / 'metadata.csv'}:{n}: expected 'id|text[|normalized text]'"
                )
            # The third column, when present, has numbers and abbreviations spelled out.
            text = row[2] if len(row) > 2 and row[2].strip() else row[1]
            items.append(
                Utterance(
                    path=root / "wavs" / f"{row[0]}.wav",
                    text=text.strip(),
                    lang="en",
                    speaker="ljspeech",
                )
            )
    return items


def _load_vctk(root: Path) -> list[Utterance]:
    items = []
    if (root / "wav48_silence_trimmed").is_dir():
        # VCTK 0.92 has two microphones per utterance; mic1 is the one usually used.
        files = sorted((root / "wav48_silence_trimmed").glob("*/*_mic1.flac"))
        stem = lambda p: p.name[: -len("_mic1.flac")]  # noqa: E731
    else:
        files = sorted((root / "wav48").glob("*/*.wav"))
        stem = lambda p: p.stem  # noqa: E731
    for wav in files:
        spk = wav.parent.name
        items.append(
            Utterance(
                path=wav,
                text=_read_text(root / "txt" / spk / f"{stem(wav)}.txt"),
                lang="en",
                speaker="vctk/" + spk,
            )
        )
    return items


def _load_folder(root: Path) -> list[Utterance]:
    files = sorted(
        p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()
    )
    return [
        Utterance(path=p, speaker=p.parent.name if p.parent != root else "unknown") for p in files
    ]


def load_items(
    source: str | Path, split: str | None = None, layout: str | None = None
) -> list[Utterance]:
    """All utterances of a corpus, in a stable order.

    Args:
        source: a manifest ``.jsonl`` (paths relative to its folder), or a folder in one of
            the layouts of `detect_layout`.
        split: keep only ``"train"``, ``"valid"`` or ``"test"``: the manifest's ``split``
            field, or LibriTTS's subset folders (``dev-*`` is valid). Other layouts have no
            splits and need ``split=None``.
        layout: force a layout instead of detecting it.

    Raises:
        FileNotFoundError: `source` does not exist.
        ValueError: unknown layout, or a split asked of a layout that has none.
    """
    src = Path(source)
    layout = layout or detect_layout(src)
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}: expected one of {LAYOUTS}")
    if not src.exists():
        raise FileNotFoundError(f"data source {src} does not exist")
    if split is not None and split not in ("train", "valid", "test"):
        raise ValueError(f"split must be 'train', 'valid', 'test' or None, not {split!r}")
    if layout == "manifest":
        return _load_manifest(src, split)
    if layout == "libritts":
        return _load_libritts(src, split)
    if split is not None:
        raise ValueError(f"the {layout} layout of {src} has no splits: pass split=None")
    if layout == "ljspeech":
        return _load_ljspeech(src)
    if layout == "vctk":
        return _load_vctk(src)
    return _load_folder(src)


def probe_items(items: Sequence[Utterance]) -> tuple[list[Utterance], list[str]]:
    """Open every file's header: returns (readable items with durations filled in,
    one ``"path: reason"`` line per unreadable file)."""
    good, bad = [], []
    for it in items:
        try:
            info = sf.info(str(it.path))
            if info.frames <= 0:
                raise RuntimeError("no samples")
        except Exception as e:  # noqa: BLE001 - any failure makes the file unusable
            bad.append(f"{it.path}: {e}")
            continue
        good.append(
            it if it.duration is not None else replace(it, duration=info.frames / info.samplerate)
        )
    return good, bad


# ----------------------------------------------------------------------------- dataset


@dataclass
class AudioItem:
    """One example from `AudioDataset`."""

    wav: torch.Tensor  # [1, N] float32 at 24 kHz
    phoneme_ids: torch.Tensor  # [L] int64; empty when there is no transcript
    speaker: str
    lang: str | None
    path: str


def normalize_loudness(wav: torch.Tensor, target_db: float, peak: float = 0.99) -> torch.Tensor:
    """Scale `wav` ([C, N]) to RMS `target_db` dBFS, then down so that |wav| <= `peak`.
    Near-silent input (RMS below -100 dBFS) is returned unchanged rather than amplified."""
    rms = wav.pow(2).mean().sqrt()
    if rms < 1e-5:
        return wav
    wav = wav * (10 ** (target_db / 20) / rms)
    top = wav.abs().max()
    return wav * (peak / top) if top > peak else wav


class AudioDataset(torch.utils.data.Dataset):
    """Reads utterances as 24 kHz mono float32, with seeded random crops.

    Index with ``dataset[(item_index, seed)]``: the random crop is a function of that pair.

    Modes:
        whole utterance (``segment_seconds=None``): the file, randomly cropped to
            `max_seconds` if longer (the transcript no longer matches then, so the phoneme
            ids are empty);
        segment (``segment_seconds`` set): a random crop of exactly that length, zero-padded
            at the end if the file is shorter; never a transcript.

    Args:
        items: utterances, e.g. from `load_items`.
        sample_rate: output rate; files at other rates are resampled.
        max_seconds: longest whole utterance returned.
        segment_seconds: segment length, or None for whole utterances.
        loudness_db: RMS target in dBFS (peak capped at 0.99), or None to keep levels.
        phonemize_missing: phonemize ``text`` with espeak-ng for items that have text and a
            language but no phonemes.
    """

    def __init__(
        self,
        items: Sequence[Utterance],
        sample_rate: int = SAMPLE_RATE,
        max_seconds: float = 20.0,
        segment_seconds: float | None = None,
        loudness_db: float | None = -20.0,
        phonemize_missing: bool = False,
    ) -> None:
        if max_seconds <= 0:
            raise ValueError(f"max_seconds must be positive, got {max_seconds}")
        if segment_seconds is not None and segment_seconds <= 0:
            raise ValueError(f"segment_seconds must be positive or None, got {segment_seconds}")
        self.items = list(items)
        self.sample_rate = sample_rate
        self.max_seconds = max_seconds
        self.segment_seconds = segment_seconds
        self.loudness_db = loudness_db
        self.phonemize_missing = phonemize_missing

    def __len__(self) -> int:
        return len(self.items)

    def _read(
        self, path: Path, crop: int | None, rng: np.random.Generator
    ) -> tuple[torch.Tensor, bool]:
        """Read `path` as [1, N] at the output rate, randomly cropped to at most `crop`
        output samples; also says whether a crop was taken. Only the needed part of the
        file is decoded."""
        try:
            info = sf.info(str(path))
            sr, total = info.samplerate, info.frames
            start, frames, cropped = 0, total, False
            if crop is not None:
                want = math.ceil(crop * sr / self.sample_rate)
                if total > want:
                    start = int(rng.integers(0, total - want + 1))
                    frames, cropped = want, True
            data, sr = sf.read(
                str(path), start=start, frames=frames, dtype="float32", always_2d=True
            )
        except Exception as e:  # noqa: BLE001 - report which file, whatever went wrong
            raise AudioFileError(f"cannot read audio file {path}: {e}") from e
        if data.shape[0] == 0:
            raise AudioFileError(f"audio file {path} has no samples")
        wav = torch.from_numpy(data.T.mean(axis=0, keepdims=True).copy())  # [1, N]
        if sr != self.sample_rate:
            wav = torch.from_numpy(resample(wav.numpy(), sr, self.sample_rate))
        if crop is not None:
            wav = wav[:, :crop]
        return wav, cropped

    def __getitem__(self, key: tuple[int, int]) -> AudioItem:
        if not (isinstance(key, tuple) and len(key) == 2):
            raise TypeError(
                "index AudioDataset with (item_index, seed): the seed drives the random crop, "
                f"so that runs are reproducible; got {key!r}"
            )
        index, seed = int(key[0]), int(key[1])
        if not -len(self.items) <= index < len(self.items):
            raise IndexError(f"item {index} out of range for {len(self.items)} items")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        item = self.items[index]
        rng = np.random.default_rng([seed, index % len(self.items)])
        if self.segment_seconds is not None:
            seg = round(self.segment_seconds * self.sample_rate)
            wav, _ = self._read(item.path, seg, rng)
            if wav.shape[1] < seg:
                wav = torch.nn.functional.pad(wav, (0, seg - wav.shape[1]))
            keep_text = False
        else:
            wav, cropped = self._read(item.path, round(self.max_seconds * self.sample_rate), rng)
            keep_text = not cropped
        if self.loudness_db is not None:
            wav = normalize_loudness(wav, self.loudness_db)
        ids: list[int] = []
        if keep_text:
            if item.phonemes:
                ids = phoneme_ids(item.phonemes)
            elif self.phonemize_missing and item.text and item.lang in LANGUAGES:
                ids = phoneme_ids(phonemize(item.text, item.lang))
        return AudioItem(
            wav=wav.to(torch.float32).contiguous(),
            phoneme_ids=torch.tensor(ids, dtype=torch.int64),
            speaker=item.speaker,
            lang=item.lang,
            path=str(item.path),
        )


# ----------------------------------------------------------------------------- batching


@dataclass
class AudioBatch:
    """A padded batch of `AudioItem`s."""

    wav: torch.Tensor  # [B, 1, N] float32, zero-padded; N a multiple of FRAME_SIZE
    lengths: torch.Tensor  # [B] int64, valid samples per item
    phonemes: torch.Tensor  # [B, L] int64, padded with 0 (the CTC blank)
    phoneme_lengths: torch.Tensor  # [B] int64; 0 = no transcript
    speakers: list[str]
    langs: list[str | None]
    paths: list[str]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> AudioBatch:
        """The batch with its tensors on `device`."""
        return replace(
            self,
            wav=self.wav.to(device, non_blocking=non_blocking),
            lengths=self.lengths.to(device, non_blocking=non_blocking),
            phonemes=self.phonemes.to(device, non_blocking=non_blocking),
            phoneme_lengths=self.phoneme_lengths.to(device, non_blocking=non_blocking),
        )

    def pin_memory(self) -> AudioBatch:
        """Called by DataLoader(pin_memory=True)."""
        return replace(
            self,
            wav=self.wav.pin_memory(),
            lengths=self.lengths.pin_memory(),
            phonemes=self.phonemes.pin_memory(),
            phoneme_lengths=self.phoneme_lengths.pin_memory(),
        )


def collate_audio(items: Sequence[AudioItem], multiple: int = FRAME_SIZE) -> AudioBatch:
    """Pad `items` into an `AudioBatch`; the time axis is padded up to a multiple of
    `multiple` samples (the codec frame size)."""
    if not items:
        raise ValueError("cannot collate an empty list of items")
    for it in items:
        if it.wav.dim() != 2 or it.wav.shape[0] != 1:
            raise ValueError(f"expected a [1, N] waveform for {it.path}, got {tuple(it.wav.shape)}")
    lengths = torch.tensor([it.wav.shape[1] for it in items], dtype=torch.int64)
    n = max(multiple, math.ceil(int(lengths.max()) / multiple) * multiple)
    wav = torch.zeros(len(items), 1, n, dtype=torch.float32)
    for b, it in enumerate(items):
        wav[b, :, : it.wav.shape[1]] = it.wav
    plen = torch.tensor([it.phoneme_ids.numel() for it in items], dtype=torch.int64)
    phon = torch.zeros(len(items), int(plen.max()), dtype=torch.int64)
    for b, it in enumerate(items):
        phon[b, : it.phoneme_ids.numel()] = it.phoneme_ids
    return AudioBatch(
        wav=wav,
        lengths=lengths,
        phonemes=phon,
        phoneme_lengths=plen,
        speakers=[it.speaker for it in items],
        langs=[it.lang for it in items],
        paths=[it.path for it in items],
    )
