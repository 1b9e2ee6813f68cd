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

Files, with the checks and errors of ``hylac-codec``::

    wav, info = codec.read_audio(path)               # [N] float32 at 24 kHz (target_rate=None: the file's rate)
    wav, info = codec.read_audio_bytes(data, name)   # the same for an upload held in memory
    codec.write_audio(path, wav, 24000)              # atomic: a temporary file renamed when complete
    with codec.AudioWriter(path, 24000) as w: ...    # the same, block by block
    data = codec.latents_to_bytes(latents, model)    # .hylat bytes; codec.latents_from_bytes reads them
    records = codec.read_manifest(path)              # JSON-lines manifests (codec.write_manifest)

Bad inputs are :class:`AudioInputError` / :class:`LatentFileError` (``"<path>: <problem>"``),
refused outputs :class:`OutputExistsError` / :class:`OutputWriteError`.

Layout: :mod:`codec.model` (the codec: :mod:`~codec.encoder`, :mod:`~codec.quantize`,
:mod:`~codec.decoder`, output heads in :mod:`codec.heads`), building blocks in
:mod:`codec.nn`, files in :mod:`codec.io`, the latent contract in :mod:`codec.latents`,
training in :mod:`codec.training`, the command line in :mod:`codec.cli`.
"""

from codec.cli.exit_codes import ExitCode, parse_or_exit, quiet_on_closed_pipe
from codec.config import CodecConfig
from codec.io.audio import (
    AUDIO_EXTENSIONS,
    AudioInfo,
    AudioInputError,
    InputFileError,
    read_audio,
    read_audio_bytes,
)
from codec.io.latent_file import SUFFIX as LATENT_SUFFIX
from codec.io.latent_file import (
    CodecStamp,
    LatentFileError,
    LatentFileInfo,
    latents_from_bytes,
    latents_to_bytes,
    load_latents,
    same_latent_space,
    save_latents,
)
from codec.io.manifest import ManifestError, ManifestRecord, read_manifest, write_manifest
from codec.io.output import (
    AUDIO_FORMATS,
    AudioFormat,
    AudioWriter,
    OutputExistsError,
    OutputWriteError,
    audio_to_bytes,
    available_formats,
    check_output,
    format_for_path,
    write_audio,
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
    "AUDIO_EXTENSIONS",
    "AUDIO_FORMATS",
    "FRAME_RATE",
    "FRAME_SIZE",
    "LANGUAGES",
    "LATENT_SUFFIX",
    "SAMPLE_RATE",
    "AudioFormat",
    "AudioInfo",
    "AudioInputError",
    "AudioWriter",
    "CodecConfig",
    "CodecOutput",
    "CodecStamp",
    "ExitCode",
    "HybridCodec",
    "InputFileError",
    "LatentFileError",
    "LatentFileInfo",
    "Latents",
    "ManifestError",
    "ManifestRecord",
    "OutputExistsError",
    "OutputWriteError",
    "audio_to_bytes",
    "available_formats",
    "available_models",
    "check_output",
    "format_for_path",
    "fsq_codes_to_values",
    "fsq_values_to_codes",
    "latents_from_bytes",
    "latents_to_bytes",
    "load",
    "load_latents",
    "load_weights_folder",
    "num_frames",
    "parse_or_exit",
    "quiet_on_closed_pipe",
    "read_audio",
    "read_audio_bytes",
    "read_manifest",
    "same_latent_space",
    "save_latents",
    "save_weights_folder",
    "snap_to_grid",
    "write_audio",
    "write_manifest",
]
