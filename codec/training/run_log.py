"""What a training run reports: ``train.log`` lines (also shown above the progress bar), and
metrics averaged over a logging window or a validation pass, across steps and ranks."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from tqdm import tqdm

from codec.training.distributed import DistContext


class RunLog:
    """Log lines to the console (above the progress bar) and to ``train.log``; silent without a path
    (the ranks other than 0)."""

    def __init__(self, path: Path | None) -> None:
        self._file = open(path, "a", encoding="utf-8") if path is not None else None  # noqa: SIM115

    def __call__(self, line: str) -> None:
        if self._file is None:
            return
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        tqdm.write(line, file=sys.stderr)
        self._file.write(f"{stamp} {line}\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def format_metrics(metrics: Mapping[str, float]) -> str:
    """``"name value | name value"`` with four significant digits, as ``train.log`` shows them."""
    return " | ".join(f"{k} {v:.4g}" for k, v in metrics.items())


def window_means(dist: DistContext, window: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """Each scalar of a logging window averaged over its steps on every rank (sorted by name)."""
    merged: dict[str, list[float]] = {}
    for rank_sums in dist.gather({k: (sum(v), len(v)) for k, v in window.items()}):
        for key, (total, n) in rank_sums.items():
            acc = merged.setdefault(key, [0.0, 0])
            acc[0] += total
            acc[1] += n
    return {k: total / n for k, (total, n) in sorted(merged.items()) if n}


def batch_weighted_means(gathered: Sequence[tuple[int, Mapping[str, float]]]) -> tuple[int, dict[str, float]]:
    """Per-rank ``(batches, metrics)`` of a validation pass -> (all batches, metrics weighted by
    each rank's batches; a plain mean where no rank counted any)."""
    total = sum(c for c, _ in gathered)
    merged: dict[str, float] = {}
    for key in sorted({k for _, m in gathered for k in m}):
        parts = [(c, m[key]) for c, m in gathered if key in m]
        weight = sum(c for c, _ in parts)
        merged[key] = sum(c * v for c, v in parts) / weight if weight else sum(v for _, v in parts) / len(parts)
    return total, merged
