"""Frame-by-frame generation with a KV cache (batch of one).

Each step: the backbone's last hidden state -> a semantic class (code or EOA) from the
semantic head, and an acoustic vector from the flow sampler, snapped to the FSQ grid;
the frame is embedded and fed back. A model with an advance head moves its text pointer
by the advance sampled from the same state. ``use_cache=False`` recomputes the whole sequence
every step (slow; the reference the cached path is tested against).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator

import torch

from codec import FRAME_RATE, FRAME_SIZE, Latents

from .config import SamplingConfig
from .model import TTSModel
from .sampler import FlowSampler


def check_prompt(model: TTSModel, prompt: Latents) -> None:
    """Raise ``ValueError`` unless ``prompt`` is one item of latents in this model's latent space."""
    cfg = model.config
    if not isinstance(prompt, Latents):
        raise TypeError(f"the voice prompt must be codec.Latents, got {type(prompt).__name__}")
    if prompt.batch_size != 1:
        raise ValueError(f"generation takes one voice prompt, got a batch of {prompt.batch_size}")
    if prompt.acoustic_codes.shape[-1] != cfg.acoustic_dim or prompt.acoustic_levels != cfg.acoustic_levels:
        raise ValueError(f"prompt latents have {prompt.acoustic_codes.shape[-1]} acoustic dims x "
                         f"{prompt.acoustic_levels} levels; the model expects {cfg.acoustic_dim} x {cfg.acoustic_levels}")
    if prompt.num_frames and int(prompt.semantic.max()) >= cfg.semantic_codebook_size:
        raise ValueError(f"prompt semantic codes exceed the codebook of {cfg.semantic_codebook_size}")


class FrameGenerator:
    """Iterates over generated frames, each a one-frame :class:`codec.Latents` (1920 samples).

    After the iteration ends, :attr:`stop_reason` is ``"eoa"`` (the model ended the
    audio) or ``"max_length"`` (the guard stopped it; a warning is issued too); for a model
    with an advance head, :attr:`pointers` holds the text index each frame was generated at.

    Args:
        model: the TTS network (eval mode).
        prompt: voice-prompt latents, batch of one.
        text: token ids from the model's text front-end (language tag first).
        sampling: sampling settings.
        generator: random source for semantic sampling and flow noise (None = global).
        use_cache: reuse keys/values of earlier positions (the normal path).
    """

    def __init__(self, model: TTSModel, prompt: Latents, text: list[int], sampling: SamplingConfig,
                 generator: torch.Generator | None = None, use_cache: bool = True) -> None:
        check_prompt(model, prompt)
        if not text:
            raise ValueError("text token list is empty")
        self.model = model
        self.prompt = prompt
        self.text = text
        self.sampling = sampling
        self.generator = generator
        self.use_cache = use_cache
        self.sampler = FlowSampler(sampling.steps, sampling.cfg, sampling.solver, sampling.schedule)
        self.prefix_length = prompt.num_frames + len(text) + 3
        room = model.config.max_positions - self.prefix_length
        if room < 1:
            raise ValueError(f"voice prompt ({prompt.num_frames} frames) + text ({len(text)} tokens) fill "
                             f"{self.prefix_length} positions; the model holds {model.config.max_positions}")
        self.max_frames = min(room, max(1, math.ceil(sampling.max_seconds * FRAME_RATE)))
        self.stop_reason: str | None = None
        self.pointers: list[int] = []  # with an advance head: the text index each frame was told
        self.expected_frames = model.expected_frames(len(text))  # what the place cues spread over

    @torch.inference_mode()
    def __iter__(self) -> Iterator[Latents]:
        model, s = self.model, self.sampling
        dev = model.device
        prompt = self.prompt.to(dev)
        text = torch.tensor([self.text], dtype=torch.long, device=dev)
        lengths = torch.tensor([len(self.text)], device=dev)
        embeds = model.prefix_embeddings(prompt.semantic, prompt.acoustic, text)  # [1, S, H]
        cache = model.new_cache() if self.use_cache else None
        h_all = model.run_backbone(embeds, cache=cache)
        pointer = torch.ones(1, 1, dtype=torch.long, device=dev)  # the text index of the next frame
        for i in range(self.max_frames):
            h = h_all[:, -1]  # [1, H]
            sem = model.sample_semantic(h, s.temperature, s.top_k, allow_eoa=i >= s.min_frames,
                                        generator=self.generator)
            if int(sem[0]) == model.config.eoa_index:
                self.stop_reason = "eoa"
                return
            acoustic = model.sample_acoustic(h, self.sampler, self.generator)  # [1, A]
            if model.advance_head is not None:
                self.pointers.append(int(pointer))
                pointer = pointer + model.sample_advance(h, s.temperature, self.generator)[:, None]
                pointer = pointer.clamp(max=len(self.text))
            frame = Latents.from_values(sem[None], acoustic[None], FRAME_SIZE, model.config.acoustic_levels)
            yield frame
            if i + 1 == self.max_frames:
                break
            # Feed back the grid values (what the codec decodes), not the raw ODE output.
            place = torch.tensor([[(i + 1.5) / self.expected_frames]], device=dev)
            cues = model.frame_cues(text, lengths, place, pointer)
            new = model.embed_frames(frame.semantic, frame.acoustic.to(dev), cues)
            if self.use_cache:
                h_all = model.run_backbone(new, cache=cache)
            else:
                embeds = torch.cat([embeds, new], dim=1)
                h_all = model.run_backbone(embeds)
        self.stop_reason = "max_length"
        warnings.warn(f"generation stopped at the length limit ({self.max_frames} frames, "
                      f"{self.max_frames / FRAME_RATE:.1f} s) before the model ended the audio", stacklevel=2)


def generate_latents(model: TTSModel, prompt: Latents, text: list[int], sampling: SamplingConfig | None = None,
                     generator: torch.Generator | None = None, use_cache: bool = True) -> Latents:
    """All frames of one utterance as ``[1, T]`` latents (``T >= 0`` frames)."""
    frames = list(FrameGenerator(model, prompt, text, sampling or SamplingConfig(), generator, use_cache))
    if not frames:
        a = model.config.acoustic_dim
        empty = torch.zeros(1, 0, dtype=torch.long)
        return Latents(empty, torch.zeros(1, 0, a, dtype=torch.long), 0, model.config.acoustic_levels)
    return Latents.cat(frames)
