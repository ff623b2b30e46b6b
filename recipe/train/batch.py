"""One global batch as the loss takes it: this process's columns of texts, and which texts of the
whole global batch are the same text.

Columns: queries, positives, then `num_negatives` columns of hard negatives (a record's first
ones). A record with fewer (`missing_negatives: in_batch`) gets an empty text in the empty slot,
which the loss leaves out of every query's softmax. `TextIds` numbers every distinct text of the
global batch, so that the loss can tell a duplicate of a query's own positive from a real
negative (`recipe/train/loss.py`, `excluded`). Every process builds the same ids from the same
plan, so the mask needs no communication.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .data import Example, shard

ABSENT = -1  # the id of an empty negative slot
NO_TEXT = -2  # fills the rows of `TextIds.positives`; no candidate has it
EMPTY_SLOT = ""  # what the model embeds in an empty slot (it is never a negative: the mask removes it)


@dataclass
class TextIds:
    """Ids of the texts of the global batch, equal ids for equal texts.

    `candidates`: ((1 + num_negatives) * global rows,), laid out as the loss's candidate columns:
    the positives of all rows, then the first negatives of all rows, ...; ABSENT for an empty
    slot. `positives`: (global rows, most positives of one query), for each row the ids of every
    positive its query text has in the batch (usually one: its own), NO_TEXT after the last."""
    candidates: torch.Tensor
    positives: torch.Tensor


@dataclass
class Batch:
    columns: list[list[str]]  # this process's rows: queries, positives, negatives_1..n
    ids: TextIds
    examples: list[Example]  # this process's records (to name them in messages)


def make_batch(examples: list[Example], global_batch: list[int], rank: int, world: int,
               num_negatives: int) -> Batch:
    rows = [examples[i] for i in global_batch]
    slots = [(ex.negatives + [None] * num_negatives)[:num_negatives] for ex in rows]
    number: dict[str, int] = {}

    def text_id(text: str | None) -> int:
        return ABSENT if text is None else number.setdefault(text, len(number))

    candidates = [text_id(ex.positive) for ex in rows]
    for k in range(num_negatives):
        candidates += [text_id(s[k]) for s in slots]
    of_query: dict[str, list[int]] = {}
    for ex, pos in zip(rows, candidates):
        if pos not in of_query.setdefault(ex.query, []):
            of_query[ex.query].append(pos)
    width = max(len(p) for p in of_query.values())
    positives = [of_query[ex.query] + [NO_TEXT] * (width - len(of_query[ex.query])) for ex in rows]
    share = shard(list(range(len(rows))), rank, world)
    columns = [[rows[i].query for i in share], [rows[i].positive for i in share]]
    columns += [[slots[i][k] or EMPTY_SLOT for i in share] for k in range(num_negatives)]
    return Batch(columns, TextIds(torch.tensor(candidates), torch.tensor(positives)), [rows[i] for i in share])
