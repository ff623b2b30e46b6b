"""Run an mteb task on files in `DIR/<TaskName>/` instead of the Hub: eval.py's and
data/decontaminate.py's --data-dir, so both read a task's evaluation data the same way.

The task keeps mteb's own definition (instruction, splits, main score, evaluator); only where
the rows come from changes, so the scores compare with the leaderboard's. Layout:

- retrieval and reranking, BEIR layout: `corpus.jsonl` (`_id`, `title`, `text`), `queries.jsonl`
  (`_id`, `text`), `qrels/<split>.tsv` (query-id, corpus-id, score; header row optional), and
  for reranking `top_ranked/<split>.jsonl` (`query-id`, `corpus-ids`: the candidates to rank);
- every other task type: `<split>.jsonl` with the columns of the task's Hub dataset (what
  mteb's `dataset_transform` for the task expects), e.g. STS `sentence1`, `sentence2`, `score`;
  classification `text`, `label` (plus the train split it learns from); SprintDuplicateQuestions
  `sent1`, `sent2`, `labels`; a Hub dataset exported with `to_json` fits as it is;
- a multilingual task puts each subset in its own folder: `DIR/<TaskName>/<subset>/...`.

Before anything runs, every file is read once: it must be UTF-8, not empty, one JSON object per
line with the same columns on every line (BEIR files: `_id` and `text`), so that a bad file is
one line naming it, not a task failure after the model has loaded. The same pass gives the
digest of the task's data that its results are filed under (recipe/eval/run.py).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
from datasets import Dataset, DatasetDict, Value
from mteb.abstasks import AbsTaskRetrieval
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData

from . import files
from .errors import InputError, first_line

ROWS_PER_TABLE = 10_000  # rows held as Python objects at a time; a corpus is kept as Arrow


class LocalDataError(InputError):
    """A local data file that is missing or unreadable; the message names the path."""


def expected_files(task, data_dir: str | Path) -> list[Path]:
    """The files `load_local` will read for `task`."""
    root = Path(data_dir) / task.metadata.name
    folders = [root / s for s in task.hf_subsets] if task.metadata.is_multilingual else [root]
    files = []
    for folder in folders:
        if isinstance(task, AbsTaskRetrieval):
            files += [folder / "corpus.jsonl", folder / "queries.jsonl"]
            files += [folder / "qrels" / f"{split}.tsv" for split in task.eval_splits]
            if task.metadata.type == "Reranking":  # without candidates it would be full retrieval
                files += [folder / "top_ranked" / f"{split}.jsonl" for split in task.eval_splits]
        else:
            files += [folder / f"{split}.jsonl" for split in _splits(task)]
    return files


def use_local_data(task, data_dir: str | Path) -> str:
    """Check the task's files, make mteb load them instead of the Hub dataset, and return a key
    of their content ("local-" and 12 hex digits of a SHA-256 over every file, in order).

    mteb calls `task.load_data()` only when a task still has something to evaluate, so
    finished tasks of a resumed run read nothing more.
    """
    digest = hashlib.sha256()
    root = Path(data_dir) / task.metadata.name
    needed = needed_columns(task)
    rows = {}
    for path in expected_files(task, data_dir):
        digest.update(f"{path.relative_to(root)}\n".encode())
        columns, rows[path.relative_to(root).as_posix()] = _check_file(_need(path), digest)
        missing = [c for c in needed if columns is not None and c not in columns]
        if missing:
            raise LocalDataError(f"{path}: no column '{missing[0]}' (its rows have {', '.join(columns)}; "
                                 f"mteb's {task.metadata.name} reads {', '.join(needed)})")

    def load(*args, **kwargs):
        try:
            load_local(task, data_dir)
        except LocalDataError as e:  # mteb files it as a task failure; eval.py reports it as bad input
            task.local_data_error = e
            raise

    task.load_data = load
    task.local_data_full = is_full_size(task, rows)
    return "local-" + digest.hexdigest()[:12]


def is_full_size(task, rows: dict[str, int]) -> bool:
    """Whether the local files hold as many rows as mteb's own statistics of the task's data
    (its evaluation split: samples; retrieval: documents and queries): the sign that they are
    the published data and not a slice of it, so that a published score may stand beside theirs.
    A multilingual task, or one with several evaluation splits, is never taken for full."""
    if task.metadata.is_multilingual or len(task.eval_splits) != 1:
        return False
    split = task.eval_splits[0]
    stats = (task.metadata.descriptive_stats or {}).get(split) or {}
    if isinstance(task, AbsTaskRetrieval):
        return bool(stats) and rows.get("corpus.jsonl") == stats.get("num_documents") and \
            rows.get("queries.jsonl") == stats.get("num_queries")
    return bool(stats) and rows.get(f"{split}.jsonl") == stats.get("num_samples")


# the task attributes that name a column mteb's evaluator reads, beside its content columns
LABEL_ATTRIBUTES = ("label_column_name", "human_summaries_column_name", "machine_summaries_column_name",
                    "relevancy_column_name")


def needed_columns(task, transformed: bool = False) -> list[str]:
    """The columns mteb reads from a non-retrieval task's data: its content columns (mteb's own
    `_get_content_columns`), its label column, STS's `score`. In the files (`transformed` False)
    they are known only where the task keeps its Hub dataset as it is (no `dataset_transform` of
    its own, which may rename columns)."""
    from mteb.abstasks import AbsTask

    if (isinstance(task, AbsTaskRetrieval) or getattr(task, "parallel_subsets", False)  # bitext: per subset
            or not transformed and type(task).dataset_transform is not AbsTask.dataset_transform):
        return []
    try:
        needed = list(task._get_content_columns())
    except Exception:  # a task type that does not declare them: its evaluator names what it misses
        return []
    needed += [getattr(task, a) for a in LABEL_ATTRIBUTES if isinstance(getattr(task, a, None), str)]
    if task.metadata.type == "STS":
        needed.append("score")
    return list(dict.fromkeys(needed)) if needed else []


BEIR_FILES = {"corpus.jsonl": ("_id", "text"), "queries.jsonl": ("_id", "text")}


def _check_file(path: Path, digest) -> tuple[list[str] | None, int]:
    """Read `path` once: feed its text to `digest` and check it as the module docstring says;
    return the columns of a non-BEIR JSONL file's rows, and how many rows it holds."""
    rows, columns = 0, None
    for lineno, line in files.lines(path, LocalDataError):
        digest.update(line.encode("utf-8"))
        if not line.strip():
            continue
        rows += 1
        if path.suffix != ".jsonl":
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise LocalDataError(f"{path}:{lineno}: not valid JSON ({e.msg}, column {e.colno})") from None
        if not isinstance(row, dict):
            raise LocalDataError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
        if path.name in BEIR_FILES:
            missing = [c for c in BEIR_FILES[path.name] if row.get(c) is None]
            if missing:
                raise LocalDataError(f"{path}:{lineno}: no '{missing[0]}' (every row needs '_id' and 'text')")
            continue
        if columns is None:
            columns = [c for c, v in row.items() if v is not None]
        missing = [c for c in columns if row.get(c) is None]
        if missing:
            raise LocalDataError(f"{path}:{lineno}: no '{missing[0]}' (line {_first_row(path)} has "
                                 f"{', '.join(columns)}; every row needs the same columns)")
    if not rows:
        raise LocalDataError(f"{path}: empty (no rows)")
    return columns, rows


