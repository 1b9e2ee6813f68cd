"""How to train, whatever is trained: the ``trainer:`` section of a recipe (:class:`TrainerConfig`)
and the learning-rate schedule it describes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal


@dataclass
class TrainerConfig:
    """Everything about how to train, nothing about what (the ``trainer:`` config section).

    ``lr`` and ``grad_clip`` take one number for every optimizer or a mapping
    ``{optimizer_name: value}``. ``grad_clip <= 0`` disables clipping (the norm is still
    logged). ``batch_size`` is per rank: the global batch is ``batch_size * world_size``.
    ``mixed_precision`` only applies on CUDA. ``keep_checkpoints: 0`` keeps all, and
    ``valid_every: 0`` disables validation.
    """

    out_dir: str = "runs/default"
    max_steps: int = 10_000
    batch_size: int = 16
    num_workers: int = 2
    seed: int = 0
    lr: float | dict[str, float] = 3e-4
    betas: tuple[float, float] = (0.8, 0.99)
    weight_decay: float = 0.01
    warmup_steps: int = 500
    lr_decay: Literal["cosine", "exponential", "constant"] = "cosine"
    lr_final_ratio: float = 0.1
    grad_clip: float | dict[str, float] = 1.0
    log_every: int = 50
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    valid_every: int = 1000
    valid_batches: int = 8
    mixed_precision: Literal["no", "bf16", "fp16"] = "bf16"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    max_bad_steps: int = 10
    # Needed when some trainable parameters get no gradient in some steps (e.g. a branch
    # applied to only part of the batches); costs an extra graph traversal per step.
    ddp_find_unused_parameters: bool = False
    # Weights to start from when not resuming: {module name: a .safetensors file, a
    # training checkpoint folder (its <module name>.safetensors), or an exported model
    # folder holding model.safetensors (e.g. a shipped model to fine-tune)}.
    init_from: dict[str, str] = field(default_factory=dict)
    # Parts init_from leaves at their fresh initialisation, as dotted paths like freeze's
    # ("codec.decoder.out"): their weights are neither read nor required, so a model with a
    # new part (e.g. another decoder head) can start from one without it. Every other weight
    # must still match exactly.
    init_skip: list[str] = field(default_factory=list)
    # Parts kept fixed: a task module name ("teacher") or a dotted submodule path inside one
    # ("codec.encoder"). Their parameters get no optimizer and they stay in eval mode, so
    # e.g. a decoder fine-tune leaves the encoder's latent space, and latents already
    # encoded with it, valid.
    freeze: list[str] = field(default_factory=list)
    tensorboard: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        positive = ("max_steps", "batch_size", "log_every", "checkpoint_every", "max_bad_steps")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("num_workers", "warmup_steps", "keep_checkpoints", "valid_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.valid_every and self.valid_batches < 1:
            raise ValueError(f"valid_batches must be >= 1, got {self.valid_batches}")
        if not 0.0 < self.lr_final_ratio <= 1.0:
            raise ValueError(f"lr_final_ratio must be in (0, 1], got {self.lr_final_ratio}")
        self.betas = (float(self.betas[0]), float(self.betas[1]))


def lr_factor(step: int, config: TrainerConfig) -> float:
    """Multiplier of the base learning rate at ``step`` (0-based): linear warm-up from
    ``1 / warmup_steps`` to 1, then decay to ``lr_final_ratio`` at ``max_steps``."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    span = max(1, config.max_steps - config.warmup_steps)
    t = min(1.0, (step - config.warmup_steps) / span)
    r = config.lr_final_ratio
    if config.lr_decay == "cosine":
        return r + (1.0 - r) * 0.5 * (1.0 + math.cos(math.pi * t))
    if config.lr_decay == "exponential":
        return r**t
    return 1.0


def per_optimizer(
    value: float | dict[str, float], names: Sequence[str], key: str
) -> dict[str, float]:
    if not isinstance(value, dict):
        return {n: float(value) for n in names}
    missing = [n for n in names if n not in value]
    extra = [n for n in value if n not in names]
    if missing or extra:
        raise ValueError(
            f"trainer.{key} must give a value for each optimizer ({', '.join(names)}) or one "
            f"number; missing: {missing}, unknown: {extra}"
        )
    return {n: float(value[n]) for n in names}
