"""Multi-resolution STFT discriminator. Audio ``[B, 1, N]`` in, per-resolution logits and features out."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm


@dataclass
class DiscriminatorConfig:
    """STFT sizes (one sub-discriminator each) and the width of their conv stacks."""

    n_ffts: tuple[int, ...] = (2048, 1024, 512)
    channels: int = 32

    def __post_init__(self) -> None:
        self.n_ffts = tuple(int(n) for n in self.n_ffts)
        if not self.n_ffts or any(n < 16 for n in self.n_ffts):
            raise ValueError(f"discriminator n_ffts must be a non-empty list of sizes >= 16, got {self.n_ffts}")


class STFTDiscriminator(nn.Module):
    """2-D conv stack over the real/imaginary STFT of one resolution, ``[B, 2, frames, bins]``."""

    def __init__(self, n_fft: int, channels: int) -> None:
        super().__init__()
        self.n_fft = n_fft
        c = channels
        self.convs = nn.ModuleList([
            weight_norm(nn.Conv2d(2, c, (3, 9), padding=(1, 4))),
            weight_norm(nn.Conv2d(c, c, (3, 9), stride=(1, 2), padding=(1, 4))),
            weight_norm(nn.Conv2d(c, c, (3, 9), stride=(1, 2), padding=(1, 4))),
            weight_norm(nn.Conv2d(c, c, (3, 9), stride=(1, 2), padding=(1, 4))),
            weight_norm(nn.Conv2d(c, c, (3, 3), padding=(1, 1))),
        ])
        self.post = weight_norm(nn.Conv2d(c, 1, (3, 3), padding=(1, 1)))

    def forward(self, wav: Tensor) -> tuple[Tensor, list[Tensor]]:
        # The window is made per call, not kept as a buffer: DDP rewrites buffers in place at
        # every forward, which would invalidate graphs of earlier forwards in the same step.
        window = torch.hann_window(self.n_fft, device=wav.device)
        spec = torch.stft(wav[:, 0].float(), self.n_fft, self.n_fft // 4, window=window, return_complex=True)
        x = torch.view_as_real(spec).permute(0, 3, 2, 1)  # [B, 2, frames, bins]
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)
            features.append(x)
        return self.post(x), features


class MultiResolutionDiscriminator(nn.Module):
    """One :class:`STFTDiscriminator` per STFT size."""

    def __init__(self, cfg: DiscriminatorConfig) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(STFTDiscriminator(n, cfg.channels) for n in cfg.n_ffts)

    def forward(self, wav: Tensor) -> list[tuple[Tensor, list[Tensor]]]:
        return [d(wav) for d in self.discriminators]


def discriminator_hinge_loss(real: list[tuple[Tensor, list[Tensor]]], fake: list[tuple[Tensor, list[Tensor]]]) -> Tensor:
    """Hinge loss for the discriminator: push real logits above 1 and fake below -1."""
    return sum(F.relu(1 - r).mean() + F.relu(1 + f).mean() for (r, _), (f, _) in zip(real, fake, strict=True))


def generator_adversarial_loss(fake: list[tuple[Tensor, list[Tensor]]]) -> Tensor:
    """Hinge loss for the generator: raise the discriminator's logits on reconstructions."""
    return sum(-f.mean() for f, _ in fake)


def feature_matching_loss(real: list[tuple[Tensor, list[Tensor]]], fake: list[tuple[Tensor, list[Tensor]]]) -> Tensor:
    """L1 between the discriminator's features on real audio and on reconstructions, per layer."""
    total = 0.0
    for (_, rf), (_, ff) in zip(real, fake, strict=True):
        for r, f in zip(rf, ff, strict=True):
            total = total + F.l1_loss(f, r.detach())
    return total
