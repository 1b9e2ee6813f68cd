"""The encoder: 24 kHz audio -> encoder frames at 12.5 Hz (before quantization).

Shapes: audio ``[B, 1, N]`` (N a multiple of 1920); conv stages ``[B, C, T]``;
transformer stages and the output ``[B, T, D]``.
"""

from __future__ import annotations

from torch import Tensor, nn

from codec.config import CodecConfig
from codec.nn.conv import CausalConv1d
from codec.nn.transformer import Transformer


class Encoder(nn.Module):
    """``[B, 1, N]`` audio (N a multiple of 1920) -> ``[B, T, semantic_dim + acoustic_dim]`` at 12.5 Hz.

    :meth:`input_stage` turns the waveform into ``dim``-wide features at 100 Hz (one step
    per 240-sample patch); four stages of [sliding-window transformer, strided causal conv]
    bring them to the frame rate, and a projection to the latent width follows.
    """

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        self.patch = cfg.patch_size
        self.inp = CausalConv1d(cfg.patch_size, cfg.dim, kernel_size=3)
        self.stages = nn.ModuleList()
        self.downs = nn.ModuleList()
        for layers, window, stride in zip(cfg.encoder_layers, cfg.encoder_windows, cfg.encoder_strides, strict=True):
            self.stages.append(Transformer(cfg.dim, cfg.num_heads, layers, window, cfg.mlp_ratio, cfg.layer_scale))
            kernel = 2 * stride if stride > 1 else 3
            self.downs.append(CausalConv1d(cfg.dim, cfg.dim, kernel, stride))
        self.norm = nn.LayerNorm(cfg.dim)
        self.out = nn.Linear(cfg.dim, cfg.semantic_dim + cfg.acoustic_dim)

    def input_stage(self, wav: Tensor) -> Tensor:
        """Audio ``[B, 1, N]`` -> ``[B, dim, N / 240]``: each 240-sample patch through a causal conv.

        What the encoder reads enters here; features of another front-end at the same
        100 Hz rate would join the patches at this point.
        """
        b, _, n = wav.shape
        patches = wav.reshape(b, n // self.patch, self.patch).transpose(1, 2)  # [B, 240, T100]
        return self.inp(patches)

    def forward(self, wav: Tensor) -> Tensor:
        x = self.input_stage(wav)
        for stage, down in zip(self.stages, self.downs, strict=True):
            x = stage(x.transpose(1, 2)).transpose(1, 2)
            x = down(x)
        return self.out(self.norm(x.transpose(1, 2)))