def _first_row(path: Path) -> int:
    return next(lineno for lineno, line in files.lines(path) if line.strip())


def _splits(task) -> list[str]:
    splits = list(task.eval_splits)
    train = getattr(task, "train_split", None)
    if train and train not in splits and not getattr(task, "is_cross_validation", False):
        splits.insert(0, train)
    return splits


def load_local(task, data_dir: str | Path) -> None:
    """Fill `task.dataset` from `data_dir/<TaskName>/`, as mteb's `load_data` would from the Hub."""
    if task.data_loaded:
        return
    root = Path(data_dir) / task.metadata.name
    subsets = task.hf_subsets if task.metadata.is_multilingual else ["default"]
    dataset = {}
    for subset in subsets:
        folder = root / subset if task.metadata.is_multilingual else root
        if isinstance(task, AbsTaskRetrieval):
            dataset[subset] = {split: _retrieval_split(folder, split) for split in task.eval_splits}
        else:
            dataset[subset] = DatasetDict({split: _jsonl(folder / f"{split}.jsonl")
                                           for split in _splits(task)})
    if isinstance(task, AbsTaskRetrieval) or task.metadata.is_multilingual:
        task.dataset = dataset
    else:
        task.dataset = dataset["default"]
    read = expected_files(task, data_dir)
    where = read[0] if len(read) == 1 else f"{root} ({', '.join(str(f.relative_to(root)) for f in read)})"
    try:
        task.dataset_transform()
    except (KeyError, ValueError) as e:
        raise LocalDataError(f"{where}: the columns do not fit mteb's {task.metadata.name} "
                             f"(use its Hub dataset's column names): {first_line(e)}") from None
    needed = needed_columns(task, transformed=True)
    if needed and isinstance(task.dataset, DatasetDict):
        for split, ds in task.dataset.items():
            missing = [c for c in needed if c not in ds.column_names]
            if missing:
                raise LocalDataError(f"{root / f'{split}.jsonl'}: mteb's {task.metadata.name} reads "
                                     f"{', '.join(needed)} and finds no '{missing[0]}' (after its own renaming, "
                                     f"the rows have {', '.join(ds.column_names)}; use its Hub dataset's column names)")
    task.data_loaded = True


