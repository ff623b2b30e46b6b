"""A training output dir's life cycle, so that no run replaces or mixes with another by accident.

A dir holds no run, an unfinished one (train_log.jsonl or checkpoints/, no final/), or a finished
one (final/, which is only ever renamed into place whole). What a new command may do with it:

- no run: train from step 0;
- a run, without --resume or --overwrite: refused, nothing changed;
- --resume: continue from the newest checkpoint to the end the recipe plans now; a run already at
  that end changes nothing (exit 0), one past it is refused (exit 2), nothing changed either way;
- --overwrite: start again; the old log and checkpoints are removed only once the new run is
  about to take its first step (so a bad recipe loses nothing), the old final/ when the new one
  replaces it. Files that are not a run's (notes, data) are never touched.

A resume continues the same run: run_settings.json (written when a run takes its first step)
holds the settings and a digest of the training records, and a --resume that changes either,
outside the keys in RESUMABLE (how far it goes and how it is run, saved, logged and exported), is
refused before anything is loaded.

One process writes to a dir at a time: the main process holds a FolderLock on it for the run.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from .. import log
from ..errors import InputError
from ..files import atomic_file, jsonl, write_jsonl

LOG = "train_log.jsonl"
FINAL = "final"
SETTINGS = "run_settings.json"
# a resume may change these: how far the run goes (the plan of a longer run starts with the
# shorter one's batches), and how it is executed, saved, logged and exported; none changes what
# the steps already taken would have been
RESUMABLE = frozenset({
    "max_steps", "num_train_epochs", "attn_implementation", "gradient_checkpointing", "padding_free", "liger_kernels",
    "lora_cast_input", "cpu_threads", "require_gpu", "mini_batch_size", "cached", "group_by_length",
    "ddp_find_unused_parameters", "process_group_timeout", "output_dir", "save_steps", "save_total_limit",
    "resume", "overwrite", "merge_checkpoints", "merge_method", "logging_steps", "report_to", "eval_steps",
    "load_best_model_at_end", "export_adapter_only", "export_query_instruction", "push_to_hub", "hub_model_id",
    "license",
})


def checkpoints(output_dir: Path) -> list[Path]:
    """A run's checkpoints, oldest first (here, not in checkpoint.py, which needs torch: the dir
    is judged before anything heavy loads)."""
    found = [p for p in (Path(output_dir) / "checkpoints").glob("step-*") if re.fullmatch(r"step-\d+", p.name)]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


@dataclass
class RunState:
    out: Path
    finished: bool          # final/ is there
    newest: Path | None     # newest checkpoint
    steps_done: int         # how far the run got: its newest checkpoint, or the last logged step of a finished run
    has_run: bool

    def describe(self) -> str:
        if self.finished:
            return f"a finished run ({self.out / FINAL}, {self.steps_done} steps)"
        at = f"checkpoint at step {self.steps_done}" if self.newest else "no checkpoint yet"
        return f"an unfinished run ({at})"


def log_rows(out: Path) -> list[dict]:
    path = out / LOG
    return [row for _, row in jsonl(path)] if path.is_file() else []


def inspect(out: str | Path) -> RunState:
    out = Path(out)
    found = checkpoints(out)
    newest = found[-1] if found else None
    steps = int(newest.name.split("-")[1]) if newest else 0
    finished = (out / FINAL).is_dir()
    if finished:
        logged = [row.get("step", 0) for row in log_rows(out) if isinstance(row, dict)]
        steps = max([steps, *logged])
    has_run = finished or newest is not None or (out / LOG).is_file()
    return RunState(out, finished, newest, steps, has_run)


def check_allowed(state: RunState, resume: bool, overwrite: bool) -> None:
    """Refuse a dir holding a run unless the user said what to do with it."""
    if resume and overwrite:
        raise InputError("command line: --resume continues the run in --output-dir, --overwrite replaces it; "
                         "pass one of them")
    if state.has_run and not (resume or overwrite):
        raise InputError(f"--output-dir {state.out}: holds {state.describe()}; pass --resume to continue it to "
                         "the configured end, --overwrite to train again from step 0, or another --output-dir")


class NothingToDo(Exception):
    """A --resume of a run that already reached the planned end: nothing to train or export."""


def resume_point(state: RunState, total: int, resume: bool) -> Path | None:
    """The checkpoint a run continues from (None: step 0); raises if there is nothing to do."""
    if not resume:
        return None
    if state.steps_done > total:
        raise InputError(f"--output-dir {state.out}: holds {state.describe()}, past the {total} steps the recipe "
                         f"plans now (max_steps, epochs or data changed?); nothing changed. Resume with "
                         f"--max-steps {state.steps_done} or more, or --overwrite to start again")
    if state.finished and state.steps_done == total:
        raise NothingToDo(f"{state.out}: already trained to step {total}, the planned end ({state.out / FINAL}); "
                          "nothing changed (raise --max-steps or --num-train-epochs to train further)")
    if state.has_run and state.newest is None:
        log.note(f"{state.out}: no checkpoint to resume from (save_steps); training again from step 0")
    return state.newest


def _plain(value):
    return json.loads(json.dumps(value, default=str))


def data_digest(examples) -> str:
    """The records a run trains on, as the loss sees them: a changed file under the same name counts."""
    h = hashlib.sha256()
    for ex in examples:
        for text in (ex.query, ex.positive, *(ex.negatives or ())):
            h.update(text.encode("utf-8", "surrogatepass"))
            h.update(b"\0")
        h.update(b"\1")
    return h.hexdigest()


def _recorded(out: Path) -> dict | None:
    path = out / SETTINGS
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise InputError(f"{path}: not valid JSON; it records the settings the run was trained with, "
                         "restore it or pass --overwrite to train again") from None


def check_resume_settings(state: RunState, settings: dict) -> None:
    """Refuse a --resume that changes a setting its checkpoints depend on (before any loading)."""
    recorded = _recorded(state.out) if state.has_run else None
    if recorded is None:
        return
    before, now = recorded.get("settings", {}), _plain(settings)
    changed = sorted(k for k in set(before) | set(now) if k not in RESUMABLE and before.get(k) != now.get(k))
    if changed:
        diffs = "; ".join(f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in changed[:6])
        raise InputError(f"--resume: {state.out} was trained with other settings ({diffs}"
                         f"{' ...' if len(changed) > 6 else ''}); a resume continues the same run, so only "
                         f"{', '.join(sorted(RESUMABLE - {'resume', 'overwrite', 'output_dir'}))} may change. "
                         "Pass --overwrite to train again, or another --output-dir")


def check_resume_data(state: RunState, digest: str) -> None:
    recorded = _recorded(state.out) if state.has_run else None
    if recorded and recorded.get("data_digest") not in (None, digest):
        raise InputError(f"--resume: the training records differ from those {state.out} was trained on "
                         f"(same settings, other content; see {state.out / SETTINGS}); pass --overwrite "
                         "to train again, or another --output-dir")


def record_settings(out: Path, settings: dict, digest: str) -> None:
    """Main process, as a run takes its first step from step 0."""
    with atomic_file(out / SETTINGS) as tmp:
        Path(tmp).write_text(json.dumps({"settings": _plain(settings), "data_digest": digest}, indent=1))


def prepare(state: RunState, start: int, overwrite: bool) -> None:
    """Main process, just before the first step: drop what the new run replaces, so that its log
    holds only its own steps (an --overwrite's old log and checkpoints; a resume's log rows after
    the checkpoint it continues from, which it will log again)."""
    out = state.out
    if overwrite:
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
        (out / LOG).unlink(missing_ok=True)
    elif (out / LOG).is_file():
        kept = [row for row in log_rows(out) if isinstance(row, dict) and row.get("step", 0) <= start]
        write_jsonl(kept, out / LOG)
