"""The work behind ``hylac-codec``: encode, decode, round-trip, inspect, and encode a manifest.

Each command is an importable function taking a loaded codec and paths and returning a
:class:`RunSummary`; the CLI only parses arguments, loads the model and prints. Inputs
are processed one by one (or in batches of short files); a bad input fails alone, with a
one-line message naming the file, and never leaves a partial output behind.

Long recordings stream through the codec in chunks of whole frames
(``with model.streaming(1)``), read and resampled block by block and written block by
block, so memory holds the codes of a file but never its activations or its audio.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from codec.audio_io import (
    AUDIO_EXTENSIONS,
    AudioInputError,
    AudioReader,
    AudioWriter,
    OutputExistsError,
    OutputWriteError,
    prepare_output_dir,
    read_audio,
    write_bytes_atomic,
)
from codec.latent_file import (
    SUFFIX,
    CodecStamp,
    LatentFileError,
    LatentFileInfo,
    check_codec,
    load_latents,
    read_latent_info,
    save_latents,
)
from codec.latents import FRAME_SIZE, SAMPLE_RATE, Latents, num_frames
from codec.model import HybridCodec

log = logging.getLogger(__name__)

#: Audio containers written by ``decode`` / ``roundtrip`` (chosen by the output suffix).
OUTPUT_AUDIO_SUFFIXES = frozenset({".wav", ".flac"})


class UsageError(ValueError):
    """The request itself is wrong (nothing to do, conflicting outputs, bad option values)."""


# --------------------------------------------------------------------------- results


@dataclass
class RunOptions:
    """How a run treats outputs and groups work.

    Attributes:
        overwrite: replace existing outputs (otherwise an existing output fails that item).
        skip_existing: treat an existing output as done instead of failing (resuming a run).
        batch_size: short files (at most one chunk) are encoded/decoded this many at a time.
        chunk_seconds: streaming chunk length; rounded down to whole frames.
        progress: show tqdm progress bars.
        subtype: sample format of written audio (``PCM_16``, ``PCM_24``, ``FLOAT``).
        metrics: round trip also scores PESQ-WB and STOI against the input.
    """

    overwrite: bool = False
    skip_existing: bool = False
    batch_size: int = 1
    chunk_seconds: float = 30.0
    progress: bool = False
    subtype: str = "PCM_16"
    metrics: bool = False

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.chunk_frames < 1:
            raise UsageError(f"--chunk-seconds must cover at least one frame (0.08 s), got {self.chunk_seconds}")

    @property
    def chunk_frames(self) -> int:
        return int(self.chunk_seconds * SAMPLE_RATE) // FRAME_SIZE

    @property
    def chunk_samples(self) -> int:
        return self.chunk_frames * FRAME_SIZE


@dataclass
class ItemResult:
    """What happened to one input.

    Attributes:
        source: the input path.
        output: the output path (None when none was planned).
        status: ``"done"``, ``"skipped"`` (output existed) or ``"failed"``.
        error: one-line reason when failed.
        output_error: the failure was in writing the output, not in the input.
        num_frames: latent frames of the item (0 when unknown).
        num_samples: 24 kHz samples of the item (0 when unknown).
        metrics: round-trip scores, e.g. ``{"pesq_wb": 2.1, "stoi": 0.9}``.
    """

    source: Path
    output: Path | None
    status: str
    error: str | None = None
    output_error: bool = False
    num_frames: int = 0
    num_samples: int = 0
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return self.num_samples / SAMPLE_RATE


@dataclass
class RunSummary:
    """All items of one command run, in input order."""

    command: str
    items: list[ItemResult]

    def with_status(self, status: str) -> list[ItemResult]:
        return [r for r in self.items if r.status == status]

    @property
    def failed(self) -> list[ItemResult]:
        return self.with_status("failed")

    def format(self) -> str:
        """A closing summary: counts, then each failure on its own line."""
        done, skipped, failed = (len(self.with_status(s)) for s in ("done", "skipped", "failed"))
        head = f"{self.command}: {done} done"
        if skipped:
            head += f", {skipped} skipped (output exists)"
        head += f", {failed} failed"
        return "\n".join([head] + [f"  failed: {r.error}" for r in self.failed])


def _failure(source: Path, output: Path | None, err: BaseException) -> ItemResult:
    message = str(err) if isinstance(err, (AudioInputError, LatentFileError, OutputExistsError, OutputWriteError)) \
        else f"{source}: {type(err).__name__}: {err}"
    log.error("error: %s", message, exc_info=log.isEnabledFor(logging.DEBUG))
    return ItemResult(source, output, "failed", message, isinstance(err, (OutputWriteError, OutputExistsError)))


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class Job:
    """One input and where its output goes."""

    source: Path
    output: Path


def plan_jobs(
    inputs: Sequence[str | os.PathLike],
    out: str | os.PathLike | None,
    *,
    source_suffixes: frozenset[str],
    file_suffixes: frozenset[str],
    folder_suffix: str,
    beside_suffix: str,
) -> tuple[list[Job], list[ItemResult]]:
    """Map inputs (files or folders, searched recursively) to output paths.

    Without ``out`` each output goes beside its input (``stem + beside_suffix``). With a
    single file input and an ``out`` ending in one of ``file_suffixes``, ``out`` is the
    output file. Otherwise ``out`` is a folder: files go to ``out/stem + folder_suffix``
    and a folder's files keep their relative layout under ``out``.

    Returns:
        ``(jobs, failures)``: failures for folders holding no inputs and for inputs
        whose output would collide with an earlier one's.
    """
    if not inputs:
        raise UsageError("no inputs given")
    out_path = Path(out) if out is not None else None
    single_file_out = (
        out_path is not None and len(inputs) == 1 and not Path(inputs[0]).is_dir()
        and out_path.suffix.lower() in file_suffixes and not out_path.is_dir()
    )
    if out_path is not None and not single_file_out and out_path.suffix.lower() in file_suffixes:
        raise UsageError(f"-o {out_path} names a file, but the inputs give several outputs: pass a folder")
    foreign = (AUDIO_EXTENSIONS | {SUFFIX}) - file_suffixes
    if out_path is not None and out_path.suffix.lower() in foreign and not out_path.is_dir():
        wanted = " or ".join(sorted(file_suffixes))
        raise UsageError(f"-o {out_path}: this command writes {wanted} files (or give a folder)")
    jobs: list[Job] = []
    failures: list[ItemResult] = []
    for raw in inputs:
        src = Path(raw)
        if src.is_dir():
            found = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in source_suffixes
                           and not p.name.startswith("."))
            if not found:
                wanted = ", ".join(sorted(source_suffixes))
                failures.append(ItemResult(src, None, "failed", f"{src}: folder holds no input files ({wanted})"))
                log.error("error: %s", failures[-1].error)
            for p in found:
                rel = p.relative_to(src)
                base = out_path if out_path is not None else src
                suffix = folder_suffix if out_path is not None else beside_suffix
                jobs.append(Job(p, base / rel.parent / (rel.stem + suffix)))
        elif out_path is None:
            jobs.append(Job(src, src.with_name(src.stem + beside_suffix)))
        elif single_file_out:
            jobs.append(Job(src, out_path))
        else:
            jobs.append(Job(src, out_path / (src.stem + folder_suffix)))
    seen: dict[Path, Path] = {}
    unique: list[Job] = []
    for job in jobs:
        key = job.output.resolve()
        if key in seen:
            failures.append(ItemResult(job.source, job.output, "failed",
                                       f"{job.source}: its output {job.output} would also be written by {seen[key]}"))
            log.error("error: %s", failures[-1].error)
        else:
            seen[key] = job.source
            unique.append(job)
    return unique, failures


def _ordered(jobs: Sequence[Job], results: Iterable[ItemResult], extra: Iterable[ItemResult]) -> list[ItemResult]:
    order = {job.source: i for i, job in enumerate(jobs)}
    return list(extra) + sorted(results, key=lambda r: order.get(r.source, -1))


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


def _device(model: HybridCodec) -> torch.device:
    return next(model.parameters()).device


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
    device = _device(model)
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
            part = latents.frames(start, start + chunk_frames).to(_device(model))
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
    lat = model.encode(x.to(_device(model)), SAMPLE_RATE).to("cpu")
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
    audio = model.decode(Latents(sem, ac, longest * FRAME_SIZE, levels).to(_device(model)))
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
    return _failure(job.source, job.output, OutputExistsError(job.output))


def _save(stamp: CodecStamp, job: Job, latents: Latents, reader_info: tuple[int, int], options: RunOptions) -> ItemResult:
    channels, rate = reader_info
    save_latents(job.output, latents, stamp, channels=channels, original_sample_rate=rate, overwrite=options.overwrite)
    return ItemResult(job.source, job.output, "done", num_frames=latents.num_frames, num_samples=latents.num_samples)


def _encode_jobs(model: HybridCodec, jobs: Sequence[Job], options: RunOptions) -> list[ItemResult]:
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
                record(_failure(job.source, job.output, err))

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
            record(_failure(job.source, job.output, err))
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
    results = _encode_jobs(model, jobs, options)
    return RunSummary("encode", _ordered(jobs, results, failures))


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
                record(_failure(job.source, job.output, err), [])
    for job, lat in long_:
        try:
            with _chunk_bar(options, lat.num_samples, job.source) as inner:
                n, kept = _write_audio(job.output, _stream_blocks(decode_stream(model, lat, options.chunk_frames), inner),
                                       options)
            record(ItemResult(job.source, job.output, "done", num_frames=lat.num_frames, num_samples=n), kept)
        except Exception as err:
            record(_failure(job.source, job.output, err), [])


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
            record(_failure(job.source, job.output, err), [])
            continue
        ready.append((job, latents))
        # Hold at most one batch of codes before writing, so a big folder streams through.
        if len(ready) >= options.batch_size:
            _decode_latents(model, ready, options, record)
            ready = []
    _decode_latents(model, ready, options, record)
    bar.close()
    return RunSummary("decode", _ordered(jobs, results, failures))


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
            record(_failure(job.source, job.output, err), [])
            continue
        _decode_latents(model, [(job, latents)], options, record)
    return RunSummary("roundtrip", _ordered(jobs, results, failures))


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
        f"  duration         {info.duration:.3f} s ({info.num_samples} samples at {info.sample_rate} Hz)",
        f"  frames           {info.num_frames} at {info.frame_rate:g} Hz",
        f"  bitrate          {info.bitrate:.1f} bit/s",
        f"  original input   {info.channels} channel(s) at {info.original_sample_rate} Hz",
    ])


# --------------------------------------------------------------------------- manifest


@dataclass
class ManifestLine:
    """One line of an input manifest.

    Attributes:
        index: 0-based line number among non-blank lines.
        record: the parsed JSON object (kept verbatim in the output manifest).
        source: the audio path resolved against the manifest's folder.
        output: relative path of the ``.hylat`` under the output folder.
        error: why the line cannot be used (bad JSON, no "path").
    """

    index: int
    record: dict
    source: Path | None = None
    output: Path | None = None
    error: str | None = None


def manifest_output_path(source: Path, manifest_dir: Path) -> Path:
    """Relative ``.hylat`` path for an audio path: its path under the manifest's folder, else its absolute path
    without the root (so no output ever escapes the output folder)."""
    resolved = source.resolve()
    try:
        rel = resolved.relative_to(manifest_dir.resolve())
    except ValueError:
        rel = resolved.relative_to(resolved.anchor)
    return rel.with_suffix(SUFFIX)


def read_manifest(path: str | os.PathLike) -> list[ManifestLine]:
    """Parse a JSON-lines manifest whose objects have at least ``"path"``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"{path}: cannot read manifest ({getattr(err, 'strerror', None) or err})") from err
    lines: list[ManifestLine] = []
    base = path.parent
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        line = ManifestLine(len(lines), {})
        lines.append(line)
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as err:
            line.error = f"{path}:{lineno}: not valid JSON ({err.msg})"
            continue
        if not isinstance(record, dict) or not isinstance(record.get("path"), str) or not record["path"]:
            line.error = f"{path}:{lineno}: no \"path\" field"
            continue
        line.record = record
        line.source = Path(record["path"]) if Path(record["path"]).is_absolute() else base / record["path"]
        line.output = manifest_output_path(line.source, base)
    return lines