def _need(path: Path) -> Path:
    if not path.is_file():
        raise LocalDataError(f"missing local data file: {path}")
    return path


def _jsonl(path: Path) -> Dataset:
    """A JSONL file as a Dataset, read by the project's JSONL reader (errors name the line)."""
    tables, rows = [], []
    try:
        for _, row in files.jsonl(_need(path), LocalDataError):
            rows.append(row)
            if len(rows) == ROWS_PER_TABLE:
                tables.append(pa.Table.from_pylist(rows))
                rows = []
        if rows or not tables:
            tables.append(pa.Table.from_pylist(rows))
        return Dataset(pa.concat_tables(tables, promote_options="default"))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:  # a column whose type changes from row to row
        raise LocalDataError(f"{path}: the rows do not fit one table ({e})") from None


def _beir(path: Path, columns: tuple[str, ...]) -> Dataset:
    """corpus.jsonl / queries.jsonl with mteb's column names: `_id` -> `id` (a string), as
    mteb's own RetrievalDatasetLoader does; a missing title is an empty one."""
    ds = _jsonl(path)
    if "_id" in ds.column_names:
        ds = ds.rename_column("_id", "id")
    if "id" not in ds.column_names or "text" not in ds.column_names:
        raise LocalDataError(f"{path}: each row needs '_id' and 'text' (has {ds.column_names})")
    ds = ds.cast_column("id", Value("string"))
    if "title" in columns:
        if "title" not in ds.column_names:
            ds = ds.add_column("title", [""] * len(ds))
        elif None in ds["title"]:
            ds = ds.map(lambda row: {"title": row["title"] or ""})
    return ds.select_columns(["id", *columns])


def _qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    for _, query_id, corpus_id, score in files.qrels(_need(path), LocalDataError):
        qrels.setdefault(query_id, {})[corpus_id] = score
    return qrels


def _retrieval_split(folder: Path, split: str) -> RetrievalSplitData:
    corpus_file, queries_file = folder / "corpus.jsonl", folder / "queries.jsonl"
    qrels = _qrels(folder / "qrels" / f"{split}.tsv")
    corpus = _beir(corpus_file, ("title", "text"))
    queries = _beir(queries_file, ("text",))
    # as mteb's loader does: score only the queries that have judgements
    queries = queries.select([i for i, q in enumerate(queries["id"]) if q in qrels])
    top_ranked = None
    top_file = folder / "top_ranked" / f"{split}.jsonl"
    if top_file.is_file():
        rows = _jsonl(top_file)
        top_ranked = {str(q): [str(c) for c in cs] for q, cs in zip(rows["query-id"], rows["corpus-ids"])}
    return RetrievalSplitData(corpus=corpus, queries=queries, relevant_docs=qrels,
                              top_ranked=top_ranked)
