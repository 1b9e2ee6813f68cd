"""JSON-lines manifests: one JSON object per line, audio paths relative to the manifest's folder.

The one reader (:func:`read_manifest`) and writer (:func:`write_manifest`) of the project's
manifests (corpora, latent sets, benchmark clip lists): blank lines are skipped, a line
that is not a JSON object with the required fields is reported as ``"<path>:<line>:
<problem>"``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codec.io.output import write_bytes_atomic


class ManifestError(ValueError):
    """A manifest that cannot be read, or (strict reading) a line that cannot be used."""


@dataclass(frozen=True)
class ManifestRecord:
    """One non-blank line of a manifest.

    Attributes:
        line: its 1-based line number in the file.
        fields: the JSON object (empty when the line is unusable).
        base: the manifest's folder, against which relative paths resolve.
        error: why the line is unusable (``"<path>:<line>: <problem>"``), else None.
    """

    line: int
    fields: dict[str, Any] = field(default_factory=dict)
    base: Path = Path(".")
    error: str | None = None

    def path(self, key: str = "path") -> Path:
        """The path in field ``key``, resolved against the manifest's folder unless absolute."""
        value = Path(self.fields[key])
        return value if value.is_absolute() else self.base / value


def read_manifest(path: str | os.PathLike, required: Sequence[str] = ("path",),
                  strict: bool = True) -> list[ManifestRecord]:
    """The records of a JSON-lines file, each a JSON object with string fields ``required``.

    ``strict``: the first unusable line raises :class:`ManifestError`; otherwise it comes
    back as a record with ``error`` set, in its place. An unreadable file always raises.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ManifestError(f"{path}: cannot read manifest ({getattr(err, 'strerror', None) or err})") from err
    records = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            fields = json.loads(raw)
            problem = None
        except json.JSONDecodeError as err:
            fields, problem = {}, f"not valid JSON ({err.msg})"
        if problem is None and not isinstance(fields, dict):
            fields, problem = {}, "not a JSON object"
        missing = [k for k in required if not (isinstance(fields.get(k), str) and fields[k])]
        if problem is None and missing:
            fields, problem = {}, "no " + ", ".join(f'"{k}"' for k in missing) + " field"
        if problem is not None and strict:
            raise ManifestError(f"{path}:{number}: {problem}")
        records.append(ManifestRecord(number, fields, path.parent, None if problem is None else f"{path}:{number}: {problem}"))
    return records


def manifest_bytes(records: Iterable[dict[str, Any]]) -> bytes:
    """Records as JSON-lines bytes (UTF-8, one object per line)."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


def write_manifest(path: str | os.PathLike, records: Iterable[dict[str, Any]], overwrite: bool = True) -> None:
    """Write records as a JSON-lines file, atomically."""
    write_bytes_atomic(Path(path), manifest_bytes(records), overwrite)
