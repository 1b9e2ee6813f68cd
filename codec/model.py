"""The hybrid semantic + acoustic codec: causal patch-transformer encoder and decoder.

Shapes: audio ``[B, 1, N]`` at 24 kHz; latent frames ``[B, T, D]`` at 12.5 Hz.
"""

from __future__ import annotations

import contextlib
import hashlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .audio import prepare_waveform
from .config import CodecConfig
from .latents import FRAME_RATE, FRAME_SIZE, SAMPLE_RATE, Latents, fsq_codes_to_values, num_frames
from .modules import (
    CausalConv1d,
    HarmonicHead,
    ISTFTHead,
    SourceFilterHead,
    StreamingModule,
    Transformer,
    Upsample1d,
    linear,
    set_int8,
    set_streaming,
)
from .pitch import estimate_f0
from .quantizers import FSQ, SemanticVQ, VQOutput
from .serialization import load_weights_folder, save_weights_folder


class Encoder(nn.Module):
    """``[B, 1, N]`` audio (N a multiple of 1920) -> ``[B, T, semantic_dim + acoustic_dim]`` at 12.5 Hz."""

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

    def forward(self, wav: Tensor) -> Tensor:
        b, _, n = wav.shape
        x = wav.reshape(b, n // self.patch, self.patch).transpose(1, 2)  # [B, 240, T100]
        x = self.inp(x)
        for stage, down in zip(self.stages, self.downs, strict=True):
            x = stage(x.transpose(1, 2)).transpose(1, 2)
            x = down(x)
        return linear(self.norm(x.transpose(1, 2)), self.out)


class Decoder(nn.Module):
    """``[B, T, semantic_dim + acoustic_dim]`` at 12.5 Hz -> ``[B, 1, T * 1920]`` audio."""

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        self.inp = nn.Linear(cfg.semantic_dim + cfg.acoustic_dim, cfg.dim)
        self.ups = nn.ModuleList()
        self.stages = nn.ModuleList()
        for layers, window, stride in zip(cfg.decoder_layers, cfg.decoder_windows, cfg.decoder_strides, strict=True):
            self.ups.append(Upsample1d(cfg.dim, cfg.dim, stride) if stride > 1 else CausalConv1d(cfg.dim, cfg.dim, 3))
            self.stages.append(Transformer(cfg.dim, cfg.num_heads, layers, window, cfg.mlp_ratio, cfg.layer_scale))
        self.norm = nn.LayerNorm(cfg.dim)
        self.out: nn.Module
        if cfg.decoder_head == "istft":
            self.out = ISTFTHead(cfg.dim, cfg.patch_size, cfg.istft_size)
        elif cfg.decoder_head == "harmonic":
            self.out = HarmonicHead(cfg.dim, cfg.patch_size, cfg.istft_size, cfg.harmonics, sample_rate=SAMPLE_RATE)
        elif cfg.decoder_head == "source_filter":
            self.out = SourceFilterHead(cfg.dim, cfg.patch_size, cfg.istft_size, cfg.envelope_bands,
                                        cfg.voicing_bands, sample_rate=SAMPLE_RATE)
        else:
            self.out = nn.Linear(cfg.dim, cfg.patch_size)

    def forward(self, z: Tensor) -> Tensor:
        return self.head(self.features(z))

    def features(self, z: Tensor) -> Tensor:
        """Decoder input ``[B, T, D_in]`` -> output-head features ``[B, T100, dim]`` (100 Hz)."""
        x = linear(z, self.inp).transpose(1, 2)  # [B, D, T]
        for up, stage in zip(self.ups, self.stages, strict=True):
            x = up(x)
            x = stage(x.transpose(1, 2)).transpose(1, 2)
        return self.norm(x.transpose(1, 2))

    def head(self, h: Tensor) -> Tensor:
        """Output-head features ``[B, T100, dim]`` -> audio ``[B, 1, T100 * 240]``."""
        if isinstance(self.out, (ISTFTHead, HarmonicHead, SourceFilterHead)):
            return self.out(h)
        patches = linear(h, self.out)  # [B, T100, 240]
        return patches.reshape(patches.shape[0], 1, -1)


class _TracedStep(nn.Module):
    """One streaming step of a codec half (``body``: its encoder or decoder), traceable.

    A traced step takes the states of the half's streaming blocks as extra inputs and
    returns the next ones, since a trace can only see tensors that flow through it.
    """

    def __init__(self, codec: nn.Module, body: nn.Module, run: Callable[..., Any]) -> None:
        super().__init__()
        self.codec = codec  # registered, so that the trace sees the weights as the codec's
        self.__dict__["run"] = run
        self.__dict__["blocks"] = [m for m in body.modules() if isinstance(m, StreamingModule)]
        self.__dict__["traced"] = None

    def steady(self) -> bool:
        return all(block.is_steady() for block in self.blocks)

    def forward(self, *args: Tensor) -> tuple[Tensor, ...]:
        n = len(self.blocks)
        for block, state in zip(self.blocks, args[len(args) - n:], strict=True):
            block.load_state_tensor(state)
        out = self.run(*args[: len(args) - n])
        out = out if isinstance(out, tuple) else (out,)
        return (*out, *(block.state_tensor() for block in self.blocks))

    def trace(self, *inputs: Tensor) -> None:
        states = tuple(block.state_tensor() for block in self.blocks)
        self.__dict__["traced"] = torch.jit.trace(self, (*inputs, *states), check_trace=False)

    def step(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        """Run the traced step from the blocks' current states and store the next ones."""
        out = self.traced(*inputs, *(block.state_tensor() for block in self.blocks))
        n = len(self.blocks)
        for block, state in zip(self.blocks, out[len(out) - n:], strict=True):
            block.load_state_tensor(state)
        return tuple(out[: len(out) - n])


@dataclass
class CodecOutput:
    """Result of a training forward pass (:meth:`HybridCodec.forward`).

    Attributes:
        audio: ``[B, 1, N]`` reconstruction, same length as the input.
        semantic: ``[B, T, semantic_dim]`` the semantic vector fed to the decoder
            (quantized for the items the schedule picked); teachers read it.
        vq: the semantic quantizer's output (codes, losses, perplexity).
        acoustic_codes: ``[B, T, acoustic_dim]`` int64 FSQ codes.
        f0: ``[B, N / 240]`` the F0 in Hz the harmonic or source-filter head predicted
            per 10 ms step (``None`` for the other heads).
        voicing: ``[B, N / 240, n]`` the source-filter head's voicing logits of its low
            bands, the voicing loss's input (``None`` for the other heads).
        pitch: the input's measured F0 ``[B, N / 240]`` (Hz) and voicing (bool) per step,
            from :func:`codec.pitch.estimate_f0`: the pitch loss's target, measured once per
            pass (``None`` for the other heads).
    """

    audio: Tensor
    semantic: Tensor
    vq: VQOutput
    acoustic_codes: Tensor
    f0: Tensor | None = None
    pitch: tuple[Tensor, Tensor] | None = None
    voicing: Tensor | None = None


class HybridCodec(nn.Module):
    """Streaming speech codec with one semantic VQ code and ``acoustic_dim`` FSQ codes per 80 ms frame.

    Use :meth:`encode` / :meth:`decode` for whole signals and, inside
    ``with model.streaming(batch_size):``, :meth:`encode_chunk` / :meth:`decode_chunk`
    for chunks of whole frames. Both paths give the same results.
    """

    sample_rate: int = SAMPLE_RATE
    frame_rate: float = FRAME_RATE
    frame_size: int = FRAME_SIZE

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.semantic_vq = SemanticVQ(config.semantic_dim, config.semantic_codebook_size, config.semantic_lookup_dim,
                                      config.dead_code_threshold, config.usage_decay)
        self.fsq = FSQ(config.acoustic_levels)
        self._stream_batch: int | None = None
        # The l2-normalised semantic codebook, computed once per streaming session instead of
        # twice per chunk (it is a large share of a one-frame step); None outside streaming.
        self._stream_codebook: Tensor | None = None
        self._int8 = False
        # Traced encoder / decoder steps of a streaming session (streaming(trace_frames=...)),
        # and those of earlier sessions by (batch, frames, device, dtype), with what they were
        # made from.
        self._traces: dict[str, _TracedStep] = {}
        self._trace_frames: int | None = None
        self._trace_cache: dict[tuple, tuple[tuple, dict[str, _TracedStep]]] = {}

    # ----------------------------------------------------------------- properties
    @property
    def name(self) -> str:
        return self.config.name

    @property
    def bitrate(self) -> float:
        """Bits per second of the codes (about 2140 for the default 8192 x 21^36 layout)."""
        return self.config.bitrate

    @property
    def semantic_codebook_size(self) -> int:
        return self.config.semantic_codebook_size

    @property
    def semantic_dim(self) -> int:
        return self.config.semantic_dim

    @property
    def acoustic_dim(self) -> int:
        return self.config.acoustic_dim

    @property
    def acoustic_levels(self) -> int:
        return self.config.acoustic_levels

    @property
    def weights_hash(self) -> str:
        """SHA-256 (hex) of all the weights: identifies exactly this codec."""
        return self._hash_state(lambda key: True)

    @property
    def latent_hash(self) -> str:
        """SHA-256 (hex) of what gives the codes their meaning: the latent layout and the
        encoder and quantizer weights, not the decoder's.

        Codecs with the same latent hash write and read interchangeable codes, so a
        decoder fine-tune (``trainer.freeze: [codec.encoder, codec.semantic_vq]``) keeps
        latent files and TTS models made with the original codec valid."""
        layout = (self.sample_rate, self.frame_rate, self.semantic_codebook_size, self.semantic_dim,
                  self.acoustic_dim, self.acoustic_levels)
        return self._hash_state(lambda key: not key.startswith("decoder."), repr(layout))

    def _hash_state(self, keep: Callable[[str], bool], prefix: str = "") -> str:
        h = hashlib.sha256(prefix.encode())
        for key, value in sorted(self.state_dict().items()):
            if keep(key):
                h.update(key.encode())
                h.update(value.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        return h.hexdigest()

    @property
    def _device(self) -> torch.device:
        return self.decoder.inp.weight.device

    # ----------------------------------------------------------------- latents
    def semantic_embedding(self, codes: Tensor) -> Tensor:
        """Semantic codes ``[B, T]`` -> the ``[B, T, semantic_dim]`` vectors the decoder sees."""
        return self.semantic_vq.embed(codes, self._stream_codebook)

    def _split(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return z[..., : self.config.semantic_dim], z[..., self.config.semantic_dim:]

    def _codes(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Encoder output ``[B, T, D]`` -> semantic ``[B, T]`` and acoustic ``[B, T, A]`` codes."""
        sem, ac = self._split(z)
        return self.semantic_vq.encode(sem, self._stream_codebook), self.fsq(ac).codes

    def _check_latents(self, latents: Latents) -> None:
        if not isinstance(latents, Latents):
            raise TypeError(f"decoding takes codec.Latents, got {type(latents).__name__}")
        if latents.acoustic_codes.shape[-1] != self.config.acoustic_dim:
            raise ValueError(f"latents have {latents.acoustic_codes.shape[-1]} acoustic dims, "
                             f"this codec uses {self.config.acoustic_dim}")
        if latents.acoustic_levels != self.config.acoustic_levels:
            raise ValueError(f"latents use {latents.acoustic_levels} FSQ levels, this codec {self.config.acoustic_levels}")
        codes = latents.acoustic_codes
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.config.acoustic_levels):
            raise ValueError(f"acoustic codes must be in [0, {self.config.acoustic_levels})")
        sem, size = latents.semantic, self.config.semantic_codebook_size
        if sem.numel() and (int(sem.min()) < 0 or int(sem.max()) >= size):
            raise ValueError(f"semantic codes must be in [0, {size}), got [{int(sem.min())}, {int(sem.max())}]")

    def _decoder_input(self, semantic: Tensor, acoustic_codes: Tensor) -> Tensor:
        """Checked codes ``[B, T]`` and ``[B, T, acoustic_dim]`` -> decoder input ``[B, T, D]``."""
        sem = self.semantic_embedding(semantic)
        ac = fsq_codes_to_values(acoustic_codes, self.config.acoustic_levels)
        return torch.cat([sem, ac], dim=-1)

    def _encode_step(self, wav: Tensor) -> tuple[Tensor, Tensor]:
        """Prepared ``[B, 1, n]`` 24 kHz audio -> its codes (see :meth:`_codes`)."""
        return self._codes(self.encoder(wav))

    def _decode_step(self, semantic: Tensor, acoustic_codes: Tensor) -> Tensor:
        return self.decoder(self._decoder_input(semantic, acoustic_codes))

    # ----------------------------------------------------------------- offline API
    def _check_not_streaming(self, what: str) -> None:
        if self._stream_batch is not None:
            raise RuntimeError(f"{what}() called inside streaming(); use {what}_chunk() there")

    @contextlib.contextmanager
    def _chunked(self, module: nn.Module) -> Iterator[None]:
        set_streaming(module, True)
        try:
            yield
        finally:
            set_streaming(module, False)

    @torch.inference_mode()
    def encode(self, wav: Tensor, sample_rate: int) -> Latents:
        """Audio ``[N]``, ``[C, N]`` or ``[B, C, N]`` at any rate -> :class:`Latents` with ``ceil(N24k / 1920)`` frames.

        Channels are down-mixed and the rate converted to 24 kHz first. Long inputs are
        processed chunk by chunk through the streaming path, so memory stays bounded.
        """
        self._check_not_streaming("encode")
        x = prepare_waveform(wav, sample_rate).to(self._device)
        n = x.shape[-1]
        x = F.pad(x, (0, num_frames(n) * FRAME_SIZE - n))
        step = self.config.offline_chunk_frames * FRAME_SIZE
        with self._chunked(self.encoder):
            z = torch.cat([self.encoder(x[..., i:i + step]) for i in range(0, x.shape[-1], step)], dim=1)
        return Latents(*self._codes(z), n, self.config.acoustic_levels)

    @torch.inference_mode()
    def decode(self, latents: Latents) -> Tensor:
        """:class:`Latents` -> ``[B, 1, latents.num_samples]`` audio at 24 kHz in [-1, 1]."""
        self._check_not_streaming("decode")
        self._check_latents(latents)
        device = self._device
        z = self._decoder_input(latents.semantic.to(device), latents.acoustic_codes.to(device))
        step = self.config.offline_chunk_frames
        with self._chunked(self.decoder):
            audio = torch.cat([self.decoder(z[:, i:i + step]) for i in range(0, z.shape[1], step)], dim=-1)
        return audio[..., : latents.num_samples].clamp(-1.0, 1.0)

    # ----------------------------------------------------------------- streaming API
    @contextlib.contextmanager
    def streaming(self, batch_size: int, trace_frames: int | None = None) -> Iterator[HybridCodec]:
        """Carry encoder and decoder state across :meth:`encode_chunk` / :meth:`decode_chunk` calls.

        Values derived from the weights (the normalised semantic codebook, attention biases)
        are computed once per session: weights must not change inside it.

        ``trace_frames``: also prepare, on entry, TorchScript traces of one encoder step and
        one decoder step for chunks of that many frames (about a second the first time; the
        traces stay with the model for later sessions of the same batch and chunk size while
        the weights and :meth:`use_int8` stay as they are). Once the attention windows are
        full (from the third 80 ms frame on for hylac-tiny), chunks of that size run through
        the traces, which cuts Python's per-operation overhead: with :meth:`use_int8`, one
        frame in and out in about a third of the plain time on one CPU thread. Same results
        as the untraced steps (to float rounding); other chunk sizes run untraced.
        """
        if self._stream_batch is not None:
            raise RuntimeError("already streaming")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if trace_frames is not None and (isinstance(trace_frames, bool) or not isinstance(trace_frames, int)
                                         or trace_frames < 1):
            raise ValueError(f"trace_frames must be an integer >= 1 or None, got {trace_frames!r}")
        self._stream_batch = batch_size
        set_streaming(self, True)
        try:
            with torch.no_grad():
                self._stream_codebook = self.semantic_vq.normalized_codebook()
            if trace_frames is not None:
                self._prepare_traces(batch_size, trace_frames)
                set_streaming(self, True)  # the session starts from fresh states
            yield self
        finally:
            set_streaming(self, False)
            self._stream_batch = None
            self._stream_codebook = None
            self._traces = {}
            self._trace_frames = None

    def _prepare_traces(self, batch: int, frames: int) -> None:
        """Reuse the traces of an earlier session made with the same weights, or build them."""
        key = (batch, frames, str(self._device), self.decoder.inp.weight.dtype)
        # What the traces bake in: every weight (storage and in-place version) and the int8 modes.
        # Inference tensors keep no version counter; they cannot change outside inference mode.
        made_from = (tuple((p.data_ptr(), -1 if p.is_inference() else p._version) for p in self.parameters()),
                     tuple(m.__dict__.get("_int8", False) for m in self.modules()))
        cached = self._trace_cache.get(key)
        if cached is not None and cached[0] == made_from:
            self._traces, self._trace_frames = cached[1], frames
            return
        self._build_traces(batch, frames)
        if len(self._trace_cache) >= 4:  # a few shapes at most; each holds a copy of the graphs
            self._trace_cache.pop(next(iter(self._trace_cache)))
        self._trace_cache[key] = (made_from, self._traces)

    @torch.inference_mode()
    def _build_traces(self, batch: int, frames: int) -> None:
        """Trace the encoder and decoder steps for ``frames``-frame chunks from their steady state."""
        device, dtype = self._device, self.decoder.inp.weight.dtype
        wav = torch.zeros(batch, 1, frames * FRAME_SIZE, device=device, dtype=dtype)
        semantic = torch.zeros(batch, frames, dtype=torch.long, device=device)
        acoustic = torch.full((batch, frames, self.config.acoustic_dim), self.config.acoustic_levels // 2,
                              dtype=torch.long, device=device)
        steps = {"encode": _TracedStep(self, self.encoder, self._encode_step),
                 "decode": _TracedStep(self, self.decoder, self._decode_step)}
        self._traces = {}
        inputs = {"encode": (wav,), "decode": (semantic, acoustic)}
        for name, step in steps.items():
            # Silence until every window is full, then one step more, so that the steady state's
            # attention biases are cached and enter the trace as constants, not as computations.
            for _ in range(1024):
                if step.steady():
                    break
                step.run(*inputs[name])
            else:
                raise RuntimeError(f"the {name} state did not settle; cannot trace it")
            step.run(*inputs[name])
            with warnings.catch_warnings():
                # Shape checks and input validation become constants of the trace: shapes are
                # fixed per trace, and inputs are validated before a traced step is called.
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                # PyTorch marks torch.jit deprecated in favour of torch.compile, which needs a C++
                # toolchain and minutes of compilation on a CPU; the trace needs neither.
                warnings.simplefilter("ignore", DeprecationWarning)
                try:
                    step.trace(*inputs[name])
                except Exception as err:  # a PyTorch without TorchScript: stream untraced
                    warnings.warn(f"streaming(trace_frames=...): cannot trace the {name} step "
                                  f"({type(err).__name__}: {err}); running it untraced", RuntimeWarning,
                                  stacklevel=4)
                    continue
            self._traces[name] = step
        self._trace_frames = frames

    def _traced(self, name: str, frames: int) -> _TracedStep | None:
        step = self._traces.get(name)
        if step is None or frames != self._trace_frames or not step.steady():
            return None
        return step

    def _check_streaming(self, batch: int, what: str) -> None:
        if self._stream_batch is None:
            raise RuntimeError(f"{what}() needs `with model.streaming(batch_size):`")
        if batch != self._stream_batch:
            raise ValueError(f"{what}() got batch {batch}, streaming was set up for {self._stream_batch}")

    @torch.inference_mode()
    def encode_chunk(self, wav: Tensor) -> Latents:
        """``[B, 1, n]`` (or ``[B, n]``) 24 kHz audio, ``n`` a multiple of 1920 -> ``n / 1920`` frames."""
        if isinstance(wav, Tensor) and wav.dim() == 2:
            wav = wav[:, None]
        if not isinstance(wav, Tensor) or wav.dim() != 3 or wav.shape[1] != 1:
            raise ValueError(f"encode_chunk() takes [B, 1, n] audio, got {getattr(wav, 'shape', type(wav))}")
        if wav.shape[-1] == 0 or wav.shape[-1] % FRAME_SIZE:
            raise ValueError(f"chunk of {wav.shape[-1]} samples is not a positive multiple of {FRAME_SIZE}")
        self._check_streaming(wav.shape[0], "encode_chunk")
        x = prepare_waveform(wav, SAMPLE_RATE).to(self._device)
        traced = self._traced("encode", x.shape[-1] // FRAME_SIZE)
        semantic, acoustic = traced.step(x) if traced is not None else self._encode_step(x)
        return Latents(semantic, acoustic, x.shape[-1], self.config.acoustic_levels)

    @torch.inference_mode()
    def decode_chunk(self, latents: Latents) -> Tensor:
        """``T`` frames -> ``[B, 1, T * 1920]`` audio continuing the previous chunks."""
        self._check_latents(latents)
        self._check_streaming(latents.batch_size, "decode_chunk")
        device = self._device
        semantic, acoustic = latents.semantic.to(device), latents.acoustic_codes.to(device)
        traced = self._traced("decode", semantic.shape[1])
        audio = traced.step(semantic, acoustic)[0] if traced is not None else self._decode_step(semantic, acoustic)
        return audio.clamp(-1.0, 1.0)

    # ----------------------------------------------------------------- int8
    @property
    def int8(self) -> bool:
        """Whether :meth:`use_int8` is on."""
        return self._int8

    def use_int8(self, enabled: bool = True) -> HybridCodec:
        """Run inference on the CPU with int8 weights (``quantized::linear_dynamic``); returns ``self``.

        Every linear map except the decoder's output head, which writes the waveform samples
        (in int8 it would raise hylac-tiny's mel distance from about 0.6 to 1.0). The weights
        are quantized per output channel and the inputs per call; training (autograd on) and
        GPU runs stay in float. Results follow the float model to within quantization noise,
        not exactly: about 95% of the codes encoded in int8 equal the float ones, so prefer
        float to make latents for training. For hylac-tiny's numbers see the README
        (``benchmarks/codec_quality.py --int8``). Made for real-time streaming on a CPU core,
        with :meth:`streaming`'s ``trace_frames``.
        """
        if self._stream_batch is not None:
            raise RuntimeError("use_int8() inside streaming(); call it before entering the session")
        if enabled and not {"fbgemm", "x86", "qnnpack"} & set(torch.backends.quantized.supported_engines):
            raise RuntimeError("this PyTorch build has no quantized CPU kernels (fbgemm/x86/qnnpack)")
        set_int8(self, enabled)
        if enabled:
            set_int8(self.decoder.out, False)
        self._int8 = enabled
        return self

    # ----------------------------------------------------------------- training
    def forward(self, wav: Tensor) -> CodecOutput:
        """Training pass: ``[B, 1, N]`` (N a multiple of 1920) -> reconstruction and quantizer outputs.

        In training mode the quantization schedule of the config is sampled per item;
        in eval mode everything is quantized, exactly as :meth:`encode` + :meth:`decode`.
        """
        if wav.shape[-1] % FRAME_SIZE:
            raise ValueError(f"training input length {wav.shape[-1]} is not a multiple of {FRAME_SIZE}")
        z = self.encoder(wav)
        sem, ac = self._split(z)
        b = wav.shape[0]
        cfg = self.config
        vq_mask = fsq_mode = None
        if self.training:
            vq_mask = torch.rand(b, device=wav.device) < cfg.semantic_vq_prob
            r = torch.rand(b, device=wav.device)
            fsq_mode = torch.full((b,), 2, device=wav.device, dtype=torch.long)
            fsq_mode[r < cfg.acoustic_quantize_prob + cfg.acoustic_dither_prob] = 1
            fsq_mode[r < cfg.acoustic_quantize_prob] = 0
        vq = self.semantic_vq(sem, vq_mask)
        fsq = self.fsq(ac, fsq_mode)
        h = self.decoder.features(torch.cat([vq.vector, fsq.values], dim=-1))
        head = self.decoder.out
        if not isinstance(head, (HarmonicHead, SourceFilterHead)):
            return CodecOutput(self.decoder.head(h), vq.vector, vq, fsq.codes)
        if isinstance(head, SourceFilterHead):
            f0, _, voicing = head.controls(h)
        else:
            f0, voicing = head.f0(h), None
        with torch.autocast(wav.device.type, enabled=False):  # FFTs and cumulative sums in float32
            measured, voiced = estimate_f0(wav.float(), cfg.patch_size)
        drive = f0
        if self.training and cfg.f0_forcing_prob > 0:
            forced = voiced & (torch.rand(b, 1, device=wav.device) < cfg.f0_forcing_prob)
            drive = torch.where(forced, measured, f0)
        audio, _ = head.step(h, head.init_state(h), drive)
        return CodecOutput(audio, vq.vector, vq, fsq.codes, f0, (measured, voiced), voicing)

    # ----------------------------------------------------------------- files
    def save(self, folder: str | Path, dtype: torch.dtype = torch.float32, overwrite: bool = True) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``folder`` (created), atomically per file;
        without ``overwrite`` a folder already holding a model is an error (FileExistsError)."""
        return save_weights_folder(folder, self, self.config.to_dict(), dtype, overwrite)

    @classmethod
    def from_folder(cls, folder: str | Path, device: str | torch.device = "cpu") -> HybridCodec:
        model = load_weights_folder(folder, "codec", lambda path: cls(CodecConfig.from_json(path)))
        return model.to(device).eval()


PRETRAINED_DIR = Path(__file__).parent / "pretrained"


def available_models() -> list[str]:
    """Names of the models shipped inside the package."""
    if not PRETRAINED_DIR.is_dir():
        return []
    return sorted(p.name for p in PRETRAINED_DIR.iterdir() if (p / "config.json").is_file())


def load(name_or_path: str | Path = "hylac-tiny", device: str | torch.device = "cpu") -> HybridCodec:
    """Load a codec in eval mode from a folder (an exported model, or a training checkpoint
    ``OUT_DIR/checkpoints/step_N``), a shipped model name, or a hub id (network permitting)."""
    path = Path(name_or_path)
    if path.is_dir():
        if not (path / "config.json").exists() and (path / "codec.safetensors").exists():
            from .train import load_checkpoint  # the training side imports this module

            return load_checkpoint(path, device)
        return HybridCodec.from_folder(path, device)
    name = str(name_or_path)
    if (PRETRAINED_DIR / name).is_dir():
        return HybridCodec.from_folder(PRETRAINED_DIR / name, device)
    if "/" in name and not path.exists() and not name.startswith((".", "/")):
        try:
            from huggingface_hub import snapshot_download

            local = snapshot_download(name, allow_patterns=["config.json", "model.safetensors", "README.md"])
        except Exception as e:
            raise FileNotFoundError(f"cannot fetch codec {name!r} from the hub ({type(e).__name__}: {e}); "
                                    f"pass a local folder instead") from None
        return HybridCodec.from_folder(local, device)
    raise FileNotFoundError(f"no codec at {name!r}: not a folder with config.json + model.safetensors, and not a "
                            f"shipped model (shipped: {', '.join(available_models()) or 'none'})")
