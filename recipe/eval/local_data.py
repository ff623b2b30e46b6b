"""Run an mteb task on files in `DIR/<TaskName>/` instead of the Hub.

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
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from datasets import Dataset, DatasetDict, Value
from mteb.abstasks import AbsTaskRetrieval
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData

from .. import files
from ..errors import InputError

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


def use_local_data(task, data_dir: str | Path) -> None:
    """Check that the task's files exist, then make mteb load them instead of the Hub dataset.

    mteb calls `task.load_data()` only when a task still has something to evaluate, so
    finished tasks of a resumed run read nothing.
    """
    for path in expected_files(task, data_dir):
        _need(path)
    task.load_data = lambda *args, **kwargs: load_local(task, data_dir)


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
    try:
        task.dataset_transform()
    except (KeyError, ValueError) as e:
        raise LocalDataError(f"{root}: the columns do not fit mteb's {task.metadata.name} "
                             f"(use its Hub dataset's column names): {e}") from None
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
