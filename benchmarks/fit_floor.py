"""Fit the floor row's block transform on the training corpus's analysis cache.

    python -m benchmarks.fit_floor [--cache data/analysis/train ...] [--out benchmarks/data/floor_transform.safetensors]

Reads the causal analyses (the codec's input) of up to ``--max-hours`` of each cache folder,
fits :class:`codec.block_transform.BlockTransform` and writes its buffers; the quality
benchmark's floor row (``analysis-floor``) codes with it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from safetensors.torch import save_file

from benchmarks.systems.analysis import FLOOR_FILE, floor_bits_per_frame
from codec.analysis import AnalysisConfig
from codec.block_transform import BlockTransform
from codec.training.features import FeatureCacheError, clean_analyses


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.fit_floor", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, nargs="+", default=[Path("data/analysis/train")])
    ap.add_argument("--out", type=Path, default=FLOOR_FILE)
    ap.add_argument("--max-hours", type=float, default=4.0, help="hours of steps read per cache folder")
    args = ap.parse_args(argv)
    config = AnalysisConfig()
    try:
        analyses = clean_analyses(args.cache, config, args.max_hours)
    except FeatureCacheError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    block = BlockTransform(config.bands, config.voicing_bands)
    block.fit(analyses)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in block.state_dict().items()}, str(args.out))
    hours = sum(a.f0.shape[1] for a in analyses) / 360000
    bits = floor_bits_per_frame(block)
    print(f"{args.out}: fitted on {hours:.2f} h, {bits:.0f} bits per frame ({bits * 12.5 / 1000:.2f} kbps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
