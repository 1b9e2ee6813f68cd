"""Command line: ``hylac-tts generate | serve | train | finetune | export | demo`` (also ``python -m tts``).

Exit codes are the table both hylac CLIs share (:class:`codec.ExitCode`); ``--help``
lists them. Outputs are written to a temporary file beside the target and renamed when
complete, and an existing output is replaced only with ``--overwrite``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from codec import LANGUAGES, ExitCode, OutputWriteError, parse_or_exit, quiet_on_closed_pipe

from .config import DEFAULT_SEED, LIMITS, SCHEDULES, SOLVERS, SamplingConfig

PROG = "hylac-tts"
EPILOG = "\n".join([
    "exit codes:", *(f"  {code.value:<4} {code.meaning}" for code in ExitCode),
    "Outputs are written to a temporary file beside the target and renamed when complete.",
    "Use --debug for tracebacks.",
])
#: Generation shorter than this shows no progress bar.
PROGRESS_DELAY_S = 2.0


class UsageError(ValueError):
    """Bad arguments (exit code USAGE)."""


class ModelLoadError(Exception):
    """The TTS model or its codec cannot be loaded (exit code MODEL)."""


def _bounded(name: str, kind: type) -> Callable[[str], float]:
    """An argparse ``type`` parsing ``kind`` and checking it against :data:`tts.config.LIMITS`."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        problem = LIMITS.problem(name, value)
        if problem is not None:
            raise argparse.ArgumentTypeError(problem)
        return value

    parse.__name__ = kind.__name__  # what argparse names in its messages
    return parse


def _add_bounded(p: argparse.ArgumentParser, flag: str, kind: type, default: float, help: str | None = None,
                 limit: str | None = None) -> None:
    """Add an option checked against its range in :data:`tts.config.LIMITS` (``limit``, by default
    the flag's name); ``{range}`` and ``{default}`` in ``help`` are filled in from the same values,
    so the help text cannot drift from what the option accepts."""
    limit = limit or flag.removeprefix("--").replace("-", "_")
    spec = "d" if kind is int else "g"
    low, high = getattr(LIMITS, limit)
    if help is not None:
        help = help.format(range=f"{low:{spec}}-{high:{spec}}", default=default)
    p.add_argument(flag, type=_bounded(limit, kind), default=default, help=help)


def _load(model: str, device: str):
    import torch

    from .synthesizer import load

    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise UsageError(f"--device {device!r}: {err}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available")
    try:
        return load(model, device=dev)
    except Exception as err:  # whatever the cause, this model cannot be used
        raise ModelLoadError(f"cannot load TTS model {model!r}: {err}") from err


def _check_output(out: Path, overwrite: bool) -> None:
    """Refuse before any work: an unknown suffix (usage), an existing output or a folder in the way."""
    from codec import check_output, format_for_path

    try:
        format_for_path(out)
    except ValueError as err:
        raise UsageError(str(err)) from None
    check_output(out, overwrite)


def _generate(args: argparse.Namespace) -> int:
    import torch
    from torch import Tensor
    from tqdm import tqdm

    from codec import LATENT_SUFFIX, SAMPLE_RATE, AudioWriter

    from .audio import read_voice

    if not args.text.strip():
        raise UsageError("--text is empty")
    out = Path(args.out)
    _check_output(out, args.overwrite)
    # The voice is read before the model loads: a wrong path should not cost seconds.
    voice: Path | Tensor = Path(args.voice)
    rate = None
    if voice.suffix.lower() != LATENT_SUFFIX:
        voice, rate = read_voice(voice), SAMPLE_RATE
    if args.threads:
        torch.set_num_threads(args.threads)
    sampling = SamplingConfig(steps=args.steps, cfg=args.cfg, temperature=args.temperature, top_k=args.top_k,
                              solver=args.solver, schedule=args.schedule, max_seconds=args.max_seconds)
    synth = _load(args.model, args.device)
    sr = synth.sample_rate
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bar = tqdm(desc="generate", unit="s", delay=PROGRESS_DELAY_S, disable=args.quiet, leave=False,
                   bar_format="{desc}: {n:.1f} s of audio [{elapsed}, {rate_fmt}]", file=sys.stderr)
        with bar, AudioWriter(out, sr, overwrite=args.overwrite) as f:
            for chunk in synth.stream(args.text, args.lang, voice, rate, sampling=sampling, seed=args.seed):
                f.write(chunk.numpy())
                bar.update(chunk.numel() / sr)
            samples = f.num_samples
    for w in caught:
        print(f"{PROG} generate: warning: {w.message}", file=sys.stderr)
    seconds = time.perf_counter() - t0
    dur = samples / sr
    if not args.quiet:
        rtf = seconds / dur if dur else float("nan")
        print(f"{out}: {dur:.2f} s of audio in {seconds:.2f} s (RTF {rtf:.2f}, seed {args.seed})")
    return ExitCode.OK


