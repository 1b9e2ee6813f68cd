"""Encode every audio file a JSON-lines manifest lists (``hylac-codec encode-manifest``).

Resumable (outputs already written by this codec are kept) and sharded by rank, so
``torchrun`` processes can share one manifest; rank 0 merges the per-rank results into
``manifest.jsonl`` (the input lines plus their latents) and ``failed.jsonl``.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from codec.cli.commands import encode_jobs
from codec.cli.jobs import ItemResult, Job, RunOptions, RunSummary, UsageError
from codec.io.latent_file import SUFFIX, CodecStamp, LatentFileError, check_codec, read_latent_info
from codec.io.manifest import ManifestError, ManifestRecord, read_manifest, write_manifest
from codec.io.output import prepare_output_dir
from codec.model import HybridCodec

log = logging.getLogger(__name__)


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

    @classmethod
    def of(cls, index: int, record: ManifestRecord) -> ManifestLine:
        if record.error is not None:
            return cls(index, {}, error=record.error)
        source = record.path()
        return cls(index, record.fields, source, manifest_output_path(source, record.base))


def manifest_output_path(source: Path, manifest_dir: Path) -> Path:
    """Relative ``.hylat`` path for an audio path: its path under the manifest's folder, else its absolute path
    without the root (so no output ever escapes the output folder)."""
    resolved = source.resolve()
    try:
        rel = resolved.relative_to(manifest_dir.resolve())
    except ValueError:
        rel = resolved.relative_to(resolved.anchor)
    return rel.with_suffix(SUFFIX)


def read_manifest_lines(path: str | os.PathLike) -> list[ManifestLine]:
    """The lines of a JSON-lines manifest whose objects have at least ``"path"``; unusable
    lines keep their place, with ``error`` set."""
    try:
        records = read_manifest(path, strict=False)
    except ManifestError as err:
        raise UsageError(str(err)) from err
    return [ManifestLine.of(i, record) for i, record in enumerate(records)]


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
    lines = read_manifest_lines(manifest)
    first_of: dict[Path, int] = {}
    for line in lines:
        if line.output is not None:
            first_of.setdefault(line.output, line.index)
    mine = [ln for ln in lines if ln.index % world_size == rank]
    todo = [ln for ln in mine if ln.error is None and first_of[ln.output] == ln.index]
    jobs = [Job(ln.source, out_dir / ln.output) for ln in todo]
    by_source = {job.source: ln for job, ln in zip(jobs, todo, strict=True)}
    resume = RunOptions(**{**options.__dict__, "skip_existing": True})
    results = encode_jobs(model, jobs, resume)
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
    write_manifest(_part_path(out_dir, rank), records)
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
            for record in read_manifest(part, required=()):
                entries[record.fields["index"]] = record.fields
        except (ManifestError, KeyError) as err:
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
    write_manifest(out_dir / "manifest.jsonl", out_lines)
    failed_path = out_dir / "failed.jsonl"
    if failed_lines:
        write_manifest(failed_path, failed_lines)
    else:
        failed_path.unlink(missing_ok=True)
    shutil.rmtree(out_dir / ".parts", ignore_errors=True)
    return RunSummary("encode-manifest", items)
