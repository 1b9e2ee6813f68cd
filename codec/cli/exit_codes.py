"""The exit codes of hylac's command lines, one table for ``hylac-codec`` and ``hylac-tts``.

:class:`ExitCode` is the table: each member's value is the process status and its
``meaning`` the line both CLIs print under ``exit codes:`` in ``--help``
(:func:`exit_code_help`). Scripts test ``$?`` against these numbers; they do not change.
:func:`quiet_on_closed_pipe` wraps both CLIs' ``main`` so that a reader closing the output
pipe (``hylac-codec info x.hylat | head``) ends the command without a message.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
from collections.abc import Callable, Sequence
from enum import IntEnum
from typing import ParamSpec

P = ParamSpec("P")


class ExitCode(IntEnum):
    """Process exit status of a hylac command; ``.meaning`` says when it is returned."""

    meaning: str

    def __new__(cls, value: int, meaning: str) -> ExitCode:
        member = int.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        return member

    OK = 0, "everything succeeded (outputs that existed were skipped only with --skip-existing)"
    FAILED = 1, "some inputs failed (each reported on one line; the others were processed), or an unexpected error"
    USAGE = 2, "usage error (bad arguments, nothing to do, unreadable manifest or config)"
    OUTPUT = 3, "an output could not be written (folder not writable, or output exists without --overwrite)"
    MODEL = 4, "the model could not be loaded (missing, not a model folder, damaged)"
    INTERRUPTED = 130, "interrupted (no partial output is left behind)"
    # 128 + SIGPIPE: what a shell reports for a POSIX tool that the closed pipe ended.
    PIPE_CLOSED = 141, "the reader of the output closed the pipe (as `| head` does); stopped without a message"


def exit_code_help() -> str:
    """The table as ``--help`` epilog lines: ``exit codes:`` then one ``  CODE  meaning`` line each."""
    return "\n".join(["exit codes:", *(f"  {code.value:<4} {code.meaning}" for code in ExitCode)])


def parse_or_exit(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace | int:
    """The parsed ``argv``, or the status argparse exits with instead (0 after ``--help``,
    :attr:`ExitCode.USAGE` on a usage error, the message already printed), for ``main`` to return."""
    try:
        return parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)


def quiet_on_closed_pipe(main: Callable[P, int]) -> Callable[P, int]:
    """Wrap a CLI ``main``: a closed stdout pipe returns :attr:`ExitCode.PIPE_CLOSED` silently.

    Python ignores SIGPIPE, so writing to a pipe whose reader has gone raises
    ``BrokenPipeError`` wherever the write happens (a print, argparse's ``--help``, or the
    flush at exit); a POSIX tool would just stop. ``main`` must let the error through.
    """

    @functools.wraps(main)
    def run(*args: P.args, **kwargs: P.kwargs) -> int:
        try:
            code = main(*args, **kwargs)
            sys.stdout.flush()  # output still buffered meets the closed pipe here, not at exit
            return code
        except BrokenPipeError:
            _stdout_to_devnull()
            return ExitCode.PIPE_CLOSED

    return run


def _stdout_to_devnull() -> None:
    # Python flushes stdout once more at exit; onto the closed pipe that would print
    # "Exception ignored ... BrokenPipeError". A replaced stdout (tests) has no descriptor.
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
