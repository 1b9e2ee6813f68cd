"""hylac codec: a streaming 12.5 Hz hybrid semantic + acoustic speech codec.

Public API (``tts`` and user code import only these names, and :mod:`codec.training`
for training)::

    model = codec.load("hylac-tiny")               # or a folder with config.json + model.safetensors
    latents = model.encode(wav, sample_rate)         # Latents: .semantic [B, T], .acoustic_codes [B, T, 36]
    audio = model.decode(latents)                    # [B, 1, num_samples] at 24 kHz
    with model.streaming(batch_size=1):              # chunk by chunk, 1920-sample multiples
        frames = model.encode_chunk(chunk); out = model.decode_chunk(frames)
    model.use_int8()                                 # real time on one CPU core, with
    with model.streaming(1, trace_frames=1): ...     # traced one-frame steps

Layout: :mod:`codec.model` (the codec: :mod:`~codec.encoder`, :mod:`~codec.quantize`,
:mod:`~codec.decoder`, output heads in :mod:`codec.heads`), building blocks in
:mod:`codec.nn`, files in :mod:`codec.io`, the latent contract in :mod:`codec.latents`,
training in :mod:`codec.training`, the command line in :mod:`codec.cli`.
"""

from codec.cli.exit_codes import ExitCode, quiet_on_closed_pipe
from codec.config import CodecConfig
from codec.io.latent_file import (
    CodecStamp,
    LatentFileError,
    LatentFileInfo,
    load_latents,
    same_latent_space,
    save_latents,
)
from codec.io.weights import load_weights_folder, save_weights_folder
from codec.languages import LANGUAGES
from codec.latents import (
    FRAME_RATE,
    FRAME_SIZE,
    SAMPLE_RATE,
    Latents,
    fsq_codes_to_values,
    fsq_values_to_codes,
    num_frames,
    snap_to_grid,
)
from codec.model import CodecOutput, HybridCodec
from codec.models import available_models, load

__all__ = [
    "FRAME_RATE",
    "FRAME_SIZE",
    "LANGUAGES",
    "SAMPLE_RATE",
    "CodecConfig",
    "CodecOutput",
    "CodecStamp",
    "ExitCode",
    "HybridCodec",
    "LatentFileError",
    "LatentFileInfo",
    "Latents",
    "available_models",
    "fsq_codes_to_values",
    "fsq_values_to_codes",
    "load",
    "load_latents",
    "load_weights_folder",
    "num_frames",
    "quiet_on_closed_pipe",
    "same_latent_space",
    "save_latents",
    "save_weights_folder",
    "snap_to_grid",
]
