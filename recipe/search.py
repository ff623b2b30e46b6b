"""A user's own documents, searched with a SentenceTransformer: read the corpus and the queries,
embed the corpus once (cached beside it), return each query's top-k documents (exact search).

Corpus: a folder of .txt files (each file one document, its id the path below the folder) or a
JSONL file, one document a line: `text`, optional `id` (or BEIR's `_id`; default: the line
number) and `title` (read as "title text", as BEIR documents are). Queries: a .txt file (one a
line, its id the line number) or a JSONL file (`query` or `text`, optional `id`/`_id`).

The cache (`<corpus>.e5-search/<model key>.npz`) holds one embedding per distinct document text,
keyed by the text's sha256; the model key names the model's files (their sizes and times), the
document prompt and the maximum length. A run reuses every embedding whose text is unchanged and
encodes only the rest; the cache is replaced whole, under a temporary name, once written.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from . import files, log
from .errors import InputError

CACHE_SUFFIX = ".e5-search"


@dataclass(frozen=True)
class Doc:
    id: str
    text: str


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _unique(docs: list[Doc], where: str) -> list[Doc]:
    seen: dict[str, int] = {}
    for i, doc in enumerate(docs):
        if doc.id in seen:
            raise InputError(f"{where}: id {doc.id!r} appears twice (items {seen[doc.id] + 1} and {i + 1})")
        seen[doc.id] = i
    return docs


def _jsonl_items(path: Path, fields: tuple[str, ...], what: str) -> list[Doc]:
    docs = []
    for lineno, row in files.jsonl(path):
        if not isinstance(row, dict):
            raise InputError(f"{path}:{lineno}: want a JSON object with {' or '.join(map(repr, fields))}")
        text = next((row[f] for f in fields if f in row), None)
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"{path}:{lineno}: field {' or '.join(map(repr, fields))} must be a non-empty string")
        title = row.get("title")
        if what == "document" and isinstance(title, str) and title.strip():
            text = f"{title.strip()} {text}"
        ident = row.get("id", row.get("_id", lineno))
        docs.append(Doc(str(ident), text))
    return docs


def check_corpus(corpus: str | Path, flag: str = "--corpus") -> Path:
    """The corpus path, if it is one this module reads; else one line saying what is wanted."""
    path = Path(corpus).expanduser()
    if not str(corpus):
        raise InputError(f"command line: {flag} is required (a folder of .txt files or a .jsonl file)")
    if not path.exists():
        raise InputError(f"{flag} {corpus}: no such file or folder")
    if not path.is_dir() and path.suffix.lower() != ".jsonl":
        raise InputError(f"{flag} {corpus}: want a folder of .txt files or a .jsonl file of documents "
                         f"({{\"id\", \"text\"}} a line), not {path.suffix or 'a file without a suffix'}")
    return path


def read_corpus(corpus: str | Path, flag: str = "--corpus") -> list[Doc]:
    path = check_corpus(corpus, flag)
    if path.is_dir():
        docs, empty = [], []
        for txt in sorted(p for p in path.rglob("*.txt") if p.is_file()):
            text = files.read_text(txt).strip()
            (docs if text else empty).append(Doc(txt.relative_to(path).as_posix(), text))
        if not docs:
            raise InputError(f"{flag} {corpus}: no .txt file with text in this folder")
        if empty:
            log.note(f"{flag} {corpus}: {len(empty)} empty .txt file(s) left out ({empty[0].id}"
                     f"{', ...' if len(empty) > 1 else ''})")
        return docs
    docs = _unique(_jsonl_items(path, ("text",), "document"), str(path))
    if not docs:
        raise InputError(f"{flag} {corpus}: no documents")
    return docs


def read_queries(query: str, queries_file: str) -> list[Doc]:
    """`--query` (id "query") and the lines of `--queries`, in that order."""
    out = [Doc("query", query)] if query.strip() else []
    if queries_file:
        path = Path(queries_file).expanduser()
        if not path.is_file():
            raise InputError(f"--queries {queries_file}: no such file")
        if path.suffix.lower() == ".jsonl":
            out += _jsonl_items(path, ("query", "text"), "query")
        elif path.suffix.lower() == ".txt":
            out += [Doc(str(n), line.strip()) for n, line in files.lines(path) if line.strip()]
        else:
            raise InputError(f"--queries {queries_file}: want a .txt file (one query a line) or a .jsonl file "
                             f"({{\"id\", \"query\"}} a line), not {path.suffix or 'a file without a suffix'}")
        if len(out) == (1 if query.strip() else 0):
            raise InputError(f"--queries {queries_file}: no queries")
    if not out:
        raise InputError("command line: give --query TEXT or --queries FILE")
    return out


def cache_path(corpus: str | Path, model_key: str) -> Path:
    path = Path(corpus).expanduser()
    return path.parent / (path.name + CACHE_SUFFIX) / f"{model_key}.npz"


def model_key(model_folder: str | Path, document_prompt: str, max_length: int | None, corpus: str | Path) -> str:
    """What the corpus embeddings depend on: every file of the model folder (size, modification
    time), the document prompt and the truncation length; and which corpus they are of."""
    folder = Path(model_folder)
    stats = sorted((p.relative_to(folder).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
                   for p in folder.rglob("*") if p.is_file())
    blob = json.dumps([str(folder.resolve()), stats, document_prompt, max_length, str(Path(corpus).resolve())])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _load_cache(path: Path) -> dict:
    import numpy as np

    if not path.is_file():
        return {}
    try:
        with np.load(path) as data:
            return dict(zip(data["hashes"].tolist(), data["embeddings"]))
    except Exception as e:  # a damaged or foreign file: say so, encode again
        log.note(f"{path}: not a readable embedding cache ({type(e).__name__}); encoding again")
        return {}


def embed_corpus(docs: list[Doc], encode, cache: Path | None) -> tuple:
    """(embeddings, encoded, reused): one row per document; `encode(texts)` returns a numpy array
    and is called once, on the texts the cache does not hold (not at all if it holds them all)."""
    import numpy as np

    known = _load_cache(cache) if cache else {}
    hashes = [_sha(d.text) for d in docs]
    todo = sorted({h: d.text for h, d in zip(hashes, docs) if h not in known}.items())
    if todo:
        fresh = np.asarray(encode([text for _, text in todo]), dtype=np.float32)
        known.update(zip((h for h, _ in todo), fresh))
    embeddings = np.stack([known[h] for h in hashes])
    if cache and todo:
        keep = sorted(set(hashes))  # this corpus only: a deleted document's row goes with the rewrite
        with files.atomic_file(cache) as tmp:
            np.savez(tmp, hashes=np.array(keep), embeddings=np.stack([known[h] for h in keep]))
    return embeddings, len(todo), len(set(hashes)) - len(todo)


FAISS_SIMILARITIES = ("cosine", "dot")  # what an inner-product index computes exactly


def exact_search(query_embeddings, doc_embeddings, top_k: int, similarity: str = "cosine",
                 index: str = "torch") -> list[list[tuple[int, float]]]:
    """Every query's `top_k` (document index, score), best first, by the model's `similarity`
    (sentence-transformers' name for it), exactly: torch over the whole score matrix, or FAISS's
    flat inner-product index (cosine and dot only)."""
    import numpy as np

    k = min(top_k, len(doc_embeddings))
    if index == "faiss":
        import faiss

        q = np.ascontiguousarray(query_embeddings, dtype=np.float32)
        d = np.ascontiguousarray(doc_embeddings, dtype=np.float32)
        if similarity == "cosine":
            q, d = (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12) for x in (q, d))
        flat = faiss.IndexFlatIP(d.shape[1])
        flat.add(d)
        scores, idx = flat.search(q, k)
    else:
        import torch
        from sentence_transformers import SimilarityFunction

        matrix = SimilarityFunction.to_similarity_fn(similarity)(
            torch.as_tensor(np.asarray(query_embeddings)), torch.as_tensor(np.asarray(doc_embeddings)))
        scores, idx = (t.numpy() for t in torch.topk(matrix, k, dim=1))
    return [[(int(i), float(s)) for s, i in zip(row_s, row_i)] for row_s, row_i in zip(scores, idx)]


def snippet(text: str, chars: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= chars else flat[:chars - 1].rstrip() + "…"
