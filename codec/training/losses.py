"""Codec training objective and the single function that performs one training step.

Both the trainer and the tests call :func:`codec_train_step`; nothing else computes
codec losses, so there is exactly one definition of a training step. The generator's
objective is the weighted sum of the terms :func:`generator_terms` lists: a new term is
a weight in :class:`LossConfig` and one entry there (the output head's controls and their
targets arrive in ``CodecOutput.head``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codec.heads import SourceFilterHead
from codec.latents import SAMPLE_RATE
from codec.model import CodecOutput
from codec.training.discriminator import (
    discriminator_hinge_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)
from codec.training.features import FeatureBatch


@dataclass
class LossConfig:
    """Weights of every codec loss term (0 disables a term) and their settings.

    ``waveform`` and ``stft`` decay with a half-life of ``reconstruction_half_life``
    steps: they help early on and would otherwise fight the perceptual mel/GAN terms.
    The discriminator starts training at ``adversarial_start`` steps. With
    ``adversarial_segment > 0`` it sees one random segment of that many seconds per step
    (the same span of the original and the reconstruction) instead of the whole crop:
    its 2-D convolutions cost far more than the codec itself, so on a CPU this is what
    makes the adversarial phase affordable.
    """

    mel: float = 15.0
    mel_windows: tuple[int, ...] = (32, 64, 128, 256, 512, 1024, 2048)
    mel_bins: tuple[int, ...] = (5, 10, 20, 40, 80, 160, 320)
    waveform: float = 1.0
    stft: float = 1.0
    stft_windows: tuple[int, ...] = (2048, 512)
    reconstruction_half_life: float = 5000.0
    adversarial: float = 1.0
    feature_matching: float = 2.0
    adversarial_start: int = 0
    adversarial_segment: float = 0.0
    commitment: float = 0.1
    codebook: float = 1.0
    distill: float = 1.0
    # Control loss of heads with controls (the source-filter head; ignored by others): the
    # dense regression of each 10 ms step's controls onto the analysis of the input
    # (codec.analysis): L1 of the log envelope, binary cross-entropy of the voicing logits
    # against the measured periodic share, and L1 of log2 F0 (octaves) over voiced steps
    # times ``control_f0``, summed. The F0 part is weighted up because a tenth of an octave
    # off already ruins a voice, while it is one number per step against the envelope's
    # 64. The mel, envelope and adversarial terms add what the analysis misses.
    control: float = 1.0
    control_f0: float = 10.0
    # Band-envelope loss: 1 - correlation of the third-octave band envelopes of the output and
    # the input over ~0.4 s segments (the comparison STOI makes, differentiable, no clipping).
    # The mel losses compare each 10-80 ms frame on its own; this one rewards following the
    # input's syllable-rate rises and falls in each band, which is what intelligibility
    # measures track.
    envelope: float = 0.0

    def __post_init__(self) -> None:
        self.mel_windows = tuple(int(w) for w in self.mel_windows)
        self.mel_bins = tuple(int(b) for b in self.mel_bins)
        self.stft_windows = tuple(int(w) for w in self.stft_windows)
        if len(self.mel_windows) != len(self.mel_bins):
            raise ValueError("mel_windows and mel_bins must have the same length")
        if self.reconstruction_half_life <= 0:
            raise ValueError("reconstruction_half_life must be > 0")
        if self.adversarial_segment < 0:
            raise ValueError(f"adversarial_segment must be >= 0 seconds, got {self.adversarial_segment}")


class Optimize(Protocol):
    """What the step needs from a trainer: back-propagate ``loss`` and step optimizer ``name``."""

    def step(self, name: str, loss: Tensor) -> object: ...


def _stft_magnitude(x: Tensor, window: Tensor) -> Tensor:
    """``[B, 1, N]`` -> ``[B, bins, frames]`` magnitudes, hop a quarter window, centred frames."""
    n = window.shape[0]
    return torch.stft(x[:, 0].float(), n, n // 4, window=window, center=True, pad_mode="reflect",
                      return_complex=True).abs()


class MultiScaleMelLoss(nn.Module):
    """DAC-style multi-scale log-mel L1: for each ``(window, bins)`` scale, the mean
    ``|log10 max(mel, eps) - log10 max(mel_ref, eps)|`` of magnitude mel spectrograms
    (Hann window, hop a quarter window, Slaney mel filters from 0 Hz to Nyquist); summed
    over scales. ``[B, 1, N]`` x 2 -> scalar."""

    def __init__(self, windows: tuple[int, ...], bins: tuple[int, ...], sample_rate: int = SAMPLE_RATE,
                 eps: float = 1e-5) -> None:
        super().__init__()
        import librosa

        self.eps = eps
        self.windows = tuple(windows)
        for w, m in zip(windows, bins, strict=True):
            fb = librosa.filters.mel(sr=sample_rate, n_fft=w, n_mels=m, fmin=0.0, fmax=sample_rate / 2)
            self.register_buffer(f"fb{w}", torch.from_numpy(fb).float(), persistent=False)
            self.register_buffer(f"win{w}", torch.hann_window(w), persistent=False)

    def forward(self, estimate: Tensor, reference: Tensor) -> Tensor:
        total = estimate.new_zeros((), dtype=torch.float32)
        with torch.autocast(estimate.device.type, enabled=False):
            for w in self.windows:
                fb, win = getattr(self, f"fb{w}"), getattr(self, f"win{w}")
                x = (fb @ _stft_magnitude(estimate, win)).clamp_min(self.eps).log10()
                y = (fb @ _stft_magnitude(reference, win)).clamp_min(self.eps).log10()
                total = total + (x - y).abs().mean()
        return total


class MultiScaleSTFTLoss(nn.Module):
    """L1 of log magnitudes plus L1 of magnitudes of STFTs at several window lengths, summed.
    ``[B, 1, N]`` x 2 -> scalar."""

    def __init__(self, windows: tuple[int, ...], eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.windows = tuple(windows)
        for w in windows:
            self.register_buffer(f"win{w}", torch.hann_window(w), persistent=False)

    def forward(self, estimate: Tensor, reference: Tensor) -> Tensor:
        total = estimate.new_zeros((), dtype=torch.float32)
        with torch.autocast(estimate.device.type, enabled=False):
            for w in self.windows:
                win = getattr(self, f"win{w}")
                x, y = _stft_magnitude(estimate, win), _stft_magnitude(reference, win)
                log = (x.clamp_min(self.eps).log10() - y.clamp_min(self.eps).log10()).abs().mean()
                total = total + log + (x - y).abs().mean()
        return total


class ReconstructionLoss(nn.Module):
    """Multi-scale mel L1 and multi-scale STFT L1 between two ``[B, 1, N]`` signals
    (``forward``), and the band-envelope loss (``envelope``)."""

    def __init__(self, cfg: LossConfig) -> None:
        super().__init__()
        self.mel = MultiScaleMelLoss(cfg.mel_windows, cfg.mel_bins)
        self.stft = MultiScaleSTFTLoss(cfg.stft_windows)
        self.envelope = BandEnvelopeLoss()

    def forward(self, estimate: Tensor, reference: Tensor, with_stft: bool = True) -> tuple[Tensor, Tensor]:
        stft = self.stft(estimate, reference) if with_stft else estimate.new_zeros(())
        return self.mel(estimate, reference), stft


class BandEnvelopeLoss(nn.Module):
    """``1 -`` the mean Pearson correlation of third-octave band envelopes over segments.

    Magnitudes of a ``frame``-sample STFT (hop ``frame / 2``) are pooled into ``bands``
    third-octave bands from ``fmin`` Hz; each band's envelope is cut into segments of
    ``segment`` frames (hop ``segment / 3``) and correlated with the reference's. Segments
    whose reference energy is more than 40 dB below the loudest one are left out (STOI drops
    such frames too), and so are silent ones (zero when nothing is left). ``[B, 1, N]`` x 2
    -> scalar in ``[0, 2]``.
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE, frame: int = 640, bands: int = 15,
                 fmin: float = 150.0, segment: int = 30) -> None:
        super().__init__()
        self.frame, self.segment = frame, segment
        freqs = torch.fft.rfftfreq(frame, 1.0 / sample_rate)
        centers = fmin * 2.0 ** (torch.arange(bands) / 3.0)
        lo, hi = centers * 2.0 ** (-1 / 6), centers * 2.0 ** (1 / 6)
        pool = ((freqs[None, :] >= lo[:, None]) & (freqs[None, :] < hi[:, None])).float()
        if bool((pool.sum(1) == 0).any()):
            raise ValueError(f"a {frame}-sample frame leaves some third-octave band above {fmin} Hz empty")
        self.register_buffer("pool", pool, persistent=False)  # [bands, bins]
        self.register_buffer("window", torch.hann_window(frame), persistent=False)

    def envelopes(self, wav: Tensor) -> Tensor:
        """``[B, 1, N]`` -> band envelopes ``[B, bands, frames]`` (linear magnitude)."""
        spec = torch.stft(wav[:, 0].float(), self.frame, self.frame // 2, window=self.window,
                          return_complex=True, center=False)
        return torch.sqrt(self.pool @ spec.abs().pow(2) + 1e-10)

    def forward(self, estimate: Tensor, reference: Tensor) -> Tensor:
        with torch.autocast(estimate.device.type, enabled=False):
            needed = (self.segment + 1) * self.frame // 2
            if reference.shape[-1] < needed:
                raise ValueError(f"band-envelope loss needs at least {self.segment} frames "
                                 f"({needed} samples), got {reference.shape[-1]} samples")
            x = self.envelopes(reference).unfold(2, self.segment, max(1, self.segment // 3))
            y = self.envelopes(estimate).unfold(2, self.segment, max(1, self.segment // 3))
            xc, yc = x - x.mean(-1, keepdim=True), y - y.mean(-1, keepdim=True)
            corr = (xc * yc).sum(-1) / (xc.norm(dim=-1) * yc.norm(dim=-1) + 1e-8)  # [B, bands, S]
            energy = x.pow(2).sum((1, 3))  # [B, S]
            # 40 dB below the loudest segment, and never digital silence (the envelope floor).
            keep = (energy > energy.amax(dim=1, keepdim=True) * 1e-4) & (energy > 1e-6)
            if not bool(keep.any()):
                return estimate.float().sum() * 0.0
            return 1.0 - corr.mean(1)[keep].mean()


def _adversarial_segment(wav: Tensor, recon: Tensor, seconds: float) -> tuple[Tensor, Tensor]:
    """The same random span of ``seconds`` from ``wav`` and ``recon`` ``[B, 1, N]`` (all of them
    when ``seconds`` is 0 or not shorter than N)."""
    n = round(seconds * SAMPLE_RATE)
    if n <= 0 or n >= wav.shape[-1]:
        return wav, recon
    start = int(torch.randint(0, wav.shape[-1] - n + 1, ()))
    return wav[..., start : start + n], recon[..., start : start + n]


def control_losses(controls: dict[str, Tensor], targets: dict[str, Tensor],
                   mask: Tensor | None = None) -> dict[str, Tensor]:
    """The parts of ``loss.control``: ``control_envelope`` (mean L1 of the natural-log envelope),
    ``control_voicing`` (binary cross-entropy of the voicing logits against the periodic share)
    and ``control_f0`` (mean ``|log2 f0 / target|``, octaves, over the target's voiced steps).

    ``controls`` as the source-filter head names them, ``targets`` its
    :meth:`~codec.heads.source_filter.SourceFilterHead.control_targets`; all ``[B, T, ...]``;
    ``mask [B, T]`` keeps only real steps (padding out). Zero where nothing is left.
    """
    keep = torch.ones_like(targets["voiced"]) if mask is None else mask
    weight = keep.float()
    count = weight.sum().clamp_min(1.0)
    envelope = (controls["envelope"].float() - targets["envelope"].float()).abs().mean(-1)
    voicing = F.binary_cross_entropy_with_logits(controls["voicing"].float(), targets["voicing"].float().clamp(0, 1),
                                                 reduction="none").mean(-1)
    voiced = targets["voiced"] & keep
    f0 = (torch.log2(controls["f0"].float()) - torch.log2(targets["f0"].float().clamp_min(1.0))).abs()
    return {"control_envelope": (envelope * weight).sum() / count,
            "control_voicing": (voicing * weight).sum() / count,
            "control_f0": (f0 * voiced).sum() / voiced.sum().clamp_min(1)}


def generator_terms(out: CodecOutput, wav: Tensor, cfg: LossConfig, recon_loss: ReconstructionLoss,
                    step: int) -> dict[str, tuple[float, Tensor]]:
    """The generator's loss terms without the adversarial ones: name -> (weight, value).

    Terms whose weight is zero, or whose inputs the model does not produce (a head without
    controls), are left out.
    """
    decay = 0.5 ** (step / cfg.reconstruction_half_life)
    mel, stft = recon_loss(out.audio, wav, with_stft=cfg.stft > 0)
    terms: dict[str, tuple[float, Tensor]] = {"mel": (cfg.mel, mel)}
    if cfg.stft > 0:
        terms["stft"] = (cfg.stft * decay, stft)
    if cfg.waveform > 0:
        terms["waveform"] = (cfg.waveform * decay, F.l1_loss(out.audio, wav))
    if cfg.envelope > 0:
        terms["envelope"] = (cfg.envelope, recon_loss.envelope(out.audio, wav))
    return terms | _control_and_vq_terms(out, cfg)


def _control_and_vq_terms(out: CodecOutput, cfg: LossConfig, mask: Tensor | None = None
                          ) -> dict[str, tuple[float, Tensor]]:
    terms: dict[str, tuple[float, Tensor]] = {}
    if cfg.control > 0 and "envelope" in out.head.targets:
        parts = control_losses(out.head.controls, out.head.targets, mask)
        terms.update({name: (cfg.control * (cfg.control_f0 if name == "control_f0" else 1.0), value)
                      for name, value in parts.items()})
    vq = out.quantized.semantic
    terms["commit"] = (cfg.commitment, vq.commitment_loss)
    terms["codebook"] = (cfg.codebook, vq.codebook_loss)
    return terms


def codec_train_step(
    model: nn.Module,
    discriminator: nn.Module | None,
    teacher: nn.Module | None,
    recon_loss: ReconstructionLoss,
    cfg: LossConfig,
    batch,
    step: int,
    opt: Optimize,
) -> dict[str, float]:
    """One discriminator update then one generator update on ``batch``.

    Args:
        model: the :class:`~codec.model.HybridCodec` (possibly DDP-wrapped), in train mode.
        discriminator: the discriminator (possibly DDP-wrapped), or ``None`` without GAN.
        teacher: a module from :func:`codec.training.teachers.build_teacher` (called as
            ``teacher(semantic, batch) -> loss``; possibly DDP-wrapped) or ``None``.
        batch: an object with ``wav [B, 1, N]``, ``lengths [B]``, ``phonemes [B, L]`` and
            ``phoneme_lengths [B]`` (N a multiple of 1920).
        opt: performs backward + optimizer step for ``"disc"`` and ``"gen"``.

    Returns:
        Scalars to log (losses, VQ perplexity).
    """
    if isinstance(batch, FeatureBatch):
        return _controls_step(model, teacher, cfg, batch, opt)
    wav = batch.wav
    out: CodecOutput = model(wav)
    logs: dict[str, float] = {}
    use_gan = discriminator is not None and cfg.adversarial > 0 and step >= cfg.adversarial_start
    if use_gan:
        real_wav, fake_wav = _adversarial_segment(wav, out.audio, cfg.adversarial_segment)
        d_loss = discriminator_hinge_loss(discriminator(real_wav), discriminator(fake_wav.detach()))
        opt.step("disc", d_loss)
        logs["disc"] = float(d_loss.detach())

    terms = generator_terms(out, wav, cfg, recon_loss, step)
    if use_gan:
        fake = discriminator(fake_wav)
        with torch.no_grad():
            real = discriminator(real_wav)
        terms["adv"] = (cfg.adversarial, generator_adversarial_loss(fake))
        terms["feat"] = (cfg.feature_matching, feature_matching_loss(real, fake))
    return logs | _generator_step(terms, out, teacher, cfg, batch, opt)


def _generator_step(terms: dict[str, tuple[float, Tensor]], out: CodecOutput, teacher: nn.Module | None,
                    cfg: LossConfig, batch, opt: Optimize) -> dict[str, float]:
    """Add the distillation term, step the generator on the weighted sum; scalars to log."""
    if teacher is not None and cfg.distill > 0:
        terms["distill"] = (cfg.distill, teacher(out.quantized.semantic.vector, batch))
    total = sum(weight * value for weight, value in terms.values())
    logs = {name: float(value.detach()) for name, (_, value) in terms.items() if name not in ("stft", "codebook")}
    logs["perplexity"] = float(out.quantized.semantic.perplexity)
    opt.step("gen", total)
    logs["loss"] = float(total.detach())
    return logs


def _controls_step(model: nn.Module, teacher: nn.Module | None, cfg: LossConfig, batch: FeatureBatch,
                   opt: Optimize) -> dict[str, float]:
    """A generator step from cached analyses: controls against their targets, no audio."""
    out: CodecOutput = model(batch.inputs)
    out.head.targets.update(SourceFilterHead.control_targets(batch.targets))
    return _generator_step(_control_and_vq_terms(out, cfg, batch.mask), out, teacher, cfg, batch, opt)
