"""The analysis cache: training an analysis-driven codec's controls without audio.

The codec's front-end (:mod:`codec.analysis`) is deterministic DSP, and the first training
stage of an analysis-driven codec compares the decoder's controls with the analysis of
its input (``loss.control``) without rendering any audio. So the analysis of a corpus is
computed once and stored; a training step then costs the network alone, several times
less than analysing and synthesising audio on the fly.

A cache folder holds::

    features.npy   float16 [steps, 2 * W]: per 10 ms step, the causal analysis (the encoder's
                   input) then the centred one (the controls' targets), each packed as
                   Analysis.packed() (W = bands + voicing_bands + 4)
    index.jsonl    one row per utterance variant: {path, variant, start, steps, phonemes, lang, speaker}
    cache.json     the analysis settings and augmentation it was made with, and its size

Each utterance is stored as recorded (``clean``) and, for shares of the utterances drawn
from its speaker and file name, played faster or slower (``speedX``: pitch and formants move together,
a cheap new speaker) and through an 8 kHz telephone band (``telephone``). Levels vary at
training time (:class:`FeatureDataset`'s ``gain_db``), which is exact in the log domain.

Build one with ``python -m codec.training.features MANIFEST [...] --out DIR``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from codec.analysis import Analysis, AnalysisConfig, analyze
from codec.io.audio import resample
from codec.latents import FRAME_SIZE, SAMPLE_RATE
from codec.training.data import Utterance, load_items
from codec.training.phonemes import phoneme_ids

CACHE_VERSION = 1
STEP = 240
STEPS_PER_FRAME = FRAME_SIZE // STEP


@dataclass(frozen=True)
class CacheConfig:
    """Augmented copies stored beside each utterance (shares of the utterances)."""

    speed_prob: float = 0.3
    speed_range: tuple[float, float] = (0.88, 1.14)
    telephone_prob: float = 0.2

    def __post_init__(self) -> None:
        if not (0 <= self.speed_prob <= 1 and 0 <= self.telephone_prob <= 1):
            raise ValueError("speed_prob and telephone_prob must be in [0, 1]")
        lo, hi = self.speed_range
        if not 0 < lo <= hi:
            raise ValueError(f"speed_range must be 0 < low <= high, got {self.speed_range}")


def _variants(key: str, wav: np.ndarray, cfg: CacheConfig) -> list[tuple[str, np.ndarray]]:
    """The clean signal and its augmented copies, chosen by a generator seeded with ``key``
    (speaker and file name: the same choice wherever the corpus lies)."""
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    out = [("clean", wav)]
    if rng.random() < cfg.speed_prob:
        factor = float(rng.uniform(*cfg.speed_range))
        out.append((f"speed{factor:.3f}", resample(wav, SAMPLE_RATE, int(SAMPLE_RATE / factor))))
    if rng.random() < cfg.telephone_prob:
        out.append(("telephone", resample(resample(wav, SAMPLE_RATE, 8000), 8000, SAMPLE_RATE)))
    return out


def _read(path: Path) -> np.ndarray:
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    mono = data.mean(axis=1)
    return mono if rate == SAMPLE_RATE else resample(mono, rate, SAMPLE_RATE)


def analyze_utterance(wav: np.ndarray, analysis: AnalysisConfig) -> np.ndarray | None:
    """``[N]`` 24 kHz -> ``[T, 2 * W]`` float16 cache rows (causal then centred), T whole
    frames of steps; None when shorter than one frame."""
    n = len(wav) // FRAME_SIZE * FRAME_SIZE
    if n == 0:
        return None
    x = torch.from_numpy(np.ascontiguousarray(wav[:n], dtype=np.float32))[None, None]
    rows = torch.cat([analyze(x, analysis).packed(), analyze(x, analysis, causal=False).packed()], dim=-1)
    return rows[0].half().numpy()


def build_feature_cache(items: Sequence[Utterance], out: str | Path, analysis: AnalysisConfig | None = None,
                        config: CacheConfig | None = None, log_every: int = 500) -> Path:
    """Analyse ``items`` (and their augmented copies) into the cache folder ``out``; returns it.
    ``analysis``: the model's analysis settings (default: the defaults); ``config``: the copies.

    The files are written under temporary names and renamed at the end, so an interrupted
    build leaves no cache that looks complete.
    """
    analysis, config = analysis or AnalysisConfig(), config or CacheConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows, index, total, t0 = [], [], 0, time.time()
    for i, item in enumerate(items):
        recorded = _read(item.path)
        if len(recorded) < FRAME_SIZE:  # not one frame: nothing to analyse
            continue
        for variant, wav in _variants(f"{item.speaker}/{Path(item.path).name}", recorded, config):
            packed = analyze_utterance(wav, analysis)
            if packed is None:
                continue
            rows.append(packed)
            index.append({"path": str(item.path), "variant": variant, "start": total, "steps": len(packed),
                          "phonemes": item.phonemes, "lang": item.lang, "speaker": item.speaker})
            total += len(packed)
        if log_every and (i + 1) % log_every == 0:
            print(f"analysed {i + 1}/{len(items)} utterances, {total / 360000:.2f} h of steps, "
                  f"{time.time() - t0:.0f} s", flush=True)
    if not rows:
        raise ValueError("no utterance of at least one 80 ms frame to analyse")
    width = rows[0].shape[1]
    np.save(out / "features.tmp.npy", np.concatenate(rows))
    (out / "index.tmp.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in index))
    meta = {"version": CACHE_VERSION, "analysis": dataclasses.asdict(analysis), "augment": dataclasses.asdict(config),
            "width": width // 2, "steps": total, "utterances": len(items), "variants": len(index)}
    (out / "features.tmp.npy").rename(out / "features.npy")
    (out / "index.tmp.jsonl").rename(out / "index.jsonl")
    (out / "cache.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out


@dataclass
class FeatureItem:
    """One cached utterance variant, possibly cropped: ``[T, W]`` inputs and targets."""

    inputs: torch.Tensor
    targets: torch.Tensor
    phoneme_ids: torch.Tensor  # [L] int64; empty for a crop
    speaker: str


@dataclass
class FeatureBatch:
    """A padded batch of :class:`FeatureItem`: causal analysis in, centred analysis as targets."""

    inputs: Analysis  # [B, T, ...]
    targets: Analysis
    mask: torch.Tensor  # [B, T] bool, True on real steps
    lengths: torch.Tensor  # [B] int64 valid samples (steps x 240), as AudioBatch.lengths
    phonemes: torch.Tensor  # [B, L] int64, padded with 0
    phoneme_lengths: torch.Tensor  # [B] int64; 0 = no transcript


class FeatureCacheError(ValueError):
    """A cache folder that is missing, incomplete, or made with other analysis settings."""


def _check_cache(folder: Path, analysis: AnalysisConfig) -> dict:
    meta_path = folder / "cache.json"
    if not meta_path.is_file():
        raise FeatureCacheError(f"{folder} is not an analysis cache (no cache.json); build it with "
                                f"`python -m codec.training.features MANIFEST --out {folder}`")
    meta = json.loads(meta_path.read_text())
    if meta.get("version") != CACHE_VERSION:
        raise FeatureCacheError(f"{folder}: cache version {meta.get('version')}, this code reads {CACHE_VERSION}")
    if meta.get("analysis") != dataclasses.asdict(analysis):
        raise FeatureCacheError(f"{folder} was made with other analysis settings ({meta.get('analysis')}) "
                                f"than the model's ({dataclasses.asdict(analysis)}); rebuild it")
    return meta


class FeatureDataset(torch.utils.data.Dataset):
    """Map-style dataset over one or more cache folders, indexed with ``(item_index, seed)``.

    An item is one utterance variant of at most ``max_steps`` steps (a random, frame-aligned
    crop of longer ones, which then has no transcript), at a random level change of
    ``gain_db`` (uniform, dB). Both are functions of the key alone.
    """

    def __init__(self, folders: Sequence[str | Path], analysis: AnalysisConfig, max_steps: int = 400,
                 gain_db: tuple[float, float] = (-10.0, 6.0)) -> None:
        if max_steps < STEPS_PER_FRAME or max_steps % STEPS_PER_FRAME:
            raise ValueError(f"max_steps must be a positive multiple of {STEPS_PER_FRAME}, got {max_steps}")
        self.folders = [Path(f) for f in folders]
        if not self.folders:
            raise ValueError("an analysis cache dataset needs at least one folder")
        self.width = 0
        self.index: list[tuple[int, dict]] = []
        for i, folder in enumerate(self.folders):
            self.width = int(_check_cache(folder, analysis)["width"])
            lines = (folder / "index.jsonl").read_text(encoding="utf-8").splitlines()
            self.index.extend((i, json.loads(line)) for line in lines if line)
        self.analysis, self.max_steps, self.gain_db = analysis, max_steps, gain_db
        self._rows: list[np.ndarray] | None = None  # mapped lazily: each data-loader worker maps its own

    def __len__(self) -> int:
        return len(self.index)

    def rows(self, folder: int) -> np.ndarray:
        if self._rows is None:
            self._rows = [np.load(f / "features.npy", mmap_mode="r") for f in self.folders]
        return self._rows[folder]

    def __getitem__(self, key: tuple[int, int]) -> FeatureItem:
        index, seed = int(key[0]), int(key[1])
        folder, entry = self.index[index]
        rng = np.random.default_rng([seed, index])
        steps = entry["steps"] // STEPS_PER_FRAME * STEPS_PER_FRAME
        start, keep_text = 0, True
        if steps > self.max_steps:
            start = int(rng.integers(0, (steps - self.max_steps) // STEPS_PER_FRAME + 1)) * STEPS_PER_FRAME
            steps, keep_text = self.max_steps, False
        first = entry["start"] + start
        rows = torch.from_numpy(np.asarray(self.rows(folder)[first:first + steps], dtype=np.float32))
        rows = _change_level(rows, float(rng.uniform(*self.gain_db)), self.width, self.analysis)
        ids = phoneme_ids(entry["phonemes"]) if keep_text and entry.get("phonemes") else []
        return FeatureItem(rows[:, :self.width], rows[:, self.width:], torch.tensor(ids, dtype=torch.int64),
                           entry.get("speaker") or "unknown")


def _change_level(rows: torch.Tensor, gain_db: float, width: int, cfg: AnalysisConfig) -> torch.Tensor:
    """Both packed analyses of ``rows [T, 2W]`` as of the signal scaled by ``gain_db``: the log
    envelope and the level shift (the envelope not below its floor); the rest is level-free."""
    floor = 0.5 * math.log(cfg.floor)
    for base in (0, width):
        env = slice(base, base + cfg.bands)
        rows[:, env] = (rows[:, env] + gain_db * math.log(10) / 20).clamp(min=floor)
        rows[:, base + cfg.bands + cfg.voicing_bands + 2] += gain_db  # energy (dB)
    return rows


def silence_rows(steps: int, cfg: AnalysisConfig) -> torch.Tensor:
    """``[steps, W]`` packed analysis of digital silence (padding)."""
    a = analyze(torch.zeros(1, 1, steps * STEP), cfg)
    return a.packed()[0]


def collate_features(items: Sequence[FeatureItem], cfg: AnalysisConfig) -> FeatureBatch:
    """Pad ``items`` with the analysis of silence into a :class:`FeatureBatch`."""
    if not items:
        raise ValueError("cannot collate an empty list of items")
    lengths = [len(it.inputs) for it in items]
    t = max(lengths)
    pad = silence_rows(t, cfg)
    inputs = pad.expand(len(items), -1, -1).clone()
    targets = inputs.clone()
    mask = torch.zeros(len(items), t, dtype=torch.bool)
    for b, it in enumerate(items):
        inputs[b, :lengths[b]], targets[b, :lengths[b]], mask[b, :lengths[b]] = it.inputs, it.targets, True
    plen = torch.tensor([it.phoneme_ids.numel() for it in items], dtype=torch.int64)
    phon = torch.zeros(len(items), max(1, int(plen.max())), dtype=torch.int64)
    for b, it in enumerate(items):
        phon[b, :it.phoneme_ids.numel()] = it.phoneme_ids
    return FeatureBatch(Analysis.unpack(inputs, cfg.bands, cfg.voicing_bands),
                        Analysis.unpack(targets, cfg.bands, cfg.voicing_bands), mask,
                        torch.tensor(lengths, dtype=torch.int64) * STEP, phon, plen)


def clean_analyses(folders: Sequence[str | Path], analysis: AnalysisConfig, max_hours: float = 4.0
                   ) -> list[Analysis]:
    """The causal analyses of the ``clean`` (not augmented) utterances of cache folders, up to
    ``max_hours`` of steps from each, whole frames each (batch 1): e.g. to fit a
    :class:`~codec.block_transform.BlockTransform`."""
    out = []
    for folder in map(Path, folders):
        width = int(_check_cache(folder, analysis)["width"])
        rows = np.load(folder / "features.npy", mmap_mode="r")
        total = 0
        for line in (folder / "index.jsonl").read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            steps = entry["steps"] // STEPS_PER_FRAME * STEPS_PER_FRAME
            if entry["variant"] != "clean" or not steps or total >= max_hours * 360000:
                continue
            block = torch.from_numpy(np.asarray(rows[entry["start"]:entry["start"] + steps, :width], dtype=np.float32))
            out.append(Analysis.unpack(block[None], analysis.bands, analysis.voicing_bands))
            total += steps
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m codec.training.features",
                                 description="Build the analysis cache of a corpus (see the module docstring).")
    ap.add_argument("sources", nargs="+", help="manifests (.jsonl) or corpus folders")
    ap.add_argument("--out", type=Path, required=True, help="cache folder")
    ap.add_argument("--split", default="train", help="manifest split to take ('all': every record)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    split = None if args.split == "all" else args.split
    items = [it for source in args.sources for it in load_items(source, split=split)]
    if not items:
        print(f"error: no utterances in {args.sources} (split {args.split!r})", file=sys.stderr)
        return 2
    folder = build_feature_cache(items, args.out)
    meta = json.loads((folder / "cache.json").read_text())
    print(f"{folder}: {meta['variants']} variants of {meta['utterances']} utterances, {meta['steps'] / 360000:.2f} h")
    return 0


if __name__ == "__main__":
    sys.exit(main())
