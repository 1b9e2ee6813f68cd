"""The work behind ``hylac-codec``: encode, decode, round-trip and inspect (manifests: :mod:`codec.cli.encode_manifest`).

Each command is an importable function taking a loaded codec and paths and returning a
:class:`RunSummary`; the CLI only parses arguments, loads the model and prints. Inputs
are processed one by one (or in batches of short files); a bad input fails alone, with a
one-line message naming the file, and never leaves a partial output behind.

Long recordings stream through the codec in chunks of whole frames
(``with model.streaming(1)``), read and resampled block by block and written block by
block, so memory holds the codes of a file but never its activations or its audio.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from codec.cli.jobs import (
    OUTPUT_AUDIO_SUFFIXES,
    ItemResult,
    Job,
    RunOptions,
    RunSummary,
    failure,
    ordered_results,
    plan_jobs,
)
from codec.io.audio import AUDIO_EXTENSIONS, AudioReader, read_audio
from codec.io.latent_file import (
    SUFFIX,
    CodecStamp,
    LatentFileInfo,
    load_latents,
    read_latent_info,
    save_latents,
)
from codec.io.output import AudioWriter, OutputExistsError
from codec.latents import FRAME_SIZE, SAMPLE_RATE, Latents, num_frames
from codec.model import HybridCodec

log = logging.getLogger(__name__)

class _ConversionNotices:
    """Log each kind of input conversion once per run, not once per file."""

    def __init__(self) -> None:
        self._seen: set[tuple[int, int]] = set()

    def note(self, reader: AudioReader) -> None:
        key = (reader.info.sample_rate, reader.info.channels)
        if key in self._seen or not (reader.resampled or reader.downmixed):
            return
        self._seen.add(key)
        what = []
        if reader.resampled:
            what.append(f"resampled {reader.info.sample_rate} Hz -> {reader.target_rate} Hz")
        if reader.downmixed:
            what.append(f"down-mixed {reader.info.channels} channels -> mono")
        log.info("inputs at %d Hz with %d channel(s) are %s (first: %s)", reader.info.sample_rate,
                 reader.info.channels, " and ".join(what), reader.path)


# --------------------------------------------------------------------------- codec passes


def encode_stream(model: HybridCodec, blocks: Iterable[np.ndarray], expected_samples: int | None = None) -> Latents:
    """Encode mono 24 kHz blocks (each a multiple of 1920 samples except the last) as one signal.

    Args:
        blocks: ``[n]`` float32 arrays; the last may have any positive length.
        expected_samples: total length if known; the codes are then stored in one
            allocation made up front. Small per-chunk allocations kept alive between the
            large transient audio blocks fragment the heap: memory then grows with the
            file's length although nothing large is retained.

    Returns:
        latents ``[1, T]`` with ``num_samples`` the total length, equal to
        ``model.encode`` of the concatenated signal.
    """
    device = model.device
    semantic = acoustic = None
    filled = total = 0
    levels = model.acoustic_levels
    with torch.inference_mode(), model.streaming(1):
        for block in blocks:
            n = len(block)
            if total % FRAME_SIZE:
                raise ValueError("only the last block may be shorter than a whole number of frames")
            total += n
            x = torch.from_numpy(np.ascontiguousarray(block, dtype=np.float32)).to(device)
            # Causal codec: zeros after the end are exactly what the offline encoder pads with.
            x = torch.nn.functional.pad(x, (0, (-n) % FRAME_SIZE))
            part = model.encode_chunk(x.view(1, 1, -1))
            t = part.num_frames
            if semantic is None or filled + t > semantic.shape[1]:
                capacity = max(filled + t, num_frames(expected_samples or 0),
                               2 * semantic.shape[1] if semantic is not None else 0)
                grown_sem = torch.empty(1, capacity, dtype=torch.int64)
                grown_ac = torch.empty(1, capacity, part.acoustic_codes.shape[-1], dtype=torch.int64)
                if semantic is not None:
                    grown_sem[:, :filled] = semantic[:, :filled]
                    grown_ac[:, :filled] = acoustic[:, :filled]
                semantic, acoustic = grown_sem, grown_ac
            semantic[:, filled : filled + t] = part.semantic
            acoustic[:, filled : filled + t] = part.acoustic_codes
            filled += t
            levels = part.acoustic_levels
    if semantic is None:
        raise ValueError("no audio to encode")
    return Latents(semantic[:, :filled], acoustic[:, :filled], total, levels)


def decode_stream(model: HybridCodec, latents: Latents, chunk_frames: int) -> Iterator[np.ndarray]:
    """Decode ``[1, T]`` latents ``chunk_frames`` at a time, yielding ``[n]`` float32 audio blocks.

    The blocks add up to exactly ``latents.num_samples`` samples and equal
    ``model.decode(latents)`` within float tolerance.
    """
    remaining = latents.num_samples
    with torch.inference_mode(), model.streaming(1):
        for start in range(0, latents.num_frames, chunk_frames):
            part = latents.frames(start, start + chunk_frames).to(model.device)
            audio = model.decode_chunk(part)[0, 0]
            keep = min(remaining, audio.shape[-1])
            remaining -= keep
            yield audio[:keep].float().cpu().numpy()


def encode_batch(model: HybridCodec, signals: Sequence[np.ndarray]) -> list[Latents]:
    """Encode several short mono 24 kHz signals in one batch; item ``i`` equals encoding it alone.

    Shorter signals are zero-padded at the end and their extra frames dropped; the
    codec is causal, so padding never reaches the kept frames.
    """
    longest = max(len(s) for s in signals)
    x = torch.zeros(len(signals), 1, longest)
    for i, s in enumerate(signals):
        x[i, 0, : len(s)] = torch.from_numpy(s)
    lat = model.encode(x.to(model.device), SAMPLE_RATE).to("cpu")
    out = []
    for i, s in enumerate(signals):
        t = num_frames(len(s))
        out.append(Latents(lat.semantic[i : i + 1, :t], lat.acoustic_codes[i : i + 1, :t], len(s), lat.acoustic_levels))
    return out


def decode_batch(model: HybridCodec, items: Sequence[Latents]) -> list[np.ndarray]:
    """Decode several ``[1, T_i]`` latents in one batch; item ``i`` equals decoding it alone.

    Shorter items are padded at the end with frames that are dropped after decoding
    (the decoder is causal).
    """
    longest = max(it.num_frames for it in items)
    levels = items[0].acoustic_levels
    sem = torch.zeros(len(items), longest, dtype=torch.int64)
    ac = torch.full((len(items), longest, items[0].acoustic_codes.shape[-1]), levels // 2, dtype=torch.int64)
    for i, it in enumerate(items):
        sem[i, : it.num_frames] = it.semantic[0]
        ac[i, : it.num_frames] = it.acoustic_codes[0]
    audio = model.decode(Latents(sem, ac, longest * FRAME_SIZE, levels).to(model.device))
    return [audio[i, 0, : it.num_samples].float().cpu().numpy() for i, it in enumerate(items)]


def _chunk_bar(options: RunOptions, total_samples: int, label: Path) -> tqdm:
    # Only long files get their own bar; for short ones it would flicker for nothing.
    show = options.progress and total_samples > 2 * options.chunk_samples
    return tqdm(total=round(total_samples / SAMPLE_RATE), unit="s", desc=label.name, leave=False,
                disable=not show, dynamic_ncols=True)


def _stream_blocks(blocks: Iterable[np.ndarray], bar: tqdm) -> Iterator[np.ndarray]:
    for block in blocks:
        yield block
        bar.update(len(block) / SAMPLE_RATE)


# --------------------------------------------------------------------------- encode


@dataclass
class _Pending:
    """Short items waiting to fill a batch."""

    jobs: list[Job] = field(default_factory=list)
    payload: list = field(default_factory=list)
    extra: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.jobs)

    def take(self) -> tuple[list[Job], list, list]:
        out = (self.jobs, self.payload, self.extra)
        self.jobs, self.payload, self.extra = [], [], []
        return out


def _existing(job: Job, options: RunOptions) -> ItemResult | None:
    """The result for a job whose output exists, or None when it should run."""
    if options.overwrite or not job.output.exists():
        return None
    if options.skip_existing:
        log.debug("skip %s: %s exists", job.source, job.output)
        return ItemResult(job.source, job.output, "skipped")
    return failure(job.source, job.output, OutputExistsError(job.output))


def _save(stamp: CodecStamp, job: Job, latents: Latents, reader_info: tuple[int, int], options: RunOptions) -> ItemResult:
    channels, rate = reader_info
    save_latents(job.output, latents, stamp, channels=channels, original_sample_rate=rate, overwrite=options.overwrite)
    return ItemResult(job.source, job.output, "done", num_frames=latents.num_frames, num_samples=latents.num_samples)


def encode_jobs(model: HybridCodec, jobs: Sequence[Job], options: RunOptions) -> list[ItemResult]:
    """Encode each job's audio into its ``.hylat`` output; short files go in batches of ``options.batch_size``."""
    notices = _ConversionNotices()
    stamp = CodecStamp.of(model)
    results: list[ItemResult] = []
    record = results.append
    pending = _Pending()

    def flush() -> None:
        batch_jobs, signals, infos = pending.take()
        if not batch_jobs:
            return
        try:
            encoded = encode_batch(model, signals)
        except Exception as err:  # a batch that fails falls back to one by one, to blame the right file
            log.debug("batch failed (%s); encoding its files one by one", err)
            encoded = [None] * len(batch_jobs)
        for job, sig, info, lat in zip(batch_jobs, signals, infos, encoded, strict=True):
            try:
                record(_save(stamp, job, lat if lat is not None else encode_stream(model, [sig]), info, options))
            except Exception as err:
                record(failure(job.source, job.output, err))

    bar = tqdm(jobs, desc="encode", unit="file", disable=not options.progress or len(jobs) < 2, dynamic_ncols=True)
    for job in bar:
        existing = _existing(job, options)
        if existing is not None:
            record(existing)
            continue
        try:
            with AudioReader(job.source, block_size=options.chunk_samples) as reader:
                notices.note(reader)
                info = (reader.info.channels, reader.info.sample_rate)
                if options.batch_size > 1 and reader.num_samples <= options.chunk_samples:
                    signal = np.concatenate(list(reader))
                    pending.jobs.append(job)
                    pending.payload.append(signal)
                    pending.extra.append(info)
                    if len(pending) >= options.batch_size:
                        flush()
                    continue
                with _chunk_bar(options, reader.num_samples, job.source) as inner:
                    latents = encode_stream(model, _stream_blocks(reader, inner), reader.num_samples)
            record(_save(stamp, job, latents, info, options))
        except Exception as err:
            record(failure(job.source, job.output, err))
    flush()
    return results


