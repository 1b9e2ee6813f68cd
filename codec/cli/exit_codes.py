"""The exit codes of hylac's command lines, one table for ``hylac-codec`` and ``hylac-tts``.

:class:`ExitCode` is the table: each member's value is the process status and its
``meaning`` the line both CLIs print under ``exit codes:`` in ``--help``
(:func:`exit_code_help`). Scripts test ``$?`` against these numbers; they do not change.
"""

from __future__ import annotations

from enum import IntEnum


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


def exit_code_help() -> str:
    """The table as ``--help`` epilog lines: ``exit codes:`` then one ``  CODE  meaning`` line each."""
    return "\n".join(["exit codes:", *(f"  {code.value:<4} {code.meaning}" for code in ExitCode)])
