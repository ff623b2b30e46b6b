"""The paper's 13 public training sets (appendix A, "full data"), from their Hub copies, as records.

Each `PublicSource` names the Hub copy we read (chosen for being public, script-free parquet,
and the copy other E5 reproductions use), its config(s) and training split, the loader that maps
its real schema to records (through the one record reader, `records.normalize`), the paper's instruction (Table 14) and sample ratio. Three schema
families cover all 13:
- `from_columns`: sentence-transformers' copies (Tom Aarsen's 2024 uploads of the E5/BGE
  training mix): pairs (`question`/`answer`, `query`/`answer`) or triplets (`anchor`, `positive`,
  `negative`, or `query`, `positive`, `negative`); pairs get `negative=None` (mine them);
- `from_lists`: `cfli/bge-e5data`, BGE's copy of the E5 public data (`query`, `pos` list, `neg` list),
  each positive a record with all the row's negatives;
- `from_beir`: corpus + queries + qrels (mteb's BEIR copies), joined on ids; negatives mined.
Each copy's config, split and columns were checked against its dataset card (the evidence, set by
set: docs/public_data.md). Only training splits are read. Sampling by ratio is a deterministic hash of (seed, record id),
so a ratio of 0.1 keeps the same 10% on every run and every machine.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from ..errors import InputError
from ..schema import RecordError
from .beir import beir_records
from .languages import name_of
from .records import normalize

# Table 14 of the paper (ACL version), training instructions of the public sets
QA_WIKI = "Given a question, retrieve Wikipedia passages that answer the question"
CHINESE_WEB = "Given a Chinese search query, retrieve web passages that answer the question"
MIRACL_LANGS = ("ar", "bn", "en", "es", "fa", "fi", "fr", "hi", "id", "ja", "ko", "ru", "sw", "te", "th", "zh")
MRTYDI_LANGS = ("ar", "bn", "en", "fi", "id", "ja", "ko", "ru", "sw", "te", "th")

Fetch = Callable[[str, "str | None", "str | None"], Iterable[dict]]  # (hub_id, config, split) -> rows; split None: the only one


@dataclass(frozen=True)
class PublicSource:
    name: str
    hub_id: str
    loader: Callable
    instruction: str
    configs: tuple = (None,)
    split: str = "train"
    ratio: float = 1.0
    language: str = "English"      # or "by-config": the config names the language ("ar-triplet")
    task_group: str = "short-long"
    columns: tuple = ()            # from_columns: (query, positive[, negative]) column names


def _records(src: PublicSource, config, rows: Iterable[dict], mapping: dict[str, str] | None) -> Iterator[dict]:
    """Rows read by the one record reader, with the set's instruction, language and source. A row
    the reader refuses (no query or positive) is skipped: public data is not the user's to fix."""
    language = name_of(config.split("-")[0]) if src.language == "by-config" else src.language
    for i, row in enumerate(rows):
        try:
            found = normalize(row, f"{src.hub_id} row {i}", mapping)
        except RecordError:
            continue
        for k, rec in enumerate(found):  # one record per positive; the first keeps the row's id
            yield {"id": f"{src.name}-{config + '-' if config else ''}{i}{f'-{k}' if k else ''}",
                   "task_group": src.task_group, "instruction": src.instruction, "query": rec["query"],
                   "positive": rec["positive"], "negative": rec["negative"], "language": language,
                   "source": src.name}


def from_columns(fetch: Fetch, src: PublicSource, config) -> Iterator[dict]:
    """Pair or triplet rows: `src.columns` names the query, positive and (optional) negative column."""
    mapping = dict(zip(("query", "positive", "negative"), src.columns))
    yield from _records(src, config, fetch(src.hub_id, config, src.split), mapping)


def from_lists(fetch: Fetch, src: PublicSource, config) -> Iterator[dict]:
    """BGE's layout (FlagEmbedding's): `query`, `pos` (list), `neg` (list): every positive, all negatives."""
    yield from _records(src, config, fetch(src.hub_id, config, src.split), None)


def from_beir(fetch: Fetch, src: PublicSource, config) -> Iterator[dict]:
    """mteb/BEIR layout: configs `corpus` (`_id`, `title`, `text`), `queries` (`_id`, `text`), each
    with one split whatever its name (as mteb reads them), and `default` (qrels: `query-id`,
    `corpus-id`, `score`, one split per qrels file)."""
    corpus = fetch(src.hub_id, "corpus", None)
    queries = fetch(src.hub_id, "queries", None)
    qrels = fetch(src.hub_id, "default", src.split)
    yield from beir_records(corpus, queries, qrels, instruction=src.instruction, source=src.name,
                            language=src.language, task_group=src.task_group)