def encode_paths(
    model: HybridCodec, inputs: Sequence[str | os.PathLike], out: str | os.PathLike | None = None,
    options: RunOptions | None = None,
) -> RunSummary:
    """Encode audio files and folders to ``.hylat`` files (see :func:`plan_jobs` for the layout)."""
    options = options or RunOptions()
    jobs, failures = plan_jobs(inputs, out, source_suffixes=AUDIO_EXTENSIONS, file_suffixes=frozenset({SUFFIX}),
                               folder_suffix=SUFFIX, beside_suffix=SUFFIX)
    results = encode_jobs(model, jobs, options)
    return RunSummary("encode", ordered_results(jobs, results, failures))


# --------------------------------------------------------------------------- decode


def _write_audio(path: Path, blocks: Iterable[np.ndarray], options: RunOptions) -> tuple[int, list[np.ndarray]]:
    """Write blocks atomically; returns the sample count and, when metrics need them, the blocks."""
    kept: list[np.ndarray] = []
    with AudioWriter(path, SAMPLE_RATE, options.subtype, overwrite=options.overwrite) as writer:
        for block in blocks:
            writer.write(block)
            if options.metrics:
                kept.append(block)
    return writer.num_samples, kept


def _decode_latents(model: HybridCodec, jobs_latents: Sequence[tuple[Job, Latents]], options: RunOptions,
                    record: Callable[[ItemResult, list[np.ndarray]], None]) -> None:
    """Decode and write each (job, latents); short ones batched when ``batch_size > 1``."""
    short = [(j, lat) for j, lat in jobs_latents if options.batch_size > 1 and lat.num_frames <= options.chunk_frames]
    long_ = [(j, lat) for j, lat in jobs_latents if not (options.batch_size > 1 and lat.num_frames <= options.chunk_frames)]
    for start in range(0, len(short), options.batch_size):
        group = short[start : start + options.batch_size]
        try:
            audios = decode_batch(model, [lat for _, lat in group])
        except Exception as err:
            log.debug("batch failed (%s); decoding its files one by one", err)
            audios = [None] * len(group)
        for (job, lat), audio in zip(group, audios, strict=True):
            blocks = [audio] if audio is not None else decode_stream(model, lat, options.chunk_frames)
            try:
                n, kept = _write_audio(job.output, blocks, options)
                record(ItemResult(job.source, job.output, "done", num_frames=lat.num_frames, num_samples=n), kept)
            except Exception as err:
                record(failure(job.source, job.output, err), [])
    for job, lat in long_:
        try:
            with _chunk_bar(options, lat.num_samples, job.source) as inner:
                n, kept = _write_audio(job.output, _stream_blocks(decode_stream(model, lat, options.chunk_frames), inner),
                                       options)
            record(ItemResult(job.source, job.output, "done", num_frames=lat.num_frames, num_samples=n), kept)
        except Exception as err:
            record(failure(job.source, job.output, err), [])


