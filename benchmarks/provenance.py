"""Where and when a benchmark measured: the machine, the library versions, the load at the start
and at the end. Every report keeps them in its JSON and ends its markdown with one line of them,
because a figure in docs/ is recorded with its command, machine, versions and date; and on a
shared machine the load says how far to trust a time."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

from recipe.files import mark_output_dir, write_text

# what a student's training and evaluation figures depend on; a teacher's
PACKAGES = ("torch", "transformers", "sentence-transformers", "peft", "mteb")
TEACHER_PACKAGES = ("xllamacpp", "openai")


def load() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


def cpu_name() -> str:
    """The CPU's model name ('AMD EPYC ...'), where /proc/cpuinfo tells it."""
    with contextlib.suppress(OSError, IndexError):
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(x.split(":", 1)[1].strip() for x in lines if x.startswith("model name"))
    return platform.processor() or platform.machine()


def versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Python's and each installed distribution's version (None: not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


class Sitting:
    """One run of a benchmark, from its construction to `end()`."""

    def __init__(self, command: str, threads: int | None = None, packages: tuple[str, ...] = PACKAGES,
                 threads_of: str = "torch", resumable: bool = False):
        """`threads`: of torch, or of what `threads_of` names (the teacher's "server"). `resumable`: the
        command skips stages done before, so its wall time is this sitting's, not the whole result's."""
        self.command, self.threads, self.packages, self.threads_of = command, threads, packages, threads_of
        self.resumable = resumable
        self.started = datetime.now(timezone.utc)
        self.load_start = load()
        self._t0 = time.monotonic()

    def end(self) -> dict:
        """The report's fields: command, started, wall_s, load_start, load_end, machine, threads."""
        self.wall_s = round(time.monotonic() - self._t0)
        self.load_end = load()
        self.machine = {"cpu": cpu_name(), "cores": os.cpu_count(), "versions": versions(self.packages)}
        return {"command": self.command, "started": self.started.isoformat(timespec="seconds"),
                "wall_s": self.wall_s, "load_start": self.load_start, "load_end": self.load_end,
                "machine": self.machine, "threads": self.threads}

    def line(self) -> str:
        """The markdown's last line, after `end()`."""
        threads = f", {self.threads} {self.threads_of} thread(s)" if self.threads else ""
        shown = ", ".join(f"{k} {v}" for k, v in self.machine["versions"].items() if v)
        took = "min this sitting (the stages above say what each took)" if self.resumable else "min"
        return (f"Command: `{self.command}`; {self.wall_s / 60:.1f} {took}, "
                f"{self.started:%Y-%m-%d %H:%M} UTC; load average {self.load_start} -> {self.load_end}; "
                f"{self.machine['cores']} x {self.machine['cpu']}{threads}; {shown}.")

    def write_report(self, out: Path, name: str, fields: dict, body: str, tool: str, reports: tuple[str, ...]) -> str:
        """End the sitting and write its report into `out`, `tool`'s folder: `name`.json (the
        sitting's fields, then `fields`) and `name`.md (`body`, then the sitting's line), each whole
        or not at all; record `reports` (the report's files) in the folder's marker, print the
        markdown and return it."""
        report = {**self.end(), **fields}
        md = f"{body}\n\n{self.line()}\n"
        write_text(out / f"{name}.json", json.dumps(report, indent=1))
        write_text(out / f"{name}.md", md)
        mark_output_dir(out, tool, reports)
        print(md)
        return md
