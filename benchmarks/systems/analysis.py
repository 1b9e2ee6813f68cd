"""Rows that bound an analysis-driven codec from above and below.

- :class:`AnalysisCeiling`: the codec's source-filter head driven directly by the causal
  analysis of the input (:mod:`codec.analysis`), no encoder and no quantizer: what a
  lossless latent would give. With ``frame_rate=True`` the analysis is kept only at the
  end of each 80 ms frame and interpolated in between: the frame rate's own cost.
- :class:`AnalysisFloor`: a non-learned transform coder of the same analysis at about the
  codec's bitrate (:class:`~codec.block_transform.BlockTransform` fitted on the training
  corpus, on FSQ's 21 levels), decoded by the same head: what no learning already gives,
  and where an analysis-driven hylac starts its training.
- :class:`WorldVocoder`: the WORLD vocoder (``pyworld``) with its own analysis at a 10 ms
  step, unquantized: a classic vocoder for reference.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from benchmarks.systems.base import SystemUnavailable, Transform
from codec.analysis import Analysis, AnalysisConfig, analyze
from codec.block_transform import BlockTransform
from codec.heads import SourceFilterHead
from codec.latents import FRAME_SIZE, fsq_codes_to_values, fsq_values_to_codes

STEPS = FRAME_SIZE // 240


def _pad_to_frames(wav: np.ndarray) -> np.ndarray:
    return np.pad(wav, (0, -len(wav) % FRAME_SIZE))


def render(analysis: Analysis, head: SourceFilterHead) -> np.ndarray:
    """The head's audio ``[T * 240]`` for analysis values used as its controls (batch 1)."""
    share = analysis.voicing.clamp(0.02, 0.98)
    controls = torch.cat([analysis.log_envelope, torch.log(share) - torch.log1p(-share)], dim=-1)
    with torch.no_grad():
        audio, _ = head.synthesize(analysis.f0, controls.float(), head.init_state(controls))
    return audio[0, 0].numpy()


def _head(config: AnalysisConfig) -> SourceFilterHead:
    return SourceFilterHead(8, 240, 960, config.bands, config.voicing_bands)


class AnalysisCeiling(Transform):
    """The head driven by the causal analysis of the input (optionally held per frame)."""

    def __init__(self, name: str = "analysis ceiling", config: AnalysisConfig | None = None,
                 frame_rate: bool = False) -> None:
        super().__init__(name)
        self.config = config or AnalysisConfig()
        self.frame_rate = frame_rate
        self.head = _head(self.config)

    def transform(self, wav: np.ndarray) -> tuple[np.ndarray, float]:
        x = torch.from_numpy(_pad_to_frames(wav))[None, None]
        a = analyze(x, self.config)
        if self.frame_rate:
            a = hold_frames(a)
        return render(a, self.head)[: len(wav)], math.nan


def hold_frames(a: Analysis) -> Analysis:
    """Each frame's last step kept, the steps between interpolated linearly (log F0 for F0)."""
    t = a.f0.shape[1]
    keep = torch.arange(STEPS - 1, t, STEPS)
    grid = torch.arange(t, dtype=torch.float32)

    def interp(values: torch.Tensor) -> torch.Tensor:  # [1, T, C] -> [1, T, C]
        v = values[0, keep].float().numpy()
        cols = [np.interp(grid.numpy(), keep.numpy().astype(np.float32), v[:, c]) for c in range(v.shape[1])]
        return torch.from_numpy(np.stack(cols, axis=1)).float()[None]

    return Analysis(interp(a.log_envelope), interp(a.voicing), interp(a.f0.log()[..., None])[..., 0].exp(),
                    a.voiced, a.aperiodicity, a.energy)


def floor_code(block: BlockTransform, a: Analysis, levels: int = 21) -> Analysis:
    """The floor's coding of an analysis of whole frames (batch 1): the block transform's
    coefficients on ``levels`` uniform levels in [-1, 1] (FSQ's grid), decoded by the
    transform's inverse (the head needs no voiced flag: the voicing shares carry it)."""
    codes = fsq_values_to_codes(block.coefficients(a).clamp(-1, 1), levels)
    envelope, voicing, log_f0 = block.reconstruct(fsq_codes_to_values(codes, levels))
    return Analysis(envelope, voicing.clamp(0, 1), log_f0.exp(), a.voiced, a.aperiodicity, a.energy)


def floor_bits_per_frame(block: BlockTransform, levels: int = 21) -> float:
    """Bits of one frame of the floor: its coefficients on ``levels`` levels."""
    return block.size * math.log2(levels)


#: The floor's transform fitted on hylac-tiny's training corpus (`python -m benchmarks.fit_floor`).
FLOOR_FILE = Path(__file__).resolve().parents[1] / "data" / "floor_transform.safetensors"


class AnalysisFloor(Transform):
    """The block transform of the causal analysis on FSQ's 21 levels, decoded by the head:
    36 x log2(21) = 158 bits per frame, 1.98 kbps (the codec: 171 bits with its semantic
    token, 2.14 kbps)."""

    def __init__(self, name: str = "analysis floor (PCA)", transform: Path | BlockTransform = FLOOR_FILE,
                 config: AnalysisConfig | None = None) -> None:
        super().__init__(name, nominal_kbps=None)
        self.config = config or AnalysisConfig()
        self._block = transform
        self.head = _head(self.config)

    def unavailable_reason(self) -> str | None:
        if isinstance(self._block, Path) and not self._block.is_file():
            return f"{self.name}: no fitted transform at {self._block} (python -m benchmarks.fit_floor)"
        return None

    @property
    def block(self) -> BlockTransform:
        if isinstance(self._block, Path):
            block = BlockTransform(self.config.bands, self.config.voicing_bands)
            block.load_state_dict(load_file(str(self._block)))
            self._block = block
        return self._block

    def transform(self, wav: np.ndarray) -> tuple[np.ndarray, float]:
        x = torch.from_numpy(_pad_to_frames(wav))[None, None]
        coded = floor_code(self.block, analyze(x, self.config))
        frames = coded.f0.shape[1] // STEPS
        return render(coded, self.head)[: len(wav)], frames * floor_bits_per_frame(self.block)


class WorldVocoder(Transform):
    """WORLD (pyworld: Harvest F0, CheapTrick envelope, D4C aperiodicity) at a 10 ms step,
    resynthesised unquantized."""

    def __init__(self, name: str = "WORLD vocoder (unquantized)") -> None:
        super().__init__(name)

    def unavailable_reason(self) -> str | None:
        try:
            import pyworld  # noqa: F401
        except ImportError:
            return f"{self.name}: pyworld is not installed (pip install 'hylac[eval]')"
        return None

    def transform(self, wav: np.ndarray) -> tuple[np.ndarray, float]:
        import pyworld

        x = wav.astype(np.float64)
        f0, t = pyworld.harvest(x, 24000, frame_period=10.0)
        sp = pyworld.cheaptrick(x, f0, t, 24000)
        ap = pyworld.d4c(x, f0, t, 24000)
        y = pyworld.synthesize(f0, sp, ap, 24000, 10.0)
        if not np.isfinite(y).all():
            raise SystemUnavailable(f"{self.name}: WORLD produced non-finite samples")
        return y.astype(np.float32)[: len(wav)], math.nan
