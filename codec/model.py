"""The hybrid semantic + acoustic codec: encoder -> hybrid quantizer -> decoder -> output head.

Shapes: audio ``[B, 1, N]`` at 24 kHz; latent frames ``[B, T, D]`` at 12.5 Hz.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codec.analysis import Analysis
from codec.config import CodecConfig
from codec.decoder import Decoder
from codec.encoder import Encoder
from codec.heads import HeadOutput
from codec.io.audio import prepare_waveform
from codec.io.weights import load_weights_folder, save_weights_folder
from codec.latents import FRAME_RATE, FRAME_SIZE, SAMPLE_RATE, Latents, num_frames
from codec.nn.int8 import swap_int8
from codec.nn.streaming import set_streaming
from codec.nn.trace import TraceCache, TracedStep, trace_steps
from codec.quantize import HybridQuantized, HybridQuantizer

#: Weight names in files (model folders, checkpoints, and the hashes latent files and TTS
#: models record) that differ from the module paths, as (file prefix, module prefix). The
#: file names predate the hybrid quantizer module; renaming them would change every hash.
WEIGHT_NAMES = (("semantic_vq.", "quantizer.semantic."),)


def _rename(state: dict[str, Any], prefix: str, pairs: tuple[tuple[str, str], ...]) -> None:
    for key in [k for k in state if k.startswith(prefix)]:
        for old, new in pairs:
            if key.startswith(prefix + old):
                state[prefix + new + key[len(prefix + old):]] = state.pop(key)
                break


@dataclass
class CodecOutput:
    """Result of a training forward pass (:meth:`HybridCodec.forward`).

    Attributes:
        audio: ``[B, 1, N]`` reconstruction, same length as the input (None for a pass from
            a precomputed analysis).
        quantized: the hybrid quantizer's output (semantic vector and codes, VQ losses and
            perplexity, acoustic codes).
        head: the output head's controls and their targets (empty for heads without any).
    """

    audio: Tensor | None
    quantized: HybridQuantized
    head: HeadOutput


def _from_config(field: str) -> property:
    """A read-only property giving ``self.config.<field>``."""
    return property(lambda self: getattr(self.config, field), doc=f"``config.{field}``")


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
        self.quantizer = HybridQuantizer(config)
        self.decoder = Decoder(config)
        self.phonemes = (nn.Linear(config.semantic_dim, config.phoneme_upsample * config.phoneme_classes)
                         if config.phoneme_upsample else None)
        self._stream_batch: int | None = None
        self._int8 = False
        # Traced encoder / decoder steps of a streaming session (streaming(trace_frames=...)),
        # and those of earlier sessions.
        self._traces: dict[str, TracedStep] = {}
        self._trace_frames: int | None = None
        self._trace_cache = TraceCache()
        self.register_state_dict_post_hook(
            lambda module, state, prefix, meta: _rename(state, prefix, tuple((n, o) for o, n in WEIGHT_NAMES)))
        self.register_load_state_dict_pre_hook(lambda module, state, prefix, *_: _rename(state, prefix, WEIGHT_NAMES))

    # ----------------------------------------------------------------- properties
    # The latent layout, read from the config: name, bitrate (bits per second of the codes,
    # about 2140 for the default 8192 x 21^36 layout) and the stream sizes.
    name = _from_config("name")
    bitrate = _from_config("bitrate")
    semantic_codebook_size = _from_config("semantic_codebook_size")
    semantic_dim = _from_config("semantic_dim")
    acoustic_dim = _from_config("acoustic_dim")
    acoustic_levels = _from_config("acoustic_levels")

    @property
    def device(self) -> torch.device:
        """Where the weights are."""
        return self.decoder.inp.weight.device

    @property
    def weights_hash(self) -> str:
        """SHA-256 (hex) of all the weights: identifies exactly this codec."""
        return self._hash_state(lambda key: True)

    @property
    def latent_hash(self) -> str:
        """SHA-256 (hex) of what gives the codes their meaning: the latent layout and the
        encoder and quantizer weights, not the decoder's.

        Codecs with the same latent hash write and read interchangeable codes, so a
        decoder fine-tune (``trainer.freeze: [codec.encoder, codec.quantizer]``) keeps
        latent files and TTS models made with the original codec valid."""
        layout = (self.sample_rate, self.frame_rate, self.semantic_codebook_size, self.semantic_dim,
                  self.acoustic_dim, self.acoustic_levels)
        # The phoneme recogniser reads the semantic stream but gives the codes no meaning.
        return self._hash_state(lambda key: not key.startswith(("decoder.", "phonemes.")), repr(layout))

    def _hash_state(self, keep: Callable[[str], bool], prefix: str = "") -> str:
        h = hashlib.sha256(prefix.encode())
        for key, value in sorted(self.state_dict().items()):
            if keep(key):
                h.update(key.encode())
                h.update(value.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        return h.hexdigest()

    # ----------------------------------------------------------------- latents
    def semantic_embedding(self, codes: Tensor) -> Tensor:
        """Semantic codes ``[B, T]`` -> the ``[B, T, semantic_dim]`` vectors the decoder sees."""
        return self.quantizer.semantic_embedding(codes)

    @torch.inference_mode()
    def phoneme_log_probs(self, latents: Latents) -> Tensor:
        """``[B, T * phoneme_upsample, phoneme_classes]`` log posteriors of the phoneme
        recogniser over the semantic codes (class 0 is the CTC blank, the others index the
        phoneme vocabulary of :mod:`codec.training.phonemes`), for a codec exported with its
        phoneme teacher (``config.phoneme_upsample > 0``). The recogniser reads each frame's
        code alone, so a code's posteriors do not depend on its neighbours."""
        if self.phonemes is None:
            raise ValueError(f"codec {self.name!r} has no phoneme recogniser (exported without a phoneme teacher)")
        self._check_latents(latents)
        vectors = self.semantic_embedding(latents.semantic.to(self.device))
        b, t, _ = vectors.shape
        return self.phonemes(vectors).float().view(b, t * self.config.phoneme_upsample, -1).log_softmax(-1)

    @torch.inference_mode()
    def recognize_phonemes(self, latents: Latents) -> list[list[int]]:
        """The phoneme ids each item's semantic codes spell (greedy CTC on
        :meth:`phoneme_log_probs`: the most likely label per slot, repeats merged, blanks
        dropped). Ids index the phoneme vocabulary of :mod:`codec.training.phonemes`
        (``ids_to_phonemes`` writes them as IPA)."""
        best = self.phoneme_log_probs(latents).argmax(-1)
        out = []
        for row in best.tolist():
            ids = [c for i, c in enumerate(row) if c != 0 and (i == 0 or c != row[i - 1])]
            out.append(ids)
        return out

    def _check_latents(self, latents: Latents) -> None:
        if not isinstance(latents, Latents):
            raise TypeError(f"decoding takes codec.Latents, got {type(latents).__name__}")
        cfg = self.config
        if latents.acoustic_codes.shape[-1] != cfg.acoustic_dim:
            raise ValueError(f"latents have {latents.acoustic_codes.shape[-1]} acoustic dims, "
                             f"this codec uses {cfg.acoustic_dim}")
        if latents.acoustic_levels != cfg.acoustic_levels:
            raise ValueError(f"latents use {latents.acoustic_levels} FSQ levels, this codec {cfg.acoustic_levels}")
        codes = latents.acoustic_codes
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= cfg.acoustic_levels):
            raise ValueError(f"acoustic codes must be in [0, {cfg.acoustic_levels})")
        sem, size = latents.semantic, cfg.semantic_codebook_size
        if sem.numel() and (int(sem.min()) < 0 or int(sem.max()) >= size):
            raise ValueError(f"semantic codes must be in [0, {size}), got [{int(sem.min())}, {int(sem.max())}]")

    def _encode_step(self, wav: Tensor) -> tuple[Tensor, Tensor]:
        """Prepared ``[B, 1, n]`` 24 kHz audio -> semantic ``[B, T]`` and acoustic ``[B, T, A]`` codes."""
        return self.quantizer.encode(self.encoder(wav))

    def _decode_step(self, semantic: Tensor, acoustic_codes: Tensor) -> Tensor:
        return self.decoder(self.quantizer.decode(semantic, acoustic_codes))

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
        x = prepare_waveform(wav, sample_rate).to(self.device)
        n = x.shape[-1]
        x = F.pad(x, (0, num_frames(n) * FRAME_SIZE - n))
        step = self.config.offline_chunk_frames * FRAME_SIZE
        with self._chunked(self.encoder):
            z = torch.cat([self.encoder(x[..., i:i + step]) for i in range(0, x.shape[-1], step)], dim=1)
        return Latents(*self.quantizer.encode(z), n, self.config.acoustic_levels)

    @torch.inference_mode()
    def decode(self, latents: Latents) -> Tensor:
        """:class:`Latents` -> ``[B, 1, latents.num_samples]`` audio at 24 kHz in [-1, 1]."""
        self._check_not_streaming("decode")
        self._check_latents(latents)
        z = self.quantizer.decode(latents.semantic.to(self.device), latents.acoustic_codes.to(self.device))
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
            self.quantizer.cache_codebook(True)
            if trace_frames is not None:
                key = (batch_size, trace_frames, str(self.device), self.decoder.inp.weight.dtype)
                self._traces = self._trace_cache.get(key, self, lambda: self._build_traces(batch_size, trace_frames))
                self._trace_frames = trace_frames
                set_streaming(self, True)  # the session starts from fresh states
            yield self
        finally:
            set_streaming(self, False)
            self._stream_batch = None
            self.quantizer.cache_codebook(False)
            self._traces = {}
            self._trace_frames = None

    @torch.inference_mode()
    def _build_traces(self, batch: int, frames: int) -> dict[str, TracedStep]:
        """Trace the encoder and decoder steps for ``frames``-frame chunks from their steady state."""
        device, dtype = self.device, self.decoder.inp.weight.dtype
        wav = torch.zeros(batch, 1, frames * FRAME_SIZE, device=device, dtype=dtype)
        semantic = torch.zeros(batch, frames, dtype=torch.long, device=device)
        acoustic = torch.full((batch, frames, self.config.acoustic_dim), self.config.acoustic_levels // 2,
                              dtype=torch.long, device=device)
        return trace_steps({"encode": (TracedStep(self, self.encoder, self._encode_step), (wav,)),
                            "decode": (TracedStep(self, self.decoder, self._decode_step), (semantic, acoustic))})

    def _traced(self, name: str, frames: int) -> TracedStep | None:
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
        x = prepare_waveform(wav, SAMPLE_RATE).to(self.device)
        traced = self._traced("encode", x.shape[-1] // FRAME_SIZE)
        semantic, acoustic = traced.step(x) if traced is not None else self._encode_step(x)
        return Latents(semantic, acoustic, x.shape[-1], self.config.acoustic_levels)

    @torch.inference_mode()
    def decode_chunk(self, latents: Latents) -> Tensor:
        """``T`` frames -> ``[B, 1, T * 1920]`` audio continuing the previous chunks."""
        self._check_latents(latents)
        self._check_streaming(latents.batch_size, "decode_chunk")
        semantic, acoustic = latents.semantic.to(self.device), latents.acoustic_codes.to(self.device)
        traced = self._traced("decode", semantic.shape[1])
        audio = traced.step(semantic, acoustic)[0] if traced is not None else self._decode_step(semantic, acoustic)
        return audio.clamp(-1.0, 1.0)

    # ----------------------------------------------------------------- int8
    @property
    def int8(self) -> bool:
        """Whether :meth:`use_int8` is on."""
        return self._int8

    def use_int8(self, enabled: bool = True) -> HybridCodec:
        """Run inference on the CPU with int8 weights (:func:`codec.nn.int8.swap_int8`); returns ``self``.

        Every linear map except the decoder's output head, which writes the waveform samples
        (in int8 it would raise hylac-tiny's mel distance from about 0.6 to 1.0), and the
        quantizer's, which choose the codes. The weights are quantized per output channel
        and the inputs per call; training (autograd on) and GPU runs stay in float. Results
        follow the float model to within quantization noise, not exactly: about 95% of the
        codes encoded in int8 equal the float ones, so prefer float to make latents for
        training. For hylac-tiny's numbers see the README (``benchmarks.codec_quality
        --int8``). Made for real-time streaming on a CPU core, with :meth:`streaming`'s
        ``trace_frames``.
        """
        if self._stream_batch is not None:
            raise RuntimeError("use_int8() inside streaming(); call it before entering the session")
        if enabled and not {"fbgemm", "x86", "qnnpack"} & set(torch.backends.quantized.supported_engines):
            raise RuntimeError("this PyTorch build has no quantized CPU kernels (fbgemm/x86/qnnpack)")
        swap_int8(self, enabled, keep_float=(self.decoder.out, self.quantizer))
        self._int8 = enabled
        return self

    # ----------------------------------------------------------------- training
    def forward(self, wav: Tensor | Analysis) -> CodecOutput:
        """Training pass: ``[B, 1, N]`` (N a multiple of 1920) -> reconstruction, quantizer and head outputs.

        Given a precomputed causal :class:`~codec.analysis.Analysis` instead of audio (a codec
        reading the analysis alone, training from a feature cache), the pass stops at the
        head's controls (:meth:`forward_controls`): ``audio`` is None and the head output has
        no targets. In training mode the quantization schedule of the config is sampled per
        item; in eval mode everything is quantized, exactly as :meth:`encode` + :meth:`decode`.
        """
        if isinstance(wav, Analysis):
            quantized, controls = self.forward_controls(wav)
            return CodecOutput(None, quantized, HeadOutput(None, controls))
        if wav.shape[-1] % FRAME_SIZE:
            raise ValueError(f"training input length {wav.shape[-1]} is not a multiple of {FRAME_SIZE}")
        quantized = self.quantizer(self.encoder(wav))
        head = self.decoder.forward_train(quantized.latent, wav)
        return CodecOutput(head.audio, quantized, head)

    def forward_controls(self, analysis: Analysis) -> tuple[HybridQuantized, dict[str, Tensor]]:
        """Training pass from a precomputed causal analysis (``T`` steps, ``T`` a multiple of 8),
        without rendering audio: the quantizer's output and the head's named controls
        ``[B, T, ...]``. Only for a codec that reads the analysis alone and whose head has
        controls (the source-filter head); the controls are then trained towards the
        analysis targets (``loss.control``) at a fraction of a full pass's cost."""
        if self.encoder.waveform or self.encoder.analysis is None:
            raise ValueError(f"forward_controls needs the analysis front-end alone, this codec reads "
                             f"{self.config.frontend!r}")
        quantized = self.quantizer(self.encoder(None, analysis))
        return quantized, self.decoder.out.named_controls(self.decoder.head_input(quantized.latent))

    # ----------------------------------------------------------------- files
    def save(self, folder: str | Path, dtype: torch.dtype = torch.float32, overwrite: bool = True) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``folder`` (created), atomically per file;
        without ``overwrite`` a folder already holding a model is an error (FileExistsError)."""
        return save_weights_folder(folder, self, self.config.to_dict(), dtype, overwrite)

    @classmethod
    def from_folder(cls, folder: str | Path, device: str | torch.device = "cpu", config_file: str = "config.json",
                    weights_file: str = "model.safetensors") -> HybridCodec:
        """Load a model folder (or a training checkpoint's ``codec.json`` + ``codec.safetensors``), in eval mode."""
        model = load_weights_folder(folder, "codec", lambda path: cls(CodecConfig.from_json(path)),
                                    config_file, weights_file)
        return model.to(device).eval()