SOURCES = {s.name: s for s in [
    PublicSource("eli5", "sentence-transformers/eli5", from_columns, ratio=0.1, configs=("pair",),
                 columns=("question", "answer"),
                 instruction="Provided a user question, retrieve the highest voted answers on Reddit ELI5 forum"),
    PublicSource("hotpotqa", "sentence-transformers/hotpotqa", from_columns, configs=("triplet",),
                 columns=("anchor", "positive", "negative"),
                 instruction="Given a multi-hop question, retrieve documents that can help answer the question"),
    PublicSource("fever", "mteb/fever", from_beir,
                 instruction="Given a claim, retrieve documents that support or refute the claim"),
    PublicSource("miracl", "sentence-transformers/miracl", from_columns, language="by-config",
                 configs=tuple(f"{lang}-triplet" for lang in MIRACL_LANGS),
                 columns=("anchor", "positive", "negative"), instruction=QA_WIKI),
    PublicSource("msmarco-passage", "sentence-transformers/msmarco-msmarco-distilbert-base-tas-b", from_columns,
                 ratio=0.5, configs=("triplet",), columns=("query", "positive", "negative"),
                 instruction="Given a web search query, retrieve relevant passages that answer the query"),
    PublicSource("msmarco-document", "cfli/bge-e5data", from_lists, ratio=0.2, split="msmarco_document",
                 instruction="Given a web search query, retrieve relevant documents that answer the query"),
    PublicSource("nq", "sentence-transformers/natural-questions", from_columns, configs=("pair",),
                 columns=("query", "answer"), instruction=QA_WIKI),
    PublicSource("nli", "sentence-transformers/all-nli", from_columns, configs=("triplet",), task_group="short-short",
                 columns=("anchor", "positive", "negative"),
                 instruction="Given a premise, retrieve a hypothesis that is entailed by the premise"),
    PublicSource("squad", "sentence-transformers/squad", from_columns, configs=("pair",),
                 columns=("question", "answer"), instruction=QA_WIKI),
    PublicSource("triviaqa", "sentence-transformers/trivia-qa-triplet", from_columns, configs=("triplet",),
                 columns=("anchor", "positive", "negative"), instruction=QA_WIKI),
    PublicSource("quora", "sentence-transformers/quora-duplicates", from_columns, ratio=0.1, configs=("triplet",),
                 task_group="short-short", columns=("anchor", "positive", "negative"),
                 instruction="Given a question, retrieve questions that are semantically equivalent to the given question"),
    PublicSource("mrtydi", "sentence-transformers/mr-tydi", from_columns, language="by-config",
                 configs=tuple(f"{lang}-triplet" for lang in MRTYDI_LANGS),
                 columns=("anchor", "positive", "negative"), instruction=QA_WIKI),
    PublicSource("dureader", "sentence-transformers/dureader", from_columns, configs=("triplet",), language="Chinese",
                 columns=("anchor", "positive", "negative"), instruction=CHINESE_WEB),
    PublicSource("t2ranking", "sentence-transformers/t2ranking", from_columns, ratio=0.5, configs=("triplet",),
                 language="Chinese", columns=("anchor", "positive", "negative"), instruction=CHINESE_WEB),
]}


def hub_fetch(hub_id: str, config, split) -> Iterable[dict]:
    """Rows of one Hub dataset config/split, streamed (MS MARCO documents alone are 163 shards).
    `split=None`: the config's only split, whatever it is called."""
    import datasets

    ds = datasets.load_dataset(hub_id, name=config, split=split, streaming=True)
    if split is None:
        if len(ds) != 1:
            raise InputError(f"{hub_id} [{config}]: expected one split, found {', '.join(ds)}")
        ds = next(iter(ds.values()))
    return ds


def in_sample(record_id: str, ratio: float, seed: int) -> bool:
    """Deterministic Bernoulli(ratio) on the record id: the same sample on every run."""
    if ratio >= 1.0:
        return True
    h = int.from_bytes(hashlib.sha256(f"{seed}:{record_id}".encode()).digest()[:8], "big")
    return h / 2**64 < ratio


def load(name: str, *, ratio: float | None = None, seed: int = 0, fetch: Fetch = hub_fetch) -> Iterator[dict]:
    """Records of public set `name`, sampled at `ratio` (default: the paper's ratio for it)."""
    if name not in SOURCES:
        raise InputError(f"unknown public dataset {name!r}; known: {', '.join(SOURCES)}")
    src = SOURCES[name]
    ratio = src.ratio if ratio is None else ratio
    for config in src.configs:
        for rec in src.loader(fetch, src, config):
            if in_sample(rec["id"], ratio, seed):
                yield rec