def decode_paths(
    model: HybridCodec, inputs: Sequence[str | os.PathLike], out: str | os.PathLike | None = None,
    options: RunOptions | None = None,
) -> RunSummary:
    """Decode ``.hylat`` files and folders to 24 kHz audio with exactly the original sample count.

    Beside its input, ``x.hylat`` becomes ``x.decoded.wav`` (so an original ``x.wav`` is
    never in the way); in an output folder it becomes ``x.wav``.
    """
    options = options or RunOptions()
    jobs, failures = plan_jobs(inputs, out, source_suffixes=frozenset({SUFFIX}), file_suffixes=OUTPUT_AUDIO_SUFFIXES,
                               folder_suffix=".wav", beside_suffix=".decoded.wav")
    results: list[ItemResult] = []
    bar = tqdm(total=len(jobs), desc="decode", unit="file", disable=not options.progress or len(jobs) < 2,
               dynamic_ncols=True)

    def record(result: ItemResult, _kept: list[np.ndarray]) -> None:
        results.append(result)
        bar.update(1)

    stamp = CodecStamp.of(model)
    ready: list[tuple[Job, Latents]] = []
    for job in jobs:
        existing = _existing(job, options)
        if existing is not None:
            record(existing, [])
            continue
        try:
            latents, _ = load_latents(job.source, stamp)
        except Exception as err:
            record(failure(job.source, job.output, err), [])
            continue
        ready.append((job, latents))
        # Hold at most one batch of codes before writing, so a big folder streams through.
        if len(ready) >= options.batch_size:
            _decode_latents(model, ready, options, record)
            ready = []
    _decode_latents(model, ready, options, record)
    bar.close()
    return RunSummary("decode", ordered_results(jobs, results, failures))


