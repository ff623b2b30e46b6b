"""The one entry wrapper every command runs through: `--help`, `--debug`, `--quiet`, and one error path.

    main = cli.command(_main, doc=__doc__, config=MyConfig, module=__name__)  # last in the module

    # which is, and replaces:
    def main(argv=None) -> int:
        return cli.run(_main, argv, doc=__doc__, config=MyConfig)

    if __name__ == "__main__":
        sys.exit(main())

`run` calls `_main(argv)` and turns whatever it raises into one line on stderr and an exit code
(`recipe.errors`): bad input (InputError, an OSError, a file that is not UTF-8) 2, a clean stop
(Stopped) 3, Ctrl-C 130, anything else 1. The traceback is shown only with `--debug` or
E5_DEBUG=1, because a user's mistake deserves a sentence, not a stack, and a bug report deserves
the stack. `--quiet` keeps a command to its notes, errors and answer (recipe/log.py).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import traceback
import warnings
from typing import Callable, Sequence

from . import log
from .config import usage
from .errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_OK, EXIT_STOPPED, EXIT_UNEXPECTED, InputError, Stopped

INTERRUPTED = "interrupted: everything saved so far is kept; run the same command to resume"
COMMON = ("--debug", "--quiet")  # every command's flags, read here and taken out before its own parser

# Library messages that ask nothing of a user of these commands, each matched exactly, so that
# the warnings that do (ours, a library's about the data or the model) still show.
KNOWN_NOISE: list[tuple[type[Warning], str]] = [
    # peft reads transformers' deprecated `is_gradient_checkpointing` (peft/peft_model.py), once per process
    (FutureWarning, r"`is_gradient_checkpointing` is deprecated and will be removed in v6\. "
                    r"Use `is_activation_checkpointing` instead\."),
    # sentence-transformers' all_gather_with_grad calls it (sentence_transformers/util/distributed.py)
    (FutureWarning, r"torch\.distributed\.nn\.functional\.all_gather is deprecated, use "
                    r"torch\.distributed\._functional_collectives\.all_gather_single instead\."),
    # mteb on MTEB(eng, v1)'s tasks, which later versions supersede: the paper's benchmark runs them
    (UserWarning, r"The task '[^']+' is superseded by '[^']+'\. We recommend using the newer version"),
    # mteb's embedding cache, the first time it opens a folder
    (UserWarning, r"Dimension file not found\. Vector dimension remains uninitialized\."),
    (UserWarning, r"No existing files found\. Initialized empty VectorCacheMap\."),
]
# the same messages where a library logs them too: logger -> message patterns
KNOWN_LOG_NOISE = {"mteb.abstasks.abstask": [r"The task '[^']+' is superseded by '[^']+'"]}


class _DropKnown(logging.Filter):
    def __init__(self, patterns: list[str]):
        super().__init__()
        self.patterns = [re.compile(p) for p in patterns]

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(p.match(record.getMessage()) for p in self.patterns)


def quiet_known_noise() -> None:
    """Drop KNOWN_NOISE, here only: every command starts through `run`."""
    for category, message in KNOWN_NOISE:
        warnings.filterwarnings("ignore", message=message, category=category)
    for name, patterns in KNOWN_LOG_NOISE.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropKnown) for f in logger.filters):
            logger.addFilter(_DropKnown(patterns))


def debug_on(argv: Sequence[str]) -> bool:
    return "--debug" in argv or os.environ.get("E5_DEBUG", "") not in ("", "0", "false")


def one_line(text: str) -> str:
    return " ".join(str(text).split()) or "(no message)"


def describe(e: BaseException) -> tuple[str, int]:
    """The one line and the exit code for an exception that reached the top of a command."""
    if isinstance(e, KeyboardInterrupt):
        return INTERRUPTED, EXIT_INTERRUPTED
    if isinstance(e, Stopped):
        return f"stopped: {one_line(e)}", EXIT_STOPPED
    if isinstance(e, InputError):
        return f"error: {one_line(e)}", EXIT_BAD_INPUT
    if isinstance(e, UnicodeDecodeError):  # a reader that did not name its file; say what we know
        return (f"error: input is not UTF-8 text (byte {e.start}: {e.object[e.start:e.start + 1]!r}); "
                "run with --debug to see which reader", EXIT_BAD_INPUT)
    if isinstance(e, OSError):
        where = e.filename if e.filename is not None else ""
        what = e.strerror or one_line(e)
        if e.filename2 is not None:
            where = f"{where} -> {e.filename2}"
        return f"error: {where}: {what}" if where else f"error: {what}", EXIT_BAD_INPUT
    return (f"error: unexpected {type(e).__name__}: {one_line(e)} (run with --debug for the traceback)",
            EXIT_UNEXPECTED)


def run(main: Callable[[list[str]], int | None], argv: Sequence[str] | None = None, *,
        doc: str | None = None, config: type | None = None, interrupted: str = INTERRUPTED) -> int:
    """Run a command's `main(argv)` and return its exit code (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    log.setup(quiet="--quiet" in argv)
    quiet_known_noise()
    debug = debug_on(argv)
    argv = [a for a in argv if a not in COMMON]
    if "-h" in argv or "--help" in argv:
        log.result((doc or "").rstrip() + ("\n\n" + usage(config) if config else ""))
        return EXIT_OK
    try:
        code = main(argv)
        return EXIT_OK if code is None else int(code)
    except SystemExit:
        raise
    except BaseException as e:  # noqa: BLE001 - this is the one place that decides what a failure prints
        if debug:
            traceback.print_exc()
        line, code = describe(e)
        if code == EXIT_INTERRUPTED:
            line = interrupted
        if not (isinstance(e, InputError) and e.every_process and not log.is_main()):
            log.error(line)  # the main process says what all of them found, once
        return code


def command(main: Callable[[list[str]], int | None], *, doc: str | None = None, config: type | None = None,
            interrupted: str = INTERRUPTED, module: str = "") -> Callable[[Sequence[str] | None], int]:
    """A command's `main(argv=None) -> exit code`: `run` with its `_main`, help and Ctrl-C line.

    Written last in its module with `module=__name__`, it also runs the command and exits when the
    module is run as a script (`python -m recipe.commands.NAME`), as `if __name__ == "__main__"` would."""

    def entry(argv: Sequence[str] | None = None) -> int:
        return run(main, argv, doc=doc, config=config, interrupted=interrupted)

    if module == "__main__":
        sys.exit(entry())
    return entry
