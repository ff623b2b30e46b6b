"""The output folder: append-only JSONL files that are the run's only state.

Every answer the teacher is paid for lands in exactly one line of one file, written with a single
`write` on an O_APPEND descriptor, so a kill -9 can at worst leave the last line torn. Opening the
folder again moves such a torn tail to `<file>.torn` (nothing is deleted) and rebuilds what the
engine needs to resume: which jobs are done, the exact-duplicate keys, token and cost totals.

Files: examples.jsonl (accepted), rejected.jsonl (parsed but unusable, with a reason),
tasks.jsonl (brainstorm answers), runs.jsonl (one line per start), batches.jsonl (batch mode),
sent.jsonl (one line before each HTTP request to the teacher leaves, one per refused one).

sent.jsonl bounds what a crash can cost. Every request sent either came back refused (a non-2xx
status, which the API does not bill), or came back answered and was saved, or neither: it was in
flight at a kill -9, or it outlived `request_timeout` and the client sent it again. Those last
ones may have been paid without an answer to show for it; their count is `unsaved`, and their
estimated cost is counted against `max_cost` like any other spend.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter, defaultdict
from pathlib import Path

from .. import files
from ..errors import InputError

FILES = ("examples", "rejected", "tasks", "runs", "batches", "sent")
ANSWERS = ("examples", "rejected", "tasks")


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
        self.attempts = self.refusals = 0  # HTTP requests sent / refused (sent.jsonl)
        self._estimates: list[float] = []  # a price-based guess per sent request, for before any answer
        self._open: dict[str, list[int]] = {}  # job -> [tries sent, tries answered] of a request under way
        self.lost_now = 0  # tries of this run's settled requests that were sent and never answered
        self._load()
        self.unsaved_before = self.unsaved()  # lost by earlier runs, reported at the start

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

    def _recognise(self) -> None:
        """Refuse a folder this command did not write before anything in it is read or repaired:
        every synthesis writes runs.jsonl before its first request, and each answer has a job."""
        present = [n for n in ANSWERS + ("batches",) if self.path(n).exists()]
        if not present:
            return
        if not self.path("runs").exists():
            names = ", ".join(self.path(n).name for n in present)
            raise OutputError(f"{self.dir} holds {names} but no runs.jsonl: it is not a synthesis output "
                              "folder; choose another --output-dir")
        for name, key in (("examples", "job"), ("rejected", "reason"), ("tasks", "call")):
            path = self.path(name)
            if not path.exists():
                continue
            with path.open("rb") as f:
                first = f.readline()
            try:
                rec = json.loads(first)
            except ValueError:
                if first.endswith(b"\n"):
                    raise OutputError(f"{path}:1: not valid JSON; not written by data/synthesize.py") from None
                continue  # a torn only line: what a kill -9 leaves, repaired below
            if not isinstance(rec, dict) or key not in rec:
                raise OutputError(f"{path}:1: no {key!r} field; not written by data/synthesize.py, "
                                  "choose another --output-dir")

    def _load(self) -> None:
        self._recognise()
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
        for rec in self.read("sent"):
            if "sent" in rec:
                self.attempts += 1
                self._estimates.append(rec.get("est_usd") or 0.0)
            elif "refused" in rec:
                self.refusals += 1

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

    # the request journal (sent.jsonl), fed by the HTTP client's event hooks ------------------
    def request_sent(self, job: str | None, model: str | None, est_usd: float) -> None:
        self._append("sent", {"sent": job, "model": model, "est_usd": round(est_usd, 6)})
        self.attempts += 1
        self._estimates.append(est_usd)
        self._open.setdefault(job, [0, 0])[0] += 1

    def request_answered(self, job: str | None) -> None:
        self._open.setdefault(job, [0, 0])[1] += 1

    def request_refused(self, job: str | None, status: int) -> None:
        self._append("sent", {"refused": job, "status": status})
        self.refusals += 1
        self.request_answered(job)

    def settle(self, job: str) -> None:
        """A request is over (answered or failed): its tries that got no answer are lost."""
        sent, answered = self._open.pop(job, (0, 0))
        self.lost_now += max(0, sent - answered)

    def lost(self) -> int:
        """Requests sent and never answered, of earlier runs and of this run's finished requests."""
        return self.unsaved_before + self.lost_now

    def unsaved(self) -> int:
        """Requests sent that were neither refused nor saved: in flight now, or lost (see above)."""
        return max(0, self.attempts - self.refusals - self.requests)

    def unsaved_cost(self, n: int | None = None) -> float:
        """Estimated cost of `n` (default: all) unsaved requests: the mean saved answer's cost,
        or before any answer the price table's guess for what was sent."""
        n = self.unsaved() if n is None else n
        if self.requests and self.cost:
            return n * self.cost / self.requests
        return n * (sum(self._estimates) / len(self._estimates) if self._estimates else 0.0)

    def pool(self, group: str) -> list[str]:
        """The brainstormed tasks of a group in call order, exact repeats removed."""
        calls = self.tasks.get(group, {})
        return list(dict.fromkeys(t for k in sorted(calls) for t in (calls[k] or ())))

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
