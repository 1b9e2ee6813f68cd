"""``hylac-codec`` (also ``python -m codec``): encode, decode, round-trip and inspect with the codec.

Each subcommand is an entry of :data:`SUBCOMMANDS`: a function adding its arguments
and a function running it on the parsed namespace; the work itself lives in
:mod:`codec.cli.commands` and :mod:`codec.cli.encode_manifest`, so scripts and tests call the same code.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from tqdm import tqdm

from codec.cli import commands
from codec.cli.encode_manifest import encode_manifest
from codec.cli.exit_codes import ExitCode, exit_code_help, parse_or_exit, quiet_on_closed_pipe
from codec.cli.jobs import RunOptions, RunSummary, UsageError
from codec.io.latent_file import LatentFileError
from codec.io.output import OutputWriteError
from codec.model import HybridCodec
from codec.models import load

PROG = "hylac-codec"

EPILOG = f"""\
{exit_code_help()}
Outputs are written to a temporary file beside the target and renamed when complete.
Use --debug for tracebacks."""

log = logging.getLogger("codec")


class _TqdmHandler(logging.Handler):
    """Log lines that do not tear through an active progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # a logging handler must never raise
            self.handleError(record)


# --------------------------------------------------------------------------- shared options


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars, per-file lines or notices")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug messages")


def _add_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("-m", "--model", default="hylac-tiny", help="shipped model name or folder (default: hylac-tiny)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where the codec runs (default: cuda if available)")
    p.add_argument("--batch-size", type=int, default=1, help="short files processed together (default: 1)")
    p.add_argument("--chunk-seconds", type=float, default=30.0,
                   help="streaming chunk length for long files (default: 30)")
    p.add_argument("--int8", action="store_true",
                   help="run on the CPU with int8 weights (all but the decoder's output head): faster "
                        "streaming, near-identical quality, codes not bit-identical to float ones (keep "
                        "float for training latents)")


