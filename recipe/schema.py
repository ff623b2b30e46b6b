"""The contracts every stage shares: the training record, its Parquet encoding, the task groups,
the query template, and the files one stage leaves for another.

A record is one training example with its instruction (paper section 3.2):
    {"query", "positive", "negative", "instruction", "task_group", "language", "source", "id", ...}
`query` and `positive` are non-empty strings. `negative` is null (none yet: short-short and
long-long synthetic groups, public sets without hard negatives; `data/mine_negatives.py` fills
it), one text (the paper's triple), or a list of texts (several hard negatives, the first one
first used). `instruction`, `task_group`, `language`, `source` and `id` are optional for
training and mining; synthesis output has them all (`SYNTHESIS`), and publishing requires them.
Extra fields (teacher, usage, cost, raw output...) pass through untouched.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import InputError

TASK_GROUPS = ("short-long", "long-short", "short-short", "long-long", "sts", "bitext")
SYNTHESIS = ("id", "task_group", "instruction", "query", "positive", "negative", "language")
TEXT_FIELDS = ("id", "instruction", "query", "positive", "language", "source")

# Paper section 3.2: the query side carries the instruction, documents carry none.
QUERY_PREFIX = "Instruct: {instruction}\nQuery: "
QUERY_TEMPLATE = QUERY_PREFIX + "{query}"

# Parquet: fields whose shape differs between task groups are stored as JSON text, so that every
# group shares one schema (the `all` config reads all groups' shards at once)
JSON_FIELDS = ("raw", "placeholders", "sampling")
TYPED = {"model": "string", "cost_usd": "float64", "job": "int64", "created": "float64"}


# data/decontaminate.py's report on the records it read lies in the synthesis folder they came from
# (publish puts it into the dataset card) or beside the records file it wrote (X.jsonl:
# X.decontamination.json); train.py copies what it says into training_info.json, which it writes
# beside the model it exports (OUTPUT/final/) for eval.py --submission
DECONTAMINATION_REPORT = "decontamination.json"
TRAINING_INFO = "training_info.json"


def beside(records: str | Path, suffix: str) -> Path:
    """A side file of the records file X.jsonl, in its folder: X<suffix>."""
    path = Path(records)
    return path.with_name(path.name.removesuffix(".jsonl") + suffix)


def decontamination_report(data: str | Path) -> Path:
    """Where data/decontaminate.py's report on `data`, a synthesis folder or a records file it wrote, lies."""
    path = Path(data)
    return path / DECONTAMINATION_REPORT if path.is_dir() else beside(path, "." + DECONTAMINATION_REPORT)


class RecordError(InputError):
    """A record or a source that cannot be used; the message names the file, line and field."""


def negatives(rec: dict) -> list[str]:
    """A record's hard negatives, as a list (none, one or several)."""
    value = rec.get("negative")
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def validate(rec, where: str, required: tuple[str, ...] = ("query", "positive")) -> dict:
    """Return `rec` if it is a usable record, else raise RecordError naming `where` and the field.

    Training and mining need `query` and `positive`; publishing needs every `SYNTHESIS` field."""
    if not isinstance(rec, dict):
        raise RecordError(f"{where}: expected a JSON object, got {type(rec).__name__}")
    for key in required:
        if key not in rec:
            raise RecordError(f"{where}: missing field '{key}'")
    for key in TEXT_FIELDS:
        if (key in required or rec.get(key) is not None) and (not isinstance(rec[key], str) or not rec[key].strip()):
            raise RecordError(f"{where}: field '{key}' must be a non-empty string, got {rec[key]!r:.60}")
    value = rec.get("negative")
    texts = value if isinstance(value, list) else [value]
    if value is not None and (not texts or any(not isinstance(t, str) or not t.strip() for t in texts)):
        raise RecordError(f"{where}: field 'negative' must be null, a non-empty string or a list of them, "
                          f"got {value!r:.60}")
    group = rec.get("task_group")
    if (group is not None or "task_group" in required) and group not in TASK_GROUPS:
        raise RecordError(f"{where}: field 'task_group' is {group!r}, not one of {', '.join(TASK_GROUPS)}")
    return rec


# ---------------------------------------------------------------- Parquet


def parquet_columns(records: list[dict]) -> list[str]:
    extra = sorted({k for rec in records for k in rec} - set(SYNTHESIS))
    return list(SYNTHESIS) + extra


def parquet_features(columns: list[str]):
    from datasets import Features, Value

    feats = {}
    for c in columns:
        if c == "usage":
            feats[c] = {"prompt_tokens": Value("int64"), "completion_tokens": Value("int64")}
        else:
            feats[c] = Value(TYPED.get(c, "string"))
    return Features(feats)


def encode_row(rec: dict, columns: list[str], where: str) -> dict:
    """One record as a row of the shared schema: nested values other than `usage` as JSON text.

    `negative` is a string column (the synthesis format has at most one); a list there would be
    stored as JSON text that reads back as one string, so it is refused instead."""
    if isinstance(rec.get("negative"), list):
        raise RecordError(f"{where}: record {rec.get('id')!r} has several negatives; the Parquet "
                          "encoding holds one per record")
    row = {}
    for c in columns:
        v = rec.get(c)
        if c == "usage":
            v = {"prompt_tokens": int((v or {}).get("prompt_tokens") or 0),
                 "completion_tokens": int((v or {}).get("completion_tokens") or 0)}
        elif c not in TYPED and v is not None and not isinstance(v, str):
            v = json.dumps(v, ensure_ascii=False, sort_keys=True)
        row[c] = v
    return row


def decode_row(row: dict) -> dict:
    """The inverse of `encode_row` for the JSON-text fields."""
    for key in JSON_FIELDS:
        if isinstance(row.get(key), str):
            try:
                row[key] = json.loads(row[key])
            except json.JSONDecodeError:
                pass  # a plain string was stored: keep it as it is
    return row
