"""Shared test helpers: stand-ins for the trainer's batch and optimizer (to call
codec_train_step directly) and the causality / streaming check of output heads."""

from __future__ import annotations

import torch

from codec.nn import set_streaming


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


def assert_causal_and_streams(head: torch.nn.Module, x: torch.Tensor, hop: int, atol: float) -> None:
    """A head's output over steps ``x [B, T, D]`` (T >= 23): changing steps from 10 on leaves
    the first 10 steps' samples alone, and chunked streaming calls give the offline output."""
    with torch.no_grad():
        full = head(x)
        changed = x.clone()
        changed[:, 10:] += 1.0
        torch.testing.assert_close(head(changed)[..., : 10 * hop], full[..., : 10 * hop])
        set_streaming(head, True)
        parts = [head(x[:, i:i + n]) for i, n in ((0, 1), (1, 5), (6, 2), (8, x.shape[1] - 8))]
        set_streaming(head, False)
    assert float(full.abs().max()) > 0.05
    torch.testing.assert_close(torch.cat(parts, dim=-1), full, atol=atol, rtol=1e-4)
