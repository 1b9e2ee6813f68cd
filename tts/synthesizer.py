"""Text + voice prompt -> speech: the TTS network together with the codec it speaks.

Audio is 24 kHz mono; waveforms are ``[N]`` tensors (float, in [-1, 1]).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor

from codec import (
    FRAME_RATE,
    LATENT_SUFFIX,
    SAMPLE_RATE,
    HybridCodec,
    LatentFileError,
    Latents,
    load_latents,
)
from codec import load as load_codec

from .audio import read_voice
from .config import SamplingConfig
from .generate import FrameGenerator, check_prompt
from .model import TTSModel

PRETRAINED_DIR = Path(__file__).parent / "pretrained"

Voice = str | Path | Tensor | Latents


class Synthesizer:
    """Zero-shot voice-cloning TTS: :meth:`generate` for a whole utterance, :meth:`stream` for chunks.

    Args:
        model: the TTS network.
        codec: the codec whose latents the network was trained on (checked by weights hash
            when the model's config records one).
    """

    sample_rate: int = SAMPLE_RATE

    def __init__(self, model: TTSModel, codec: HybridCodec) -> None:
        cfg = model.config
        mismatches = [
            f"{name}: model {mine}, codec {theirs}"
            for name, mine, theirs in (
                ("semantic_codebook_size", cfg.semantic_codebook_size, codec.semantic_codebook_size),
                ("semantic_dim", cfg.semantic_dim, codec.semantic_dim),
                ("acoustic_dim", cfg.acoustic_dim, codec.acoustic_dim),
                ("acoustic_levels", cfg.acoustic_levels, codec.acoustic_levels),
            )
            if mine != theirs
        ]
        if mismatches:
            raise ValueError("TTS model and codec have different latent layouts (" + "; ".join(mismatches) + ")")
        if cfg.codec_latent_hash and cfg.codec_latent_hash != codec.latent_hash:
            raise ValueError(
                f"the TTS model was trained on latents of codec {cfg.codec!r} with latent hash "
                f"{cfg.codec_latent_hash[:12]}…, but the given codec's latent space is another "
                f"({codec.latent_hash[:12]}…)"
            )
        self.model = model.eval()
        self.codec = codec.eval()

    @property
    def device(self) -> torch.device:
        return self.model.device

    # ----------------------------------------------------------------- inputs
    def voice_prompt(self, voice: Voice, sample_rate: int | None = None) -> Latents:
        """Reference speech -> voice-prompt latents ``[1, T]``.

        ``voice`` is an audio file path, a ``.hylat`` file of this codec's latent space, a
        waveform tensor (``[N]`` or ``[C, N]``, with ``sample_rate``) or already-encoded
        :class:`codec.Latents`. A path that is not audio is a ``ValueError`` saying what it
        is (the checks of ``hylac-codec encode``: a folder, an empty file, text, a truncated
        WAV, ...). Shorter than
        ``min_prompt_seconds`` (1 s) is a ``ValueError``; shorter than 3 s works with a
        warning; longer than ``max_prompt_seconds`` (30 s) is trimmed with a warning.
        """
        cfg = self.model.config
        if isinstance(voice, Latents):
            check_prompt(self.model, voice)
            seconds = voice.num_samples / SAMPLE_RATE
            self._check_prompt_length(seconds)
            if seconds > cfg.max_prompt_seconds:
                voice = voice.frames(0, int(cfg.max_prompt_seconds * FRAME_RATE))
            return voice
        if isinstance(voice, (str, Path)):
            if sample_rate is not None:
                raise ValueError("sample_rate is read from the file; pass it only with a waveform tensor")
            if Path(voice).suffix.lower() == LATENT_SUFFIX and Path(voice).is_file():
                return self.voice_prompt(self._prompt_file_latents(Path(voice)))
            wav, sample_rate = read_voice(voice), SAMPLE_RATE
        elif isinstance(voice, Tensor):
            if sample_rate is None:
                raise ValueError("a waveform voice prompt needs its sample_rate")
            if voice.dim() not in (1, 2):
                raise ValueError(f"a waveform voice prompt must be [N] or [C, N], got shape {tuple(voice.shape)}")
            wav = voice
        else:
            raise TypeError(f"voice must be a path, a waveform tensor or codec.Latents, got {type(voice).__name__}")
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        seconds = wav.shape[-1] / sample_rate
        self._check_prompt_length(seconds)
        # Trim before encoding: no point encoding audio that is thrown away.
        wav = wav[..., : int(cfg.max_prompt_seconds * sample_rate)]
        return self.codec.encode(wav.float(), sample_rate)

    def _prompt_file_latents(self, path: Path) -> Latents:
        try:
            latents, _ = load_latents(path, self.codec)
        except LatentFileError as err:
            raise ValueError(f"voice prompt {err}") from None
        if latents.batch_size != 1:
            raise ValueError(f"voice prompt {str(path)!r} holds {latents.batch_size} channels of latents; "
                             f"a voice prompt is one")
        return latents

    def _check_prompt_length(self, seconds: float) -> None:
        cfg = self.model.config
        if seconds < cfg.min_prompt_seconds:
            raise ValueError(f"voice prompt is {seconds:.2f} s long; at least {cfg.min_prompt_seconds:g} s "
                             f"of reference speech is needed ({cfg.recommended_min_prompt_seconds:g}-"
                             f"{cfg.max_prompt_seconds:g} s works best)")
        if seconds < cfg.recommended_min_prompt_seconds:
            warnings.warn(f"voice prompt is only {seconds:.2f} s long; "
                          f"{cfg.recommended_min_prompt_seconds:g} s or more clones the voice better", stacklevel=3)
        if seconds > cfg.max_prompt_seconds:
            warnings.warn(f"voice prompt is {seconds:.1f} s long; using its first {cfg.max_prompt_seconds:g} s",
                          stacklevel=3)

    def encode_text(self, text: str, lang: str) -> list[int]:
        """Text -> token ids of the model's front-end (``ValueError`` for an unsupported language / empty text)."""
        return self.model.frontend.encode(text, lang)

    def _frames(self, text: str, lang: str, voice: Voice, sample_rate: int | None,
                sampling: SamplingConfig | None, seed: int | None) -> FrameGenerator:
        ids = self.encode_text(text, lang)  # text errors first: they are cheaper than encoding audio
        prompt = self.voice_prompt(voice, sample_rate)
        generator = None
        if seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(seed)
        return FrameGenerator(self.model, prompt, ids, sampling or SamplingConfig(), generator)

    # ----------------------------------------------------------------- outputs
    def generate_latents(self, text: str, lang: str, voice: Voice, sample_rate: int | None = None,
                         sampling: SamplingConfig | None = None, seed: int | None = None) -> Latents:
        """The generated frames as ``[1, T]`` latents (see :meth:`generate` for the arguments)."""
        frames = list(self._frames(text, lang, voice, sample_rate, sampling, seed))
        if not frames:
            return Latents(torch.zeros(1, 0, dtype=torch.long),
                           torch.zeros(1, 0, self.model.config.acoustic_dim, dtype=torch.long), 0,
                           self.model.config.acoustic_levels)
        return Latents.cat(frames)

    def generate(self, text: str, lang: str, voice: Voice, sample_rate: int | None = None,
                 sampling: SamplingConfig | None = None, seed: int | None = None) -> Tensor:
        """Speak ``text`` in language ``lang`` with the voice of ``voice``; returns ``[N]`` audio at 24 kHz.

        Args:
            text: what to say (non-empty).
            lang: one of ``codec.LANGUAGES``.
            voice: reference speech (see :meth:`voice_prompt`).
            sample_rate: rate of a waveform ``voice``.
            sampling: steps, CFG, temperature, top-k, length limit (defaults: :class:`SamplingConfig`).
            seed: makes the output reproducible.
        """
        latents = self.generate_latents(text, lang, voice, sample_rate, sampling, seed)
        if latents.num_frames == 0:
            return torch.zeros(0)
        return self.codec.decode(latents.to(self.device))[0, 0].cpu()

    def stream(self, text: str, lang: str, voice: Voice, sample_rate: int | None = None,
               sampling: SamplingConfig | None = None, seed: int | None = None) -> Iterator[Tensor]:
        """Like :meth:`generate`, but yields ``[1920]`` audio chunks as frames are made.

        Each frame goes straight through the codec's streaming decoder, so the first
        chunk is out after one backbone pass and one flow solve; concatenated, the
        chunks equal :meth:`generate`'s output for the same seed (to float rounding).
        The decoder steps run through the codec's TorchScript trace of a one-frame step
        (``HybridCodec.streaming(trace_frames=1)``): the first stream of a loaded model
        builds it (about a second), later streams reuse it.
        """
        frames = self._frames(text, lang, voice, sample_rate, sampling, seed)
        with self.codec.streaming(1, trace_frames=1):
            for frame in frames:
                yield self.codec.decode_chunk(frame.to(self.device))[0, 0].cpu()

    def save(self, folder: str | Path) -> Path:
        """Write the TTS model folder (the codec is referenced by ``config.codec``, not copied)."""
        return self.model.save(folder)


def available_models() -> list[str]:
    """Names of the TTS models shipped inside the package."""
    if not PRETRAINED_DIR.is_dir():
        return []
    return sorted(p.name for p in PRETRAINED_DIR.iterdir() if (p / "config.json").is_file())


def model_folder(name_or_path: str | Path) -> Path:
    """The folder of a TTS model: ``name_or_path`` itself when it is a folder, else the shipped model of that
    name (``FileNotFoundError`` listing the shipped ones)."""
    path = Path(name_or_path)
    if path.is_dir():
        return path
    if (PRETRAINED_DIR / str(name_or_path)).is_dir():
        return PRETRAINED_DIR / str(name_or_path)
    shipped = ", ".join(available_models()) or "none"
    raise FileNotFoundError(f"no TTS model {str(name_or_path)!r}: not a folder, nor a shipped model "
                            f"(shipped: {shipped})")


def load(name_or_path: str | Path = "hylac-tts-tiny", device: str | torch.device = "cpu",
         codec: HybridCodec | None = None) -> Synthesizer:
    """Load a TTS model (folder with ``config.json`` + ``model.safetensors``, or a shipped name).

    The codec named in its config is loaded too (a relative folder is looked up next to
    the TTS folder first), unless ``codec`` is given.
    """
    folder = model_folder(name_or_path)
    model = TTSModel.from_folder(folder, device)
    if codec is None:
        ref = model.config.codec
        local = folder / ref
        codec = load_codec(local if local.is_dir() else ref, device)
    return Synthesizer(model, codec.to(device))
