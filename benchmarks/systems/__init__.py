"""The systems the benchmarks compare, behind one adapter interface (:class:`System`).

Every system is a function from input audio to output audio at a bitrate,
``process(wav [N], sample_rate) -> SystemOutput``: what the quality benchmark scores.
Systems with a torch network (:class:`NeuralCodec`: hylac models, and Mimi, DAC and
EnCodec with random weights) also expose batched ``encode`` / ``decode`` and streaming
for the speed benchmark.

- :mod:`~benchmarks.systems.base`: the interface, :class:`Transform` (a new quality row in
  one small class: ``transform(wav at 24 kHz) -> (audio, bits)``, optionally with a codec
  model) and :class:`CodecRef` (a codec model loaded on first use).
- :mod:`~benchmarks.systems.classic`: the original signal, Opus and Codec2.
- :mod:`~benchmarks.systems.neural`: :class:`Hylac` and the neural peers.

Example of a row::

    class Identity24k(Transform):
        def transform(self, wav):
            return wav, wav.size * 16.0  # 16-bit PCM at 24 kHz
"""

from benchmarks.systems.base import (
    CodecRef,
    System,
    SystemOutput,
    SystemUnavailable,
    Transform,
    fit_length,
)
from benchmarks.systems.classic import (
    BASELINE_NAMES,
    CODEC2_DELAY_SAMPLES,
    CODEC2_MODES,
    Codec2,
    Opus,
    Original,
    build_baseline,
    ogg_packet_sizes,
)
from benchmarks.systems.neural import (
    PEERS,
    Dac,
    Encodec,
    Hylac,
    HylacFrontEnd,
    Mimi,
    NeuralCodec,
    sync,
)

__all__ = [
    "BASELINE_NAMES",
    "CODEC2_DELAY_SAMPLES",
    "CODEC2_MODES",
    "PEERS",
    "Codec2",
    "CodecRef",
    "Dac",
    "Encodec",
    "Hylac",
    "HylacFrontEnd",
    "Mimi",
    "NeuralCodec",
    "Opus",
    "Original",
    "System",
    "SystemOutput",
    "SystemUnavailable",
    "Transform",
    "build_baseline",
    "fit_length",
    "ogg_packet_sizes",
    "sync",
]