def _part_path(out_dir: Path, rank: int) -> Path:
    return out_dir / ".parts" / f"rank_{rank}.jsonl"


def encode_manifest(
    model: HybridCodec,
    manifest: str | os.PathLike,
    out_dir: str | os.PathLike,
    options: RunOptions | None = None,
    *,
    rank: int = 0,
    world_size: int = 1,
    barrier: Callable[[], None] | None = None,
) -> RunSummary:
    """Encode every audio file a manifest lists into ``out_dir``, resumably and sharded by rank.

    Rank ``r`` of ``world_size`` takes the lines ``i`` with ``i % world_size == r``.
    Outputs that already exist (and were written by this codec) are kept, so a killed
    run resumes where it stopped. Each rank writes its results to
    ``out_dir/.parts/rank_<r>.jsonl``; after ``barrier()``, rank 0 writes
    ``out_dir/manifest.jsonl``: each input line's fields plus ``"latents"`` (the
    ``.hylat`` path relative to ``out_dir``) and ``"num_frames"``, in input order, for
    every line that has its latents; and ``out_dir/failed.jsonl`` for the others.

    Returns:
        on rank 0, the summary of all lines; on other ranks, of their own lines.
    """
    options = options or RunOptions()
    out_dir = prepare_output_dir(out_dir)
    lines = read_manifest(manifest)
    first_of: dict[Path, int] = {}
    for line in lines:
        if line.output is not None:
            first_of.setdefault(line.output, line.index)
    mine = [ln for ln in lines if ln.index % world_size == rank]
    todo = [ln for ln in mine if ln.error is None and first_of[ln.output] == ln.index]
    jobs = [Job(ln.source, out_dir / ln.output) for ln in todo]
    by_source = {job.source: ln for job, ln in zip(jobs, todo, strict=True)}
    resume = RunOptions(**{**options.__dict__, "skip_existing": True})
    results = _encode_jobs(model, jobs, resume)
    stamp = CodecStamp.of(model)

    records: list[dict] = [{"index": ln.index, "status": "failed", "error": ln.error} for ln in mine if ln.error]
    for result in results:
        ln = by_source[result.source]
        entry: dict = {"index": ln.index, "status": result.status}
        if result.status == "skipped":
            try:  # resumed: trust the existing file only if it is intact and from this codec
                existing = read_latent_info(result.output)
                check_codec(existing, stamp, result.output)
                entry["num_frames"] = existing.num_frames
            except LatentFileError as err:
                entry.update(status="failed", error=f"existing output unusable ({err}); delete it or pass --overwrite")
        elif result.status == "done":
            entry["num_frames"] = result.num_frames
            log.debug("rank %d wrote %s", rank, result.output)
        else:
            entry["error"] = result.error
        records.append(entry)
    write_bytes_atomic(_part_path(out_dir, rank), "".join(json.dumps(r) + "\n" for r in records).encode(),
                       overwrite=True)
    if barrier is not None:
        barrier()
    if rank != 0:
        return RunSummary("encode-manifest", [_manifest_item(lines[r["index"]], r) for r in records])
    return _merge_manifest(out_dir, lines, first_of, world_size)


