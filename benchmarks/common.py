"""Output helpers shared by the benchmarks: environment record, JSON, markdown, plots.

Every benchmark writes `<name>.json` (all numbers plus the environment they were measured
in), `<name>.md` (the table a reader compares) and `<name>.png` (matplotlib, Agg backend).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Where a benchmark writes its results unless ``--out`` names another folder.
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"


def parse_with_out(parser: argparse.ArgumentParser, argv: Sequence[str] | None,
                   default: Path = RESULTS_DIR) -> argparse.Namespace:
    """Add ``--out`` (last, after the benchmark's own options) and parse ``argv``, so every
    benchmark takes its output folder the same way."""
    parser.add_argument("--out", type=Path, default=default)
    return parser.parse_args(argv)


def git_commit(root: Path = REPO_ROOT) -> str | None:
    """Commit hash of the working tree (suffixed `-dirty` when it has changes), if known."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def environment_info() -> dict[str, Any]:
    """What a measurement depends on: versions, threads, hardware, date and commit."""
    info: dict[str, Any] = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        # Other processes competing for the CPUs distort timings; record how busy it was.
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    return info


def _jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays and non-finite floats into strict-JSON values."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None  # strict JSON has no NaN/Inf; a missing value reads as null
    return value


def write_json(path: Path, data: Mapping[str, Any]) -> Path:
    """Write `data` as indented strict JSON (NaN/Inf become null); creates parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_jsonable(data), indent=2, allow_nan=False) + "\n")
    return path


@dataclass
class Report:
    """The outputs of one benchmark run: ``<name>.json``, ``<name>.md`` and, with panels, ``<name>.png``.

    ``environment`` is taken when the report is made (at the start of the run, so the load
    average is the one the measurements met); :meth:`write` records it in the JSON.
    """

    name: str
    title: str
    environment: dict[str, Any] = field(default_factory=environment_info)

    def write(self, out_dir: Path, data: Mapping[str, Any], sections: Sequence[str],
              panels: Sequence[Panel] = (), suptitle: str | None = None) -> dict[str, Path]:
        """Write ``data`` (plus the environment, unless it holds one), ``# title`` with
        ``sections``, and the panels' plot under ``out_dir``; returns the paths by kind."""
        out_dir = Path(out_dir)
        record = dict(data) if "environment" in data else {**data, "environment": self.environment}
        paths = {"json": write_json(out_dir / f"{self.name}.json", record),
                 "md": write_markdown(out_dir / f"{self.name}.md", self.title, sections)}
        if panels:
            paths["png"] = save_plot(out_dir / f"{self.name}.png", panels, suptitle)
        return paths


def format_number(value: float | int | None, digits: int = 2, significant: int | None = None) -> str:
    """Table cell for a number: fixed `digits` decimals, or `significant` digits when given
    (for quantities spanning orders of magnitude); `–` when missing or not finite."""
    if value is None:
        return "–"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if not math.isfinite(float(value)):
        return "–"
    if significant is not None:
        return f"{float(value):.{significant}g}"
    return f"{float(value):.{digits}f}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """GitHub-flavoured markdown table; the first column is left-aligned, the rest right."""
    if any(len(row) != len(headers) for row in rows):
        raise ValueError("every row needs exactly one cell per header")
    align = [":--"] + ["--:"] * (len(headers) - 1)
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_markdown(path: Path, title: str, sections: Sequence[str]) -> Path:
    """Write `# title` followed by the given markdown sections separated by blank lines."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {title}\n\n" + "\n\n".join(s.strip() for s in sections) + "\n")
    return path


@dataclass
class Series:
    """One labelled set of points (or bars) of a plot panel."""

    label: str
    x: list[float]
    y: list[float]


@dataclass
class Panel:
    """One subplot: `kind="scatter"` draws labelled points, `"bar"` grouped bars.

    For bars, `categories` names the groups on the x axis and each series gives one
    value per category in `y` (its `x` is ignored).
    """

    title: str
    xlabel: str
    ylabel: str
    series: list[Series]
    kind: str = "scatter"
    xlog: bool = False
    ylog: bool = False
    categories: list[str] = field(default_factory=list)


def save_plot(path: Path, panels: Sequence[Panel], suptitle: str | None = None) -> Path:
    """Render panels side by side into a PNG with matplotlib's Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(panels), figsize=(6.0 * len(panels), 4.5), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        if panel.kind == "scatter":
            for series in panel.series:
                pts = [(x, y) for x, y in zip(series.x, series.y, strict=True) if _finite(x, y)]
                if not pts:
                    continue
                xs, ys = zip(*pts, strict=True)
                ax.plot(xs, ys, marker="o", linestyle="-" if len(xs) > 1 else "", label=series.label)
                for x, y in pts:
                    ax.annotate(series.label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        elif panel.kind == "bar":
            n = max(len(panel.series), 1)
            width = 0.8 / n
            positions = np.arange(len(panel.categories))
            for i, series in enumerate(panel.series):
                ys = [y if _finite(y) else 0.0 for y in series.y]
                ax.bar(positions + (i - (n - 1) / 2) * width, ys, width, label=series.label)
            ax.set_xticks(positions)
            ax.set_xticklabels(panel.categories, rotation=30, ha="right", fontsize=8)
        else:
            raise ValueError(f"unknown panel kind {panel.kind!r}; use 'scatter' or 'bar'")
        ax.set_title(panel.title)
        ax.set_xlabel(panel.xlabel)
        ax.set_ylabel(panel.ylabel)
        if panel.xlog:
            ax.set_xscale("log")
        if panel.ylog:
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        if panel.series:
            ax.legend(fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _finite(*values: float | None) -> bool:
    return all(v is not None and math.isfinite(float(v)) for v in values)
