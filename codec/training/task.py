"""Codec training: the task the generic trainer runs, and the ``train`` command's entry point.

Config sections (YAML): ``trainer`` (:class:`~codec.training.trainer_config.TrainerConfig`),
``model`` (:class:`~codec.config.CodecConfig`), ``loss``
(:class:`~codec.training.losses.LossConfig`), ``discriminator``
(:class:`~codec.training.discriminator.DiscriminatorConfig`), ``teacher``
(:class:`~codec.training.teachers.TeacherConfig`) and ``data`` (:class:`CodecDataConfig`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from codec.analysis import analyze
from codec.config import CodecConfig
from codec.io.audio import read_audio
from codec.latents import FRAME_SIZE, SAMPLE_RATE
from codec.model import HybridCodec
from codec.training.data import AudioBatch, AudioDataset, collate_audio, load_items
from codec.training.discriminator import DiscriminatorConfig, MultiResolutionDiscriminator
from codec.training.features import (
    FeatureBatch,
    FeatureDataset,
    FeatureItem,
    clean_analyses,
    collate_features,
)
from codec.training.losses import LossConfig, ReconstructionLoss, codec_train_step, control_losses
from codec.training.step import StepRunner, TrainingTask
from codec.training.teachers import TeacherConfig, build_teacher
from codec.training.trainer import TrainResult, run_training


@dataclass
class CodecDataConfig:
    """Where training audio comes from and how it is cut.

    ``train`` / ``valid``: manifests (``.jsonl``) or folders in any layout
    :func:`codec.training.data.load_items` reads; a manifest's ``split`` field is filtered with
    ``train_split`` / ``valid_split``. Whole utterances up to ``max_seconds`` are used
    (their transcripts feed the phoneme teacher) unless ``segment_seconds`` is set.

    ``analysis_cache``: train from these analysis caches (:mod:`codec.training.features`)
    instead of ``train``'s audio: the controls of an analysis-driven codec against their
    targets, no audio rendered (``loss.control`` and the quantizer and teacher terms only);
    validation still runs on ``valid``'s audio.
    """

    train: list[str] = field(default_factory=lambda: ["data/corpus/manifest.jsonl"])
    valid: list[str] = field(default_factory=lambda: ["data/corpus/manifest.jsonl"])
    train_split: str | None = "train"
    valid_split: str | None = "valid"
    max_seconds: float = 4.0
    segment_seconds: float | None = None
    loudness_db: float | None = -20.0
    analysis_cache: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.analysis_cache, str):
            self.analysis_cache = [self.analysis_cache]
        if isinstance(self.train, str):
            self.train = [self.train]
        if isinstance(self.valid, str):
            self.valid = [self.valid]
        if not self.train:
            raise ValueError("data.train needs at least one manifest or folder")
        if self.max_seconds <= 0 or (self.segment_seconds is not None and self.segment_seconds <= 0):
            raise ValueError("data.max_seconds and data.segment_seconds must be > 0")


def _dataset(sources: Sequence[str], split: str | None, cfg: CodecDataConfig) -> AudioDataset:
    items = []
    for source in sources:
        if not Path(source).exists():
            raise FileNotFoundError(f"training data {source!r} does not exist (build a corpus with `make corpus`)")
        items.extend(load_items(source, split=split))
    if not items:
        raise ValueError(f"no utterances in {list(sources)} (split {split!r})")
    return AudioDataset(items, SAMPLE_RATE, max_seconds=cfg.max_seconds, segment_seconds=cfg.segment_seconds,
                        loudness_db=cfg.loudness_db, phonemize_missing=True)


class CodecTask(TrainingTask):
    """Codec + discriminator + semantic teacher, trained with :func:`codec.training.losses.codec_train_step`."""

    def __init__(self, model: CodecConfig, loss: LossConfig, discriminator: DiscriminatorConfig,
                 teacher: TeacherConfig, data: CodecDataConfig, fit_transform: bool = True) -> None:
        self.codec = HybridCodec(model).train()
        if model.block_transform and fit_transform:
            self._fit_block_transform(data)
        self.loss_cfg = loss
        self.data_cfg = data
        self.discriminator = MultiResolutionDiscriminator(discriminator) if loss.adversarial > 0 else None
        self.teacher = build_teacher(teacher, model.semantic_dim)
        self.teacher_config = teacher
        self.recon = ReconstructionLoss(loss)

    def _fit_block_transform(self, data: CodecDataConfig, hours: float = 2.0) -> None:
        """Fit the encoder's and decoder's block transform on the training analysis cache, or
        else on the analysis of the first ``hours`` of the training audio (a run that starts
        from other weights, or resumes, loads its fitted transform with them)."""
        config = self.codec.config.analysis
        if data.analysis_cache:
            analyses = clean_analyses(data.analysis_cache, config)
        else:
            analyses, steps = [], 0
            for item in _dataset(data.train, data.train_split, data).items:
                if steps >= hours * 360000:
                    break
                wav, _ = read_audio(item.path)
                n = len(wav) // FRAME_SIZE * FRAME_SIZE
                if n:
                    analyses.append(analyze(torch.from_numpy(wav[:n])[None, None], config))
                    steps += n // self.codec.config.patch_size
        block = self.codec.encoder.block
        block.fit(analyses)
        self.codec.decoder.block.load_state_dict(block.state_dict())

    def modules(self) -> dict[str, nn.Module]:
        mods: dict[str, nn.Module] = {"codec": self.codec}
        if self.discriminator is not None:
            mods["discriminator"] = self.discriminator
        if self.teacher is not None:
            mods["teacher"] = self.teacher
        return mods

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        gen = list(self.codec.parameters()) + (list(self.teacher.parameters()) if self.teacher is not None else [])
        groups = {"gen": gen}
        if self.discriminator is not None:
            groups["disc"] = list(self.discriminator.parameters())
        return groups

    def train_dataset(self) -> AudioDataset | FeatureDataset:
        cfg = self.data_cfg
        if cfg.analysis_cache:
            return FeatureDataset(cfg.analysis_cache, self.codec.config.analysis,
                                  max_steps=int(cfg.max_seconds * 100) // 8 * 8)
        return _dataset(cfg.train, cfg.train_split, cfg)

    def valid_dataset(self) -> AudioDataset | None:
        if not self.data_cfg.valid:
            return None
        return _dataset(self.data_cfg.valid, self.data_cfg.valid_split, self.data_cfg)

    def module_configs(self) -> dict[str, dict[str, Any]]:
        # codec.load reads a checkpoint's codec.json + codec.safetensors like a model folder;
        # teacher.json lets export keep a phoneme teacher as the codec's phoneme recogniser.
        configs = {"codec": self.codec.config.to_dict()}
        if self.teacher is not None:
            configs["teacher"] = dataclasses.asdict(self.teacher_config)
        return configs

    def collate(self, items: list[Any]) -> AudioBatch | FeatureBatch:
        if items and isinstance(items[0], FeatureItem):
            return collate_features(items, self.codec.config.analysis)
        return collate_audio(items)

    def train_step(self, batch: AudioBatch, step: int, opt: StepRunner) -> dict[str, float]:
        disc = opt.module("discriminator") if self.discriminator is not None else None
        teacher = opt.module("teacher") if self.teacher is not None else None
        return codec_train_step(opt.module("codec"), disc, teacher, self.recon, self.loss_cfg, batch, step, opt)

    def validate(self, batches: Iterable[AudioBatch], step: int) -> dict[str, float]:
        """Mel distance, PESQ-WB, STOI (eval-mode, fully quantized) and semantic code usage."""
        from codec import metrics

        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        codes = []

        def add(key: str, value: float) -> None:
            sums[key] = sums.get(key, 0.0) + value
            counts[key] = counts.get(key, 0) + 1

        for batch in batches:
            out = self.codec(batch.wav)
            codes.append(out.quantized.semantic.codes.flatten().cpu())
            mel, _ = self.recon(out.audio, batch.wav, with_stft=False)
            add("mel", float(mel))
            if "envelope" in out.head.targets:
                steps = torch.arange(out.head.targets["voiced"].shape[1], device=batch.lengths.device)
                real = steps[None, :] < (batch.lengths // self.codec.config.patch_size)[:, None]  # not padding
                for name, value in control_losses(out.head.controls, out.head.targets, real).items():
                    add(name, float(value))
            for b in range(batch.wav.shape[0]):
                n = int(batch.lengths[b])
                ref = batch.wav[b, 0, :n].float().cpu().numpy()
                est = out.audio[b, 0, :n].float().cpu().numpy()
                try:
                    add("pesq_wb", metrics.pesq_wb(ref, est, SAMPLE_RATE))
                    add("stoi", metrics.stoi(ref, est, SAMPLE_RATE))
                except (ImportError, ValueError):  # metrics extra missing or a silent clip
                    pass
        result = {k: sums[k] / counts[k] for k in sums}
        if codes:
            all_codes = torch.cat(codes)
            probs = torch.bincount(all_codes, minlength=self.codec.semantic_codebook_size).float()
            probs = probs / probs.sum()
            result["perplexity"] = float(torch.exp(-(probs * probs.clamp(min=1e-10).log()).sum()))
            result["codes_used"] = float((probs > 0).sum())
        return result

    def log_samples(self, writer: Any, batch: AudioBatch, step: int) -> None:
        out = self.codec(batch.wav[:2])
        for b in range(min(2, batch.wav.shape[0])):
            n = int(batch.lengths[b])
            writer.add_audio(f"sample{b}/original", batch.wav[b, 0, :n].float().cpu(), step, SAMPLE_RATE)
            writer.add_audio(f"sample{b}/decoded", out.audio[b, 0, :n].float().clamp(-1, 1).cpu(), step, SAMPLE_RATE)


SCHEMA: dict[str, type] = {
    "model": CodecConfig,
    "loss": LossConfig,
    "discriminator": DiscriminatorConfig,
    "teacher": TeacherConfig,
    "data": CodecDataConfig,
}


def train(config_path: str | Path | None, overrides: Sequence[str] = (), resume: bool = False) -> TrainResult:
    """Train a codec from a YAML config (+ ``section.key=value`` overrides); see ``configs/*.yaml``."""
    return run_training(
        lambda c: CodecTask(c["model"], c["loss"], c["discriminator"], c["teacher"], c["data"],
                            fit_transform=not c["trainer"].init_from),
        config_path, overrides, resume, schema=SCHEMA,
    )
