"""Training the TTS model with the project's trainer (``hylac-tts train --config ...``).

Config sections: ``trainer`` (:class:`codec.TrainerConfig`), ``model``
(:class:`~tts.config.TTSConfig`) and ``data`` (:class:`~tts.data.DataConfig`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model
from torch import nn

from codec import FRAME_RATE, FRAME_SIZE, CodecStamp, HybridCodec, Latents
from codec import load as load_codec
from codec.training import StepRunner, TrainingTask, TrainResult, run_training

from .align import PhonemeAligner
from .config import SamplingConfig, TTSConfig
from .data import DataConfig, LatentPairDataset, TTSItem, collate
from .generate import generate_latents
from .model import TTSBatch, TTSLoss, TTSModel

SCHEMA: dict[str, type] = {"model": TTSConfig, "data": DataConfig}


def _scalars(out: TTSLoss) -> dict[str, float]:
    scalars = {"loss": float(out.loss.detach()), "semantic": float(out.semantic_loss), "flow": float(out.flow_loss),
               "semantic_acc": float(out.semantic_accuracy)}
    if out.align_loss is not None:
        scalars["align"] = float(out.align_loss)
    if out.advance_loss is not None:
        scalars["advance"] = float(out.advance_loss)
    return scalars


class TTSTask(TrainingTask):
    """The TTS model as a :class:`codec.TrainingTask`: one optimizer (``tts``), one loss.

    The codec is loaded to pin its weights hash into the model config (so latent files
    from another codec are refused), to start the semantic code table from its codebook,
    to align each target's frames to its phonemes on the codec's phoneme recogniser (models
    with an advance head, :mod:`tts.align`), and to decode the audio examples logged at
    validation.
    """

    def __init__(self, model_config: TTSConfig, data_config: DataConfig, codec: HybridCodec | None = None) -> None:
        self.codec = codec if codec is not None else load_codec(model_config.codec)
        self.codec_stamp = CodecStamp.of(self.codec)
        codec_hash = self.codec_stamp.latent_hash
        if model_config.codec_latent_hash and model_config.codec_latent_hash != codec_hash:
            raise ValueError(f"model.codec_latent_hash {model_config.codec_latent_hash[:12]}… does not match "
                             f"codec {model_config.codec!r} (latent hash {codec_hash[:12]}…)")
        model_config.codec_latent_hash = codec_hash
        self.model = TTSModel(model_config)
        with torch.no_grad():
            codes = torch.arange(self.codec.semantic_codebook_size)[None]
            self.model.init_semantic_from_codec(self.codec.semantic_embedding(codes)[0].cpu())
        self.data_config = data_config
        self.aligner = None
        if model_config.advance_classes:
            if self.codec.config.phoneme_upsample == 0:
                raise ValueError(f"model.advance_classes needs a codec with a phoneme recogniser; "
                                 f"{model_config.codec!r} has none")
            self.aligner = PhonemeAligner(self.codec, len(self.model.frontend.languages))

    def modules(self) -> dict[str, nn.Module]:
        return {"tts": self.model}

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"tts": list(self.model.parameters())}

    def _dataset(self, split: str) -> LatentPairDataset:
        return LatentPairDataset(self.data_config.manifest, split, self.model.frontend, self.data_config,
                                 self.model.config.max_positions, self.codec_stamp, self.aligner)

    def train_dataset(self) -> LatentPairDataset:
        return self._dataset(self.data_config.train_split)

    def valid_dataset(self) -> LatentPairDataset | None:
        return self._dataset(self.data_config.valid_split)

    def collate(self, items: list[TTSItem]) -> TTSBatch:
        return collate(items)

    def train_step(self, batch: TTSBatch, step: int, opt: StepRunner) -> dict[str, float]:
        out = opt.module("tts")(batch)
        opt.step("tts", out.loss)
        return _scalars(out)

    def validate(self, batches: Iterable[TTSBatch], step: int) -> dict[str, float]:
        totals: dict[str, float] = {}
        count = 0
        for batch in batches:
            for key, value in _scalars(self.model(batch)).items():
                totals[key] = totals.get(key, 0.0) + value
            count += 1
        return {k: v / max(count, 1) for k, v in totals.items()}

    def log_samples(self, writer: Any, batch: TTSBatch, step: int) -> None:
        """Speak the first validation text with its prompt; log generated and target audio."""
        p, n = int(batch.prompt_lengths[0]), int(batch.target_lengths[0])
        levels = self.model.config.acoustic_levels
        prompt = Latents.from_values(batch.prompt_semantic[:1, :p], batch.prompt_acoustic[:1, :p],
                                     p * FRAME_SIZE, levels)
        text = batch.text[0, : int(batch.text_lengths[0])].tolist()
        sampling = SamplingConfig(max_seconds=2.0 * n / FRAME_RATE + 1.0)
        generator = torch.Generator(device=self.model.device).manual_seed(step)
        generated = generate_latents(self.model, prompt, text, sampling, generator)
        target = Latents.from_values(batch.target_semantic[:1, :n], batch.target_acoustic[:1, :n],
                                     n * FRAME_SIZE, levels)
        device = next(self.codec.parameters()).device
        for tag, latents in (("generated", generated), ("target", target)):
            if latents.num_frames:
                audio = self.codec.decode(latents.to(device))[0, 0].float().cpu()
                writer.add_audio(f"samples/{tag}", audio, step, sample_rate=self.codec.sample_rate)


def train(config_path: str | Path | None, overrides: Sequence[str] = (), resume: bool = False) -> TrainResult:
    """Train from a YAML config with ``section.key=value`` overrides (the ``train`` command)."""
    return run_training(lambda c: TTSTask(c["model"], c["data"]), config_path, overrides, resume, SCHEMA)


def export_checkpoint(checkpoint: str | Path, out: str | Path, overwrite: bool = False) -> Path:
    """Turn a training checkpoint folder (``.../checkpoints/step_N``) into a model folder for ``tts.load``;
    a folder already holding a model is replaced only with ``overwrite`` (FileExistsError otherwise)."""
    import yaml

    checkpoint = Path(checkpoint)
    for f in ("config.yaml", "tts.safetensors"):
        if not (checkpoint / f).is_file():
            raise FileNotFoundError(f"{checkpoint}: not a TTS training checkpoint (missing {f})")
    run = yaml.safe_load((checkpoint / "config.yaml").read_text(encoding="utf-8"))
    if not isinstance(run, dict) or not isinstance(run.get("model"), dict):
        raise ValueError(f"{checkpoint / 'config.yaml'}: no 'model' section")
    model = TTSModel(TTSConfig.from_dict(run["model"]))
    load_model(model, str(checkpoint / "tts.safetensors"), strict=True)
    return model.save(out, overwrite=overwrite)
