"""Output heads: decoder features at 100 Hz -> waveform samples (:class:`OutputHead`).

The heads the project ships, by ``kind`` (``CodecConfig.head``):

- ``patch`` (:mod:`~codec.heads.patch`): a linear projection of each step to its samples.
- ``source_filter`` (:mod:`~codec.heads.source_filter`): pulses at a predicted F0 and
  noise through minimum-phase filters of a predicted envelope and voicing share
  (``hylac-tiny``'s head).

A new head is a module here with a config dataclass (a ``kind`` literal and its settings)
and an :class:`OutputHead` subclass, registered in :data:`HEADS`; its controls (named
predictions) and their targets reach the losses through :class:`HeadOutput`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from codec.heads.base import HeadOutput, OutputHead
from codec.heads.patch import PatchHead, PatchHeadConfig
from codec.heads.source_filter import SourceFilterHead, SourceFilterHeadConfig

#: The settings of any shipped head (``CodecConfig.head``); ``kind`` tells them apart.
HeadConfig = PatchHeadConfig | SourceFilterHeadConfig

#: kind -> (config dataclass, builder ``(dim, hop, config) -> head``).
HEADS: dict[str, tuple[type, Callable[[int, int, Any], OutputHead]]] = {
    "patch": (PatchHeadConfig, PatchHead),
    "source_filter": (SourceFilterHeadConfig, SourceFilterHead.from_config),
}


def head_config(value: HeadConfig | Mapping[str, Any]) -> HeadConfig:
    """A head config from itself or from its dict form (``{"kind": ..., settings}``, as in
    ``config.json``); unknown kinds and keys are ``ValueError``s that list the valid ones."""
    if not isinstance(value, Mapping):
        if type(value) not in {cls for cls, _ in HEADS.values()}:
            raise TypeError(f"head must be one of the head configs or a mapping, got {value!r}")
        return value
    kind = value.get("kind", "patch")
    if kind not in HEADS:
        raise ValueError(f"unknown head kind {kind!r}; the heads are: {', '.join(HEADS)}")
    cls = HEADS[kind][0]
    valid = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(value) - valid)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} of the {kind} head; valid keys: {sorted(valid)}")
    return cls(**value)


def build_head(config: HeadConfig, dim: int, hop: int) -> OutputHead:
    """The head ``config`` describes, reading ``dim``-wide features, ``hop`` samples per step."""
    return HEADS[config.kind][1](dim, hop, config)


__all__ = ["HEADS", "HeadConfig", "HeadOutput", "OutputHead", "PatchHead", "PatchHeadConfig",
           "SourceFilterHead", "SourceFilterHeadConfig", "build_head", "head_config"]
