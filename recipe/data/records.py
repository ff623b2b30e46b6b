"""The project's training record, and reading/writing it from JSONL, Parquet or a Hub dataset.

A record is one training triple with its instruction (paper section 3.2):
    {"id", "task_group", "instruction", "query", "positive", "negative", "language", ...}
`negative` may be null (short-short and long-long synthetic groups, public sets without hard
negatives: `data/mine_negatives.py` fills it). Every other core field is a non-empty string.
Extra fields (teacher, usage, cost, raw output...) pass through untouched.

`read_records(source)` is the one entry point the other stages use: a .jsonl/.parquet file, a
synthesis output folder (its examples.jsonl), a local copy of a published dataset (a folder with
README.md and parquet files, as `data/publish.py --dry-run` writes it) or a Hub dataset id.
Bad input raises RecordError naming the file and line (or row) and the field.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable, Iterator

from .. import files
from ..sources import looks_local
from ..errors import InputError

TASK_GROUPS = ("short-long", "long-short", "short-short", "long-long", "sts", "bitext")
REQUIRED = ("id", "task_group", "instruction", "query", "positive", "negative", "language")
TRAIN_REQUIRED = REQUIRED[1:]
# fields whose shape differs between groups: stored as JSON text in Parquet so that every task
# group shares one schema (the `all` config reads all groups' shards at once)
JSON_FIELDS = ("raw", "placeholders", "sampling")
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


class RecordError(InputError):
    """A record or a source that cannot be used; the message names the file, line and field."""


def validate(rec, where: str, required: tuple[str, ...] = REQUIRED) -> dict:
    """Return `rec` if it is a usable record, else raise RecordError naming `where` and the field.

    Training needs no `id` (`required=TRAIN_REQUIRED`); publishing does (`REQUIRED`)."""
    if not isinstance(rec, dict):
        raise RecordError(f"{where}: expected a JSON object, got {type(rec).__name__}")
    for key in required:
        if key not in rec:
            raise RecordError(f"{where}: missing field '{key}'")
    for key in ("id", "instruction", "query", "positive", "language"):
        if key not in required and key not in rec:
            continue
        if not isinstance(rec[key], str) or not rec[key].strip():
            raise RecordError(f"{where}: field '{key}' must be a non-empty string, got {rec[key]!r:.60}")
    if rec["negative"] is not None and (not isinstance(rec["negative"], str) or not rec["negative"].strip()):
        raise RecordError(f"{where}: field 'negative' must be a non-empty string or null, got {rec['negative']!r:.60}")
    if rec["task_group"] not in TASK_GROUPS:
        raise RecordError(f"{where}: field 'task_group' is {rec['task_group']!r}, not one of {', '.join(TASK_GROUPS)}")
    return rec


def read_jsonl(path: str | Path) -> Iterator[dict]:
    """Records of a JSONL file, validated; blank lines are skipped."""
    for rec, _ in _located_jsonl(path):
        yield rec


def _located_jsonl(path: str | Path, required=REQUIRED) -> Iterator[tuple[dict, str]]:
    for lineno, rec in files.jsonl(path, RecordError):
        yield validate(rec, f"{path}:{lineno}", required), f"{path}:{lineno}"


def _decode(row: dict) -> dict:
    for key in JSON_FIELDS:
        if isinstance(row.get(key), str):
            try:
                row[key] = json.loads(row[key])
            except json.JSONDecodeError:
                pass  # a plain string was stored: keep it as it is
    return row


def _rows(dataset, where: str, required=REQUIRED) -> Iterator[tuple[dict, str]]:
    for i, row in enumerate(dataset):
        yield validate(_decode(dict(row)), f"{where} row {i}", required), f"{where} row {i}"


def _parquet_table(path: Path):
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path)
    except Exception as e:  # pyarrow raises several types for a broken file
        raise RecordError(f"{path}: not a readable Parquet file ({e})") from None


def read_parquet(path: str | Path) -> Iterator[dict]:
    path = Path(path)
    table = _parquet_table(path)
    for rec, _ in _rows(table.to_pylist(), str(path)):
        yield rec


def read_records(source: str | Path, config: str | None = None, split: str = "train") -> Iterator[dict]:
    """Iterate the records of `source` (see the module docstring for what it may be).

    `config`/`split` choose the dataset config and split of a published dataset (local or Hub);
    a published synthesis dataset has one config per task group and `all`.
    """
    for rec, _ in read_located(source, config, split):
        yield rec


def read_located(source: str | Path, config: str | None = None, split: str = "train",
                 required: tuple[str, ...] = REQUIRED) -> Iterator[tuple[dict, str]]:
    """Like `read_records`, with where each record came from ("file:line" or "dataset row N")."""
    path = Path(source)
    if path.is_dir():
        if (path / "examples.jsonl").is_file():
            yield from _located_jsonl(path / "examples.jsonl", required)
        elif (path / "README.md").is_file() or any(path.rglob("*.parquet")):
            yield from _load_dataset(str(path), config, split, required)
        else:
            raise RecordError(f"{path}: no examples.jsonl and no published dataset (README.md, *.parquet) in this folder")
    elif path.is_file():
        if path.suffix in (".jsonl", ".json"):
            yield from _located_jsonl(path, required)
        elif path.suffix == ".parquet":
            yield from _rows(_parquet_table(path).to_pylist(), str(path), required)
        else:
            raise RecordError(f"{path}: unknown record file type '{path.suffix}' (want .jsonl or .parquet)")
    elif HUB_ID.fullmatch(str(source)) and not looks_local(source):
        yield from _load_dataset(str(source), config, split, required)
    else:
        raise RecordError(f"{source}: no such file or folder, and not a Hub dataset id (ORG/NAME)")


def _load_dataset(source: str, config: str | None, split: str, required=REQUIRED) -> Iterator[tuple[dict, str]]:
    import datasets

    where = f"{source}" + (f" [{config}]" if config else "") + f" split {split}"
    try:
        ds = datasets.load_dataset(source, name=config, split=split)
    except Exception as e:  # not found, offline, no such config/split: datasets raises many types
        how = "cannot load" + ("" if Path(source).exists() else ": no such local file or folder, and the Hub cannot give it")
        raise RecordError(f"{where}: {how} ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    yield from _rows(ds, where, required)


def write_jsonl(records: Iterable[dict], path: str | Path) -> int:
    """Write records as JSONL (UTF-8, one per line) under a temporary name, renamed into place
    once all are written; returns how many were written."""
    return files.write_jsonl(records, path)
