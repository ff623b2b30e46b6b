"""Keep a (query, positive) pair only if an embedder agrees that the positive answers the query.

Synthetic data carries pairs whose "positive" does not answer its query (a teacher that drifted,
a task misread). Qwen3-Embedding keeps only pairs whose cosine exceeds 0.7; Gecko re-ranks the
candidates with the LLM and relabels the positive. Here, the two rules that need only an
embedder, each optional, both applied when both are set:

- `top_k`: the positive ranks within the top k of the query's candidates: every distinct
  positive and hard negative of the records of the same `source` (or task group), as the miner
  pools them (`mining.group_key`). A candidate that is a positive of the same query text (a
  FlagEmbedding row with several positives) is not counted against it; ties do not count either.
- `min_cosine`: the cosine of query and positive is at least this.

sentence-transformers has no such filter (its `mine_hard_negatives` drops negatives, never
pairs), so this is ours: one `encode` of the queries and one of the pool per group, a matrix
product in chunks of queries, and a reason for every pair removed.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass

from ..config import ConfigError, setting
from ..schema import negatives
from .mining import anchor, fill_prompts, group_key

CHUNK = 1024  # queries scored at a time: a (1024 x pool) matrix


@dataclass
class FilterSettings:
    top_k: int = setting(
        0, "keep a pair whose positive ranks within the top k of its query's candidates (0: no rank rule)")
    min_cosine: float | None = setting(
        None, "keep a pair whose query-positive cosine is at least this (Qwen3-Embedding: 0.7); null: no cosine rule")
    batch_size: int = setting(64, "encoding batch size")
    query_prompt: str | None = setting(
        None, "prefix of the query side, may contain {instruction}; null: the model's (its saved 'query' prompt, "
        "E5's 'query: ' for an E5 model, else none)")
    corpus_prompt: str | None = setting(
        None, "prefix of the candidate side; null: the model's (its saved document prompt, E5's 'passage: ', else "
        "none)")

    def check(self) -> None:
        if self.top_k < 0:
            raise ConfigError(f"'top_k' = {self.top_k} must be >= 0 (0: no rank rule)")
        if not self.top_k and self.min_cosine is None:
            raise ConfigError("give a rule: --top-k K (the positive ranks within the top K) and/or --min-cosine C")
        if self.min_cosine is not None and not -1 <= self.min_cosine <= 1:
            raise ConfigError(f"'min_cosine' = {self.min_cosine} must be in [-1, 1]")
        if self.batch_size < 1:
            raise ConfigError(f"'batch_size' = {self.batch_size} must be at least 1")


@dataclass
class Verdict:
    rank: int        # 1 + candidates scoring above the positive
    pool: int        # candidates the positive was ranked among
    cosine: float
    reasons: list[str]


def judge(records: list[dict], model, settings: FilterSettings, instruction: str = "",
          progress: bool = True) -> list[Verdict]:
    """One verdict per record, in order; a record is kept when its verdict has no reasons.
    `instruction`: what a query prompt's {instruction} becomes for a record without one."""
    if settings.query_prompt is None or settings.corpus_prompt is None:
        settings = dataclasses.replace(settings)
        fill_prompts(settings, model, "")
    groups = defaultdict(list)
    for i, rec in enumerate(records):
        groups[group_key(rec)].append(i)
    verdicts: list[Verdict | None] = [None] * len(records)
    for idx in groups.values():
        pool = list(dict.fromkeys([records[i]["positive"] for i in idx]
                                  + [n for i in idx for n in negatives(records[i])]))
        number = {text: j for j, text in enumerate(pool)}
        queries = [anchor({**records[i], "instruction": records[i].get("instruction") or instruction},
                          settings.query_prompt) for i in idx]
        q = model.encode(queries, batch_size=settings.batch_size, convert_to_tensor=True,
                         normalize_embeddings=True, show_progress_bar=progress)
        docs = model.encode(pool, prompt=settings.corpus_prompt, batch_size=settings.batch_size,
                            convert_to_tensor=True, normalize_embeddings=True, show_progress_bar=progress)
        # the candidates each query text must not be ranked below: its own positives
        own = defaultdict(set)
        for i, text in zip(idx, queries):
            own[text].add(number[records[i]["positive"]])
        for begin in range(0, len(idx), CHUNK):
            rows = idx[begin:begin + CHUNK]
            scores = (q[begin:begin + CHUNK] @ docs.T).float().cpu()
            for r, i in enumerate(rows):
                target = number[records[i]["positive"]]
                positive = scores[r, target]
                above = scores[r] > positive
                above[list(own[queries[begin + r]])] = False
                verdicts[i] = _verdict(int(above.sum()) + 1, len(pool), float(positive), settings)
    return verdicts


def _verdict(rank: int, pool: int, cosine: float, settings: FilterSettings) -> Verdict:
    reasons = []
    if settings.top_k and rank > settings.top_k:
        reasons.append(f"positive ranked {rank} of {pool} candidates (top_k {settings.top_k})")
    if settings.min_cosine is not None and cosine < settings.min_cosine:
        reasons.append(f"query-positive cosine {cosine:.3f} < min_cosine {settings.min_cosine}")
    return Verdict(rank, pool, cosine, reasons)


def summary(verdicts: list[Verdict]) -> dict[str, int]:
    """Pairs kept and removed, and removed per rule (a pair may fail both)."""
    removed = [v for v in verdicts if v.reasons]
    return {"read": len(verdicts), "kept": len(verdicts) - len(removed), "removed": len(removed),
            "below_top_k": sum(any(r.startswith("positive ranked") for r in v.reasons) for v in removed),
            "below_min_cosine": sum(any(r.startswith("query-positive cosine") for r in v.reasons) for v in removed)}


def split_by_verdict(records: list[dict], verdicts: list[Verdict]) -> tuple[list[dict], list[dict]]:
    """(kept records as they were, removed records each with `filter_reason`, `filter_rank`,
    `filter_pool` and `filter_cosine`)."""
    kept, removed = [], []
    for rec, v in zip(records, verdicts):
        if v.reasons:
            removed.append({**rec, "filter_reason": "; ".join(v.reasons), "filter_rank": v.rank,
                            "filter_pool": v.pool, "filter_cosine": round(v.cosine, 4)})
        else:
            kept.append(rec)
    return kept, removed
