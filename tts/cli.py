"""Command line: ``hylac-tts generate | train | export | demo`` (also ``python -m tts``)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .config import SCHEDULES, SOLVERS, SamplingConfig


def _generate(args: argparse.Namespace) -> int:
    import soundfile as sf
    import torch

    from .synthesizer import load

    if args.threads:
        torch.set_num_threads(args.threads)
    sampling = SamplingConfig(steps=args.steps, cfg=args.cfg, temperature=args.temperature, top_k=args.top_k,
                              solver=args.solver, schedule=args.schedule, max_seconds=args.max_seconds)
    synth = load(args.model, device=args.device)
    t0 = time.perf_counter()
    audio = synth.generate(args.text, args.lang, args.voice, sampling=sampling, seed=args.seed)
    seconds = time.perf_counter() - t0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(out), audio.numpy(), synth.sample_rate)
    dur = audio.numel() / synth.sample_rate
    rtf = seconds / dur if dur else float("nan")
    print(f"{out}: {dur:.2f} s of audio in {seconds:.2f} s (RTF {rtf:.2f})")
    return 0


def _train(args: argparse.Namespace) -> int:
    from .train import train

    result = train(args.config, args.set, resume=args.resume)
    print(f"trained steps {result.start_step}..{result.step}; checkpoint {result.checkpoint}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import speak_demo
    from .synthesizer import load

    synth = load(args.model, device=args.device)
    sampling = SamplingConfig(max_seconds=args.max_seconds)
    for path in speak_demo(synth, args.corpus, args.out, split=args.split, sampling=sampling, seed=args.seed):
        print(path)
    return 0


def _export(args: argparse.Namespace) -> int:
    from .train import export_checkpoint

    print(export_checkpoint(args.checkpoint, args.out, overwrite=args.overwrite))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hylac-tts", description="Text-to-speech in the hylac codec's latent space.")
    sub = parser.add_subparsers(dest="command", required=True)
    d = SamplingConfig()

    g = sub.add_parser("generate", help="speak a text with the voice of a reference recording")
    g.add_argument("--text", required=True, help="what to say")
    g.add_argument("--lang", required=True, help="language: en fr es de it pt nl hi ar")
    g.add_argument("--voice", required=True, help="reference recording (3-30 s) to clone")
    g.add_argument("-o", "--out", required=True, help="output audio file (.wav, .flac)")
    g.add_argument("--model", default="hylac-tts-tiny", help="shipped model name or model folder")
    g.add_argument("--steps", type=int, default=d.steps, help="flow ODE solver steps per frame")
    g.add_argument("--cfg", type=float, default=d.cfg, help="classifier-free guidance strength (1 = none)")
    g.add_argument("--temperature", type=float, default=d.temperature, help="semantic sampling temperature (0 = greedy)")
    g.add_argument("--top-k", type=int, default=d.top_k, help="semantic top-k (0 = all)")
    g.add_argument("--solver", choices=SOLVERS, default=d.solver)
    g.add_argument("--schedule", choices=SCHEDULES, default=d.schedule)
    g.add_argument("--max-seconds", type=float, default=d.max_seconds, help="length limit of the output")
    g.add_argument("--seed", type=int, default=None, help="random seed (reproducible output)")
    g.add_argument("--device", default="cpu")
    g.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch's default)")
    g.set_defaults(func=_generate)

    t = sub.add_parser("train", help="train on codec latents (runs under torchrun too)")
    t.add_argument("--config", required=True, help="YAML config (e.g. configs/tts_tiny.yaml)")
    t.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a config value")
    t.add_argument("--resume", action="store_true", help="continue from the latest checkpoint of trainer.out_dir")
    t.set_defaults(func=_train)

    m = sub.add_parser("demo", help="speak one sentence per language with held-out corpus voices")
    m.add_argument("--corpus", required=True, help="corpus manifest (its held-out split gives the voices)")
    m.add_argument("--out", default="out", help="folder for tts_<lang>.wav")
    m.add_argument("--model", default="hylac-tts-tiny", help="shipped model name or model folder")
    m.add_argument("--split", default="test")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--max-seconds", type=float, default=d.max_seconds, help="length limit of each output")
    m.add_argument("--device", default="cpu")
    m.set_defaults(func=_demo)

    e = sub.add_parser("export", help="turn a training checkpoint into a model folder for tts.load")
    e.add_argument("checkpoint", help="checkpoint folder, e.g. runs/tts/checkpoints/step_0020000")
    e.add_argument("out", help="model folder to write")
    e.add_argument("--overwrite", action="store_true", help="replace a model already in that folder")
    e.set_defaults(func=_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError, TypeError) as e:
        print(f"hylac-tts {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
