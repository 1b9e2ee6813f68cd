"""The TTS network: a decoder-only backbone over ``[BOS] prompt [TEXT] text [AUDIO] frames``.

Shapes follow the transformer convention ``[B, T, D]``. A *frame* is one codec latent
frame (80 ms): a semantic code ``[B, T]`` and ``A = 36`` acoustic grid values ``[B, T, A]``.
The hidden state at the ``[AUDIO]`` token predicts frame 1, the one at frame ``i``
predicts frame ``i + 1``, the one at the last frame predicts end-of-audio (EOA).
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import DynamicCache, LlamaConfig, LlamaModel, MistralConfig, MistralModel

from codec import load_weights_folder, save_weights_folder

from .config import TTSConfig
from .flow import FlowHead, flow_matching_loss
from .sampler import FlowSampler
from .text import TextFrontend

BOS, TEXT, AUDIO = 0, 1, 2  # rows of the special-token table


@dataclass
class TTSBatch:
    """A padded training batch (prompt and target are latents of the same speaker).

    Attributes:
        prompt_semantic: ``[B, P]`` int64 semantic codes of the voice prompt.
        prompt_acoustic: ``[B, P, A]`` float acoustic grid values of the prompt.
        prompt_lengths: ``[B]`` int64 valid prompt frames.
        text: ``[B, L]`` int64 text token ids (language tag first).
        text_lengths: ``[B]`` int64.
        target_semantic: ``[B, N]`` int64 semantic codes to generate.
        target_acoustic: ``[B, N, A]`` float acoustic grid values to generate.
        target_lengths: ``[B]`` int64.
        target_pointer: ``[B, N + 1]`` int64 text index of each target frame, then the text
            length (:class:`~tts.align.PhonemeAligner`); needed by models with an advance head.
    """

    prompt_semantic: Tensor
    prompt_acoustic: Tensor
    prompt_lengths: Tensor
    text: Tensor
    text_lengths: Tensor
    target_semantic: Tensor
    target_acoustic: Tensor
    target_lengths: Tensor
    target_pointer: Tensor | None = None

    @property
    def batch_size(self) -> int:
        return self.text.shape[0]

    def to(self, device: torch.device | str) -> TTSBatch:
        return TTSBatch(**{k: None if v is None else v.to(device) for k, v in self.__dict__.items()})


@dataclass
class TTSLoss:
    """Training losses of one batch (all scalars)."""

    loss: Tensor  # weighted sum that is optimised
    semantic_loss: Tensor  # cross-entropy over 8192 codes + EOA, target frames only
    flow_loss: Tensor  # conditional flow-matching MSE on the acoustic vectors
    semantic_accuracy: Tensor  # share of target positions whose argmax is right
    num_frames: int  # target frames in the batch (without the EOA positions)
    align_loss: Tensor | None = None  # CTC of the frame states against the text (when weighted)
    advance_loss: Tensor | None = None  # cross-entropy of the pointer's advance (with an advance head)


def _backbone(config: TTSConfig) -> nn.Module:
    kwargs = dict(
        vocab_size=1,  # unused: the backbone is always driven with inputs_embeds
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_kv_heads,
        head_dim=config.head_dim or config.hidden_size // config.num_heads,
        max_position_embeddings=config.max_positions,
        rms_norm_eps=config.rms_norm_eps,
        rope_theta=config.rope_theta,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
        tie_word_embeddings=False,
    )
    if config.backbone == "mistral":
        hf_config = MistralConfig(sliding_window=None, **kwargs)
        cls: type[nn.Module] = MistralModel
    else:
        hf_config = LlamaConfig(**kwargs)
        cls = LlamaModel
    hf_config._attn_implementation = "sdpa"
    backbone = cls(hf_config)
    # Frames and text are embedded by the TTS model itself; a token table the backbone never
    # uses would only get no gradient (which DistributedDataParallel rejects).
    backbone.embed_tokens = None
    return backbone


class TTSModel(nn.Module):
    """Autoregressive model of codec latent frames given a voice prompt and text.

    Frame input embedding: a semantic code table (``semantic_dim`` wide, so it can start
    from the codec's own codebook) projected to the backbone width, plus a linear
    projection of the acoustic values. Heads: a linear semantic head over the codebook
    + EOA, and a :class:`~tts.flow.FlowHead` for the acoustic vector. Optional place cues
    (``progress_dim``, ``pointer_window``) tell each text symbol and target frame where in the
    whole it is (:meth:`frame_cues`).
    """

    def __init__(self, config: TTSConfig) -> None:
        super().__init__()
        self.config = config
        self.frontend = TextFrontend(config.text_frontend)
        h = config.hidden_size
        self.special = nn.Embedding(3, h)
        self.text_embed = nn.Embedding(self.frontend.vocab_size, h)
        self.semantic_embed = nn.Embedding(config.semantic_codebook_size, config.semantic_dim)
        self.semantic_proj = nn.Linear(config.semantic_dim, h, bias=False)
        self.acoustic_proj = nn.Linear(config.acoustic_dim, h)
        self.backbone = _backbone(config)
        self.semantic_head = nn.Linear(h, config.semantic_codebook_size + 1)
        self.flow_head = FlowHead(h, config.acoustic_dim, config.flow_dim, config.flow_layers,
                                  config.flow_heads, config.flow_mlp_ratio)
        # Text symbols + the CTC blank (the last class), per upsampled step.
        self.align_head = (nn.Linear(h, config.align_upsample * (self.frontend.vocab_size + 1))
                           if config.align_loss_weight > 0 else None)
        # Place cues (config.progress_dim, config.pointer_window): zero at the start, so a model
        # trained without them that gains them starts out unchanged.
        self.text_progress = self.frame_progress = self.pointer_proj = None
        if config.progress_dim:
            self.text_progress = nn.Linear(config.progress_dim, h, bias=False)
            self.frame_progress = nn.Linear(config.progress_dim, h, bias=False)
            nn.init.zeros_(self.text_progress.weight)
            nn.init.zeros_(self.frame_progress.weight)
        if config.pointer_window:
            self.pointer_proj = nn.Linear(config.pointer_window * h, h, bias=False)
            nn.init.zeros_(self.pointer_proj.weight)
        # How many text symbols the next frame's pointer moves on (config.advance_classes).
        self.advance_head = nn.Linear(h, config.advance_classes) if config.advance_classes else None
        # transformers renamed the cache argument (past_key_values -> cache); accept both.
        params = inspect.signature(self.backbone.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"

    # ----------------------------------------------------------------- embeddings
    @property
    def device(self) -> torch.device:
        return self.semantic_head.weight.device

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def embed_frames(self, semantic: Tensor, acoustic: Tensor, cues: Tensor | None = None) -> Tensor:
        """Semantic codes ``[B, T]`` + acoustic values ``[B, T, A]`` -> ``[B, T, H]``, plus the
        place cues ``[B, T, H]`` of target frames (:meth:`frame_cues`; None for the prompt's)."""
        if semantic.shape != acoustic.shape[:2] or acoustic.shape[-1] != self.config.acoustic_dim:
            raise ValueError(f"frames need semantic [B, T] and acoustic [B, T, {self.config.acoustic_dim}], "
                             f"got {tuple(semantic.shape)} and {tuple(acoustic.shape)}")
        sem = self.semantic_proj(self.semantic_embed(semantic))
        out = sem + self.acoustic_proj(acoustic.to(sem.dtype))
        return out if cues is None else out + cues.to(out.dtype)

    def progress_features(self, x: Tensor) -> Tensor:
        """Places ``x [...]`` (a share of the whole, about [0, 1]) -> ``[..., progress_dim]``:
        sines and cosines at periods from twice the whole down to 1/32 of it."""
        k = self.config.progress_dim // 2
        freqs = math.pi * 64.0 ** (torch.arange(k, device=x.device, dtype=torch.float32) / max(k - 1, 1))
        angles = x.float()[..., None] * freqs
        return torch.cat([angles.sin(), angles.cos()], dim=-1)

    def expected_frames(self, text_length: int) -> int:
        """Frames that generation spreads the place cues over, for ``text_length`` tokens (the
        language tag included)."""
        return max(1, round(self.config.progress_rate * (text_length - 1)))

    def frame_cues(self, text: Tensor, text_lengths: Tensor, places: Tensor,
                   pointer: Tensor | None = None) -> Tensor | None:
        """The cues added to the inputs that predict frames at ``places [B, T]`` (shares of the
        target, about [0, 1]) for ``text [B, L]`` of ``text_lengths [B]`` tokens -> ``[B, T, H]``:
        the places' progress features, and the embeddings of the ``pointer_window`` text
        symbols around the pointer: ``pointer [B, T]`` (text indices, up to the length: past
        the end) with an advance head, otherwise the symbol a constant speaking rate would be
        at (the language tag and symbols past either end count as nothing). None without cues."""
        out: Tensor | None = None
        if self.frame_progress is not None:
            out = self.frame_progress(self.progress_features(places))
        if self.pointer_proj is not None:
            b, t = places.shape
            lengths = text_lengths.to(places.device)[:, None]  # [B, 1]
            symbols = (lengths - 1).clamp_min(1)
            if self.advance_head is not None:
                if pointer is None:
                    raise ValueError("a model with an advance head needs the frames' pointer")
                at = pointer.to(places.device).minimum(lengths).clamp_min(1)
            else:
                at = (1 + (places.float().clamp(0, 1) * symbols).floor().long()).minimum(lengths - 1).clamp_min(1)
            half = self.config.pointer_window // 2
            idx = at[..., None] + torch.arange(-half, half + 1, device=places.device)  # [B, T, W]
            valid = (idx >= 1) & (idx < lengths[..., None])
            ids = text.gather(1, idx.clamp(0, text.shape[1] - 1).view(b, -1)).view(b, t, -1)
            window = self.text_embed(ids) * valid[..., None]  # [B, T, W, H]
            pointer = self.pointer_proj(window.flatten(2))
            out = pointer if out is None else out + pointer
        return out

    def embed_text(self, text: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Text tokens ``[B, L]`` (``lengths [B]`` of them real; all when None) -> ``[B, L, H]``."""
        out = self.text_embed(text)
        if self.text_progress is None:
            return out
        b, n = text.shape
        total = torch.full((b,), n, device=text.device) if lengths is None else lengths.to(text.device)
        place = (torch.arange(n, device=text.device)[None, :] + 0.5) / total[:, None].clamp_min(1)
        return out + self.text_progress(self.progress_features(place).to(out.dtype))

    def _audio_token(self, text: Tensor, text_lengths: Tensor, frames: Tensor) -> Tensor:
        """``[AUDIO]`` for targets of ``frames [B]`` frames -> ``[B, 1, H]`` (it predicts frame 0,
        whose pointer is the first symbol)."""
        out = self.embed_special(AUDIO, frames.shape[0])
        first = torch.ones(frames.shape[0], 1, dtype=torch.long, device=out.device)
        cues = self.frame_cues(text, text_lengths, 0.5 / frames.to(out.device).float().clamp_min(1)[:, None], first)
        return out if cues is None else out + cues.to(out.dtype)

    def embed_special(self, token: int, batch_size: int = 1) -> Tensor:
        """One special token (``BOS``, ``TEXT`` or ``AUDIO``) -> ``[B, 1, H]``."""
        idx = torch.full((batch_size, 1), token, dtype=torch.long, device=self.device)
        return self.special(idx)

    @torch.no_grad()
    def init_semantic_from_codec(self, codebook: Tensor) -> None:
        """Start the semantic code table from the codec's codebook ``[K, semantic_dim]``."""
        if codebook.shape != self.semantic_embed.weight.shape:
            raise ValueError(f"codec codebook has shape {tuple(codebook.shape)}, the TTS table "
                             f"{tuple(self.semantic_embed.weight.shape)}")
        # Unit RMS keeps the projected embedding on the scale of the other inputs.
        rms = codebook.float().pow(2).mean().sqrt().clamp_min(1e-8)
        self.semantic_embed.weight.copy_(codebook / rms)

    def prefix_embeddings(self, prompt_semantic: Tensor, prompt_acoustic: Tensor, text: Tensor) -> Tensor:
        """``[BOS] prompt [TEXT] text [AUDIO]`` for one batch of equal lengths -> ``[B, P + L + 3, H]``.

        ``prompt_semantic`` ``[B, P]``, ``prompt_acoustic`` ``[B, P, A]``, ``text`` ``[B, L]``.
        """
        b, n = text.shape
        lengths = torch.full((b,), n, device=text.device)
        return torch.cat([
            self.embed_special(BOS, b),
            self.embed_frames(prompt_semantic, prompt_acoustic),
            self.embed_special(TEXT, b),
            self.embed_text(text),
            self._audio_token(text, lengths, torch.full((b,), self.expected_frames(n), device=text.device)),
        ], dim=1)

    @staticmethod
    def target_places(frames: Tensor, count: int) -> Tensor:
        """``[B, count]``: the place of the frame that target frame ``k``'s input predicts
        (frame ``k + 1``) in targets of ``frames [B]`` frames."""
        k = torch.arange(count, device=frames.device, dtype=torch.float32)
        return (k[None, :] + 1.5) / frames.float().clamp_min(1)[:, None]

    # ----------------------------------------------------------------- backbone
    def run_backbone(self, embeds: Tensor, attention_mask: Tensor | None = None,
                     cache: DynamicCache | None = None) -> Tensor:
        """Input embeddings ``[B, S, H]`` -> hidden states ``[B, S, H]`` (``cache`` is extended in place)."""
        kwargs = {self._cache_kw: cache, "use_cache": cache is not None}
        out = self.backbone(inputs_embeds=embeds, attention_mask=attention_mask, **kwargs)
        return out.last_hidden_state

    def new_cache(self) -> DynamicCache:
        """An empty KV cache for :meth:`run_backbone`."""
        return DynamicCache(config=self.backbone.config)

    # ----------------------------------------------------------------- training
    def _pack(self, batch: TTSBatch) -> tuple[Tensor, Tensor, Tensor]:
        """Per item ``[BOS] prompt [TEXT] text [AUDIO] target`` packed left-aligned and right-padded.

        Returns embeddings ``[B, S, H]``, the attention mask ``[B, S]`` and the index of
        each item's ``[AUDIO]`` token ``[B]``.
        """
        b = batch.batch_size
        tp = batch.target_pointer
        if tp is not None and tp.shape != (b, batch.target_semantic.shape[1] + 1):
            raise ValueError(f"target_pointer must be [B, N + 1] = [{b}, {batch.target_semantic.shape[1] + 1}], "
                             f"got {tuple(tp.shape)}")
        prompt = self.embed_frames(batch.prompt_semantic, batch.prompt_acoustic)
        n_frames = batch.target_lengths
        places = self.target_places(n_frames, batch.target_semantic.shape[1])
        # Target frame k's input predicts frame k + 1, so it is told frame k + 1's pointer.
        pointer = None if batch.target_pointer is None else batch.target_pointer[:, 1:]
        target = self.embed_frames(batch.target_semantic, batch.target_acoustic,
                                   self.frame_cues(batch.text, batch.text_lengths, places, pointer))
        text = self.embed_text(batch.text, batch.text_lengths)
        audio = self._audio_token(batch.text, batch.text_lengths, n_frames)  # [B, 1, H]
        specials = self.special.weight
        p_len, l_len, n_len = batch.prompt_lengths.tolist(), batch.text_lengths.tolist(), batch.target_lengths.tolist()
        seqs = []
        for i in range(b):
            seqs.append(torch.cat([
                specials[BOS:BOS + 1], prompt[i, :p_len[i]], specials[TEXT:TEXT + 1], text[i, :l_len[i]],
                audio[i], target[i, :n_len[i]],
            ]))
        lengths = [s.shape[0] for s in seqs]
        s_max = max(lengths)
        if s_max > self.config.max_positions:
            raise ValueError(f"a training sequence of {s_max} positions exceeds max_positions="
                             f"{self.config.max_positions}; shorten prompts/targets in the data config")
        embeds = prompt.new_zeros(b, s_max, prompt.shape[-1])
        mask = torch.zeros(b, s_max, dtype=torch.long, device=prompt.device)
        for i, s in enumerate(seqs):
            embeds[i, : s.shape[0]] = s
            mask[i, : s.shape[0]] = 1
        audio_pos = torch.tensor([p + t + 2 for p, t in zip(p_len, l_len, strict=True)], device=prompt.device)
        return embeds, mask, audio_pos

    def forward(self, batch: TTSBatch, generator: torch.Generator | None = None) -> TTSLoss:
        """Training losses: semantic cross-entropy (codes + EOA) and flow matching, on target frames only.

        Condition dropout applies in training mode only; ``generator`` draws the flow
        noise, times and dropout (None = the global generator).
        """
        cfg = self.config
        embeds, mask, audio_pos = self._pack(batch)
        hidden = self.run_backbone(embeds, attention_mask=mask)
        b, n_max = batch.target_semantic.shape
        n = batch.target_lengths
        # Predicting positions: [AUDIO] .. last target frame, i.e. n + 1 per item.
        j = torch.arange(n_max + 1, device=hidden.device)
        valid = j[None, :] <= n[:, None]  # [B, N + 1]
        pos = (audio_pos[:, None] + j[None, :]).clamp(max=hidden.shape[1] - 1)
        h = hidden.gather(1, pos[..., None].expand(-1, -1, hidden.shape[-1]))  # [B, N + 1, H]
        sem_target = F.pad(batch.target_semantic, (0, 1), value=0)
        sem_target = torch.where(j[None, :] == n[:, None], torch.full_like(sem_target, cfg.eoa_index), sem_target)
        logits = self.semantic_head(h[valid]).float()
        sem_loss = F.cross_entropy(logits, sem_target[valid])
        accuracy = (logits.argmax(-1) == sem_target[valid]).float().mean()
        frame_valid = j[None, :n_max] < n[:, None]  # [B, N]
        flow = flow_matching_loss(
            self.flow_head, h[:, :n_max][frame_valid], batch.target_acoustic[frame_valid],
            cond_dropout=cfg.cond_dropout if self.training else 0.0,
            samples_per_frame=cfg.flow_samples_per_frame, generator=generator,
        )
        total = cfg.semantic_loss_weight * sem_loss + cfg.flow_loss_weight * flow.loss
        align = None
        if self.align_head is not None:
            align = self._align_loss(h[:, :n_max], n, batch.text, batch.text_lengths)
            total = total + cfg.align_loss_weight * align
            align = align.detach()
        advance = None
        if self.advance_head is not None:
            # The state predicting frame j also predicts how far frame j + 1's pointer moves.
            steps = (batch.target_pointer[:, 1:] - batch.target_pointer[:, :-1]).clamp(0, cfg.advance_classes - 1)
            advance = F.cross_entropy(self.advance_head(h[:, :n_max][frame_valid]).float(), steps[frame_valid])
            total = total + advance
            advance = advance.detach()
        return TTSLoss(total, sem_loss.detach(), flow.loss.detach(), accuracy.detach(), flow.num_frames, align,
                       advance)

    def _align_loss(self, h: Tensor, frames: Tensor, text: Tensor, text_lengths: Tensor) -> Tensor:
        """CTC of the states predicting each target frame ``h [B, N, H]`` against the text's
        symbols (the language tag left out)."""
        b, n_max, _ = h.shape
        up, classes = self.config.align_upsample, self.frontend.vocab_size + 1
        log_probs = self.align_head(h).float().view(b, n_max * up, classes).log_softmax(-1)
        return F.ctc_loss(log_probs.transpose(0, 1), text[:, 1:], frames * up, text_lengths - 1,
                          blank=classes - 1, reduction="mean", zero_infinity=True)

    # ----------------------------------------------------------------- sampling
    def sample_semantic(self, h: Tensor, temperature: float, top_k: int, allow_eoa: bool,
                        generator: torch.Generator | None = None) -> Tensor:
        """Hidden states ``[N, H]`` -> one class per row ``[N]`` (a code, or ``eoa_index``)."""
        logits = self.semantic_head(h).float()
        if not allow_eoa:
            logits[:, self.config.eoa_index] = float("-inf")
        if temperature == 0:
            return logits.argmax(-1)
        logits = logits / temperature
        if 0 < top_k < logits.shape[-1]:
            kth = logits.topk(top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = logits.softmax(-1)
        return torch.multinomial(probs, 1, generator=generator)[:, 0]

    def sample_advance(self, h: Tensor, temperature: float, generator: torch.Generator | None = None) -> Tensor:
        """Hidden states ``[N, H]`` -> how many symbols the next frame's pointer moves on ``[N]``."""
        logits = self.advance_head(h).float()
        if temperature == 0:
            return logits.argmax(-1)
        return torch.multinomial((logits / temperature).softmax(-1), 1, generator=generator)[:, 0]

    def sample_acoustic(self, h: Tensor, sampler: FlowSampler, generator: torch.Generator | None = None) -> Tensor:
        """Hidden states ``[N, H]`` -> continuous acoustic vectors ``[N, A]`` (not yet on the grid)."""
        x0 = torch.randn(h.shape[0], self.config.acoustic_dim, device=h.device, dtype=h.dtype, generator=generator)
        return sampler.sample(self.flow_head, h, x0)

    # ----------------------------------------------------------------- files
    def save(self, folder: str | Path, overwrite: bool = True) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``folder`` (created), atomically per file;
        without ``overwrite`` a folder already holding a model is an error (FileExistsError)."""
        return save_weights_folder(folder, self, self.config.to_dict(), overwrite=overwrite)

    @classmethod
    def from_folder(cls, folder: str | Path, device: str | torch.device = "cpu") -> TTSModel:
        """Load a model saved with :meth:`save` (strict), in eval mode."""
        model = load_weights_folder(folder, "TTS model", lambda path: cls(TTSConfig.from_json(path)))
        return model.to(device).eval()
