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
from .records import RecordError


def is_beir_folder(path: str | Path) -> bool:
    path = Path(path)
    return (path / "corpus.jsonl").is_file() and (path / "queries.jsonl").is_file() and (path / "qrels").is_dir()


def _jsonl(path: Path) -> Iterator[dict]:
    for lineno, row in files.jsonl(path, RecordError):
        if not isinstance(row, dict) or "_id" not in row or "text" not in row:
            raise RecordError(f"{path}:{lineno}: missing field '_id' or 'text'")
        yield row


def _qrels(path: Path) -> Iterator[dict]:
    for lineno, line in files.lines(path, RecordError):
        cols = line.rstrip("\r\n").split("\t")
        if not line.strip() or (lineno == 1 and not cols[-1].lstrip("-").isdigit()):
            continue  # blank line, or a header row ("query-id corpus-id score")
        if len(cols) < 3 or not cols[-1].lstrip("-").isdigit():
            raise RecordError(f"{path}:{lineno}: want 'query-id<TAB>corpus-id<TAB>score'")
        yield {"query-id": cols[0], "corpus-id": cols[-2], "score": int(cols[-1])}


def read_beir_folder(path: str | Path, split: str = "train") -> tuple[list[dict], list[dict], list[dict]]:
    path = Path(path)
    qrels = path / "qrels" / f"{split}.tsv"
    if not qrels.is_file():
        have = ", ".join(sorted(p.stem for p in (path / "qrels").glob("*.tsv"))) or "none"
        raise RecordError(f"{qrels}: no qrels for split '{split}' (have: {have})")
    return list(_jsonl(path / "corpus.jsonl")), list(_jsonl(path / "queries.jsonl")), list(_qrels(qrels))


def doc_text(row: dict) -> str:
    title = (row.get("title") or "").strip()
    return f"{title} {row['text']}".strip() if title else row["text"]


def beir_records(corpus: Iterable[dict], queries: Iterable[dict], qrels: Iterable[dict], *, instruction: str,
                 source: str, language: str = "English", task_group: str = "short-long") -> Iterator[dict]:
    """One record per relevant (query, document) pair; pairs whose ids are missing are skipped."""
    docs = {str(r["_id"]): doc_text(r) for r in corpus}
    texts = {str(r["_id"]): r["text"] for r in queries}
    for q in qrels:
        qid, did = str(q["query-id"]), str(q["corpus-id"])
        if int(q["score"]) > 0 and qid in texts and docs.get(did, "").strip():
            yield {"id": f"{source}-{qid}-{did}", "task_group": task_group, "instruction": instruction,
                   "query": texts[qid], "positive": docs[did], "negative": None, "language": language,
                   "source": source}
