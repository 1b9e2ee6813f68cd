"""The encoder: 24 kHz audio -> encoder frames at 12.5 Hz (before quantization).

Shapes: audio ``[B, 1, N]`` (N a multiple of 1920); conv stages ``[B, C, T]``;
transformer stages and the output ``[B, T, D]``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from codec.analysis import Analysis, Analyzer, feature_size
from codec.block_transform import BlockTransform
from codec.config import CodecConfig
from codec.nn.conv import CausalConv1d
from codec.nn.transformer import Transformer


class Encoder(nn.Module):
    """``[B, 1, N]`` audio (N a multiple of 1920) -> ``[B, T, semantic_dim + acoustic_dim]`` at 12.5 Hz.

    :meth:`input_stage` turns the waveform into ``dim``-wide features at 100 Hz (one step
    per 240-sample patch) through the configured front-end: the DSP analysis
    (:class:`~codec.analysis.Analyzer`, a streaming block), the patches' samples, or both;
    stages of [sliding-window transformer, strided causal conv] bring them to the frame
    rate, and a projection to the latent width follows.
    """

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        self.patch = cfg.patch_size
        self.waveform = "waveform" in cfg.frontend
        self.analysis = Analyzer(cfg.analysis) if "analysis" in cfg.frontend else None
        width = (cfg.patch_size if self.waveform else 0) + (feature_size(cfg.analysis) if self.analysis else 0)
        self.inp = CausalConv1d(width, cfg.dim, kernel_size=3)
        self.stages = nn.ModuleList()
        self.downs = nn.ModuleList()
        for layers, window, stride in zip(cfg.encoder_layers, cfg.encoder_windows, cfg.encoder_strides, strict=True):
            self.stages.append(Transformer(cfg.dim, cfg.num_heads, layers, window, cfg.mlp_ratio, cfg.layer_scale))
            kernel = 2 * stride if stride > 1 else 3
            self.downs.append(CausalConv1d(cfg.dim, cfg.dim, kernel, stride))
        self.norm = nn.LayerNorm(cfg.dim)
        self.out = nn.Linear(cfg.dim, cfg.semantic_dim + cfg.acoustic_dim)
        self.semantic_dim = cfg.semantic_dim
        self.block: BlockTransform | None = None
        if cfg.block_transform:
            self.block = BlockTransform(cfg.analysis.bands, cfg.analysis.voicing_bands, cfg.block_parts, cfg.block_fine)
            with torch.no_grad():  # the acoustic latent starts as the block transform alone
                self.out.weight[cfg.semantic_dim:].zero_()
                self.out.bias[cfg.semantic_dim:].zero_()

    def input_stage(self, wav: Tensor | None, analysis: Analysis | None = None) -> Tensor:
        """Audio ``[B, 1, N]`` -> ``[B, dim, N / 240]``: each step's front-end features through a
        causal conv. ``analysis`` (of ``N / 240`` steps) is the front-end's analysis of ``wav``
        (given: training from a feature cache, where ``wav`` may be None if the front-end reads
        no samples).
        """
        parts = []
        if analysis is not None:
            parts.append(analysis.features().transpose(1, 2))
        if self.waveform:
            b, _, n = wav.shape
            parts.append(wav.reshape(b, n // self.patch, self.patch).transpose(1, 2))  # [B, 240, T100]
        return self.inp(parts[0] if len(parts) == 1 else torch.cat(parts, dim=1))

    def forward(self, wav: Tensor | None, analysis: Analysis | None = None) -> Tensor:
        if self.analysis is not None and analysis is None:
            analysis = self.analysis(wav)
        x = self.input_stage(wav, analysis)
        for stage, down in zip(self.stages, self.downs, strict=True):
            x = stage(x.transpose(1, 2)).transpose(1, 2)
            x = down(x)
        z = self.out(self.norm(x.transpose(1, 2)))
        if self.block is None:
            return z
        coefficients = self.block.coefficients(analysis)
        # FSQ's tanh then gives the coefficients back (clipped at +-1, FSQ's range).
        linear = torch.atanh(coefficients.clamp(-0.999, 0.999)).to(z.dtype)
        # The semantic stream starts from the same coefficients in standard-deviation units,
        # so its VQ begins as a vector quantizer of the frame's envelope, voicing and pitch
        # (decorrelated inputs) rather than of the analysis features' few effective dimensions.
        k = min(coefficients.shape[-1], self.semantic_dim)
        sem = torch.cat([z[..., :k] + (coefficients[..., :k] * self.block.span).to(z.dtype),
                         z[..., k:self.semantic_dim]], dim=-1)
        return torch.cat([sem, z[..., self.semantic_dim:] + linear], dim=-1)