# --------------------------------------------------------------------------- round trip


def _score(reference: np.ndarray, estimate: np.ndarray, source: Path) -> dict[str, float]:
    try:
        from codec import metrics
    except ImportError as err:
        log.warning("metrics unavailable (%s)", err)
        return {}
    scores: dict[str, float] = {}
    for key, fn_name in (("pesq_wb", "pesq_wb"), ("stoi", "stoi")):
        fn = getattr(metrics, fn_name, None)
        if fn is None:
            log.warning("metric %s unavailable in this installation", fn_name)
            continue
        try:
            scores[key] = float(fn(reference, estimate, SAMPLE_RATE))
        except (ImportError, ValueError) as err:
            log.warning("%s: %s unavailable (%s)", source, key, err)
    return scores


def roundtrip_paths(
    model: HybridCodec, inputs: Sequence[str | os.PathLike], out: str | os.PathLike | None = None,
    options: RunOptions | None = None,
) -> RunSummary:
    """Encode then decode audio files; with ``options.metrics`` score each against its input.

    Beside its input, ``x.wav`` becomes ``x.roundtrip.wav``. Scores need the whole
    signals in memory; without ``metrics`` long files stream like ``encode`` / ``decode``.
    """
    options = options or RunOptions()
    jobs, failures = plan_jobs(inputs, out, source_suffixes=AUDIO_EXTENSIONS, file_suffixes=OUTPUT_AUDIO_SUFFIXES,
                               folder_suffix=".wav", beside_suffix=".roundtrip.wav")
    results: list[ItemResult] = []

    def record(result: ItemResult, kept: list[np.ndarray]) -> None:
        if result.status == "done" and options.metrics:
            reference, _ = read_audio(result.source)
            result.metrics = _score(reference, np.concatenate(kept), result.source)
        results.append(result)

    for job in tqdm(jobs, desc="roundtrip", unit="file", disable=not options.progress or len(jobs) < 2,
                    dynamic_ncols=True):
        existing = _existing(job, options)
        if existing is not None:
            record(existing, [])
            continue
        try:
            with AudioReader(job.source, block_size=options.chunk_samples) as reader:
                with _chunk_bar(options, reader.num_samples, job.source) as inner:
                    latents = encode_stream(model, _stream_blocks(reader, inner), reader.num_samples)
        except Exception as err:
            record(failure(job.source, job.output, err), [])
            continue
        _decode_latents(model, [(job, latents)], options, record)
    return RunSummary("roundtrip", ordered_results(jobs, results, failures))


# --------------------------------------------------------------------------- info


def latent_info(path: str | os.PathLike) -> LatentFileInfo:
    """Metadata of a ``.hylat`` file (header only); raises :class:`LatentFileError` when unusable."""
    return read_latent_info(path)


def format_info(path: str | os.PathLike, info: LatentFileInfo) -> str:
    return "\n".join([
        f"{path}",
        f"  format version   {info.format_version}",
        f"  codec            {info.codec_name}",
        f"  weights sha256   {info.codec_weights_sha256}",
        f"  latent sha256    {info.codec_latent_sha256 or '(not recorded)'}",
        f"  duration         {info.duration:.3f} s ({info.num_samples} samples at {info.sample_rate} Hz)",
        f"  frames           {info.num_frames} at {info.frame_rate:g} Hz",
        f"  bitrate          {info.bitrate:.1f} bit/s",
        f"  original input   {info.channels} channel(s) at {info.original_sample_rate} Hz",
    ])
