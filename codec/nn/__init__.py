"""Causal, streamable neural building blocks of the codec.

Conventions: conv modules take ``[B, C, T]``, transformer modules ``[B, T, D]``.

- :mod:`~codec.nn.streaming`: :class:`StreamingModule`, the one code path for offline and
  chunked calls, and :func:`set_streaming`.
- :mod:`~codec.nn.conv`: causal strided and transposed convolutions.
- :mod:`~codec.nn.attention`: sliding-window causal self-attention.
- :mod:`~codec.nn.transformer`: pre-norm layers and stacks of them.
- :mod:`~codec.nn.int8`: CPU int8 inference as a module swap (:func:`swap_int8`).
- :mod:`~codec.nn.trace`: TorchScript traces of streaming steps and their cache.
"""

from codec.nn.attention import LocalSelfAttention
from codec.nn.conv import CausalConv1d, Upsample1d
from codec.nn.int8 import swap_int8
from codec.nn.streaming import StreamingModule, set_streaming
from codec.nn.transformer import Transformer

__all__ = ["CausalConv1d", "LocalSelfAttention", "StreamingModule", "Transformer", "Upsample1d",
           "set_streaming", "swap_int8"]
