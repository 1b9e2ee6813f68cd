"""hylac codec: a streaming 12.5 Hz hybrid semantic + acoustic speech codec.

Public API (``tts`` and user code import only these names)::

    model = codec.load("hylac-tiny")               # or a folder with config.json + model.safetensors
    latents = model.encode(wav, sample_rate)         # Latents: .semantic [B, T], .acoustic_codes [B, T, 36]
    audio = model.decode(latents)                    # [B, 1, num_samples] at 24 kHz
    with model.streaming(batch_size=1):              # chunk by chunk, 1920-sample multiples
        frames = model.encode_chunk(chunk); out = model.decode_chunk(frames)
    model.use_int8()                                 # real time on one CPU core, with
    with model.streaming(1, trace_frames=1): ...     # traced one-frame steps
"""

from .cli.exit_codes import ExitCode
from .config import CodecConfig
from .latent_file import (
    CodecStamp,
    LatentFileError,
    LatentFileInfo,
    load_latents,
    same_latent_space,
    save_latents,
)
from .latents import (
    FRAME_RATE,
    FRAME_SIZE,
    SAMPLE_RATE,
    Latents,
    fsq_codes_to_values,
    fsq_values_to_codes,
    num_frames,
    snap_to_grid,
)
from .model import CodecOutput, HybridCodec, available_models, load
from .phonemes import LANGUAGES, PHONEME_VOCAB, phoneme_ids, phonemize, phonemize_many
from .serialization import JsonConfig, load_weights_folder, save_weights_folder
from .trainer import StepRunner, Trainer, TrainerConfig, TrainingTask, TrainResult, run_training

__all__ = [
    "FRAME_RATE",
    "FRAME_SIZE",
    "LANGUAGES",
    "PHONEME_VOCAB",
    "SAMPLE_RATE",
    "CodecConfig",
    "CodecOutput",
    "CodecStamp",
    "ExitCode",
    "HybridCodec",
    "JsonConfig",
    "LatentFileError",
    "LatentFileInfo",
    "Latents",
    "StepRunner",
    "TrainResult",
    "Trainer",
    "TrainerConfig",
    "TrainingTask",
    "available_models",
    "fsq_codes_to_values",
    "fsq_values_to_codes",
    "load",
    "load_latents",
    "load_weights_folder",
    "num_frames",
    "phoneme_ids",
    "phonemize",
    "phonemize_many",
    "run_training",
    "same_latent_space",
    "save_latents",
    "save_weights_folder",
    "snap_to_grid",
]
