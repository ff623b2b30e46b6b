"""Training records: read every source, mix them by ratio, give each query its hard negatives,
and plan the global batches.

Records come through the one record reader (`recipe/data/records.py`: our format,
sentence-transformers columns, FlagEmbedding JSONL, any dataset with a column mapping). Each
remembers where it came from (`file:line`), so that a bad batch can be traced to its source, and
which public set or source it belongs to (`source`, as build_mix wrote it, else the source as
given in the recipe).

The batch plan is a pure function of the records and the seed: a list of global batches of
record indices. The training loop only needs the step number to know where it is, which is
what makes resuming exact. Every record is planned; only the last partial batch of an epoch is
left out (every process needs a full share). Texts repeated inside a batch are handled by the
loss's mask (`recipe/train/batch.py`), not by moving records.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from ..data.records import parse_columns, read_located
from ..schema import RecordError, negatives

MINE_HINT = "mine them first: python data/mine_negatives.py --input SOURCE --output MINED.jsonl"


@dataclass
class Example:
    query: str  # the query side as the model sees it: instruction + query
    positive: str
    negatives: list[str]  # hard negatives, first ones first used
    task_group: str | None
    source: str  # the public set or source it belongs to
    where: str  # file:line (or dataset split row N)


def _instructions(sources: list[str], given: str | list[str]) -> list[str]:
    if isinstance(given, str):
        return [given] * len(sources)
    if len(given) != len(sources):
        raise RecordError(f"data_instructions has {len(given)} values for {len(sources)} data sources")
    return list(given)


def load_examples(sources: list[str], ratios: list[float], template: str, seed: int, split: str = "train", *,
                  columns: list[str] = (), instructions: str | list[str] = "",
                  dataset_config: str | None = None) -> list[Example]:
    """All sources, each sampled by its ratio (<1 keeps a seeded subset, >1 repeats), in one list.

    `instructions`: the instruction of records that carry none, one for all sources or one each."""
    if not sources:
        raise RecordError("no training data: set `data` to one or more files, folders or Hub datasets")
    ratios = list(ratios) or [1.0] * len(sources)
    if len(ratios) != len(sources):
        raise RecordError(f"data_ratios has {len(ratios)} values for {len(sources)} data sources")
    mapping = parse_columns(columns)
    rng = random.Random(seed)
    out: list[Example] = []
    for source, ratio, default in zip(sources, ratios, _instructions(sources, instructions)):
        if ratio <= 0:
            raise RecordError(f"data_ratios: {ratio} for {source} must be > 0")
        examples = []
        for rec, where in read_located(source, dataset_config, split, mapping):
            instruction = (rec.get("instruction") or default).strip()
            if not instruction and "{instruction}" in template:
                raise RecordError(f"{where}: no instruction, and the recipe gives none for {source}: set "
                                "data_instructions (the paper puts a task instruction on every query)")
            examples.append(Example(
                query=template.format(instruction=instruction, query=rec["query"]), positive=rec["positive"],
                negatives=negatives(rec), task_group=rec.get("task_group"),
                source=rec.get("source") or str(source), where=where))
        whole, frac = int(ratio), ratio - int(ratio)
        out.extend(examples * whole + rng.sample(examples, round(frac * len(examples))))
    return out


def complete_negatives(examples: list[Example], wanted: int, policy: str, seed: int) -> int:
    """Give every record `wanted` hard negatives, or say which has too few; returns how many had too few.

    `error` stops at the first such record; `random` fills with random documents (positives of
    other records) of the same task group, or of any group where the group has no other; `in_batch`
    leaves them short: the batch gives the empty slots no text and the loss masks them."""
    lacking = [ex for ex in examples if len(ex.negatives) < wanted]
    if not lacking or policy == "in_batch":
        return len(lacking)
    if policy == "error":
        ex = lacking[0]
        raise RecordError(f"{ex.where}: {len(ex.negatives)} hard negative(s), num_negatives is {wanted} "
                        f"({len(lacking)} of {len(examples)} records are short); {MINE_HINT}, or set "
                        "missing_negatives: in_batch or random")
    rng = random.Random(seed + 1)
    by_group: dict[str | None, list[str]] = {}
    for ex in examples:
        by_group.setdefault(ex.task_group, []).append(ex.positive)
    everything = [ex.positive for ex in examples]
    for ex in lacking:
        own = {ex.positive, *ex.negatives}
        pool = by_group[ex.task_group] if set(by_group[ex.task_group]) - own else everything
        while len(ex.negatives) < wanted:
            for _ in range(20):
                cand = rng.choice(pool)
                if cand not in own:
                    break
            else:
                raise RecordError(f"{ex.where}: no other document to serve as its negative (too little data)")
            ex.negatives.append(cand)
            own.add(cand)
    return len(lacking)


def _cut(order: list[int], size: int) -> tuple[list[list[int]], list[int]]:
    """Full batches of `size`, and what is left over."""
    full = len(order) - len(order) % size
    return [order[i:i + size] for i in range(0, full, size)], order[full:]


def plan_batches(examples: list[Example], global_batch: int, seed: int, epochs: int = 1,
                 homogeneous: str = "none") -> list[list[int]]:
    """The global batches of record indices for the whole run, in order.

    With `homogeneous`, each group's records are cut into batches of their own, and the groups'
    left-overs together fill mixed batches, so that no group loses its last partial batch."""
    if homogeneous not in ("none", "task_group", "source"):
        raise RecordError(f"homogeneous_batches must be none, task_group or source, not {homogeneous!r}")
    plan: list[list[int]] = []
    for epoch in range(epochs):
        rng = random.Random(seed * 1000 + epoch)
        if homogeneous == "none":
            order = list(range(len(examples)))
            rng.shuffle(order)
            plan.extend(_cut(order, global_batch)[0])
            continue
        groups: dict[str, list[int]] = {}
        for i, ex in enumerate(examples):
            groups.setdefault(str(getattr(ex, homogeneous)), []).append(i)
        batches, rest = [], []
        for key in sorted(groups):
            order = groups[key]
            rng.shuffle(order)
            full, left = _cut(order, global_batch)
            batches.extend(full)
            rest.extend(left)
        batches.extend(_cut(rest, global_batch)[0])
        rng.shuffle(batches)
        plan.extend(batches)
    if not plan:
        raise RecordError(f"{len(examples)} records make no full global batch of {global_batch}: "
                        "lower global_batch_size or add data")
    return plan


def plan_summary(examples: list[Example], plan: list[list[int]]) -> dict:
    """How many records were read and how many the plan trains, in all and per source."""
    used = {i for batch in plan for i in batch}
    read = Counter(ex.source for ex in examples)
    trained = Counter(examples[i].source for i in used)
    return {"read": len(examples), "used": len(used),
            "per_source": {s: {"read": n, "used": trained[s]} for s, n in read.items()}}


def shard(batch: list[int], rank: int, world: int) -> list[int]:
    """This process's contiguous share of a global batch (the loss gathers the shares in rank order).
    Shares differ by one row at most where the batch does not split evenly (2048 on 3, 5, 6 or 7 GPUs)."""
    n = len(batch)
    return batch[rank * n // world:(rank + 1) * n // world]
