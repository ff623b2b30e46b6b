"""How the project speaks: four kinds of line, one logging setup per process, and this process's
place among those a launcher started (the one place that reads it from the environment).

    log.say("4 documents: 4 encoded")              # progress, on stderr; --quiet hides it
    log.note("--query-prompt replaces the saved")   # "note: ..." on stderr, shown under --quiet
    log.result("kept 4 of 6 records in kept.jsonl") # the command's answer, on stdout
    log.error("error: settings.yaml: line 3: ...")  # recipe/cli.py's one line for a failure

Under several processes (`accelerate launch` starts one per GPU) every process runs the same
code, so only the main one speaks; an error is the exception, said by the process that met it,
with its number in front (recipe/cli.py decides which errors every process would say alike, and
leaves those to the main one).

This is stdlib `logging` (the "recipe" logger, and the root logger for the libraries' own
warnings), not accelerate's `get_logger`, whose main-process filter needs the process state that
only training creates, nor transformers' logging, which governs transformers' loggers alone.
The handlers look up sys.stdout and sys.stderr when a line is said, so a redirected stream (a
test's capture) receives it.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass

LOGGER = logging.getLogger("recipe")
RESULTS = logging.getLogger("recipe.results")  # its own handler, on stdout; --quiet leaves it alone
LIBRARIES = "%(levelname)s %(name)s: %(message)s"  # another package's warning names its logger
HUB_BARS = "HF_HUB_DISABLE_PROGRESS_BARS"


@dataclass(frozen=True)
class Place:
    rank: int  # this process's number among all of the run's; 0 is the main process
    world: int  # how many processes the run has on all machines
    local_world: int  # how many of them run on this machine


def place() -> Place:
    """Where this process stands, as the launcher (accelerate launch, torchrun) says it in the
    environment; one process alone when nothing launched it."""
    env = os.environ.get
    return Place(int(env("RANK", "0")), int(env("WORLD_SIZE", "1")), int(env("LOCAL_WORLD_SIZE", "1")))


def is_main() -> bool:
    return place().rank == 0


class _Stream(logging.Handler):
    """One line to sys.stdout or sys.stderr as they are at the time, flushed."""

    def __init__(self, stream: str, fmt: str = "%(message)s"):
        super().__init__()
        self.stream = stream
        self.setFormatter(_Formatter(fmt))
        self.addFilter(_main_or_error)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            out = getattr(sys, self.stream)
            out.write(self.format(record) + "\n")
            out.flush()
        except Exception:  # noqa: BLE001 - logging's own rule: a failed line never stops the run
            self.handleError(record)


def _main_or_error(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR or is_main()


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if record.name == LOGGER.name and record.levelno == logging.WARNING:
            text = f"note: {text}"
        where = place()
        return f"[process {where.rank}] {text}" if where.rank != 0 and where.world > 1 else text


def _install() -> None:
    """The project's handlers, once per process: on first use, whoever says the first line."""
    if not any(isinstance(h, _Stream) for h in LOGGER.handlers):
        LOGGER.addHandler(_Stream("stderr"))
        LOGGER.propagate = False  # said once, not again by a handler on the root logger
        LOGGER.setLevel(logging.INFO)
        RESULTS.addHandler(_Stream("stdout"))
        RESULTS.propagate = False
        RESULTS.setLevel(logging.INFO)


def setup(quiet: bool = False) -> None:
    """The one setup, by `recipe.cli.run` as a command starts: the project's handlers, the
    libraries' warnings on stderr (the main process's), and --quiet (progress lines and bars off;
    notes, errors and the command's answer stay)."""
    _install()
    root = logging.getLogger()
    if not any(isinstance(h, _Stream) for h in root.handlers):
        libraries = _Stream("stderr", LIBRARIES)
        libraries.setLevel(logging.WARNING)
        root.addHandler(libraries)
    LOGGER.setLevel(logging.WARNING if quiet else logging.INFO)
    if not bars():
        _hide_hub_bars()


def _hide_hub_bars() -> None:
    """The Hugging Face libraries' own bars (transformers' "Loading weights", downloads) go with
    ours: through their switch where they are imported, through the variable they read when they
    are imported later. A value the user set for that variable is theirs and stays."""
    if HUB_BARS in os.environ:
        return
    os.environ[HUB_BARS] = "1"
    for module, switch in (("huggingface_hub.utils", "disable_progress_bars"),
                           ("transformers.utils.logging", "disable_progress_bar")):
        if module in sys.modules:
            getattr(sys.modules[module], switch)()


def say(line: str) -> None:
    _install()
    LOGGER.info(line)


def note(line: str) -> None:
    _install()
    LOGGER.warning(line)


def result(line: str) -> None:
    _install()
    RESULTS.info(line)


def error(line: str) -> None:
    _install()
    LOGGER.error(line)


def bars() -> bool:
    """Whether progress bars show: on the main process, without --quiet."""
    return is_main() and LOGGER.getEffectiveLevel() <= logging.INFO
