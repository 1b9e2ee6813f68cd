"""Planning and reporting a run of ``hylac-codec``: which input goes to which output
(:func:`plan_jobs`), the options of a run, and the per-file results and summary."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from codec.io.audio import AUDIO_EXTENSIONS, AudioInputError
from codec.io.latent_file import SUFFIX, LatentFileError
from codec.io.output import OutputExistsError, OutputWriteError
from codec.latents import FRAME_SIZE, SAMPLE_RATE

log = logging.getLogger("codec.cli")

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


def failure(source: Path, output: Path | None, err: BaseException) -> ItemResult:
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


def ordered_results(jobs: Sequence[Job], results: Iterable[ItemResult], extra: Iterable[ItemResult]) -> list[ItemResult]:
    order = {job.source: i for i, job in enumerate(jobs)}
    return list(extra) + sorted(results, key=lambda r: order.get(r.source, -1))


