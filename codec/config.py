"""Configuration of the codec model (architecture only; losses and training live elsewhere)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from codec.analysis import AnalysisConfig
from codec.heads import HeadConfig, PatchHeadConfig, head_config
from codec.io.weights import JsonConfig
from codec.latents import FRAME_SIZE, SAMPLE_RATE, bits_per_frame

#: What the encoder can read (``CodecConfig.frontend``).
FRONTENDS = ("waveform", "analysis", "analysis+waveform")


@dataclass
class CodecConfig(JsonConfig):
    """Architecture of a :class:`~codec.model.HybridCodec`.

    The encoder reads 24 kHz audio at 100 Hz (one step per ``patch_size``-sample patch)
    through its ``frontend``: ``"analysis"`` (the DSP analysis of :mod:`codec.analysis`:
    envelope, voicing, F0, level per step), ``"waveform"`` (the patches' samples) or
    ``"analysis+waveform"`` (both side by side). Then ``len(encoder_strides)`` stages of
    [transformer layers with sliding-window attention, causal strided conv] bring it to the
    frame rate; the decoder mirrors it. ``patch_size * prod(encoder_strides)`` must equal
    the 1920-sample frame. Stored as JSON (:class:`~codec.io.weights.JsonConfig`).
    """

    config_kind = "codec"

    name: str = "hylac"
    sample_rate: int = SAMPLE_RATE
    patch_size: int = 240
    frontend: str = "waveform"
    # With the analysis front-end: the acoustic latent starts as a linear block transform of
    # the analysis (codec.block_transform, fitted on the training corpus; ``block_parts``
    # components of the envelope, voicing and log F0 per frame, and one fine value for the
    # first component of each part in ``block_fine``, acoustic_dim in all) and the head's
    # controls as its inverse, each plus a learned correction.
    block_transform: bool = False
    block_parts: tuple[int, ...] = (29, 2, 3)
    block_fine: tuple[str, ...] = ("envelope", "f0")
    dim: int = 256
    num_heads: int = 4
    mlp_ratio: float = 4.0
    encoder_layers: tuple[int, ...] = (2, 2, 2, 2)
    encoder_windows: tuple[int, ...] = (16, 8, 4, 2)
    encoder_strides: tuple[int, ...] = (2, 2, 2, 1)
    decoder_layers: tuple[int, ...] = (2, 2, 2, 2)
    decoder_windows: tuple[int, ...] = (2, 4, 8, 16)
    decoder_strides: tuple[int, ...] = (1, 2, 2, 2)
    layer_scale: float = 0.1
    # The decoder's output head (codec.heads): its kind and settings.
    head: HeadConfig = field(default_factory=PatchHeadConfig)
    # Semantic stream: one VQ codebook, looked up in a low-dim l2-normalised space
    # (factorised codes keep far more of a large codebook in use than a 256-d lookup).
    semantic_dim: int = 256
    semantic_codebook_size: int = 8192
    semantic_lookup_dim: int = 16
    # Dead-code restart: a code whose usage EMA falls below this share of the mean usage
    # is moved onto a random encoder output of the current batch.
    dead_code_threshold: float = 0.02
    usage_decay: float = 0.99
    # Acoustic stream: tanh then FSQ, uniform levels per dimension.
    acoustic_dim: int = 36
    acoustic_levels: int = 21
    # Training-time quantization schedule (per batch item).
    semantic_vq_prob: float = 0.5
    acoustic_quantize_prob: float = 0.5
    acoustic_dither_prob: float = 0.25
    # Offline encode/decode runs the streaming path chunk by chunk: bounded memory on long inputs.
    offline_chunk_frames: int = 250
    # Phoneme recogniser on the semantic stream (the phoneme teacher's CTC head, kept at
    # export): ``phoneme_upsample`` labels per frame over ``phoneme_classes`` (the phoneme
    # vocabulary with its blank at 0); 0 = none.
    phoneme_upsample: int = 0
    phoneme_classes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("encoder_layers", "encoder_windows", "encoder_strides", "decoder_layers",
                     "decoder_windows", "decoder_strides", "block_parts"):
            setattr(self, name, tuple(int(v) for v in getattr(self, name)))
        self.block_fine = tuple(str(v) for v in self.block_fine)
        n_enc = len(self.encoder_strides)
        if not (len(self.encoder_layers) == len(self.encoder_windows) == n_enc):
            raise ValueError("encoder_layers, encoder_windows and encoder_strides must have the same length")
        n_dec = len(self.decoder_strides)
        if not (len(self.decoder_layers) == len(self.decoder_windows) == n_dec):
            raise ValueError("decoder_layers, decoder_windows and decoder_strides must have the same length")
        if self.patch_size * math.prod(self.encoder_strides) != FRAME_SIZE:
            raise ValueError(
                f"patch_size * prod(encoder_strides) = {self.patch_size * math.prod(self.encoder_strides)}, "
                f"must be the {FRAME_SIZE}-sample frame"
            )
        if math.prod(self.decoder_strides) != math.prod(self.encoder_strides):
            raise ValueError("decoder_strides must upsample by the same factor as encoder_strides downsample")
        if self.sample_rate != SAMPLE_RATE:
            raise ValueError(f"sample_rate must be {SAMPLE_RATE}")
        if self.dim % self.num_heads:
            raise ValueError(f"dim={self.dim} is not divisible by num_heads={self.num_heads}")
        if self.acoustic_levels < 2 or self.semantic_codebook_size < 2:
            raise ValueError("acoustic_levels and semantic_codebook_size must be >= 2")
        probs = (self.semantic_vq_prob, self.acoustic_quantize_prob, self.acoustic_dither_prob)
        if any(not 0.0 <= p <= 1.0 for p in probs) or self.acoustic_quantize_prob + self.acoustic_dither_prob > 1.0:
            raise ValueError("quantization schedule probabilities must be in [0, 1] and quantize + dither <= 1")
        self.head = head_config(self.head)
        if self.frontend not in FRONTENDS:
            raise ValueError(f"frontend must be one of {', '.join(FRONTENDS)}, got {self.frontend!r}")
        if "analysis" in self.frontend and self.patch_size != 240:
            raise ValueError("the analysis front-end works in 240-sample (10 ms) steps: patch_size must be 240")
        if self.block_transform and (self.frontend != "analysis" or self.head.kind != "source_filter"
                                     or len(self.block_parts) != 3
                                     or sum(self.block_parts) + len(self.block_fine) != self.acoustic_dim):
            raise ValueError("block_transform needs frontend 'analysis', the source_filter head and three "
                             f"block_parts that with block_fine make acoustic_dim ({self.acoustic_dim}), got "
                             f"{self.block_parts} and {self.block_fine}")
        if self.offline_chunk_frames < 1:
            raise ValueError("offline_chunk_frames must be >= 1")
        if (self.phoneme_upsample > 0) != (self.phoneme_classes > 1) or self.phoneme_upsample < 0:
            raise ValueError("phoneme_upsample and phoneme_classes go together: both 0, or >= 1 and >= 2")

    @property
    def frame_size(self) -> int:
        return FRAME_SIZE

    @property
    def analysis(self) -> AnalysisConfig:
        """The DSP analysis on the output head's own control points (the front-end's settings,
        and what the source-filter head's controls are trained towards)."""
        head = self.head
        if head.kind == "source_filter":
            return AnalysisConfig(bands=head.envelope_bands, voicing_bands=head.voicing_bands)
        return AnalysisConfig()

    @property
    def bitrate(self) -> float:
        """Bits per second of the codes."""
        bits = bits_per_frame(self.semantic_codebook_size, self.acoustic_dim, self.acoustic_levels)
        return bits * self.sample_rate / FRAME_SIZE

    @classmethod
    def tiny(cls, **overrides: Any) -> CodecConfig:
        """A very small configuration for tests (runs in milliseconds on a CPU)."""
        base = dict(
            name="hylac-test", dim=32, num_heads=2, encoder_layers=(1, 1, 1, 1),
            decoder_layers=(1, 1, 1, 1), semantic_dim=16, semantic_lookup_dim=4,
        )
        base.update(overrides)
        return cls(**base)

    @classmethod
    def small(cls, **overrides: Any) -> CodecConfig:
        """The CPU-trainable default (``hylac-tiny``): width 256, MLP ratio 2, 2 layers per stage."""
        base: dict[str, Any] = dict(name="hylac-tiny", mlp_ratio=2.0)
        base.update(overrides)
        return cls(**base)

    @classmethod
    def reference(cls, **overrides: Any) -> CodecConfig:
        """The GPU-scale reference configuration (width 1024, 2 layers per stage)."""
        base: dict[str, Any] = dict(name="hylac-base", dim=1024, num_heads=16)
        base.update(overrides)
        return cls(**base)