def _serve(args: argparse.Namespace) -> int:
    import logging

    import torch

    from .serve import ServerConfig

    try:
        from .serve import VoiceLibrary, create_app
        from .serve.server import bind, model_name, serve_forever, setup_logging, url_of
    except ImportError as err:
        raise UsageError(f"serve needs the server packages ({err.name} is missing): "
                         "pip install 'hylac[serve]'") from None

    try:
        config = ServerConfig(host=args.host, port=args.port, workers=args.workers, max_queue=args.queue,
                              max_input_chars=args.max_input_chars, max_seconds=args.max_seconds,
                              max_body_bytes=int(args.max_body_mb * 2**20), default_language=args.default_lang)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if args.voices is not None and not Path(args.voices).is_dir():
        raise UsageError(f"--voices {args.voices!r} is not a folder")
    setup_logging(logging.DEBUG if args.debug else logging.WARNING if args.quiet else logging.INFO)
    try:
        sock = bind(config.host, config.port)
    except OSError as err:
        raise UsageError(str(err)) from None
    if args.threads:
        torch.set_num_threads(args.threads)
    synth = _load(args.model, args.device)
    voices = (VoiceLibrary.from_folder(synth, args.voices, config.max_voices) if args.voices
              else VoiceLibrary(config.max_voices))
    app = create_app(synth, config, voices, model_name(args.model))
    app.state.server.pool.warm_up()
    print(f"{PROG} serve: {model_name(args.model)} with {len(voices)} voice(s) on {url_of(sock)} "
          f"({config.workers} worker(s), queue {config.max_queue}); Ctrl-C stops", file=sys.stderr, flush=True)
    try:
        serve_forever(app, sock)
    except KeyboardInterrupt:  # uvicorn has shut down gracefully and passes Ctrl-C on: a normal stop
        pass
    print(f"{PROG} serve: stopped", file=sys.stderr)
    return ExitCode.OK


