"""The latent contract shared by the codec and everything built on it.

A *frame* is 1920 samples of 24 kHz audio (80 ms, 12.5 Hz). Each frame holds one
semantic code (index into the semantic VQ codebook) and ``acoustic_dim`` FSQ codes,
each an integer in ``0 .. acoustic_levels - 1`` that maps to a grid value in [-1, 1].

Shapes: ``semantic`` ``[B, T]``, ``acoustic_codes`` ``[B, T, A]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

SAMPLE_RATE = 24000
FRAME_SIZE = 1920
FRAME_RATE = SAMPLE_RATE / FRAME_SIZE  # 12.5 Hz


def num_frames(num_samples: int, frame_size: int = FRAME_SIZE) -> int:
    """Frames needed to cover ``num_samples`` samples: ``ceil(num_samples / frame_size)``."""
    if num_samples < 0:
        raise ValueError(f"num_samples must be >= 0, got {num_samples}")
    return -(-num_samples // frame_size)


def frames_to_samples(frames: int, frame_size: int = FRAME_SIZE) -> int:
    """Samples produced by decoding ``frames`` frames (before trimming to the original length)."""
    return frames * frame_size


def fsq_codes_to_values(codes: Tensor, levels: int) -> Tensor:
    """Integer FSQ codes ``0..levels-1`` -> grid values in [-1, 1] (float32, same shape)."""
    return codes.to(torch.float32) * (2.0 / (levels - 1)) - 1.0


def fsq_values_to_codes(values: Tensor, levels: int) -> Tensor:
    """Values in [-1, 1] -> nearest integer FSQ code (int64, same shape). Values outside are clamped."""
    half = (levels - 1) / 2.0
    return torch.round((values.clamp(-1.0, 1.0) + 1.0) * half).to(torch.int64)


def snap_to_grid(values: Tensor, levels: int) -> Tensor:
    """Continuous values -> the nearest FSQ grid value (what the decoder was trained on)."""
    return fsq_codes_to_values(fsq_values_to_codes(values, levels), levels).to(values.dtype)


@dataclass
class Latents:
    """A batch of quantized codec latents.

    Attributes:
        semantic: ``[B, T]`` int64 semantic codes, each ``< semantic_codebook_size``.
        acoustic_codes: ``[B, T, A]`` int64 FSQ codes in ``0 .. acoustic_levels - 1``.
        num_samples: number of 24 kHz samples the frames stand for (``<= T * 1920``);
            decoding returns exactly this many samples.
        acoustic_levels: FSQ levels per acoustic dimension.
    """

    semantic: Tensor
    acoustic_codes: Tensor
    num_samples: int
    acoustic_levels: int = 21

    def __post_init__(self) -> None:
        if self.semantic.dim() != 2:
            raise ValueError(f"semantic must be [B, T], got shape {tuple(self.semantic.shape)}")
        if self.acoustic_codes.dim() != 3 or self.acoustic_codes.shape[:2] != self.semantic.shape:
            raise ValueError(
                f"acoustic_codes must be [B, T, A] matching semantic {tuple(self.semantic.shape)}, "
                f"got {tuple(self.acoustic_codes.shape)}"
            )
        if self.num_samples > self.num_frames * FRAME_SIZE:
            raise ValueError(
                f"num_samples={self.num_samples} exceeds what {self.num_frames} frames hold "
                f"({self.num_frames * FRAME_SIZE})"
            )

    @property
    def acoustic(self) -> Tensor:
        """``[B, T, A]`` float32 acoustic values on the FSQ grid in [-1, 1]."""
        return fsq_codes_to_values(self.acoustic_codes, self.acoustic_levels)

    @property
    def batch_size(self) -> int:
        return self.semantic.shape[0]

    @property
    def num_frames(self) -> int:
        return self.semantic.shape[1]

    @property
    def duration(self) -> float:
        """Seconds of audio these latents stand for."""
        return self.num_samples / SAMPLE_RATE

    @classmethod
    def from_values(
        cls, semantic: Tensor, acoustic: Tensor, num_samples: int | None = None, acoustic_levels: int = 21
    ) -> Latents:
        """Build latents from semantic codes ``[B, T]`` and acoustic values ``[B, T, A]``.

        The acoustic values are snapped to the nearest FSQ grid point, so continuous
        output of a generator (e.g. a flow-matching head) becomes valid codes.
        """
        if num_samples is None:
            num_samples = semantic.shape[1] * FRAME_SIZE
        return cls(semantic.long(), fsq_values_to_codes(acoustic, acoustic_levels), num_samples, acoustic_levels)

    def to(self, device: torch.device | str) -> Latents:
        return Latents(self.semantic.to(device), self.acoustic_codes.to(device), self.num_samples, self.acoustic_levels)

    def frames(self, start: int, end: int | None = None) -> Latents:
        """Frames ``start:end`` as new latents (``num_samples`` clipped to what they cover)."""
        end = self.num_frames if end is None else min(end, self.num_frames)
        if not 0 <= start <= end:
            raise ValueError(f"bad frame range {start}:{end} for {self.num_frames} frames")
        covered = max(0, min(self.num_samples - start * FRAME_SIZE, (end - start) * FRAME_SIZE))
        return Latents(self.semantic[:, start:end], self.acoustic_codes[:, start:end], covered, self.acoustic_levels)

    @staticmethod
    def cat(parts: list[Latents]) -> Latents:
        """Concatenate latents along time (e.g. the chunks of a streaming encode)."""
        if not parts:
            raise ValueError("cannot concatenate an empty list of latents")
        levels = {p.acoustic_levels for p in parts}
        if len(levels) != 1:
            raise ValueError(f"latents with different acoustic levels: {sorted(levels)}")
        samples = sum(p.num_frames for p in parts[:-1]) * FRAME_SIZE + parts[-1].num_samples
        return Latents(
            torch.cat([p.semantic for p in parts], dim=1),
            torch.cat([p.acoustic_codes for p in parts], dim=1),
            samples,
            parts[0].acoustic_levels,
        )


def bits_per_frame(semantic_codebook_size: int, acoustic_dim: int, acoustic_levels: int) -> float:
    """Information per frame: one semantic index plus ``acoustic_dim`` FSQ symbols."""
    return math.log2(semantic_codebook_size) + acoustic_dim * math.log2(acoustic_levels)
