"""Build the offline multilingual speech corpus (see `codec.training.corpus`).

Example: python scripts/build_corpus.py --out data/corpus --hours 10 --workers 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from codec.training.corpus import CorpusConfig, build_corpus
from codec.training.corpus.recorded import RecordedConfig
from codec.training.phonemes import LANGUAGES


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", type=Path, required=True, help="output folder")
    ap.add_argument(
        "--hours", type=float, default=6.0,
        help="hours of synthetic training audio (default 6), beside the recorded sources",
    )
    ap.add_argument("--piper-hours", type=float, default=3.0, help="hours of Piper English (default 3)")
    ap.add_argument("--no-recorded", action="store_true",
                    help="synthetic voices only (no Asterisk, festvox-ru or Piper speech)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2, help="synthesis processes (default 2)")
    ap.add_argument("--langs", default=",".join(LANGUAGES), help="comma-separated language codes")
    ap.add_argument("--speakers-per-voice", type=int, default=2)
    ap.add_argument(
        "--heldout-fraction",
        type=float,
        default=0.05,
        help="valid and test size, each relative to --hours (default 0.05)",
    )
    args = ap.parse_args(argv)
    cfg = CorpusConfig(
        out=args.out,
        hours=args.hours,
        seed=args.seed,
        workers=args.workers,
        langs=tuple(x.strip() for x in args.langs.split(",") if x.strip()),
        speakers_per_voice=args.speakers_per_voice,
        heldout_fraction=args.heldout_fraction,
        recorded=None if args.no_recorded else RecordedConfig(piper_hours=args.piper_hours),
    )
    s = build_corpus(cfg)
    for split in ("train", "valid", "test"):
        print(
            f"{split:5s}: {s.utterances[split]:6d} utterances, {s.hours[split]:7.3f} h, "
            f"{s.speakers[split]:3d} speakers"
        )
    print("per language (h): " + ", ".join(f"{k} {v:.3f}" for k, v in s.per_lang_hours.items()))
    print(
        f"synthesised {s.synthesized}, discarded {s.discarded}, {s.seconds:.1f} s; "
        f"manifest: {s.manifest}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