def _add_outputs(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT", help=f"{what} files or folders (searched recursively)")
    p.add_argument("-o", "--output", default=None,
                   help="output file (one input) or folder (mirrors input folders); default: beside each input")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    group.add_argument("--skip-existing", action="store_true", help="leave existing outputs and count them as done")


def _add_audio_format(p: argparse.ArgumentParser) -> None:
    p.add_argument("--subtype", default="PCM_16", choices=("PCM_16", "PCM_24", "FLOAT"),
                   help="sample format of written audio (default: PCM_16)")


def _options(args: argparse.Namespace, **extra: object) -> RunOptions:
    return RunOptions(
        overwrite=getattr(args, "overwrite", False),
        skip_existing=getattr(args, "skip_existing", False),
        batch_size=args.batch_size,
        chunk_seconds=args.chunk_seconds,
        progress=not args.quiet,
        subtype=getattr(args, "subtype", "PCM_16"),
        **extra,
    )


def _parse_device(choice: str) -> torch.device:
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda":
        if not torch.cuda.is_available():
            raise UsageError("--device cuda: no CUDA device is available")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


class _ModelLoadError(Exception):
    pass


def _load_model(args: argparse.Namespace) -> HybridCodec:
    if args.int8 and args.device == "cuda":
        raise UsageError("--int8 runs on the CPU only; drop --device cuda")
    device = _parse_device("cpu" if args.int8 else args.device)
    try:
        model = load(args.model, device=device)
    except Exception as err:  # any failure here means "this model cannot be used"
        raise _ModelLoadError(f"cannot load codec {args.model!r}: {err}") from err
    return model.use_int8() if args.int8 else model


def _exit_code(summary: RunSummary) -> int:
    failed = summary.failed
    if not failed:
        return ExitCode.OK
    return ExitCode.OUTPUT if any(r.output_error for r in failed) else ExitCode.FAILED


def _finish(summary: RunSummary, args: argparse.Namespace) -> int:
    if len(summary.items) > 1:
        print(summary.format(), file=sys.stderr)
    return _exit_code(summary)


# --------------------------------------------------------------------------- subcommands


def _encode_args(p: argparse.ArgumentParser) -> None:
    _add_outputs(p, "audio (wav, flac, ogg, mp3, ...)")
    _add_model(p)


def _decode_args(p: argparse.ArgumentParser) -> None:
    _add_outputs(p, ".hylat")
    _add_model(p)
    _add_audio_format(p)


def _convert(args: argparse.Namespace, run: Callable[..., RunSummary], frames: bool) -> int:
    """Run ``commands.encode_paths`` or ``decode_paths`` and print a line per converted file."""
    summary = run(_load_model(args), args.inputs, args.output, _options(args))
    if not args.quiet:
        for r in summary.with_status("done"):
            extra = f", {r.num_frames} frames" if frames else ""
            print(f"{r.source} -> {r.output} ({r.duration:.2f} s{extra})")
    return _finish(summary, args)


def _run_encode(args: argparse.Namespace) -> int:
    return _convert(args, commands.encode_paths, frames=True)


def _run_decode(args: argparse.Namespace) -> int:
    return _convert(args, commands.decode_paths, frames=False)


def _roundtrip_args(p: argparse.ArgumentParser) -> None:
    _add_outputs(p, "audio")
    _add_model(p)
    _add_audio_format(p)
    p.add_argument("--metrics", action="store_true", help="score PESQ-WB and STOI against the input")


def _run_roundtrip(args: argparse.Namespace) -> int:
    model = _load_model(args)
    summary = commands.roundtrip_paths(model, args.inputs, args.output, _options(args, metrics=args.metrics))
    for r in summary.with_status("done"):
        scores = "".join(f", {name.upper().replace('_', '-')} {value:.3f}" for name, value in r.metrics.items())
        print(f"{r.source} -> {r.output}: {r.duration:.2f} s, {r.num_frames} frames, {model.bitrate:.0f} bit/s{scores}")
    return _finish(summary, args)


def _info_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE.hylat")
    p.add_argument("--json", action="store_true", help="one JSON object per file")


def _run_info(args: argparse.Namespace) -> int:
    code = ExitCode.OK
    for path in args.files:
        try:
            info = commands.latent_info(path)
        except LatentFileError as err:
            log.error("error: %s", err, exc_info=args.debug)
            code = ExitCode.FAILED
            continue
        print(json.dumps({"path": str(path), **info.to_dict()}) if args.json else commands.format_info(path, info))
    return code


def _manifest_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("manifest", metavar="MANIFEST.jsonl", help='JSON lines with at least "path" (relative to the manifest)')
    p.add_argument("--out", required=True, help="output folder (.hylat files + manifest.jsonl)")
    p.add_argument("--overwrite", action="store_true", help="re-encode outputs that already exist")
    _add_model(p)


def _run_manifest(args: argparse.Namespace) -> int:
    import torch.distributed as dist

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    distributed = world_size > 1
    if distributed:
        device = _parse_device(args.device)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    try:
        rank = dist.get_rank() if distributed else 0
        if rank != 0:
            args.quiet = True  # one progress bar and one summary, from rank 0
        model = _load_model(args)
        summary = encode_manifest(
            model, args.manifest, args.out, _options(args), rank=rank, world_size=world_size,
            barrier=dist.barrier if distributed else None,
        )
        if rank == 0:
            return _finish(summary, args)
        return _exit_code(summary)
    finally:
        if distributed:
            dist.destroy_process_group()


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="YAML recipe, e.g. configs/tiny.yaml")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value (repeatable), e.g. --set trainer.max_steps=1000")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint of trainer.out_dir")


