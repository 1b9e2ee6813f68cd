"""The training curve: WER and similarity on the everyday sentences for each checkpoint of a run.

A checkpoint is a training checkpoint folder (``runs/NAME/checkpoints/step_N``: exported
on the fly with ``tts.train.export_checkpoint``) or an exported model folder. Its step
comes from a ``step_N`` folder name, else from the first "N steps" of its README.md; a
folder with neither is scored but left off the plot.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import tts
from benchmarks.systems.speakers import HylacTTS
from benchmarks.tts_bench.data import Utterance
from benchmarks.tts_bench.everyday import (
    DEFAULT_CFG,
    DEFAULT_STEPS,
    encode_prompt,
    log,
    sampling,
    speak_all,
)
from benchmarks.tts_bench.scoring import score_row
from codec import HybridCodec
from codec import load as load_codec
from tts.config import TTSConfig

_STEP_NAME = re.compile(r"step_0*(\d+)$")
# "7 000 steps", "7,000 steps", "7000 steps"
_README_STEPS = re.compile(r"(\d{1,3}(?:[ ,\u202f\u00a0]\d{3})+|\d+)\s+steps\b")


@dataclass
class CurvePoint:
    """Scores of one checkpoint (``None`` with ``note`` when it could not be scored)."""

    folder: str
    step: int | None
    sentences: int
    wer: float | None
    similarity: float | None
    mean_seconds: float | None
    length_limit_hits: int
    note: str = ""


def checkpoint_step(folder: Path) -> int | None:
    """The training step of a checkpoint or exported model folder, if it says."""
    m = _STEP_NAME.search(folder.name)
    if m:
        return int(m.group(1))
    readme = folder / "README.md"
    if readme.is_file():
        m = _README_STEPS.search(readme.read_text(encoding="utf-8"))
        if m:
            return int(re.sub(r"\D", "", m.group(1)))
    return None


def load_checkpoint(folder: Path, export_dir: Path, codec: HybridCodec | None) -> tts.Synthesizer:
    """A synthesizer for ``folder``; ``codec`` (the benchmarked model's) is reused when the
    checkpoint speaks its latent space, so every point decodes with the same decoder."""
    if (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
        model_dir = folder
    else:
        from tts.train import export_checkpoint

        model_dir = export_checkpoint(folder, export_dir)
    config = TTSConfig.from_json(model_dir / "config.json")
    if codec is not None and config.codec_latent_hash == codec.latent_hash:
        return tts.load(model_dir, codec=codec)
    # A relative codec folder is the run's: look next to the checkpoint and in its run folder.
    for base in (folder, folder.parent.parent):
        if (base / config.codec).is_dir():
            return tts.load(model_dir, codec=load_codec(base / config.codec))
    return tts.load(model_dir)


def curve_point(folder: Path, texts: Sequence[str], prompt: Utterance, max_seconds: float, seed: int,
                export_dir: Path, codec: HybridCodec | None) -> CurvePoint:
    step = checkpoint_step(folder)
    log(f"curve: {folder} (step {step}) on {len(texts)} sentences ...")
    try:
        synth = load_checkpoint(folder, export_dir, codec)
        info = encode_prompt(synth, prompt)
    except (OSError, ValueError) as exc:  # not a model, another latent space, ...: the row says why
        return CurvePoint(str(folder), step, 0, None, None, None, 0, f"cannot load: {exc}")
    speaker = HylacTTS(folder.name, synth, info.latents, sampling(DEFAULT_STEPS, DEFAULT_CFG, max_seconds))
    row = score_row(folder.name, texts, "en", speak_all(speaker, texts, "en", seed), [info.embedding] * len(texts))
    return CurvePoint(str(folder), step, row.sentences, row.wer, row.similarity, row.mean_seconds,
                      row.length_limit_hits, "" if step is not None else "no step: not plotted")


def curve(folders: Sequence[Path], texts: Sequence[str], prompt: Utterance, max_seconds: float, seed: int,
          export_root: Path, codec: HybridCodec | None) -> list[CurvePoint]:
    """One point per folder, in step order (folders without a step last)."""
    points = [curve_point(folder, texts, prompt, max_seconds, seed, export_root / f"{i:03d}-{folder.name}", codec)
              for i, folder in enumerate(folders)]
    return sorted(points, key=lambda p: (p.step is None, p.step or 0))
