"""Causal, streamable building blocks.

Conventions: conv modules take ``[B, C, T]``, transformer modules ``[B, T, D]``.

Every stateful block is a :class:`StreamingModule`: its forward takes a state and
returns the next one. Outside streaming the state is fresh (zeros / empty) for each
call, inside ``streaming()`` it is carried from chunk to chunk. There is one code path,
so a chunked run equals an offline run by construction.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class StreamingModule(nn.Module):
    """A module whose output may depend on previous chunks through a state."""

    def __init__(self) -> None:
        super().__init__()
        self._streaming = False
        self._state: Any = None

    def init_state(self, x: Tensor) -> Any:
        """The state before any input (matches the zero left-padding of an offline call)."""
        raise NotImplementedError

    def step(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        raise NotImplementedError

    # A traced streaming step (HybridCodec.streaming(trace_frames=...)) passes the state in
    # and out as one tensor; it is traced once the state has its steady-state structure.
    def is_steady(self) -> bool:
        """Whether the carried state has reached the structure it keeps from now on."""
        return self._state is not None

    def state_tensor(self) -> Tensor:
        """The carried state as one tensor (steady state only)."""
        return self._state

    def load_state_tensor(self, state: Tensor) -> None:
        """Carry ``state`` (from :meth:`state_tensor` of a steady block) into the next step."""
        self.__dict__["_state"] = state

    def forward(self, x: Tensor) -> Tensor:
        state = self._state if self._streaming else None
        if state is None:
            state = self.init_state(x)
        y, state = self.step(x, state)
        if self._streaming:
            # Plain attribute write: nn.Module.__setattr__ checks a state is no parameter,
            # buffer or submodule, a cost paid on every streaming step.
            self.__dict__["_state"] = state
        return y


def set_streaming(module: nn.Module, enabled: bool) -> None:
    """Turn streaming on (fresh states) or off for every streaming block in ``module``."""
    for m in module.modules():
        if isinstance(m, StreamingModule):
            m._streaming = enabled
            m._state = None


#: Up to this many output steps, convolutions run as a plain matmul: for the few steps of a
#: streaming chunk the generic conv kernels spend far longer on setup than on arithmetic.
MATMUL_CONV_MAX_STEPS = 32


def set_int8(module: nn.Module, enabled: bool) -> None:
    """Run the linear maps in ``module`` with int8 weights at CPU inference, or back in float."""
    for m in module.modules():
        m.__dict__["_int8"] = enabled
        m.__dict__.pop("_int8_weight", None)
        m.__dict__.pop("_int8_key", None)


def linear_map(x: Tensor, owner: nn.Module, params: tuple[Tensor | None, ...],
               make: Callable[[], tuple[Tensor, Tensor | None]]) -> Tensor:
    """``F.linear(x, *make())``, in int8 where :func:`set_int8` asked for it.

    ``make()`` gives the map as ``(weight [N, K], bias [N] or None)``, derived from
    ``params``, the parameters of ``owner``. In int8 mode, without autograd and on the
    CPU, the weight is quantized per output channel and the input per call
    (``quantized::linear_dynamic``): 4x less weight memory to stream through the caches.
    The int8 copy is remade whenever a parameter changes (new storage or an in-place
    update), so training between inference calls cannot leave it stale.
    """
    if not owner.__dict__.get("_int8", False) or torch.is_grad_enabled() or x.device.type != "cpu":
        return F.linear(x, *make())
    # Inference tensors keep no version counter; they cannot change outside inference mode.
    key = tuple((p.data_ptr(), -1 if p.is_inference() else p._version) for p in params if p is not None)
    state = owner.__dict__
    if state.get("_int8_key") != key:
        weight, bias = make()
        weight = weight.detach().float()
        scale = (weight.abs().amax(dim=1) / 127.0).clamp_min(1e-12).double()
        zero = torch.zeros(weight.shape[0], dtype=torch.long)
        q = torch.quantize_per_channel(weight, scale, zero, 0, torch.qint8)
        bias = None if bias is None else bias.detach().float()
        # A plain module attribute: where torch.jit.trace finds it when it traces a streaming step.
        state["_int8_weight"] = torch.ops.quantized.linear_prepack(q, bias)
        state["_int8_key"] = key
    # reduce_range: 7-bit inputs, so that the AVX2 kernels' 16-bit pair sums cannot saturate.
    return torch.ops.quantized.linear_dynamic(x.float(), state["_int8_weight"], True).to(x.dtype)


def linear(x: Tensor, layer: nn.Linear) -> Tensor:
    """``layer(x)`` through :func:`linear_map`."""
    return linear_map(x, layer, (layer.weight, layer.bias), lambda: (layer.weight, layer.bias))


class CausalConv1d(StreamingModule):
    """Strided causal conv: output step ``j`` sees inputs up to the end of its own stride block.

    ``[B, C_in, T] -> [B, C_out, T / stride]``; ``T`` must be a multiple of ``stride``.
    The state is the last ``kernel - stride`` input steps.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__()
        if kernel_size < stride:
            raise ValueError("kernel_size must be >= stride")
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride)
        self.context = kernel_size - stride
        self.stride = stride

    def init_state(self, x: Tensor) -> Tensor:
        return x.new_zeros(x.shape[0], x.shape[1], self.context)

    def step(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        if x.shape[-1] % self.stride:
            raise ValueError(f"input length {x.shape[-1]} is not a multiple of the stride {self.stride}")
        steps = x.shape[-1] // self.stride
        x = torch.cat([state, x], dim=-1)
        new_state = x[..., x.shape[-1] - self.context:]
        if steps <= MATMUL_CONV_MAX_STEPS:
            return self._conv_as_matmul(x), new_state
        return self.conv(x), new_state

    def _conv_as_matmul(self, x: Tensor) -> Tensor:
        """``self.conv(x)`` as one matmul over gathered windows (``[B, C_out, T]``, channels-last in memory)."""
        b, c, _ = x.shape
        k = self.conv.kernel_size[0]
        cols = x.unfold(2, k, self.stride).transpose(1, 2).reshape(b, -1, c * k)  # [B, T, C_in * k]
        conv = self.conv
        y = linear_map(cols, self, (conv.weight, conv.bias),
                       lambda: (conv.weight.reshape(conv.out_channels, c * k), conv.bias))
        return y.transpose(1, 2)


class Upsample1d(nn.Module):
    """Transposed conv with kernel == stride: each input step expands to ``stride`` outputs.

    Non-overlapping, hence stateless and causal. ``[B, C_in, T] -> [B, C_out, T * stride]``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose1d(in_channels, out_channels, stride, stride)
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        b, c, t = x.shape
        if t > MATMUL_CONV_MAX_STEPS:
            return self.conv(x)
        # Kernel == stride: each input step maps to its own ``stride`` outputs, a single matmul.
        s, conv = self.stride, self.conv
        out_c = conv.out_channels

        def make() -> tuple[Tensor, Tensor | None]:
            bias = None if conv.bias is None else conv.bias.repeat_interleave(s)
            return conv.weight.reshape(c, out_c * s).t(), bias

        y = linear_map(x.transpose(1, 2), self, (conv.weight, conv.bias), make)  # [B, T, C_out * stride]
        return y.view(b, t, out_c, s).transpose(2, 3).reshape(b, t * s, out_c).transpose(1, 2)


@dataclass
class AttentionState:
    """Streaming state of :class:`LocalSelfAttention`."""

    kv: Tensor  # [B, window, 2, H, head_dim] keys and values of the last ``window`` steps
    valid: int  # how many of those steps are real; the others predate the stream
    # Attention biases of short chunks by (new steps, valid). A chunk's bias depends only on
    # these and the weights, and a stream sees few distinct pairs, so each is built once.
    biases: dict[tuple[int, int], Tensor] = field(default_factory=dict)


class LocalSelfAttention(StreamingModule):
    """Causal multi-head self-attention over a sliding window of ``window`` steps (self included).

    Positions enter only through a learned bias per head and distance, so the block needs
    no absolute time index and streams over inputs of any length. Attention is computed
    in blocks of ``window`` queries against the previous ``window`` keys plus their own,
    which keeps memory linear in the sequence length; a chunk of at most ``window`` steps
    (the streaming case) attends directly to the cached and new keys. ``[B, T, D] -> [B, T, D]``.
    The state (:class:`AttentionState`) holds the keys and values of the last ``window`` steps.
    """

    def __init__(self, dim: int, num_heads: int, window: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.window = window
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.out = nn.Linear(dim, dim, bias=False)
        self.rel_bias = nn.Parameter(torch.zeros(num_heads, window))
        w = window
        # distance d = (w + i) - j between query i of a block and key j of [previous block, block]
        dist = w + torch.arange(w)[:, None] - torch.arange(2 * w)[None, :]
        self.register_buffer("_dist", dist.clamp(0, w - 1), persistent=False)
        self.register_buffer("_allowed", (dist >= 0) & (dist < w), persistent=False)

    def init_state(self, x: Tensor) -> AttentionState:
        return AttentionState(x.new_zeros(x.shape[0], self.window, 2, self.num_heads, self.head_dim), 0)

    def is_steady(self) -> bool:
        # Once the window is full, only the cached keys and values change from step to step.
        return self._state is not None and self._state.valid == self.window

    def state_tensor(self) -> Tensor:
        return self._state.kv

    def load_state_tensor(self, state: Tensor) -> None:
        self._state.kv = state  # in place: no new object per step

    def step(self, x: Tensor, state: AttentionState) -> tuple[Tensor, AttentionState]:
        b, t, d = x.shape
        w = self.window
        # Time-major like the projection's output, so caching new keys and values is one
        # concatenation and, for one stream, no head has to be gathered into a copy.
        qkv = linear(x, self.qkv).view(b, t, 3, self.num_heads, self.head_dim)
        q = qkv.select(2, 0).transpose(1, 2)  # [B, H, T, hd]
        all_kv = torch.cat([state.kv, qkv.narrow(2, 1, 2)], dim=1)  # [B, w + T, 2, H, hd]
        new_state = AttentionState(all_kv.narrow(1, t, w), min(w, state.valid + t), state.biases)
        if t <= w:
            bias = self._short_bias(t, state, b)
            out = self._attend_short(q, all_kv, bias if bias.dtype == q.dtype else bias.to(q.dtype))
        else:
            out = self._attend_blocks(q, all_kv, state.valid)
        return linear(out.transpose(1, 2).reshape(b, t, d), self.out), new_state

    def _short_bias(self, t: int, state: AttentionState, batch: int) -> Tensor:
        """Bias ``[B * H, t, w + t]`` of ``t <= w`` queries against [cached keys, new keys]."""
        key = (int(t), state.valid)  # int: under torch.jit.trace sizes are tensors
        # A cached bias would cut the gradient path to ``rel_bias``.
        cacheable = not (torch.is_grad_enabled() and self.rel_bias.requires_grad)
        if cacheable and key in state.biases:
            return state.biases[key]
        w = self.window
        # The first t rows of the block layout: query i sits at w + i, cached keys at [0, w).
        bias = self.rel_bias[:, self._dist[:t, : w + t]]
        neg = torch.finfo(bias.dtype).min
        bias = bias.masked_fill(~self._allowed[:t, : w + t], neg)
        if state.valid < w:
            bias[:, :, : w - state.valid] = neg  # steps before the stream began are not real
        if batch > 1:
            bias = bias.repeat(batch, 1, 1)
        if cacheable:
            state.biases[key] = bias
        return bias

    def _attend_short(self, q: Tensor, all_kv: Tensor, bias: Tensor) -> Tensor:
        """``q [B, H, t, hd]`` against all of ``all_kv``; the bias hides what is out of reach."""
        b, h, t, hd = q.shape
        n = all_kv.shape[1]
        k = all_kv.select(2, 0).transpose(1, 2).reshape(b * h, n, hd)
        v = all_kv.select(2, 1).transpose(1, 2).reshape(b * h, n, hd)
        scores = torch.baddbmm(bias, q.reshape(b * h, t, hd), k.transpose(1, 2), alpha=hd ** -0.5)
        return torch.bmm(scores.softmax(dim=-1), v).view(b, h, t, hd)

    def _attend_blocks(self, q: Tensor, all_kv: Tensor, valid: int) -> Tensor:
        """``q [B, H, T, hd]`` in blocks of ``w`` queries against the previous ``w`` keys plus their own."""
        b, h, t, hd = q.shape
        w = self.window
        all_k, all_v = all_kv.select(2, 0).transpose(1, 2), all_kv.select(2, 1).transpose(1, 2)  # [B, H, w + T, hd]
        pad = (-t) % w
        if pad:
            # Padded steps come after every real query, so causality already hides them.
            q = F.pad(q, (0, 0, 0, pad))
            all_k = F.pad(all_k, (0, 0, 0, pad))
            all_v = F.pad(all_v, (0, 0, 0, pad))
        nb = (t + pad) // w
        qb = q.reshape(b, h, nb, w, hd)
        kb = all_k.unfold(2, 2 * w, w).transpose(-1, -2)  # [B, H, nb, 2w, hd]
        vb = all_v.unfold(2, 2 * w, w).transpose(-1, -2)

        bias = self.rel_bias[:, self._dist]  # [H, w, 2w]
        neg = torch.finfo(bias.dtype).min
        mask = bias.masked_fill(~self._allowed, neg).unsqueeze(1).expand(-1, nb, -1, -1).clone()
        if valid < w:
            # The first block's "previous block" is the cache; steps before the stream began are not real.
            mask[:, 0, :, : w - valid] = neg
        out = F.scaled_dot_product_attention(qb, kb, vb, attn_mask=mask.to(qb.dtype))
        return out.reshape(b, h, nb * w, hd)[:, :, :t]


class TransformerLayer(nn.Module):
    """Pre-norm transformer layer with local causal attention and layer scale. ``[B, T, D]``."""

    def __init__(self, dim: int, num_heads: int, window: int, mlp_ratio: float, layer_scale: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = LocalSelfAttention(dim, num_heads, window)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        # Small residual branches at init keep deep stacks trainable without warm-up tricks.
        self.scale1 = nn.Parameter(torch.full((dim,), layer_scale))
        self.scale2 = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: Tensor) -> Tensor:
        # Functional calls on the submodules' weights: in a streaming step of a few time steps
        # the per-module call overhead would cost about as much as the ops themselves.
        n1, n2 = self.norm1, self.norm2
        fc1, act, fc2 = self.mlp
        h = F.layer_norm(x, n1.normalized_shape, n1.weight, n1.bias, n1.eps)
        x = x + self.scale1 * self.attn(h)
        h = F.layer_norm(x, n2.normalized_shape, n2.weight, n2.bias, n2.eps)
        h = linear(F.gelu(linear(h, fc1), approximate=act.approximate), fc2)
        return x + self.scale2 * h


class Transformer(nn.Module):
    """A stack of :class:`TransformerLayer`. ``[B, T, D] -> [B, T, D]``."""

    def __init__(self, dim: int, num_heads: int, num_layers: int, window: int, mlp_ratio: float,
                 layer_scale: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TransformerLayer(dim, num_heads, window, mlp_ratio, layer_scale) for _ in range(num_layers)
        )

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class ISTFTHead(StreamingModule):
    """Spectral output head: each step's features -> one windowed grain of ``size`` samples.

    Per step the head predicts ``size // 2 + 1`` log-magnitudes and phases; their inverse
    FFT, windowed, is overlap-added with a hop of ``hop`` samples (Vocos-style synthesis).
    Grain ``t`` starts at sample ``t * hop`` and reaches ``size - hop`` samples into the
    following steps, so every output sample depends only on current and past steps: the
    head is causal and adds no latency. The state is the tail not yet complete.
    ``[B, T, D] -> [B, 1, T * hop]``.
    """

    def __init__(self, dim: int, hop: int, size: int) -> None:
        super().__init__()
        if size % hop:
            raise ValueError(f"iSTFT size {size} must be a multiple of the hop {hop}")
        self.hop, self.size = hop, size
        self.bins = size // 2 + 1
        self.proj = nn.Linear(dim, 2 * self.bins)
        window = torch.hann_window(size, periodic=True)
        # Scaled so that overlapping windows sum to one in steady state.
        self.register_buffer("window", window * hop / window.sum(), persistent=False)

    def init_state(self, x: Tensor) -> Tensor:
        return x.new_zeros(x.shape[0], self.size - self.hop)

    def step(self, x: Tensor, tail: Tensor) -> tuple[Tensor, Tensor]:
        b, t, _ = x.shape
        log_mag, phase = linear(x, self.proj).float().split(self.bins, dim=-1)
        mag = torch.exp(log_mag.clamp(max=8.0))  # bounded: exp of an unbounded output overflows early in training
        spec = torch.complex(mag * torch.cos(phase), mag * torch.sin(phase))
        grains = torch.fft.irfft(spec, n=self.size) * self.window  # [B, T, size]
        h, k = self.hop, self.size // self.hop
        total = (t + k - 1) * h
        out = sum(
            F.pad(grains[:, :, i * h:(i + 1) * h].reshape(b, t * h), (i * h, total - i * h - t * h))
            for i in range(k)
        )
        out = out + F.pad(tail, (0, total - tail.shape[1]))
        return out[:, None, : t * h].to(x.dtype), out[:, t * h:]


class HarmonicHead(StreamingModule):
    """Source-filter output head: a bank of harmonic oscillators plus an iSTFT residual.

    Per step of ``hop`` samples the head predicts an F0 (between ``f0_min`` and ``f0_max``
    Hz) and the amplitudes of ``harmonics`` harmonics; over the step's samples both glide
    linearly from the previous step's values to the new ones, and the harmonic part is
    ``sum_k a_k(n) sin(2 pi k phi(n))`` with ``phi`` the running integral of F0 in cycles.
    Harmonics at or above the Nyquist rate are muted. Voiced speech is periodic by
    construction, which a patch or spectral head must otherwise learn from the losses
    (at small scale they settle on noise-like output with the right envelope). The
    aperiodic rest (noise, bursts) comes from an :class:`ISTFTHead`.

    F0 reaches the oscillators detached: the phase is a poor path for gradients, so F0
    learns from a pitch target (:meth:`f0`, ``loss.f0``) and the amplitudes from the audio.
    Everything is causal (controls of steps up to ``t`` shape step ``t``) and deterministic.
    The state is ``[B, 2 + harmonics]``: the phase in cycles, the last F0 and amplitudes.
    ``[B, T, D] -> [B, 1, T * hop]``.
    """

    def __init__(self, dim: int, hop: int, size: int, harmonics: int,
                 f0_min: float = 50.0, f0_max: float = 600.0, sample_rate: int = 24000) -> None:
        super().__init__()
        if harmonics < 1:
            raise ValueError(f"harmonics must be >= 1, got {harmonics}")
        self.hop, self.harmonics, self.sample_rate = hop, harmonics, sample_rate
        self.log_f0_min, self.log_f0_max = math.log(f0_min), math.log(f0_max)
        self.proj = nn.Linear(dim, 1 + harmonics)
        with torch.no_grad():
            # Start audible but quiet (about 0.01 per harmonic). Much lower and the amplitudes
            # never grow: Adam moves a logit by about the learning rate per step, and from -3
            # the reconstruction losses barely see the harmonics to ask for more.
            self.proj.bias[1:].fill_(-1.0)
        self.residual = ISTFTHead(dim, hop, size)
        self.register_buffer("orders", torch.arange(1, harmonics + 1, dtype=torch.float32), persistent=False)
        # Sample j of a step sits (j + 1) / hop of the way from the last step's controls to its own.
        self.register_buffer("ramp", torch.arange(1, hop + 1, dtype=torch.float32) / hop, persistent=False)

    def _controls(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``[B, T, D]`` -> F0 ``[B, T]`` in Hz and amplitudes ``[B, T, harmonics]``."""
        out = linear(x, self.proj).float()
        f0 = torch.exp(self.log_f0_min + (self.log_f0_max - self.log_f0_min) * torch.sigmoid(out[..., 0]))
        # DDSP's scaled sigmoid: positive, smooth near zero, saturating at 0.2 per harmonic.
        amps = 0.2 * torch.sigmoid(out[..., 1:]).pow(math.log(10.0)) + 1e-7
        return f0, amps

    def f0(self, x: Tensor) -> Tensor:
        """Predicted F0 ``[B, T]`` in Hz of steps ``x`` ``[B, T, D]`` (for the pitch loss)."""
        return self._controls(x)[0]

    def init_state(self, x: Tensor) -> Tensor:
        return x.new_zeros(x.shape[0], 2 + self.harmonics, dtype=torch.float32)

    def step(self, x: Tensor, state: Tensor, f0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One call's steps; ``f0 [B, T]`` (Hz), when given, drives the oscillators instead
        of the predicted F0 (training with pitch targets, see ``CodecConfig.f0_forcing_prob``)."""
        b, t, _ = x.shape
        predicted, amps = self._controls(x)
        f0 = (predicted if f0 is None else f0.float()).detach()
        prev_f0 = torch.cat([state[:, 1:2], f0[:, :-1]], dim=1)  # [B, T]
        prev_amps = torch.cat([state[:, None, 2:], amps[:, :-1]], dim=1)  # [B, T, K]
        ramp = self.ramp[:, None]  # [hop, 1]
        f0_n = (prev_f0[:, :, None] + (f0 - prev_f0)[:, :, None] * self.ramp).reshape(b, t * self.hop)
        amps_n = prev_amps[:, :, None] + (amps - prev_amps)[:, :, None] * ramp  # [B, T, hop, K]
        amps_n = amps_n.reshape(b, t * self.hop, self.harmonics)
        # Phase in cycles, accumulated in float64 and wrapped so that long inputs keep precision.
        cycles = state[:, :1].double() + (f0_n.double() / self.sample_rate).cumsum(dim=1)
        cycles = cycles - torch.floor(cycles)
        start = torch.cat([state[:, :1].double(), cycles[:, :-1]], dim=1).float()  # phase at each sample
        audible = (f0_n[:, :, None] * self.orders) < (self.sample_rate / 2)
        harmonic = (torch.sin(2 * math.pi * start[:, :, None] * self.orders) * amps_n * audible).sum(-1)
        out = harmonic[:, None] + self.residual(x).float()
        new_state = torch.cat([cycles[:, -1:].float(), f0[:, -1:], amps[:, -1]], dim=1)
        return out.to(x.dtype), new_state


def _mel(hz: Tensor) -> Tensor:
    return 2595.0 * torch.log10(1.0 + hz / 700.0)


def _band_matrix(bands: int, bins: int, sample_rate: int) -> Tensor:
    """``[bands, bins]``: linear interpolation, on the mel scale, from ``bands`` control
    points (spread evenly in mel from 0 Hz to Nyquist) to the FFT bins."""
    freqs = _mel(torch.linspace(0.0, sample_rate / 2, bins))
    centers = torch.linspace(0.0, float(_mel(torch.tensor(sample_rate / 2.0))), bands)
    width = centers[1] - centers[0]
    return (1.0 - (freqs[None, :] - centers[:, None]).abs() / width).clamp(min=0.0)


def minimum_phase(log_mag: Tensor, n_fft: int) -> Tensor:
    """Complex spectrum ``[..., n_fft // 2 + 1]`` of the minimum-phase filter with natural-log
    magnitude ``log_mag`` (same shape), by folding its real cepstrum. Its impulse response
    is causal and front-loaded, so filtering with it adds no latency."""
    cepstrum = torch.fft.irfft(log_mag, n=n_fft)
    fold = torch.zeros(n_fft, device=log_mag.device, dtype=cepstrum.dtype)
    fold[0] = 1.0
    fold[1:(n_fft + 1) // 2] = 2.0
    if n_fft % 2 == 0:
        fold[n_fft // 2] = 1.0
    log_spec = torch.fft.rfft(cepstrum * fold, n=n_fft)
    # exp of the complex log-spectrum, as magnitude and angle: a complex exp is ~6x slower on CPUs.
    return torch.polar(torch.exp(log_spec.real), log_spec.imag)


class SourceFilterHead(StreamingModule):
    """Source-filter output head: harmonic and noise excitations through predicted filters.

    Per step of ``hop`` samples the head predicts an F0 (``f0_min``..``f0_max`` Hz), a
    spectral envelope (``bands`` log-magnitudes spread evenly in mel, interpolated to the FFT
    bins) and a voicing share per frequency (``voicing_bands`` logits, likewise). Two
    excitations run at unit power: a band-limited pulse train at the F0 (every harmonic
    below Nyquist at equal amplitude, phase carried across steps) and white noise read from
    a fixed table at the absolute sample position. Each goes through a minimum-phase filter
    of the envelope times the square root of its share (voiced for the pulses, the rest for
    the noise), applied to the last ``size`` excitation samples by FFT; over a step the
    output crossfades linearly from the previous step's filters to the new ones.

    Unlike :class:`HarmonicHead`, nothing but the filters shapes the output: where the
    voicing share is high, the output is periodic with harmonics at every multiple of the
    F0, whatever the envelope, so the reconstruction losses cannot trade harmonics for
    noise one harmonic at a time. F0 reaches the pulses detached and learns from the pitch
    loss; the voicing of the low bands (centres below ``supervised_hz``) learns from the
    input's voicing too (:meth:`controls`), the rest from the audio alone.

    Causal (the filters of steps up to ``t`` and the excitation up to step ``t`` make step
    ``t``), deterministic, no latency. The state is ``[B, 3 + bands + voicing_bands + size -
    hop]``: phase (cycles), last F0, noise-table position, last controls, pulse history.
    ``[B, T, D] -> [B, 1, T * hop]``.
    """

    TABLE = 1 << 18  # noise table length (~11 s at 24 kHz)

    def __init__(self, dim: int, hop: int, size: int, bands: int = 64, voicing_bands: int = 8,
                 f0_min: float = 50.0, f0_max: float = 600.0, sample_rate: int = 24000,
                 supervised_hz: float = 1500.0) -> None:
        super().__init__()
        if size < 2 * hop:
            raise ValueError(f"source-filter size {size} must be at least twice the hop {hop}")
        if bands < 2 or voicing_bands < 2:
            raise ValueError(f"bands and voicing_bands must be >= 2, got {bands} and {voicing_bands}")
        self.hop, self.size, self.sample_rate = hop, size, sample_rate
        self.bands, self.voicing_bands = bands, voicing_bands
        self.bins = size // 2 + 1
        self.log_f0_min, self.log_f0_max = math.log(f0_min), math.log(f0_max)
        self.proj = nn.Linear(dim, 1 + bands + voicing_bands)
        with torch.no_grad():
            # Start quiet (envelope e^-4, about 0.02 rms) and half voiced.
            self.proj.bias[1:1 + bands].fill_(-4.0)
            self.proj.bias[1 + bands:].zero_()
        self.register_buffer("env_to_bins", _band_matrix(bands, self.bins, sample_rate), persistent=False)
        self.register_buffer("voicing_to_bins", _band_matrix(voicing_bands, self.bins, sample_rate), persistent=False)
        centers = torch.linspace(0.0, float(_mel(torch.tensor(sample_rate / 2.0))), voicing_bands)
        hz = 700.0 * (10.0 ** (centers / 2595.0) - 1.0)
        self.supervised = max(1, int((hz < supervised_hz).sum()))
        noise = torch.randn(self.TABLE, generator=torch.Generator().manual_seed(0))
        self.register_buffer("noise", noise / noise.std(), persistent=False)
        self.register_buffer("ramp", torch.arange(1, hop + 1, dtype=torch.float32) / hop, persistent=False)

    @property
    def _controls_dim(self) -> int:
        return self.bands + self.voicing_bands

    def controls(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``[B, T, D]`` -> F0 ``[B, T]`` (Hz), filter controls ``[B, T, bands + voicing_bands]``
        (log envelope, voicing logits) and the supervised low-band voicing logits
        ``[B, T, n]`` (the voicing loss's input)."""
        out = linear(x, self.proj).float()
        f0 = torch.exp(self.log_f0_min + (self.log_f0_max - self.log_f0_min) * torch.sigmoid(out[..., 0]))
        ctl = out[..., 1:]
        return f0, ctl, ctl[..., self.bands:self.bands + self.supervised]

    def f0(self, x: Tensor) -> Tensor:
        """Predicted F0 ``[B, T]`` in Hz of steps ``x`` ``[B, T, D]`` (for the pitch loss)."""
        return self.controls(x)[0]

    def _filters(self, ctl: Tensor) -> Tensor:
        """Controls ``[B, T, C]`` -> minimum-phase spectra ``[2, B, T, bins]`` of the pulse and
        the noise filter (stacked: one FFT call for both, which matters when streaming)."""
        # Float32 throughout: FFTs take no bfloat16, and autocast would make these matmuls so.
        with torch.autocast(ctl.device.type, enabled=False):
            log_env = ctl[..., :self.bands].float().clamp(max=6.0) @ self.env_to_bins
            voicing = ctl[..., self.bands:].float() @ self.voicing_to_bins
        # log sqrt(sigmoid(v)) and log sqrt(1 - sigmoid(v)), computed stably.
        shares = 0.5 * F.logsigmoid(torch.stack([voicing, -voicing]))
        return minimum_phase(log_env + shares, self.size)

    def init_state(self, x: Tensor) -> Tensor:
        state = x.new_zeros(x.shape[0], 3 + self._controls_dim + self.size - self.hop, dtype=torch.float32)
        # Before the first step the filters are silent (the offline call's zero padding).
        state[:, 3:3 + self.bands] = -30.0
        return state

    def _pulses(self, f0_n: Tensor, start: Tensor) -> Tensor:
        """Unit-power band-limited pulse train: ``sum_{k<=K} cos(2 pi k phi)`` scaled by
        ``sqrt(2 / K)``, ``K`` the harmonics below Nyquist at each sample's F0."""
        k = torch.floor(self.sample_rate / 2 / f0_n).clamp(min=1.0)
        half = math.pi * start  # theta / 2
        den = torch.sin(half)
        num = torch.sin((2 * k + 1) * half)
        # Dirichlet kernel (sum of cosines), with its limit K + 1/2 where theta -> 0.
        safe = den.abs() > 1e-4
        dirichlet = torch.where(safe, num / torch.where(safe, 2 * den, torch.ones_like(den)), k + 0.5)
        return (dirichlet - 0.5) * torch.sqrt(2.0 / k)

    def step(self, x: Tensor, state: Tensor, f0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One call's steps; ``f0 [B, T]`` (Hz), when given, drives the pulses instead of the
        predicted F0 (training with pitch targets, see ``CodecConfig.f0_forcing_prob``)."""
        predicted, ctl, _ = self.controls(x)
        out, new_state = self.synthesize(predicted if f0 is None else f0, ctl, state)
        return out.to(x.dtype), new_state

    def synthesize(self, f0: Tensor, ctl: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """Pulses at ``f0 [B, T]`` (Hz, not differentiated) and noise through the filters of
        ``ctl [B, T, bands + voicing_bands]`` (as :meth:`controls` gives them), from ``state``
        -> float32 audio ``[B, 1, T * hop]`` and the next state. :meth:`step` without the
        network: controls set from outside (fitted to a recording, edited) render the same way."""
        h, c = self.hop, self._controls_dim
        if ctl.dim() != 3 or ctl.shape[-1] != c or f0.shape != ctl.shape[:2]:
            raise ValueError(f"expected f0 [B, T] and controls [B, T, {c}], got {tuple(f0.shape)} and {tuple(ctl.shape)}")
        b, t, _ = ctl.shape
        f0, ctl = f0.float().detach(), ctl.float()
        prev_f0 = torch.cat([state[:, 1:2], f0[:, :-1]], dim=1)
        prev_f0 = torch.where(prev_f0 > 0, prev_f0, f0)  # the very first step has no predecessor
        f0_n = (prev_f0[:, :, None] + (f0 - prev_f0)[:, :, None] * self.ramp).reshape(b, t * h)
        cycles = state[:, :1].double() + (f0_n.double() / self.sample_rate).cumsum(dim=1)
        cycles = cycles - torch.floor(cycles)
        start = torch.cat([state[:, :1].double(), cycles[:, :-1]], dim=1).float()
        pulses = self._pulses(f0_n, start)  # [B, T * hop]
        # Each step filters the last `size` samples of excitation: the history and its own hop.
        tail = self.size - h
        position = state[:, 2:3].long()
        noise = self.noise[(position - tail + torch.arange(tail + t * h, device=ctl.device)) % self.TABLE]
        exc_all = torch.cat([state[:, 3 + c:], pulses], dim=1)
        exc_pulses = exc_all.unfold(1, self.size, h)  # [B, T, size]
        exc_noise = noise.unfold(1, self.size, h)
        spec = torch.fft.rfft(torch.stack([exc_pulses, exc_noise]))  # [2, B, T, bins]
        filters = self._filters(torch.cat([state[:, None, 3:3 + c], ctl], dim=1))  # [2, B, T + 1, bins]
        # Each step's excitation through its own filters and through the previous step's.
        both = torch.stack([(filters[:, :, 1:] * spec).sum(0), (filters[:, :, :-1] * spec).sum(0)])
        new, old = torch.fft.irfft(both, n=self.size)[..., tail:]
        out = (old + (new - old) * self.ramp).reshape(b, 1, t * h)
        new_state = torch.cat([
            cycles[:, -1:].float(), f0[:, -1:], (position + t * h).remainder(self.TABLE).float(),
            ctl[:, -1], exc_all[:, exc_all.shape[1] - tail:],
        ], dim=1)
        return out, new_state
