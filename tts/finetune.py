"""Fine-tuning a TTS model on a user's own recordings (``hylac-tts finetune``).

``finetune(FinetuneConfig(data=..., out=DIR))`` runs four steps, each resumable:

1. collect and check the data (:mod:`tts.finetune_data`): a folder of audio + ``.txt``
   transcripts or a JSON-lines manifest; every problem is reported before anything is written;
2. encode every clip with the model's codec into ``DIR/work/latents/`` (``.hylat`` files and
   a latent manifest; encodes still valid are kept);
3. train with the project's trainer from the model's weights (``trainer.init_from``), at a
   low learning rate after a short warm-up, checkpoints in ``DIR/work/run/``;
4. export the last checkpoint into ``DIR`` (``config.json``, ``model.safetensors``, a model
   card ``README.md``), so that ``tts.load(DIR)`` and ``--model DIR`` take it.

The ``latents`` step does what ``hylac-codec encode-manifest`` does, through the codec's public
API (``codec.read_audio``, ``HybridCodec.encode``, ``codec.save_latents``): that command's
function lives in ``codec.cli``, which ``tts`` does not import.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import yaml

from codec import LANGUAGES, OutputExistsError
from codec.training import TrainResult, run_training

from .config import DEFAULT_SEED, LIMITS, TTSConfig
from .data import DataConfig
from .finetune_data import (
    Clip,
    ClipBounds,
    DataError,
    assign_splits,
    check_clips,
    collect_folder,
    collect_manifest,
    encode_clips,
)
from .synthesizer import Synthesizer, available_models, load, model_folder
from .text import TextFrontend
from .train import SCHEMA, TTSTask, export_checkpoint

__all__ = ["DataError", "FinetuneConfig", "FinetuneModelError", "RunExistsError", "data_kind", "finetune"]

#: What a fine-tuning run writes into its folder; ``overwrite`` removes these and nothing else.
OWNED = ("work", "codec", "config.json", "model.safetensors", "README.md")
WORK = "work"
RECIPE = "finetune.yaml"
SUMMARY = "finetune.json"
#: Voice prompts cut from the other clips of a speaker (those the shipped model was trained with).
PROMPT_SECONDS = (1.5, 3.0)


class FinetuneModelError(Exception):
    """The model to start from, or its codec, cannot be loaded."""


class RunExistsError(OutputExistsError):
    """The output folder already holds files, and neither ``resume`` nor ``overwrite`` was asked for."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.args = (f"{path}: already exists and is not empty; pass --resume to continue the fine-tuning "
                     "run in it or --overwrite to start over",)


