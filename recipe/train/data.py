"""Training records: load the synthesis format, mix sources by ratio, and plan the global batches.

A record is what `data/synthesize.py` writes (`task_group`, `instruction`, `query`, `positive`,
`negative` or null, `language`); it may come from a local JSONL or Parquet file, a synthesis
output directory (its `examples.jsonl`) or a Hub dataset in that format. Each kept record
remembers where it came from (`file:line`), so that a bad batch can be traced to its source.

The batch plan is a pure function of the records and the seed: a list of global batches of
record indices. The training loop only needs the step number to know where it is, which is
what makes resuming exact.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass

from ..data.records import TRAIN_REQUIRED, RecordError, read_located


@dataclass
class Example:
    query: str  # the query side as the model sees it: instruction + query
    positive: str
    negative: str | None
    task_group: str
    language: str
    source: str  # the source as given in the recipe
    where: str  # file:line (or dataset[split] row N)


DataError = RecordError  # one error type for every bad record, whichever stage reads it


def load_examples(sources: list[str], ratios: list[float], template: str, seed: int,
                  split: str = "train") -> list[Example]:
    """All sources, each sampled by its ratio (<1 keeps a seeded subset, >1 repeats), in one list."""
    if not sources:
        raise DataError("no training data: set `data` to one or more files, directories or Hub datasets")
    ratios = list(ratios) or [1.0] * len(sources)
    if len(ratios) != len(sources):
        raise DataError(f"data_ratios has {len(ratios)} values for {len(sources)} data sources")
    rng = random.Random(seed)
    out: list[Example] = []
    for source, ratio in zip(sources, ratios):
        if ratio <= 0:
            raise DataError(f"data_ratios: {ratio} for {source} must be > 0")
        examples = []
        for rec, where in read_located(source, split=split, required=TRAIN_REQUIRED):
            examples.append(Example(
                query=template.format(instruction=rec["instruction"].strip(), query=rec["query"]),
                positive=rec["positive"], negative=rec["negative"], task_group=rec["task_group"],
                language=rec["language"], source=source, where=where))
        whole, frac = int(ratio), ratio - int(ratio)
        picked = examples * whole + rng.sample(examples, round(frac * len(examples)))
        out.extend(picked)
    fill_missing_negatives(out, seed)
    return out


def fill_missing_negatives(examples: list[Example], seed: int) -> None:
    """Give records without a hard negative (short-short, long-long) a random document of the
    same task group. The paper mines one with mE5-base; a random in-group document keeps every
    batch rectangular (one negative per query) without a second model, and is documented."""
    rng = random.Random(seed + 1)
    by_group: dict[str, list[str]] = {}
    for ex in examples:
        by_group.setdefault(ex.task_group, []).append(ex.positive)
    everything = [ex.positive for ex in examples]
    for ex in examples:
        if ex.negative is not None:
            continue
        pool = by_group[ex.task_group] if len(set(by_group[ex.task_group])) > 1 else everything
        for _ in range(20):
            cand = rng.choice(pool)
            if cand != ex.positive:
                ex.negative = cand
                break
        else:
            raise DataError(f"{ex.where}: no other document to serve as its negative (too little data)")


def _texts(ex: Example) -> tuple[str, ...]:
    return (ex.query, ex.positive, ex.negative)


def _pack(order: list[int], examples: list[Example], size: int, dedup: bool) -> list[list[int]]:
    """Cut `order` into batches of `size`; with `dedup`, a record sharing a text with its batch
    waits for the next batch (a duplicate would be a false negative for its twin)."""
    batches, current, seen, waiting = [], [], set(), []
    queue = deque(order)
    while queue:
        i = queue.popleft()
        texts = _texts(examples[i])
        if dedup and any(t in seen for t in texts):
            waiting.append(i)
            continue
        current.append(i)
        seen.update(texts)
        if len(current) == size:
            batches.append(current)
            current, seen = [], set()
            queue.extendleft(reversed(waiting))
            waiting = []
    return batches  # the incomplete last batch is dropped: every process needs a full share


def plan_batches(examples: list[Example], global_batch: int, seed: int, epochs: int = 1,
                 homogeneous: str = "none", dedup: bool = True) -> list[list[int]]:
    """The global batches of record indices for the whole run, in order."""
    if homogeneous not in ("none", "task_group", "source"):
        raise DataError(f"homogeneous_batches must be none, task_group or source, not {homogeneous!r}")
    plan: list[list[int]] = []
    for epoch in range(epochs):
        rng = random.Random(seed * 1000 + epoch)
        if homogeneous == "none":
            order = list(range(len(examples)))
            rng.shuffle(order)
            plan.extend(_pack(order, examples, global_batch, dedup))
            continue
        groups: dict[str, list[int]] = {}
        for i, ex in enumerate(examples):
            groups.setdefault(getattr(ex, homogeneous), []).append(i)
        batches = []
        for key in sorted(groups):
            order = groups[key]
            rng.shuffle(order)
            batches.extend(_pack(order, examples, global_batch, dedup))
        rng.shuffle(batches)
        plan.extend(batches)
    if not plan:
        raise DataError(f"{len(examples)} records make no full global batch of {global_batch}: "
                        "lower global_batch_size or add data")
    return plan


def shard(batch: list[int], rank: int, world: int) -> list[int]:
    """This process's contiguous share of a global batch (the loss gathers the shares in rank order)."""
    if len(batch) % world:
        raise DataError(f"global batch of {len(batch)} does not split over {world} processes")
    per = len(batch) // world
    return batch[rank * per:(rank + 1) * per]