def _manifest_item(line: ManifestLine, entry: dict) -> ItemResult:
    return ItemResult(line.source or Path(f"line {line.index + 1}"), line.output, entry["status"], entry.get("error"),
                      num_frames=entry.get("num_frames", 0))


def _merge_manifest(out_dir: Path, lines: list[ManifestLine], first_of: dict[Path, int], world_size: int) -> RunSummary:
    entries: dict[int, dict] = {}
    for rank in range(world_size):
        part = _part_path(out_dir, rank)
        try:
            for raw in part.read_text(encoding="utf-8").splitlines():
                entry = json.loads(raw)
                entries[entry["index"]] = entry
        except (OSError, json.JSONDecodeError) as err:
            log.error("error: %s: results of rank %d unreadable (%s)", part, rank, err)
    out_lines, failed_lines, items = [], [], []
    for line in lines:
        entry = entries.get(line.index)
        if entry is None and line.output is not None and first_of.get(line.output, line.index) != line.index:
            first = entries.get(first_of[line.output])  # duplicate path: shares the first line's latents
            entry = dict(first, index=line.index, status="skipped") if first and first["status"] != "failed" else first
        if entry is None:
            entry = {"index": line.index, "status": "failed", "error": f"line {line.index + 1}: no result"}
        items.append(_manifest_item(line, entry))
        if entry["status"] == "failed":
            failed_lines.append({"line": line.index + 1, "path": line.record.get("path"), "error": entry.get("error")})
        else:
            out_lines.append({**line.record, "latents": line.output.as_posix(), "num_frames": entry["num_frames"]})
    write_bytes_atomic(out_dir / "manifest.jsonl", "".join(json.dumps(r) + "\n" for r in out_lines).encode(),
                       overwrite=True)
    failed_path = out_dir / "failed.jsonl"
    if failed_lines:
        write_bytes_atomic(failed_path, "".join(json.dumps(r) + "\n" for r in failed_lines).encode(), overwrite=True)
    else:
        failed_path.unlink(missing_ok=True)
    shutil.rmtree(out_dir / ".parts", ignore_errors=True)
    return RunSummary("encode-manifest", items)
