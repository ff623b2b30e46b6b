"""The one record reader: training, mining and publishing read their input here.

Sources: a .jsonl/.parquet/.csv/.tsv file (CSV and TSV with a header row), a synthesis output folder (its examples.jsonl), a local copy of a
published dataset (a folder with README.md and parquet files, as `data/publish.py --dry-run`
writes it), a folder `save_to_disk` wrote (`datasets.load_from_disk`; `--split` chooses the
split of a DatasetDict), any other local dataset folder or Hub dataset id (`datasets.load_dataset`).

Formats, told apart by their columns, row by row (the record itself: `recipe/schema.py`):
- ours: `query`, `positive`, `negative` (null, a text or a list), `instruction`, `task_group`, ...;
- sentence-transformers: `anchor` (or `query`), `positive`, `negative` or `negative_1` ... `negative_n`;
- FlagEmbedding / tevatron JSONL: `query`, `pos` (list), `neg` (list), optional `prompt` (the
  query's instruction);
- anything else, through a column mapping `{"query": "question", "positive": "answer"}`
  (`--columns query=question,positive=answer`): a mapped column is read where a row has it.
A row with several positives is one record per positive, each with all of the row's negatives.
Bad input raises RecordError naming the file and line (or row) and the field.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Iterator

from .. import files
from ..errors import first_line
from ..hub import is_hub_id
from ..schema import SYNTHESIS, RecordError, decode_row, validate

MAPPABLE = ("query", "positive", "negative", "instruction", "task_group", "language", "id")
# the other formats' names for our fields, in the order they are looked for
ALIASES = {"query": ("anchor",), "positive": ("pos",), "negative": ("neg",), "instruction": ("prompt",)}
NUMBERED_NEGATIVE = re.compile(r"negative_(\d+)")
MISSING = object()
DATA_FILES = (".parquet", ".jsonl", ".json", ".csv", ".arrow")  # what `datasets.load_dataset(folder)` reads


def parse_columns(pairs: Iterable[str], key: str = "columns") -> dict[str, str]:
    """`["query=question", "positive=answer"]` as {field: column}; bad pairs name `key`."""
    mapping = {}
    for pair in pairs:
        field, eq, column = (p.strip() for p in pair.partition("="))
        if not eq or not column or field not in MAPPABLE:
            raise RecordError(f"'{key}': {pair!r} is not FIELD=COLUMN with FIELD one of {', '.join(MAPPABLE)}")
        mapping[field] = column
    return mapping


def _take(row: dict, field: str, mapping: dict[str, str]):
    for column in (mapping.get(field), field, *ALIASES.get(field, ())):
        if column is not None and column in row:
            return row.pop(column)
    return MISSING


def normalize(row, where: str, mapping: dict[str, str] | None = None,
              required: tuple[str, ...] = ("query", "positive")) -> list[dict]:
    """One row of any format as records of ours (one per positive), validated."""
    if not isinstance(row, dict):
        raise RecordError(f"{where}: expected a JSON object, got {type(row).__name__}")
    if set(SYNTHESIS) <= set(row) and not mapping:  # ours, complete: nothing to translate
        return [validate(row, where, required)]
    row, mapping = dict(row), mapping or {}
    rec = {field: _take(row, field, mapping) for field in MAPPABLE}
    numbered = sorted((int(m[1]), k) for k in row if (m := NUMBERED_NEGATIVE.fullmatch(k)))
    if numbered and rec["negative"] is MISSING:
        rec["negative"] = [row.pop(k) for _, k in numbered]
    for field in required:
        if rec[field] is MISSING:
            names = " or ".join(f"'{n}'" for n in (mapping.get(field), field, *ALIASES.get(field, ())) if n)
            raise RecordError(f"{where}: missing field {names} (a column of another name: --columns {field}=COLUMN)")
    if isinstance(rec["id"], int):  # many datasets number their rows
        rec["id"] = str(rec["id"])
    negative = None if rec["negative"] is MISSING else rec["negative"]
    if isinstance(negative, list):  # one negative is stored as the paper's triple stores it: a text
        negative = negative[0] if len(negative) == 1 else negative or None
    rec["negative"] = negative
    positives = rec["positive"] if isinstance(rec["positive"], list) else [rec["positive"]]
    if not positives:
        raise RecordError(f"{where}: field 'positive' is an empty list")
    ours = {k: v for k, v in rec.items() if v is not MISSING}
    return [validate({**row, **ours, "positive": p}, where, required) for p in positives]


def _rows(rows: Iterable[dict], where: str, mapping, required) -> Iterator[tuple[dict, str]]:
    for i, row in enumerate(rows):
        at = f"{where} row {i}"
        for rec in normalize(decode_row(dict(row)), at, mapping, required):
            yield rec, at


def _jsonl(path: Path, mapping, required) -> Iterator[tuple[dict, str]]:
    for lineno, row in files.jsonl(path, RecordError):
        at = f"{path}:{lineno}"
        for rec in normalize(row, at, mapping, required):
            yield rec, at


def _csv(path: Path, mapping, required) -> Iterator[tuple[dict, str]]:
    """A .csv (comma) or .tsv (tab) file with a header row, one record per row; an empty cell is
    no value. Cells are text: a list of negatives needs JSONL or Parquet."""
    import csv

    try:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t" if path.suffix == ".tsv" else ",")
            for row in reader:
                at = f"{path}:{reader.line_num}"
                if None in row:
                    raise RecordError(f"{at}: more cells than the header has columns ({', '.join(reader.fieldnames)})")
                for rec in normalize({k: v for k, v in row.items() if v not in (None, "")}, at, mapping, required):
                    yield rec, at
    except UnicodeDecodeError as e:
        raise RecordError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except csv.Error as e:
        raise RecordError(f"{path}: not a readable {path.suffix[1:].upper()} file ({e})") from None


def _parquet_rows(path: Path) -> list[dict]:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except Exception as e:  # pyarrow raises several types for a broken file
        raise RecordError(f"{path}: not a readable Parquet file ({e})") from None


def read_records(source: str | Path, config: str | None = None, split: str = "train",
                 columns: dict[str, str] | None = None,
                 required: tuple[str, ...] = ("query", "positive")) -> Iterator[dict]:
    """Iterate the records of `source` (see the module docstring for what it may be).

    `config`/`split` choose the dataset config and split of a dataset (local or Hub); a published
    synthesis dataset has one config per task group and `all`. `columns` maps other column
    names to ours; `required` names the fields every record must have."""
    for rec, _ in read_located(source, config, split, columns, required):
        yield rec


def read_located(source: str | Path, config: str | None = None, split: str = "train",
                 columns: dict[str, str] | None = None,
                 required: tuple[str, ...] = ("query", "positive")) -> Iterator[tuple[dict, str]]:
    """Like `read_records`, with where each record came from ("file:line" or "dataset row N")."""
    path = Path(source)
    if path.is_dir():
        if (path / "examples.jsonl").is_file():
            yield from _jsonl(path / "examples.jsonl", columns, required)
        elif saved_to_disk(path):
            yield from _load_from_disk(path, split, columns, required)
        elif (path / "README.md").is_file() or any(p.suffix in DATA_FILES for p in path.rglob("*")):
            yield from _load_dataset(str(path), config, split, columns, required)
        else:
            raise RecordError(f"{path}: no examples.jsonl and no dataset (README.md, data files: "
                              f"{', '.join(DATA_FILES)}) in this folder")
    elif path.is_file():
        if path.suffix in (".jsonl", ".json"):
            yield from _jsonl(path, columns, required)
        elif path.suffix == ".parquet":
            yield from _rows(_parquet_rows(path), str(path), columns, required)
        elif path.suffix in (".csv", ".tsv"):
            yield from _csv(path, columns, required)
        else:
            raise RecordError(f"{path}: unknown record file type '{path.suffix}' (want .jsonl, .parquet, .csv or .tsv)")
    elif is_hub_id(source):
        yield from _load_dataset(str(source), config, split, columns, required)
    else:
        raise RecordError(f"{source}: no such file or folder, and not a Hub dataset id (ORG/NAME)")


def _load_dataset(source: str, config: str | None, split: str, columns, required) -> Iterator[tuple[dict, str]]:
    import datasets

    where = f"{source}" + (f" [{config}]" if config else "") + f" split {split}"
    try:
        ds = datasets.load_dataset(source, name=config, split=split)
    except Exception as e:  # not found, offline, no such config/split: datasets raises many types
        how = "cannot load" + ("" if Path(source).exists() else ": no such local file or folder, and the Hub cannot give it")
        raise RecordError(f"{where}: {how} ({first_line(e)})") from None
    yield from _rows(ds, where, columns, required)


def saved_to_disk(path: Path) -> bool:
    """A folder `Dataset.save_to_disk` (state.json) or `DatasetDict.save_to_disk` (dataset_dict.json)
    wrote: `load_dataset` refuses it and points at `load_from_disk`, so that is how it is read."""
    return (path / "dataset_dict.json").is_file() or (path / "state.json").is_file() and (
        path / "dataset_info.json").is_file()


def _load_from_disk(path: Path, split: str, columns, required) -> Iterator[tuple[dict, str]]:
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as e:  # a torn or foreign folder: datasets raises several types
        raise RecordError(f"{path}: a save_to_disk folder that cannot be loaded "
                          f"({first_line(e)})") from None
    where = str(path)
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise RecordError(f"{path}: no split {split!r} (it has {', '.join(ds)}); choose one with --split")
        ds, where = ds[split], f"{path} split {split}"
    yield from _rows(ds, where, columns, required)


def read_jsonl(path: str | Path) -> Iterator[dict]:
    """The records of a synthesis output's examples.jsonl, every synthesis field required."""
    yield from read_records(path, required=SYNTHESIS)
