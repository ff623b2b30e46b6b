"""Publish a synthesis output folder to the Hugging Face Hub as a dataset with a card.

`build` writes exactly what will be pushed into a local folder: one config per task group
(`{group}/train-0000i-of-0000n.parquet`) and README.md (the card, whose YAML declares the
configs and `all`, which reads every group's shards, so nothing is stored twice). `push` uploads
that folder in ONE commit (`recipe.hub.push`, as a trained model is pushed): a failure leaves the
repo as it was, never a half-published dataset. `--dry-run` stops after `build`; that is how the
tests see what a push would send.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from . import card, card_plots
from .records import read_jsonl
from .redact import find_secret, known_secrets
from .. import files, hub
from ..errors import first_line
from ..hub import PublishError
from ..schema import TASK_GROUPS, RecordError, decontamination_report, encode_row, parquet_columns, parquet_features


@dataclass
class OutputDir:
    path: Path
    examples: list
    runs: list
    tasks: list
    rejected: list
    decontamination: dict | None = None  # data/decontaminate.py's report, FOLDER/decontamination.json


def _side_file(path: Path) -> list[dict]:
    """Lines of a side file (runs/tasks/rejected); missing file: none; bad line: error naming it."""
    if not path.is_file():
        return []
    out = []
    for lineno, rec in files.jsonl(path, PublishError):
        if not isinstance(rec, dict):
            raise PublishError(f"{path}:{lineno}: expected a JSON object")
        out.append(rec)
    return out


def load_output_dir(path: str | Path) -> OutputDir:
    path = Path(path)
    if not path.is_dir():
        raise PublishError(f"{path}: not a folder (want a synthesis output folder with examples.jsonl)")
    if not (path / "examples.jsonl").is_file():
        raise PublishError(f"{path}: no examples.jsonl, not a synthesis output folder")
    try:
        examples = list(read_jsonl(path / "examples.jsonl"))
    except RecordError as e:
        raise PublishError(str(e)) from None
    if not examples:
        raise PublishError(f"{path / 'examples.jsonl'}: no examples, nothing to publish")
    seen = {}
    for i, rec in enumerate(examples):
        if rec["id"] in seen:
            raise PublishError(f"{path / 'examples.jsonl'}: id {rec['id']!r} appears twice (records {seen[rec['id']] + 1} and {i + 1})")
        seen[rec["id"]] = i
    return OutputDir(path, examples, _side_file(path / "runs.jsonl"), _side_file(path / "tasks.jsonl"),
                     _side_file(path / "rejected.jsonl"), _decontamination(decontamination_report(path)))


def _decontamination(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        report = json.loads(files.read_text(path))
        for key in ("by_kind", "table", "tasks", "records", "removed", "evaluation_texts"):
            report[key]
    except (ValueError, KeyError, TypeError) as e:
        raise PublishError(f"{path}: not a report of data/decontaminate.py ({type(e).__name__}: {e})") from None
    return report


def build(out: OutputDir, repo_id: str, dest: str | Path, *, license: str = "other",
          extra_terms: str | None = None, shard_rows: int = 100_000, token: str | None = None,
          marked_by: str | None = None) -> list[Path]:
    """Write the parquet shards and README.md that a push would upload into `dest`; returns the files.

    Written to a temporary sibling and renamed into place at the end, so an error leaves no
    half-written `dest`; an existing `dest` is replaced, so the caller checks first that it may
    be (`files.check_output_dir`). `marked_by`: the tool that makes the folder, recorded in its
    marker with what was written (`files.mark_output_dir`), so that the next run knows it as its own. Refuses (PublishError) if any written text
    holds a credential.
    """
    from datasets import Dataset

    dest = Path(dest)
    secrets = known_secrets([token])
    groups = [g for g in TASK_GROUPS if any(r["task_group"] == g for r in out.examples)]
    columns = parquet_columns(out.examples)
    features = parquet_features(columns)
    with files.atomic_dir(dest, overwrite=True) as tmp:
        for group in groups:
            rows = [encode_row(r, columns, str(out.path / "examples.jsonl"))
                    for r in out.examples if r["task_group"] == group]
            for row in rows:
                leaked = find_secret(json.dumps(row, ensure_ascii=False), secrets, patterns=False)
                if leaked:
                    raise PublishError(f"{out.path / 'examples.jsonl'}: a {group} example (id {row['id']}) contains "
                                       "the value of a credential from the environment; refusing to publish")
            n = max(1, -(-len(rows) // shard_rows))
            (tmp / group).mkdir()
            for k in range(n):
                try:
                    shard = Dataset.from_list(rows[k * shard_rows:(k + 1) * shard_rows], features=features)
                except (TypeError, ValueError) as e:  # e.g. a "job" that is not a number
                    raise PublishError(f"{out.path / 'examples.jsonl'}: {group} examples do not fit one table "
                                       f"({first_line(e, 200)})") from None
                shard.to_parquet(str(tmp / group / f"train-{k:05d}-of-{n:05d}.parquet"))
        facts = card.summarize(out.examples, out.runs, out.tasks, out.rejected)
        images = card_plots.draw(facts, groups, tmp)
        text = card.render(facts, repo_id, groups, license=license, extra_terms=extra_terms, images=images,
                           decontamination=out.decontamination)
        leaked = find_secret(text, secrets)
        if leaked:
            raise PublishError("the dataset card would contain a credential (in runs.jsonl or the environment); "
                               "refusing to publish")
        (tmp / "README.md").write_text(text, encoding="utf-8")
        if marked_by:
            files.mark_output_dir(tmp, marked_by, [p.relative_to(tmp) for p in tmp.rglob("*") if p.is_file()])
    return sorted(p for p in dest.rglob("*") if p.is_file() and p.name != files.MARKER)


def push(folder: str | Path, repo_id: str, token: str, private: bool = False) -> str:
    """Upload `folder` (from `build`) as dataset `repo_id` in one commit; returns the commit URL."""
    return hub.push(folder, repo_id, hub.DATASET, token=token, private=private,
                    commit_message="Publish synthetic data with e5-recipe",
                    # an earlier push's shards and pictures go in the same commit
                    delete_patterns=["*.parquet", f"{card_plots.IMAGES}/*.png"])