@dataclass
class FinetuneConfig:
    """What to fine-tune on and how (the ``hylac-tts finetune`` arguments).

    Attributes:
        data: a folder of audio files with same-named ``.txt`` transcripts, or a ``.jsonl``
            manifest (``path``, ``text``, optional ``lang`` and ``speaker``).
        out: the folder of the fine-tuned model; its run lives in ``out/work``.
        model: the model to start from (a shipped name or a model folder).
        lang: language of clips that name none (one of ``codec.LANGUAGES``).
        steps: total optimizer steps (a resumed run goes on to this count).
        batch_size, lr, warmup_steps: the optimizer's; ``warmup_steps`` None means a tenth of
            ``steps``, at most 20.
        valid_fraction: share of the clips held out for the validation loss (at least two
            clips of one speaker when non-zero; 0 trains on all of them).
        checkpoint_every, log_every: in steps.
        min_seconds, max_seconds: accepted clip durations.
        threads: CPU threads (0 = torch's default); device: ``auto`` picks CUDA when present.
        resume: continue the run in ``out``; overwrite: start over, replacing what an
            earlier run wrote there.
        progress: progress bars and step messages on stderr.
    """

    data: str | Path
    out: str | Path
    model: str | Path = "hylac-tts-tiny"
    lang: str = "en"
    steps: int = 300
    batch_size: int = 8
    lr: float = 1e-4
    warmup_steps: int | None = None
    valid_fraction: float = 0.1
    checkpoint_every: int = 50
    log_every: int = 25
    min_seconds: float = 1.0
    max_seconds: float = 20.0
    seed: int = DEFAULT_SEED
    threads: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    resume: bool = False
    overwrite: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        self.data, self.out = Path(self.data), Path(self.out)
        for name, limit in (("steps", "train_steps"), ("batch_size", "batch_size"), ("lr", "lr"),
                            ("valid_fraction", "valid_fraction"), ("seed", "seed"), ("threads", "threads")):
            problem = LIMITS.problem(limit, getattr(self, name))
            if problem is not None:
                raise ValueError(f"{name} {problem}")
        if self.lang not in LANGUAGES:
            raise ValueError(f"lang must be one of {' '.join(LANGUAGES)}, got {self.lang!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.warmup_steps is not None and self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.checkpoint_every < 1 or self.log_every < 1:
            raise ValueError("checkpoint_every and log_every must be >= 1")
        if not 0 < self.min_seconds < self.max_seconds:
            raise ValueError(f"need 0 < min_seconds < max_seconds, got {self.min_seconds} and {self.max_seconds}")
        if self.resume and self.overwrite:
            raise ValueError("resume and overwrite exclude each other (continue the run, or start it over)")

    @property
    def warmup(self) -> int:
        return self.warmup_steps if self.warmup_steps is not None else max(1, min(20, self.steps // 10))


def data_kind(path: Path) -> Literal["folder", "manifest"]:
    """``folder`` or ``manifest`` (a ``.jsonl`` file); a ``ValueError`` for anything else."""
    if path.is_dir():
        return "folder"
    if path.is_file() and path.suffix.lower() == ".jsonl":
        return "manifest"
    if path.is_file():
        raise ValueError(f"data {str(path)!r} is a file but not a .jsonl manifest")
    raise ValueError(f"data {str(path)!r} does not exist")


def _check_out(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse a folder in use before any work: not empty, and neither resumed nor overwritten."""
    if out.exists() and not out.is_dir():
        raise RunExistsError(out)
    if out.is_dir() and not resume and not overwrite and any(out.iterdir()):
        raise RunExistsError(out)


def _clear_out(out: Path) -> None:
    """Remove what an earlier run wrote (``overwrite``); other files in the folder are the user's."""
    for name in OWNED:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _load_base(cfg: FinetuneConfig) -> tuple[Synthesizer, Path]:
    try:
        folder = model_folder(cfg.model)
        # On the CPU: the codec encodes the clips there (faster than real time), and the trainer
        # moves the TTS model it builds to cfg.device itself.
        return load(folder), folder
    except Exception as err:  # whatever the cause, this model cannot be started from
        raise FinetuneModelError(f"cannot load TTS model {cfg.model!r}: {err}") from err


def _codec_ref(folder: Path, ref: str) -> tuple[str, Path | None]:
    """The codec reference of the fine-tuned model, and the folder to copy beside it (when the
    base model's codec is a folder next to it, so that the new folder stands alone)."""
    if (folder / ref).is_dir():
        return "codec", folder / ref
    if Path(ref).is_dir():  # a folder relative to the working directory: make it hold anywhere
        return str(Path(ref).resolve()), None
    return ref, None


def _collect(cfg: FinetuneConfig, model_config: TTSConfig) -> list[Clip]:
    bounds = ClipBounds(cfg.min_seconds, cfg.max_seconds, model_config.max_positions, PROMPT_SECONDS[1])
    if data_kind(cfg.data) == "folder":
        clips, problems = collect_folder(cfg.data, cfg.lang, skip=cfg.out)
    else:
        clips, problems = collect_manifest(cfg.data, cfg.lang)
    clips = check_clips(clips, problems, cfg.data, TextFrontend(model_config.text_frontend), bounds, cfg.progress)
    assign_splits(clips, cfg.valid_fraction, cfg.seed)
    return clips


def _write_recipe(cfg: FinetuneConfig, model_config: TTSConfig, base: Path, manifest: Path,
                  valid: int) -> Path:
    """The run as a ``hylac-tts train`` recipe (``out/work/finetune.yaml``), read back by the trainer."""
    work = cfg.out / WORK
    checks = cfg.checkpoint_every if valid else 0
    trainer = {
        "out_dir": str(work / "run"), "max_steps": cfg.steps, "batch_size": cfg.batch_size, "num_workers": 0,
        "seed": cfg.seed, "lr": cfg.lr, "betas": [0.9, 0.95], "warmup_steps": cfg.warmup, "lr_decay": "cosine",
        "lr_final_ratio": 0.1, "log_every": cfg.log_every, "checkpoint_every": cfg.checkpoint_every,
        "keep_checkpoints": 2, "valid_every": checks, "valid_batches": max(1, min(8, math.ceil(valid / cfg.batch_size))),
        "device": cfg.device, "init_from": {"tts": str(base.resolve())}, "tensorboard": False,
        "progress": cfg.progress,
    }
    data = DataConfig(manifest=str(manifest), min_prompt_seconds=PROMPT_SECONDS[0],
                      max_prompt_seconds=PROMPT_SECONDS[1], max_target_seconds=cfg.max_seconds)
    recipe = {"trainer": trainer, "model": model_config.to_dict(), "data": dataclasses.asdict(data)}
    path = work / RECIPE
    path.write_text(yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def _summary(cfg: FinetuneConfig, clips: list[Clip], result: TrainResult) -> dict:
    """What the model card reports; a run with nothing left to train keeps the last run's losses."""
    path = cfg.out / WORK / SUMMARY
    earlier = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    train, valid = result.train_metrics or earlier.get("train", {}), result.valid_metrics or earlier.get("valid", {})
    summary = {
        "base_model": str(cfg.model), "data": str(cfg.data), "steps": result.step, "batch_size": cfg.batch_size,
        "lr": cfg.lr, "warmup_steps": cfg.warmup, "clips": {s: sum(c.split == s for c in clips) for s in ("train", "valid")},
        "minutes": round(sum(c.seconds for c in clips) / 60, 2), "speakers": sorted({c.speaker for c in clips}),
        "languages": sorted({c.lang for c in clips}), "train": train, "valid": valid,
    }
    path.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return summary


def _losses(metrics: dict[str, float]) -> str:
    if not metrics:
        return "not measured"
    parts = ", ".join(f"{k} {metrics[k]:.3f}" for k in ("semantic", "flow") if k in metrics)
    return f"{metrics['loss']:.3f} ({parts})" if "loss" in metrics else parts


def _model_card(out: Path, s: dict) -> str:
    name = s["base_model"] if s["base_model"] in available_models() else Path(s["base_model"]).name
    speakers = s["speakers"]
    who = f"{len(speakers)} speaker{'s' if len(speakers) != 1 else ''}"
    return "\n".join([
        f"# {out.name}", "",
        f"`{name}` fine-tuned with `hylac-tts finetune` on {s['clips']['train'] + s['clips']['valid']} clips "
        f"({s['minutes']:g} minutes, {who}, {' '.join(s['languages'])}) from `{s['data']}`.", "",
        "| | |", "| :-- | :-- |",
        f"| Base model | `{s['base_model']}` |",
        f"| Data | {s['clips']['train']} training and {s['clips']['valid']} validation clips; speakers: "
        f"{', '.join(speakers[:10])}{' ...' if len(speakers) > 10 else ''} |",
        f"| Training | {s['steps']} steps at batch {s['batch_size']}, AdamW lr {s['lr']:g} (warm-up "
        f"{s['warmup_steps']}, cosine to 10 %), from the base model's weights |",
        f"| Final train loss | {_losses(s['train'])} (mean of the last logged steps) |",
        f"| Final validation loss | {_losses(s['valid']) if s['clips']['valid'] else 'none (no clips held out)'} |", "",
        "## Use", "",
        "```bash",
        f"hylac-tts generate --model {out} --text \"Hello there.\" --lang {s['languages'][0]} "
        "--voice reference.wav -o out.wav",
        "```", "",
        f"or `tts.load({str(out)!r})` in Python. The run (latents, checkpoints, `train.log`) is in "
        f"`{WORK}/`; `hylac-tts finetune --resume` with a larger `--steps` trains on.", "",
    ])


def _export(cfg: FinetuneConfig, checkpoint: Path, codec_source: Path | None, summary: dict) -> Path:
    """The last checkpoint as a model folder in ``out`` (the codec copied first when it travels with it)."""
    if codec_source is not None:
        shutil.copytree(codec_source, cfg.out / "codec", dirs_exist_ok=True)
    export_checkpoint(checkpoint, cfg.out, overwrite=True)
    (cfg.out / "README.md").write_text(_model_card(cfg.out, summary), encoding="utf-8")
    return cfg.out


def finetune(cfg: FinetuneConfig) -> Path:
    """Fine-tune ``cfg.model`` on ``cfg.data``; returns the model folder ``cfg.out``.

    Raises:
        ValueError: ``cfg.data`` is neither a folder nor a ``.jsonl`` manifest; or, as
            :class:`DataError`, the data has problems (each kind on one line).
        RunExistsError: ``cfg.out`` is in use and neither ``resume`` nor ``overwrite`` is set.
        FinetuneModelError: the model to start from cannot be loaded.
    """
    def say(line: str) -> None:
        if cfg.progress:
            print(f"finetune: {line}", file=sys.stderr)

    data_kind(cfg.data)
    _check_out(cfg.out, cfg.resume, cfg.overwrite)
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        synth, base = _load_base(cfg)
        if cfg.out.resolve() == base.resolve():
            raise ValueError(f"out {str(cfg.out)!r} is the folder of the model to start from; choose another")
        model_config = TTSConfig.from_dict(synth.model.config.to_dict())
        model_config.codec, codec_source = _codec_ref(base, model_config.codec)
        clips = _collect(cfg, model_config)
        if cfg.overwrite:
            _clear_out(cfg.out)
        valid = sum(c.split == "valid" for c in clips)
        say(f"{len(clips)} clips ({sum(c.seconds for c in clips) / 60:.1f} minutes, "
            f"{len({c.speaker for c in clips})} speaker(s)): {len(clips) - valid} to train on, {valid} to validate")
        manifest = encode_clips(clips, synth.codec, cfg.out / WORK / "latents", cfg.progress, say)
        recipe = _write_recipe(cfg, model_config, base, manifest, valid)
        say(f"training {cfg.model} for {cfg.steps} steps (recipe {recipe})")
        result = run_training(lambda c: TTSTask(c["model"], c["data"], codec=synth.codec), recipe, (), cfg.resume,
                              SCHEMA)
        if result.checkpoint is None:
            raise RuntimeError(f"training in {cfg.out / WORK / 'run'} left no checkpoint")
        return _export(cfg, result.checkpoint, codec_source, _summary(cfg, clips, result))
    finally:
        torch.set_num_threads(threads)
