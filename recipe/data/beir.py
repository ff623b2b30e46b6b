"""BEIR-layout retrieval data (corpus + queries + qrels) as training records.

The layout of BEIR, mteb and the shared eval subsets: corpus.jsonl ({"_id", "title", "text"}),
queries.jsonl ({"_id", "text"}), qrels/{split}.tsv (query id, corpus id, score; with or without
a header row). Every (query, document) pair with score > 0 becomes one record with no negative:
`mining.mine` fills it, skipping every labelled positive of the query.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

from .. import files
from ..schema import RecordError


def is_beir_folder(path: str | Path) -> bool:
    path = Path(path)
    return (path / "corpus.jsonl").is_file() and (path / "queries.jsonl").is_file() and (path / "qrels").is_dir()


def _texts(path: Path) -> Iterator[dict]:
    for lineno, row in files.jsonl(path, RecordError):
        if not isinstance(row, dict) or "_id" not in row or "text" not in row:
            raise RecordError(f"{path}:{lineno}: missing field '_id' or 'text'")
        yield row


def _qrels(path: Path) -> Iterator[dict]:
    for _, query_id, corpus_id, score in files.qrels(path, RecordError):
        yield {"query-id": query_id, "corpus-id": corpus_id, "score": score}


def read_beir_folder(path: str | Path, split: str = "train") -> tuple[list[dict], list[dict], list[dict]]:
    path = Path(path)
    qrels = path / "qrels" / f"{split}.tsv"
    if not qrels.is_file():
        have = ", ".join(sorted(p.stem for p in (path / "qrels").glob("*.tsv"))) or "none"
        raise RecordError(f"{qrels}: no qrels for split '{split}' (have: {have})")
    return list(_texts(path / "corpus.jsonl")), list(_texts(path / "queries.jsonl")), list(_qrels(qrels))


def doc_text(row: dict) -> str:
    title = (row.get("title") or "").strip()
    return f"{title} {row['text']}".strip() if title else row["text"]


def row_id(row: dict) -> str:
    """A corpus or query row's id: BEIR's `_id`, or `id` as mteb 2's re-uploads name it (its
    loader, `mteb.abstasks.retrieval_dataset_loaders`, reads both)."""
    return str(row["_id"] if "_id" in row else row["id"])


def beir_records(corpus: Iterable[dict], queries: Iterable[dict], qrels: Iterable[dict], *, instruction: str,
                 source: str, language: str = "English", task_group: str = "short-long") -> Iterator[dict]:
    """One record per relevant (query, document) pair; pairs whose ids are missing are skipped."""
    docs = {row_id(r): doc_text(r) for r in corpus}
    texts = {row_id(r): r["text"] for r in queries}
    for q in qrels:
        qid, did = str(q["query-id"]), str(q["corpus-id"])
        if int(q["score"]) > 0 and qid in texts and docs.get(did, "").strip():
            yield {"id": f"{source}-{qid}-{did}", "task_group": task_group, "instruction": instruction,
                   "query": texts[qid], "positive": docs[did], "negative": None, "language": language,
                   "source": source}
