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
from pathlib import Path

from .. import log
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
    instruction: str = ""  # the instruction its query side carries ('' under a template without one)
    own_instruction: bool = False  # the record brought it (else data_instructions gave it)


def _instructions(sources: list[str], given: str | list[str]) -> list[str]:
    if isinstance(given, str):
        return [given] * len(sources)
    if len(given) != len(sources):
        raise RecordError(f"data_instructions has {len(given)} values for {len(sources)} data sources")
    return list(given)


def _example(rec: dict, where: str, source: str, template: str, default: str) -> Example:
    """A record as it trains, its instruction by the one rule (see load_examples)."""
    own = (rec.get("instruction") or "").strip()
    instruction = (own or default).strip() if "{instruction}" in template else ""
    if not instruction and "{instruction}" in template:
        raise RecordError(f"{where}: no instruction, and the recipe gives none for {source}: set "
                          "data_instructions (the paper puts a task instruction on every query)")
    return Example(query=template.format(instruction=instruction, query=rec["query"]), positive=rec["positive"],
                   negatives=negatives(rec), task_group=rec.get("task_group"), source=rec.get("source") or str(source),
                   where=where, instruction=instruction, own_instruction=bool(own))


def check_first_records(sources: list[str], template: str, *, columns: list[str] = (),
                        instructions: str | list[str] = "", split: str = "train") -> None:
    """Read the first record of each local file source as load_examples will, so that a wrong
    format, column or missing instruction is named before anything is claimed or loaded."""
    mapping = parse_columns(columns)
    for source, default in zip(sources, _instructions(sources, instructions)):
        if Path(source).is_file():
            for rec, where in read_located(source, None, split, mapping):
                _example(rec, where, source, template, default)
                break


def load_examples(sources: list[str], ratios: list[float], template: str, seed: int, split: str = "train", *,
                  columns: list[str] = (), instructions: str | list[str] = "",
                  dataset_config: str | None = None) -> list[Example]:
    """All sources, each sampled by its ratio (<1 keeps a seeded subset, >1 repeats), in one list.

    The one rule for the instruction a query trains with: the record's own (`instruction`, or
    FlagEmbedding's `prompt`), else `instructions` (data_instructions: one for all sources or
    one each). A source whose records all carry their own leaves its data_instructions unused,
    and says so."""
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
        examples = [_example(rec, where, source, template, default)
                    for rec, where in read_located(source, dataset_config, split, mapping)]
        own = sum(ex.own_instruction for ex in examples)
        if default.strip() and own and "{instruction}" in template:
            log.note(f"{source}: {own} of {len(examples)} records carry their own instruction and train with it, "
                     f"not data_instructions {default.strip()!r}"
                     + ("; for this source it is unused" if own == len(examples) else ""))
        whole, frac = int(ratio), ratio - int(ratio)
        out.extend(examples * whole + rng.sample(examples, round(frac * len(examples))))
    return out


def hold_out(examples: list[Example], size: int, seed: int) -> tuple[list[Example], list[Example]]:
    """`(train, dev)`: `size` distinct (query, positive) pairs drawn with the seed as the dev set,
    and the records that train, which are every record whose pair was not drawn, so that a pair
    repeated by a ratio above 1 or by a source cannot train and score at once. size 0: no dev set."""
    if not size:
        return examples, []
    pairs = list(dict.fromkeys((ex.query, ex.positive) for ex in examples))
    if size >= len(pairs):
        raise RecordError(f"eval_split_size {size}: the data has {len(pairs)} distinct query-positive pairs, "
                          "which would leave none to train on; lower eval_split_size")
    drawn = set(random.Random(seed + 2).sample(pairs, size))
    dev = {}
    for ex in examples:
        if (ex.query, ex.positive) in drawn:
            dev.setdefault((ex.query, ex.positive), ex)
    return [ex for ex in examples if (ex.query, ex.positive) not in drawn], list(dev.values())


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


def plan_steps(examples: list[Example], global_batch: int, seed: int, epochs: int, homogeneous: str = "none",
               max_steps: int = 0) -> list[list[int]]:
    """The run's global batches: `epochs` passes over the data, or, with max_steps > 0, exactly
    max_steps batches from as many passes as they take (max_steps overrides epochs, as it does in
    transformers' and sentence-transformers' trainers). Pass p is the same in either plan."""
    if not max_steps:
        return plan_batches(examples, global_batch, seed, epochs, homogeneous)
    per_pass = len(plan_batches(examples, global_batch, seed, 1, homogeneous))
    passes = -(-max_steps // per_pass)
    if passes > epochs:  # fewer steps than the epochs make is what max_steps always meant
        log.note(f"max_steps {max_steps} overrides num_train_epochs {epochs}: {max_steps} steps of {global_batch} take {passes} "
                 f"pass(es) over the data ({per_pass} steps each)")
    return plan_batches(examples, global_batch, seed, passes, homogeneous)[:max_steps]


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