def _add_serve(sub: argparse._SubParsersAction) -> None:
    from .serve import ServerConfig

    d = ServerConfig()
    s = sub.add_parser("serve", help="OpenAI-compatible speech server (POST /v1/audio/speech) with a browser page",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--host", default=d.host, help=f"interface to listen on (default {d.host}: this machine only)")
    s.add_argument("--port", type=int, default=d.port, help=f"TCP port (default {d.port}; 0 = any free port)")
    s.add_argument("--model", default="hylac-tts-tiny", help="shipped model name or model folder")
    s.add_argument("--voices", default=None, metavar="DIR",
                   help="folder of reference recordings (or .hylat latents), one voice per file, named by its stem")
    s.add_argument("--workers", type=int, default=d.workers, help=f"syntheses run at once (default {d.workers})")
    s.add_argument("--queue", type=int, default=d.max_queue,
                   help=f"requests that may wait for a worker; more get 503 + Retry-After (default {d.max_queue})")
    s.add_argument("--max-input-chars", type=int, default=d.max_input_chars,
                   help=f"longest input text (default {d.max_input_chars})")
    s.add_argument("--max-seconds", type=float, default=d.max_seconds,
                   help=f"length limit of one utterance (default {d.max_seconds:g} s)")
    s.add_argument("--max-body-mb", type=float, default=d.max_body_bytes / 2**20,
                   help=f"largest request body, uploads included (default {d.max_body_bytes / 2**20:g} MiB)")
    s.add_argument("--default-lang", choices=LANGUAGES, default=d.default_language, metavar="LANG",
                   help=f"language of requests that name none (default {d.default_language})")
    s.add_argument("--device", default="cpu")
    _add_bounded(s, "--threads", int, 0, "CPU threads (0 = torch's default)")
    s.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    s.add_argument("--debug", action="store_true", help="debug logging and tracebacks")
    s.set_defaults(func=_serve)


def _train(args: argparse.Namespace) -> int:
    from codec.training import ConfigError

    from .train import train

    try:
        result = train(args.config, args.set, resume=args.resume)
    except ConfigError as err:  # a missing file, an unknown key or a bad value: as in hylac-codec
        raise UsageError(str(err)) from None
    print(f"trained steps {result.start_step}..{result.step}; checkpoint {result.checkpoint}")
    return ExitCode.OK


def _finetune(args: argparse.Namespace) -> int:
    from .finetune import FinetuneConfig, FinetuneModelError, data_kind, finetune

    try:
        config = FinetuneConfig(
            data=args.data, out=args.out, model=args.model, lang=args.lang, steps=args.steps,
            batch_size=args.batch_size, lr=args.lr, valid_fraction=args.valid_fraction, seed=args.seed,
            threads=args.threads, device=args.device, resume=args.resume, overwrite=args.overwrite,
            progress=not args.quiet,
        )
        data_kind(config.data)
    except ValueError as err:
        raise UsageError(f"--{err}") from None  # the message starts with the argument's name
    try:
        out = finetune(config)
    except FinetuneModelError as err:
        raise ModelLoadError(str(err)) from err
    if not args.quiet:
        print(f"{out}: fine-tuned model (card: {out / 'README.md'}); speak with it: hylac-tts generate --model {out} "
              f"--lang {args.lang} --voice REF.wav --text \"...\" -o out.wav")
    return ExitCode.OK


def _add_finetune(sub: argparse._SubParsersAction) -> None:
    from .finetune import FinetuneConfig

    d = FinetuneConfig(data=".", out=".")
    f = sub.add_parser(
        "finetune", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        help="fine-tune a model on your own recordings (audio + transcripts), on a CPU",
        description="Encode your recordings with the model's codec and train the model on them; the result "
                    "is a model folder for --model. Resumable: rerun with --resume (and a larger --steps).")
    f.add_argument("--data", required=True, metavar="FOLDER_OR_MANIFEST",
                   help="folder of audio files each with a same-named .txt transcript (subfolders are speakers), "
                        "or a .jsonl manifest with path, text and optional lang, speaker")
    f.add_argument("--out", required=True, metavar="DIR", help="folder of the fine-tuned model (the run in DIR/work)")
    f.add_argument("--model", default=d.model, help=f"model to start from: shipped name or folder (default {d.model})")
    f.add_argument("--lang", choices=LANGUAGES, default=d.lang, metavar="LANG",
                   help=f"language of clips that name none: {' '.join(LANGUAGES)} (default {d.lang})")
    _add_bounded(f, "--steps", int, d.steps, "total training steps (default {default}; {range})",
                 limit="train_steps")
    _add_bounded(f, "--batch-size", int, d.batch_size, "clips per step (default {default})")
    _add_bounded(f, "--lr", float, d.lr, "peak learning rate after the warm-up (default {default:g})")
    _add_bounded(f, "--valid-fraction", float, d.valid_fraction,
                 "share of clips held out for the validation loss, at least 2 of one speaker; 0 = none "
                 "(default {default:g})")
    _add_bounded(f, "--seed", int, DEFAULT_SEED, "random seed (default {default})")
    _add_bounded(f, "--threads", int, 0, "CPU threads (0 = torch's default)")
    f.add_argument("--device", choices=("auto", "cpu", "cuda"), default=d.device,
                   help="where to train (default auto: CUDA when present)")
    again = f.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue the run in DIR (encoded clips are kept)")
    again.add_argument("--overwrite", action="store_true", help="start over, replacing an earlier run in DIR")
    _add_common(f)
    f.set_defaults(func=_finetune)


def _demo(args: argparse.Namespace) -> int:
    from .demo import speak_demo

    synth = _load(args.model, args.device)
    sampling = SamplingConfig(max_seconds=args.max_seconds)
    for path in speak_demo(synth, args.corpus, args.out, split=args.split, sampling=sampling, seed=args.seed):
        print(path)
    return ExitCode.OK


def _export(args: argparse.Namespace) -> int:
    from .train import export_checkpoint

    if not os.path.isdir(args.checkpoint):
        raise UsageError(f"checkpoint folder {args.checkpoint!r} does not exist")
    print(export_checkpoint(args.checkpoint, args.out, overwrite=args.overwrite))
    return ExitCode.OK


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary line")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def _add_generate(sub: argparse._SubParsersAction) -> None:
    d = SamplingConfig()
    g = sub.add_parser("generate", help="speak a text with the voice of a reference recording", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    g.add_argument("--text", required=True, help="what to say")
    g.add_argument("--lang", required=True, choices=LANGUAGES, metavar="LANG",
                   help=f"language: {' '.join(LANGUAGES)}")
    g.add_argument("--voice", required=True, help="reference recording (3-30 s) to clone, or its .hylat latents")
    g.add_argument("-o", "--out", required=True, help="output audio file (.wav, .flac, .opus, .ogg, .mp3)")
    g.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")
    g.add_argument("--model", default="hylac-tts-tiny", help="shipped model name or model folder")
    _add_bounded(g, "--steps", int, d.steps, "flow ODE solver steps per frame ({range})")
    _add_bounded(g, "--cfg", float, d.cfg, "classifier-free guidance strength, 1 = none ({range})")
    _add_bounded(g, "--temperature", float, d.temperature, "semantic sampling temperature, 0 = greedy ({range})")
    _add_bounded(g, "--top-k", int, d.top_k, "semantic top-k, 0 = all ({range})")
    g.add_argument("--solver", choices=SOLVERS, default=d.solver)
    g.add_argument("--schedule", choices=SCHEDULES, default=d.schedule)
    _add_bounded(g, "--max-seconds", float, d.max_seconds, "length limit of the output ({range} s)")
    _add_bounded(g, "--seed", int, DEFAULT_SEED, "random seed: the same command gives the same audio (default {default})")
    g.add_argument("--device", default="cpu")
    _add_bounded(g, "--threads", int, 0, "CPU threads (0 = torch's default)")
    _add_common(g)
    g.set_defaults(func=_generate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Text-to-speech in the hylac codec's latent space.",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    d = SamplingConfig()
    _add_generate(sub)
    _add_serve(sub)

    t = sub.add_parser("train", help="train on codec latents (runs under torchrun too)", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--config", required=True, help="YAML config (e.g. configs/tts_tiny.yaml)")
    t.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a config value")
    t.add_argument("--resume", action="store_true", help="continue from the latest checkpoint of trainer.out_dir")
    _add_common(t)
    t.set_defaults(func=_train)
    _add_finetune(sub)

    m = sub.add_parser("demo", help="speak one sentence per language with held-out corpus voices", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    m.add_argument("--corpus", required=True, help="corpus manifest (its held-out split gives the voices)")
    m.add_argument("--out", default="out", help="folder for tts_<lang>.wav")
    m.add_argument("--model", default="hylac-tts-tiny", help="shipped model name or model folder")
    m.add_argument("--split", default="test")
    _add_bounded(m, "--seed", int, DEFAULT_SEED)
    _add_bounded(m, "--max-seconds", float, d.max_seconds, "length limit of each output")
    m.add_argument("--device", default="cpu")
    _add_common(m)
    m.set_defaults(func=_demo)

    e = sub.add_parser("export", help="turn a training checkpoint into a model folder for tts.load", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("checkpoint", help="checkpoint folder, e.g. runs/tts/checkpoints/step_0020000")
    e.add_argument("out", help="model folder to write")
    e.add_argument("--overwrite", action="store_true", help="replace a model already in that folder")
    _add_common(e)
    e.set_defaults(func=_export)
    return parser


def _fail(args: argparse.Namespace, err: BaseException, code: ExitCode, detailed: bool = False) -> int:
    import traceback

    if args.debug:
        traceback.print_exception(err)
    text = f"{type(err).__name__}: {err}" if detailed else str(err)
    hint = " (--debug shows the traceback)" if detailed and not args.debug else ""
    print(f"{PROG} {args.command}: error: {text}{hint}", file=sys.stderr)
    return code


@quiet_on_closed_pipe
def main(argv: Sequence[str] | None = None) -> int:
    """Run ``hylac-tts`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    args = parse_or_exit(build_parser(), argv)
    if isinstance(args, int):
        return args
    try:
        return int(args.func(args))
    except UsageError as err:
        return _fail(args, err, ExitCode.USAGE)
    except (OutputWriteError, FileExistsError) as err:  # FileExistsError: an output there, no --overwrite
        return _fail(args, err, ExitCode.OUTPUT)
    except ModelLoadError as err:
        return _fail(args, err, ExitCode.MODEL)
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:  # the reader of stdout has gone: quiet_on_closed_pipe ends the command
        raise
    except (ValueError, FileNotFoundError, TypeError) as err:  # the input itself (voice, text) cannot be used
        return _fail(args, err, ExitCode.FAILED)
    except Exception as err:
        return _fail(args, err, ExitCode.FAILED, detailed=True)


if __name__ == "__main__":
    sys.exit(main())
