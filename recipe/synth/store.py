"""The output folder: append-only JSONL files that are the run's only state.

Every answer the teacher is paid for lands in exactly one line of one file, written with a single
`write` on an O_APPEND descriptor, so a kill -9 can at worst leave the last line torn. Opening the
folder again moves such a torn tail to `<file>.torn` (nothing is deleted) and rebuilds what the
engine needs to resume: which jobs are done, the exact-duplicate keys, token and cost totals.

Files: examples.jsonl (accepted), rejected.jsonl (parsed but unusable, with a reason),
tasks.jsonl (brainstorm answers), runs.jsonl (one line per start), batches.jsonl (batch mode).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter, defaultdict
from pathlib import Path

from .. import files
from ..errors import InputError

FILES = ("examples", "rejected", "tasks", "runs", "batches")


def example_key(query: str, positive: str, negative: str | None) -> str:
    """Identity of an example for the paper's exact-duplicate filter, and its stable id."""
    blob = json.dumps([query, positive, negative], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class OutputError(InputError):
    """The output folder cannot be used; the message says which file and what to do."""


class Store:
    def __init__(self, out: str | Path):
        self.dir = Path(out)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            probe = self.dir / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as e:
            raise OutputError(f"cannot write to output folder {self.dir}: {e.strerror or e}") from None
        self._fds: dict[str, int] = {}
        self.done_jobs: set[int] = set()
        self.keys: set[str] = set()
        self.n_examples = 0
        self.rejected: Counter[str] = Counter()
        self.tasks: dict[str, dict[int, list[str] | None]] = defaultdict(dict)
        self.prompt_tokens = self.completion_tokens = self.requests = 0
        self.cost = 0.0
        self.nothing_to_do = False  # the folder already held every example asked for
        self.unpriced = 0  # answers whose price is unknown: their cost is not in self.cost
        self.batches: dict[str, dict] = {}
        self.per_model: Counter[str] = Counter()
        self._load()

    # reading ---------------------------------------------------------------------------------
    def path(self, name: str) -> Path:
        return self.dir / f"{name}.jsonl"

    def read(self, name: str):
        """Yield the records of one file, repairing a torn last line first."""
        path = self.path(name)
        if not path.exists():
            return
        self._repair_tail(path)  # a torn last line is what a kill -9 leaves: set aside, not an error
        try:
            for _, rec in files.jsonl(path, OutputError):
                yield rec
        except OutputError as e:  # any other bad line is damage the user must look at
            raise OutputError(f"{e}; move that line out of the file and run again") from None

    @staticmethod
    def _repair_tail(path: Path) -> None:
        size = path.stat().st_size
        if size == 0:
            return
        with path.open("rb+") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) == b"\n":
                return
            # walk back to the last newline without reading a multi-GB file whole
            cut, pos = 0, size
            while pos > 0:
                step = min(1 << 16, pos)
                pos -= step
                f.seek(pos)
                nl = f.read(step).rfind(b"\n")
                if nl >= 0:
                    cut = pos + nl + 1
                    break
            f.seek(cut)
            tail = f.read()
            with open(f"{path}.torn", "ab") as torn:
                torn.write(tail + b"\n")
            f.truncate(cut)

    def _count_usage(self, rec: dict) -> None:
        usage = rec.get("usage") or {}
        self.prompt_tokens += usage.get("prompt_tokens") or 0
        self.completion_tokens += usage.get("completion_tokens") or 0
        self.cost += rec.get("cost_usd") or 0.0
        self.unpriced += rec.get("cost_usd") is None
        self.requests += 1
        if rec.get("model"):
            self.per_model[rec["model"]] += 1

    def _load(self) -> None:
        for rec in self.read("examples"):
            self.done_jobs.add(rec["job"])
            self.keys.add(example_key(rec["query"], rec["positive"], rec["negative"]))
            self.n_examples += 1
            self._count_usage(rec)
        for rec in self.read("rejected"):
            if rec.get("job") is not None:
                self.done_jobs.add(rec["job"])
            self.rejected[rec["reason"]] += 1
            self._count_usage(rec)
        for rec in self.read("tasks"):
            self.tasks[rec["task_group"]][rec["call"]] = rec.get("tasks")
            self._count_usage(rec)
        for rec in self.read("batches"):
            self.batches.setdefault(rec["name"], {}).update(rec)
        list(self.read("runs"))  # repair only

    # writing ---------------------------------------------------------------------------------
    def _append(self, name: str, rec: dict) -> None:
        fd = self._fds.get(name)
        if fd is None:
            fd = self._fds[name] = os.open(self.path(name), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        data = (json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8")
        while data:  # one write in practice; loop only on a short write
            data = data[os.write(fd, data):]

    def add_example(self, rec: dict) -> None:
        self._append("examples", rec)
        self.done_jobs.add(rec["job"])
        self.keys.add(example_key(rec["query"], rec["positive"], rec["negative"]))
        self.n_examples += 1
        self._count_usage(rec)

    def add_rejected(self, rec: dict) -> None:
        self._append("rejected", rec)
        if rec.get("job") is not None:
            self.done_jobs.add(rec["job"])
        self.rejected[rec["reason"]] += 1
        self._count_usage(rec)

    def add_tasks(self, rec: dict) -> None:
        self._append("tasks", rec)
        self.tasks[rec["task_group"]][rec["call"]] = rec.get("tasks")
        self._count_usage(rec)

    def add_run(self, rec: dict) -> None:
        self._append("runs", rec)

    def update_batch(self, rec: dict) -> None:
        self._append("batches", rec)
        self.batches.setdefault(rec["name"], {}).update(rec)

    def pool(self, group: str) -> list[str]:
        """The brainstormed tasks of a group in call order, exact repeats removed."""
        calls = self.tasks.get(group, {})
        return list(dict.fromkeys(t for k in sorted(calls) for t in (calls[k] or ())))

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