def _run_train(args: argparse.Namespace) -> int:
    from codec.training.recipe import ConfigError
    from codec.training.task import train

    try:
        result = train(args.config, args.set, resume=args.resume)
    except ConfigError as err:  # a missing file, an unknown key or a bad value
        raise UsageError(str(err)) from None
    log.info("trained to step %d; last checkpoint %s", result.step, result.checkpoint)
    return ExitCode.OK


def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a training checkpoint folder (runs/NAME/checkpoints/step_*)")
    p.add_argument("output", help="folder to write config.json + model.safetensors into")
    p.add_argument("--dtype", choices=("float16", "float32"), default="float16",
                   help="weight precision on disk (default: float16; loading always gives float32)")
    p.add_argument("--overwrite", action="store_true", help="replace a model already in the output folder")


def _run_export(args: argparse.Namespace) -> int:
    if not os.path.isdir(args.checkpoint):
        raise UsageError(f"checkpoint folder {args.checkpoint!r} does not exist")
    try:
        model = load(args.checkpoint)
    except Exception as err:
        raise _ModelLoadError(f"cannot load checkpoint {args.checkpoint!r}: {err}") from err
    folder = model.save(args.output, dtype=getattr(torch, args.dtype), overwrite=args.overwrite)
    log.info("wrote %s", folder)
    return ExitCode.OK


@dataclass(frozen=True)
class Subcommand:
    """A subcommand: its one-line help, how it adds its arguments, and how it runs."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


SUBCOMMANDS: dict[str, Subcommand] = {
    "encode": Subcommand("audio files/folders -> .hylat latent files", _encode_args, _run_encode),
    "decode": Subcommand(".hylat files/folders -> 24 kHz audio of the original length", _decode_args, _run_decode),
    "roundtrip": Subcommand("audio -> codec -> audio, with bitrate (and --metrics)", _roundtrip_args, _run_roundtrip),
    "info": Subcommand("show what a .hylat file holds", _info_args, _run_info),
    "encode-manifest": Subcommand("encode a JSONL manifest for training (resumable; shards under torchrun)",
                                  _manifest_args, _run_manifest),
    "train": Subcommand("train a codec from a YAML recipe (single process or under torchrun)", _train_args, _run_train),
    "export": Subcommand("turn a training checkpoint into a loadable codec folder", _export_args, _run_export),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="hylac speech codec: 24 kHz speech <-> 12.5 Hz hybrid latents (.hylat).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, spec in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=spec.help, description=spec.help, epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        spec.add_arguments(p)
        _add_common(p)
        p.set_defaults(run=spec.run)
    return parser


def _setup_logging(args: argparse.Namespace) -> logging.Handler:
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if args.debug else logging.WARNING if args.quiet else logging.INFO)
    log.propagate = False
    return handler


@quiet_on_closed_pipe
def main(argv: Sequence[str] | None = None) -> int:
    """Run ``hylac-codec`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    args = parse_or_exit(build_parser(), argv)
    if isinstance(args, int):
        return args
    handler = _setup_logging(args)
    try:
        return args.run(args)
    except UsageError as err:
        log.error("error: %s", err, exc_info=args.debug)
        return ExitCode.USAGE
    except (OutputWriteError, FileExistsError) as err:  # FileExistsError: an output there, no --overwrite
        log.error("error: %s", err, exc_info=args.debug)
        return ExitCode.OUTPUT
    except _ModelLoadError as err:
        log.error("error: %s", err, exc_info=args.debug)
        return ExitCode.MODEL
    except KeyboardInterrupt:
        log.error("interrupted")
        return ExitCode.INTERRUPTED
    except BrokenPipeError:  # the reader of stdout has gone: quiet_on_closed_pipe ends the command
        raise
    except Exception as err:
        log.error("error: %s: %s%s", type(err).__name__, err, "" if args.debug else " (--debug shows the traceback)",
                  exc_info=args.debug)
        return ExitCode.FAILED
    finally:
        log.removeHandler(handler)
        log.propagate = True


if __name__ == "__main__":
    sys.exit(main())
