"""hylac TTS: autoregressive text-to-speech over the hylac codec's 12.5 Hz latents.

``tts.load(name_or_path)`` returns a :class:`Synthesizer`; ``synth.generate(text, lang,
voice)`` speaks, ``synth.stream(...)`` yields audio frame by frame.
"""

from .config import SamplingConfig, TTSConfig
from .data import DataConfig, LatentPairDataset, TTSItem
from .flow import FlowHead, flow_matching_loss
from .generate import FrameGenerator, generate_latents
from .model import TTSBatch, TTSLoss, TTSModel
from .sampler import FlowSampler, guided_velocity, time_grid
from .synthesizer import Synthesizer, available_models, load
from .text import TextFrontend

__all__ = [
    "DataConfig",
    "FlowHead",
    "FlowSampler",
    "FrameGenerator",
    "LatentPairDataset",
    "SamplingConfig",
    "Synthesizer",
    "TTSBatch",
    "TTSConfig",
    "TTSItem",
    "TTSLoss",
    "TTSModel",
    "TextFrontend",
    "available_models",
    "flow_matching_loss",
    "generate_latents",
    "guided_velocity",
    "load",
    "time_grid",
]
