"""The output-head interface: decoder features at 100 Hz -> waveform samples.

A head turns the decoder's features ``[B, T100, dim]`` into audio ``[B, 1, T100 * hop]``
(``hop`` = the 240-sample patch). The decoder never knows which head it drives: it calls
the head (inference, streaming) or :meth:`OutputHead.forward_train` (training), whose
:class:`HeadOutput` also carries the head's named *controls* (its per-step predictions,
e.g. an F0 or an envelope) and the *targets* it measured for them on the input, which
the training losses compare.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor, nn


@dataclass
class HeadOutput:
    """Result of :meth:`OutputHead.forward_train`.

    Attributes:
        audio: ``[B, 1, T100 * hop]`` the reconstruction (None when only controls were asked for).
        controls: the head's per-step predictions by name, ``[B, T100, ...]`` each (the
            source-filter head: ``"f0"`` in Hz ``[B, T100]``, ``"envelope"`` ``[B, T100,
            bands]`` log amplitudes, ``"voicing"`` ``[B, T100, voicing_bands]`` logits); empty
            for heads without controls.
        targets: values measured on the input for those controls, by name (the source-filter
            head: the same names from the input's analysis, plus ``"voiced"`` ``[B, T100]``
            bool where the F0 target holds).
    """

    audio: Tensor | None
    controls: dict[str, Tensor] = field(default_factory=dict)
    targets: dict[str, Tensor] = field(default_factory=dict)


class OutputHead(nn.Module):
    """Decoder features ``[B, T100, dim]`` -> audio ``[B, 1, T100 * hop]``, causally.

    Subclasses implement ``forward`` (inference; a stateful head is also a
    :class:`~codec.nn.streaming.StreamingModule`) and may override :meth:`forward_train`.
    """

    hop: int

    def forward_train(self, features: Tensor, wav: Tensor) -> HeadOutput:
        """Training pass over ``features [B, T100, dim]`` of the input ``wav [B, 1, T100 * hop]``
        (which a head may measure for its controls' targets)."""
        return HeadOutput(self(features))

    def named_controls(self, features: Tensor) -> dict[str, Tensor]:
        """The head's controls for ``features`` without rendering audio (none by default)."""
        raise ValueError(f"the {type(self).__name__} has no controls to train without audio")
