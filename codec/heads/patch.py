"""The patch head: a linear projection of each 100 Hz step to its 240 samples."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import Tensor, nn

from codec.heads.base import OutputHead


@dataclass
class PatchHeadConfig:
    """Settings of :class:`PatchHead` (none beyond its kind)."""

    kind: Literal["patch"] = "patch"


class PatchHead(OutputHead):
    """Each step's features -> ``hop`` samples. Stateless, causal. ``[B, T, D] -> [B, 1, T * hop]``."""

    def __init__(self, dim: int, hop: int, config: PatchHeadConfig | None = None) -> None:
        super().__init__()
        self.hop = hop
        self.proj = nn.Linear(dim, hop)

    def forward(self, x: Tensor) -> Tensor:
        patches = self.proj(x)  # [B, T, hop]
        return patches.reshape(patches.shape[0], 1, -1)
