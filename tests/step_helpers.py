"""Stand-ins for the trainer's batch and optimizer, to call codec_train_step directly in tests."""

from __future__ import annotations

import torch


class WavBatch:
    """A batch holding only audio ``wav [B, 1, N]``."""

    def __init__(self, wav: torch.Tensor) -> None:
        self.wav = wav


class AdamStepper:
    """The ``step(name, loss)`` interface codec_train_step expects, over one Adam optimizer."""

    def __init__(self, params, lr: float = 3e-3) -> None:
        self.opt = torch.optim.Adam(params, lr=lr)

    def step(self, name: str, loss: torch.Tensor) -> None:
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
