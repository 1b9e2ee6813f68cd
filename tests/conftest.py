"""Fixtures shared by the test modules: torch on one thread, and a tiny random codec and TTS
model (as objects and as a model folder).

Each is module-scoped, so a module that changes one (a config field, a weight) changes only
its own copy. The TTS package is imported when a fixture first needs it, not when the codec
tests are collected.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch

if TYPE_CHECKING:
    from codec import HybridCodec
    from tts import Synthesizer


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Torch on one thread while a module runs: its tiny ops are dominated by thread
    synchronisation on a busy machine. A module asks for it with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tiny_codec() -> HybridCodec:
    """A tiny random codec (seed 0), in eval mode."""
    from codec import CodecConfig, HybridCodec

    torch.manual_seed(0)
    return HybridCodec(CodecConfig.tiny()).eval()


@pytest.fixture(scope="module")
def tiny_synth(tiny_codec: HybridCodec) -> Synthesizer:
    """A tiny random TTS model (seed 1) for the latents of `tiny_codec`, speaking with it."""
    from tts import Synthesizer, TTSConfig, TTSModel

    torch.manual_seed(1)
    cfg = TTSConfig.tiny(semantic_dim=tiny_codec.semantic_dim, codec_latent_hash=tiny_codec.latent_hash)
    return Synthesizer(TTSModel(cfg), tiny_codec)


@pytest.fixture(scope="module")
def tiny_tts_dir(tmp_path_factory: pytest.TempPathFactory, tiny_synth: Synthesizer) -> Path:
    """`tiny_synth` as a model folder named ``model``, its codec in the subfolder ``codec``
    (``config.codec`` is ``"codec"``, relative, so the folder works wherever it is)."""
    root = tmp_path_factory.mktemp("model") / "model"
    tiny_synth.codec.save(root / "codec")
    config = tiny_synth.model.config
    shared, config.codec = config.codec, "codec"
    try:
        tiny_synth.save(root)
    finally:
        config.codec = shared
    return root
