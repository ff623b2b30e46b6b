"""The project's error types and the exit code each one ends a command with.

Every command runs through `recipe.cli.run`, which turns these into one line on stderr:

    0    done
    1    unexpected (a bug or a library failure: `--debug` shows the traceback)
    2    bad input: a setting, a file, a record, a path, a credential the user must fix
    3    stopped cleanly on purpose (budget, reject-rate breaker, outage; NaN loss); run again to resume
    130  interrupted (Ctrl-C); what was saved is kept

Stage-specific errors (ConfigError, RecordError, ModelError, ...) subclass `InputError`, so a
new error type gets the right exit code by choosing its base class, not by editing the wrapper.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_BAD_INPUT = 2
EXIT_STOPPED = 3
EXIT_INTERRUPTED = 130


class InputError(ValueError):
    """Input the user must fix; the message names the file, line, field, key or path.

    Under several processes every process reads the same input and finds the same fault, so only
    the main one prints it; a fault one process alone sees is an `OneProcessInputError`."""

    every_process = True


class OneProcessInputError(InputError):
    """Bad input that only this process sees (its own checkpoint shard): it prints it itself."""

    every_process = False


class Stopped(RuntimeError):
    """A run that stopped itself cleanly (budget, reject rate); running it again resumes."""


def first_line(error: BaseException, limit: int | None = None) -> str:
    """An exception's message as a one-line error quotes it: its first line (libraries explain at
    length below it), cut to `limit` characters; its type's name when it has no message."""
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return line[:limit] if limit else line
