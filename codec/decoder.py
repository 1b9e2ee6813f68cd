"""The decoder: quantized frames at 12.5 Hz -> 24 kHz audio, through an output head.

Shapes: input ``[B, T, D]``; conv stages ``[B, C, T]``; head features ``[B, T100, dim]``
at 100 Hz; audio ``[B, 1, T * 1920]``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from codec.block_transform import BlockTransform
from codec.config import CodecConfig
from codec.heads import HeadOutput, build_head
from codec.nn.conv import CausalConv1d, Upsample1d
from codec.nn.transformer import Transformer


class Decoder(nn.Module):
    """``[B, T, semantic_dim + acoustic_dim]`` at 12.5 Hz -> ``[B, 1, T * 1920]`` audio.

    The mirror of the encoder: four stages of [causal upsampling, sliding-window
    transformer] to 100 Hz features, then the output head ``out`` (:mod:`codec.heads`).
    """

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        self.inp = nn.Linear(cfg.semantic_dim + cfg.acoustic_dim, cfg.dim)
        self.ups = nn.ModuleList()
        self.stages = nn.ModuleList()
        for layers, window, stride in zip(cfg.decoder_layers, cfg.decoder_windows, cfg.decoder_strides, strict=True):
            self.ups.append(Upsample1d(cfg.dim, cfg.dim, stride) if stride > 1 else CausalConv1d(cfg.dim, cfg.dim, 3))
            self.stages.append(Transformer(cfg.dim, cfg.num_heads, layers, window, cfg.mlp_ratio, cfg.layer_scale))
        self.norm = nn.LayerNorm(cfg.dim)
        self.out = build_head(cfg.head, cfg.dim, cfg.patch_size)
        self.semantic_dim = cfg.semantic_dim
        self.block: BlockTransform | None = None
        if cfg.block_transform:
            self.block = BlockTransform(cfg.analysis.bands, cfg.analysis.voicing_bands, cfg.block_parts, cfg.block_fine)
            self.out.take_base_controls()

    def features(self, z: Tensor) -> Tensor:
        """Decoder input ``[B, T, D_in]`` -> output-head features ``[B, T100, dim]`` (100 Hz)."""
        x = self.inp(z).transpose(1, 2)  # [B, D, T]
        for up, stage in zip(self.ups, self.stages, strict=True):
            x = up(x)
            x = stage(x.transpose(1, 2)).transpose(1, 2)
        return self.norm(x.transpose(1, 2))

    def head_input(self, z: Tensor) -> Tensor:
        """What the head reads for decoder input ``z``: the features, and with a block transform
        the controls it reconstructs from the acoustic latent beside them ``[B, T100, dim + C]``."""
        h = self.features(z)
        if self.block is None:
            return h
        base = self.out.base_controls(*self.block.reconstruct(z[..., self.semantic_dim:]))
        return torch.cat([h, base.to(h.dtype)], dim=-1)

    def forward(self, z: Tensor) -> Tensor:
        return self.out(self.head_input(z))

    def forward_train(self, z: Tensor, wav: Tensor) -> HeadOutput:
        """Training pass: the head's output with its controls and targets (``wav``: the input)."""
        return self.out.forward_train(self.head_input(z), wav)
