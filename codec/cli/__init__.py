"""The ``hylac-codec`` command line: argument parsing (:mod:`codec.cli.main`), the work behind
each command and the exit codes both hylac CLIs share
(:mod:`codec.cli.exit_codes`)."""

from codec.cli.exit_codes import ExitCode

__all__ = ["ExitCode"]
