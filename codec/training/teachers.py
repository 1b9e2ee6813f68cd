"""Semantic teachers: what makes the semantic stream carry linguistic content.

A teacher is a training-only module. It reads the semantic vector the decoder sees
(``[B, T, semantic_dim]`` at 12.5 Hz) and returns a distillation loss. Its weights
(including any frozen speech model) are never part of the codec's saved weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codec.io.audio import resample
from codec.latents import FRAME_SIZE, SAMPLE_RATE


@dataclass
class TeacherConfig:
    """Which teacher distils into the semantic stream.

    kind: ``"ssl"`` (a frozen ``transformers`` speech model, cosine distance to one of
        its hidden layers), ``"phonemes"`` (CTC against espeak-ng phoneme sequences) or
        ``"none"``.
    model: hub id or local folder of the SSL model (``kind == "ssl"``).
    layer: hidden layer of the SSL model to distil (0 = embeddings output).
    ctc_upsample: phoneme slots predicted per 80 ms frame; a 12.5 Hz frame is too coarse
        for one CTC label per frame in fast speech.
    """

    kind: str = "phonemes"
    model: str | None = None
    layer: int = 6
    ctc_upsample: int = 4

    def __post_init__(self) -> None:
        if self.kind not in ("ssl", "phonemes", "none"):
            raise ValueError(f"teacher kind must be 'ssl', 'phonemes' or 'none', got {self.kind!r}")
        if self.kind == "ssl" and not self.model:
            raise ValueError("teacher kind 'ssl' needs teacher.model (a hub id or local folder)")
        if self.ctc_upsample < 1:
            raise ValueError("ctc_upsample must be >= 1")


class SSLTeacher(nn.Module):
    """Cosine distillation towards a frozen self-supervised speech model's hidden layer.

    The student side is a linear projection of the semantic vector to the teacher's
    width; the teacher's features (~50 Hz) are averaged to the codec's 12.5 Hz frames.
    """

    def __init__(self, model_name_or_path: str, layer: int, semantic_dim: int) -> None:
        super().__init__()
        from transformers import AutoConfig, AutoModel

        try:
            config = AutoConfig.from_pretrained(model_name_or_path)
            model = AutoModel.from_pretrained(model_name_or_path)
        except OSError as e:
            raise FileNotFoundError(
                f"cannot load the SSL teacher {model_name_or_path!r}: {e}. Without network access pass a local "
                f"folder holding the model (config.json + weights)."
            ) from None
        n_layers = getattr(config, "num_hidden_layers", None)
        if n_layers is not None and not 0 <= layer <= n_layers:
            raise ValueError(f"teacher layer {layer} out of range: {model_name_or_path} has {n_layers} layers")
        self.layer = layer
        # Kept out of the module tree so it is neither trained, wrapped by DDP nor checkpointed.
        self._teacher = [model.eval().requires_grad_(False)]
        self.teacher_rate = 16000
        self.proj = nn.Linear(semantic_dim, config.hidden_size)

    @property
    def teacher(self) -> nn.Module:
        return self._teacher[0]

    def _apply(self, fn, recurse: bool = True):  # keep the frozen teacher on the same device
        super()._apply(fn, recurse)
        self._teacher[0] = self._teacher[0]._apply(fn)
        return self

    @torch.no_grad()
    def targets(self, wav: Tensor, num_frames: int) -> Tensor:
        """``[B, 1, N]`` 24 kHz audio -> ``[B, num_frames, teacher_dim]`` features at 12.5 Hz."""
        x = torch.from_numpy(resample(wav[:, 0].float().cpu().numpy(), SAMPLE_RATE, self.teacher_rate)).to(wav.device)
        x = (x - x.mean(dim=-1, keepdim=True)) / (x.std(dim=-1, keepdim=True) + 1e-5)
        out = self.teacher(input_values=x, output_hidden_states=True)
        feats = out.hidden_states[self.layer]  # [B, T_teacher, C]
        return F.adaptive_avg_pool1d(feats.transpose(1, 2), num_frames).transpose(1, 2)

    def forward(self, semantic: Tensor, batch) -> Tensor:
        """Mean cosine distance between projected ``semantic [B, T, D]`` and the teacher's frames of ``batch.wav``."""
        target = self.targets(batch.wav, semantic.shape[1])
        pred = self.proj(semantic)
        return (1.0 - F.cosine_similarity(pred, target.to(pred.dtype), dim=-1)).mean()


class PhonemeCTCTeacher(nn.Module):
    """A CTC head on the semantic stream, trained against phoneme id sequences (blank = 0)."""

    def __init__(self, semantic_dim: int, num_phonemes: int, upsample: int) -> None:
        super().__init__()
        self.upsample = upsample
        self.num_phonemes = num_phonemes
        self.head = nn.Linear(semantic_dim, upsample * num_phonemes)

    def log_probs(self, semantic: Tensor) -> Tensor:
        """``[B, T, D]`` -> ``[B, T * upsample, num_phonemes]`` log-probabilities."""
        b, t, _ = semantic.shape
        return self.head(semantic).view(b, t * self.upsample, self.num_phonemes).log_softmax(-1)

    def forward(self, semantic: Tensor, batch) -> Tensor:
        """CTC loss of ``semantic [B, T, D]`` against ``batch.phonemes [B, L]``.

        Only items with a transcript (``batch.phoneme_lengths > 0``) count; 0 if none has one.
        """
        phonemes, phoneme_lengths = batch.phonemes, batch.phoneme_lengths
        frames = frame_lengths(batch.lengths).clamp(max=semantic.shape[1])
        keep = phoneme_lengths > 0
        if not bool(keep.any()):
            # Still run the head: under DDP every rank's backward must touch the same parameters.
            return self.head(semantic).sum() * 0.0
        lp = self.log_probs(semantic[keep]).float()
        return F.ctc_loss(lp.transpose(0, 1), phonemes[keep], frames[keep] * self.upsample,
                          phoneme_lengths[keep], blank=0, reduction="mean", zero_infinity=True)


def build_teacher(cfg: TeacherConfig, semantic_dim: int) -> nn.Module | None:
    """The teacher module for ``cfg`` (``None`` for ``kind == "none"``)."""
    if cfg.kind == "ssl":
        return SSLTeacher(cfg.model, cfg.layer, semantic_dim)
    if cfg.kind == "phonemes":
        from codec.training.phonemes import NUM_PHONEMES

        return PhonemeCTCTeacher(semantic_dim, NUM_PHONEMES, cfg.ctc_upsample)
    return None


def frame_lengths(sample_lengths: Tensor) -> Tensor:
    """Samples -> frames covering them (``ceil(n / 1920)``), elementwise."""
    return (sample_lengths + FRAME_SIZE - 1) // FRAME_SIZE
