"""Systems with a torch network: hylac models and the neural peers (Mimi, DAC, EnCodec).

Besides `process` (quality), a :class:`NeuralCodec` exposes what the speed benchmark
times: batched `encode([B, 1, N]) -> codes` and `decode(codes) -> [B, 1, N]` at its own
`sample_rate`, its `module` (parameters, device) and, where implemented, per-frame
streaming latency (`stream`).

The peers are built from `transformers` default configurations with random weights,
which costs exactly the compute of trained weights (their quality is meaningless):
`MimiModel(MimiConfig())`, `DacModel` with the 24 kHz layout of the released DAC
(strides 2, 4, 5, 8; 32 codebooks) and `EncodecModel(EncodecConfig())` (24 kHz) at 1.5 kbps.
"""

from __future__ import annotations

import abc
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from benchmarks.systems.base import CodecRef, System, SystemOutput, SystemUnavailable
from codec.metrics import resample

if TYPE_CHECKING:
    from codec import HybridCodec


def sync(device: torch.device) -> None:
    """Wait for queued CUDA work, so wall-clock times cover it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class NeuralCodec(System):
    """A codec network: batched `encode([B, 1, N]) -> codes`, `decode(codes) -> audio`."""

    kind: str = "peer"  # "hylac" or "peer"
    #: Whether `stream` is implemented (the spec asks for hylac and Mimi).
    streams: bool = False
    #: Ways of streaming measured, each a row of its own ("" is the plain one).
    stream_variants: tuple[str, ...] = ("",)
    #: Whether it runs on the CPU only (int8 kernels).
    cpu_only: bool = False

    @property
    @abc.abstractmethod
    def module(self) -> torch.nn.Module: ...

    @property
    @abc.abstractmethod
    def sample_rate(self) -> int: ...

    @abc.abstractmethod
    def encode(self, wav: torch.Tensor) -> Any: ...

    @abc.abstractmethod
    def decode(self, codes: Any) -> torch.Tensor: ...

    @abc.abstractmethod
    def code_bits(self, codes: Any) -> float:
        """Bits of `codes` for one item of the batch."""

    def stream(self, num_frames: int, warmup: int, variant: str = "") -> tuple[list[float], str]:
        """Per-frame encode+decode latencies (seconds) and a note on how they were taken."""
        raise NotImplementedError(f"{self.name} has no streaming measurement")

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.module.parameters())

    def to(self, device: torch.device) -> None:
        self.module.to(device)

    def _run(self, wav: np.ndarray, sample_rate: int) -> SystemOutput:
        x = torch.from_numpy(resample(wav, sample_rate, self.sample_rate).astype(np.float32))[None, None]
        with torch.inference_mode():
            codes = self.encode(x.to(next(self.module.parameters()).device))
            decoded = self.decode(codes)
        audio = decoded.reshape(-1).to(torch.float64).cpu().numpy()
        return SystemOutput(audio=resample(audio, self.sample_rate, sample_rate),
                            bitrate_kbps=self.code_bits(codes) / (wav.size / sample_rate) / 1000.0)


def _timed_frames(step: Callable[[], None], device: torch.device, num_frames: int, warmup: int) -> list[float]:
    times = []
    for i in range(warmup + num_frames):
        start = time.perf_counter()
        step()
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


class Hylac(NeuralCodec):
    """A hylac codec model: `model.encode(wav, sr)` then `model.decode(latents)`.

    `model` is a loaded codec, or a name/folder for `codec.load`, loaded on first use
    (`int8`: with int8 weights). The bitrate counts the code bits of the frames actually
    produced (`frames * model.bitrate / model.frame_rate`). Decoded samples are on the
    input's timeline by construction (a low-bitrate neural decoder reconstructs the
    spectrum, not the phase, so cross-correlation would misplace them): no delay search.
    """

    kind = "hylac"
    streams = True
    stream_variants = ("", "traced")
    max_alignment_delay_s = 0.0

    def __init__(self, model: HybridCodec | str | Path, name: str | None = None, int8: bool = False) -> None:
        self.codec = CodecRef(model, int8)
        self.name = name or (self.codec.label if self.codec.source is not None else "hylac")

    @property
    def model(self) -> HybridCodec:
        try:
            return self.codec.get()
        except SystemUnavailable as exc:
            raise SystemUnavailable(f"{self.name}: {exc}") from None

    @property
    def module(self) -> torch.nn.Module:
        return self.model

    @property
    def sample_rate(self) -> int:
        return int(self.model.sample_rate)

    @property
    def nominal_kbps(self) -> float | None:  # known once the model is loaded
        return float(self.model.bitrate) / 1000.0 if self.unavailable_reason() is None else None

    @property
    def cpu_only(self) -> bool:
        return bool(self.model.int8)

    def unavailable_reason(self) -> str | None:
        reason = self.codec.unavailable_reason()
        return f"{self.name}: {reason}" if reason else None

    def encode(self, wav: torch.Tensor) -> Any:
        return self.model.encode(wav, self.sample_rate)

    def decode(self, codes: Any) -> torch.Tensor:
        return self.model.decode(codes)

    def code_bits(self, codes: Any) -> float:
        model = self.model
        return int(codes.semantic.shape[-1]) * float(model.bitrate) / float(model.frame_rate)

    def stream(self, num_frames: int, warmup: int, variant: str = "") -> tuple[list[float], str]:
        model = self.model
        device = next(model.parameters()).device
        chunk = torch.randn(1, 1, int(model.frame_size), device=device) * 0.1
        trace_frames = 1 if variant == "traced" else None
        with torch.inference_mode(), model.streaming(1, trace_frames=trace_frames):
            times = _timed_frames(lambda: model.decode_chunk(model.encode_chunk(chunk)), device, num_frames, warmup)
        how = "model.streaming(1, trace_frames=1): traced steps" if trace_frames else "model.streaming(1)"
        weights = ", int8 weights (use_int8)" if model.int8 else ""
        return times, f"true streaming: {how}{weights}, encode_chunk + decode_chunk per frame"



class HylacFrontEnd(Hylac):
    """The DSP analysis front-end of an analysis-driven hylac model alone (its share of the
    encoder's cost): `encode` analyses the audio as the encoder does; there is nothing to decode."""

    streams = False

    def __init__(self, model: HybridCodec | str | Path, name: str) -> None:
        super().__init__(model, name)

    def encode(self, wav: torch.Tensor) -> Any:
        from codec.analysis import analyze
        from codec.latents import FRAME_SIZE

        n = wav.shape[-1]
        x = torch.nn.functional.pad(wav, (0, -n % FRAME_SIZE))
        return analyze(x, self.model.config.analysis)

    def decode(self, codes: Any) -> torch.Tensor:
        return codes.f0.new_zeros(codes.f0.shape[0], 1, 0)

    def code_bits(self, codes: Any) -> float:
        return 0.0

class _TransformersPeer(NeuralCodec):
    """A `transformers` codec model with random weights (see the module docstring)."""

    def __init__(self, name: str, module: torch.nn.Module, sample_rate: int, cardinality: int) -> None:
        self.name = name
        self._module = module.eval()
        self._sample_rate = sample_rate
        self._bits_per_code = math.log2(cardinality)

    @property
    def module(self) -> torch.nn.Module:
        return self._module

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    def code_bits(self, codes: Any) -> float:
        audio_codes = codes[0] if isinstance(codes, tuple) else codes
        return audio_codes.numel() / audio_codes.shape[-3] * self._bits_per_code  # [..., B, K, T]


class Mimi(_TransformersPeer):
    """transformers `MimiModel(MimiConfig())`: 24 kHz, 12.5 Hz, all default codebooks."""

    streams = True

    def __init__(self) -> None:
        from transformers import MimiConfig, MimiModel

        config = MimiConfig()
        super().__init__("mimi", MimiModel(config), int(config.sampling_rate), int(config.codebook_size))

    def encode(self, wav: torch.Tensor) -> Any:
        return self.module.encode(wav).audio_codes

    def decode(self, codes: Any) -> torch.Tensor:
        return self.module.decode(codes).audio_values

    def stream(self, num_frames: int, warmup: int, variant: str = "") -> tuple[list[float], str]:
        model = self.module
        device = next(model.parameters()).device
        frame = int(round(self.sample_rate / model.config.frame_rate))
        chunk = torch.randn(1, 1, frame, device=device) * 0.1
        caches: dict[str, Any] = {"encoder": None, "padding": None, "decoder": None}

        def step() -> None:
            out = model.encode(chunk, encoder_cache=caches["encoder"], padding_cache=caches["padding"],
                               use_streaming=True)
            caches["encoder"], caches["padding"] = out.encoder_cache, out.padding_cache
            caches["decoder"] = model.decode(out.audio_codes, decoder_cache=caches["decoder"],
                                             use_cache=True).decoder_cache

        with torch.inference_mode():
            times = _timed_frames(step, device, num_frames, warmup)
        note = ("encoder streams with its transformer KV cache and conv padding cache "
                "(use_streaming=True); the decoder keeps its transformer KV cache, but the "
                "transformers implementation has no state for its transposed convolutions, so "
                "each frame is decoded without the conv overlap: the same compute per frame, "
                "not sample-exact audio")
        return times, note


class Dac(_TransformersPeer):
    """transformers `DacModel` in the layout of the released 24 kHz DAC."""

    def __init__(self) -> None:
        from transformers import DacConfig, DacModel

        # DacConfig() defaults to the 16 kHz model; the 24 kHz release uses strides
        # 2, 4, 5, 8 (hop 320, 75 Hz) and 32 codebooks.
        config = DacConfig(sampling_rate=24000, downsampling_ratios=[2, 4, 5, 8], n_codebooks=32)
        super().__init__("dac", DacModel(config), 24000, int(config.codebook_size))

    def encode(self, wav: torch.Tensor) -> Any:
        return self.module.encode(wav).audio_codes

    def decode(self, codes: Any) -> torch.Tensor:
        return self.module.decode(audio_codes=codes).audio_values


class Encodec(_TransformersPeer):
    """transformers `EncodecModel(EncodecConfig())`: 24 kHz, 75 Hz, at 1.5 kbps."""

    def __init__(self) -> None:
        from transformers import EncodecConfig, EncodecModel

        config = EncodecConfig()
        super().__init__("encodec", EncodecModel(config), int(config.sampling_rate), int(config.codebook_size))
        self.bandwidth = float(min(config.target_bandwidths))

    def encode(self, wav: torch.Tensor) -> Any:
        out = self.module.encode(wav, bandwidth=self.bandwidth)
        return out.audio_codes, out.audio_scales

    def decode(self, codes: Any) -> torch.Tensor:
        audio_codes, audio_scales = codes
        return self.module.decode(audio_codes, audio_scales).audio_values


#: The neural peers by name.
PEERS: dict[str, Callable[[], NeuralCodec]] = {"mimi": Mimi, "dac": Dac, "encodec": Encodec}
