"""Length grouping inside the GradCache mini-batches: fewer padded tokens, the same loss.

sentence-transformers' cached loss cuts each column (queries, positives, negatives) into
mini-batches in the order the rows come, and trims each mini-batch after its longest text
(trailing pads, so right padding). A 30-token query that shares a mini-batch with a 500-token
one is run at 500 tokens. Sorting each column by length before it is cut puts texts of similar
length together; the loss then puts the embeddings back in their original rows, so that query i
still meets positive i. InfoNCE over the whole batch does not depend on which rows were embedded
together, so the loss and gradients are those of the unsorted batch (tests/test_train_grouping.py;
with dropout on, the masks are drawn per mini-batch and so differ, as with any other order).
"""

from __future__ import annotations

import torch


def length_order(mask: torch.Tensor) -> torch.Tensor:
    """Row order, longest text first (the first mini-batch is the widest: memory peaks at once)."""
    return torch.sort(mask.sum(1), descending=True, stable=True).indices


def take_rows(features: dict, order: torch.Tensor) -> dict:
    """The tokenized column with its rows in `order` (tensors with a batch axis; others as they are)."""
    n = len(order)
    return {k: v[order.to(v.device)] if torch.is_tensor(v) and v.ndim > 0 and v.shape[0] == n else v
            for k, v in features.items()}


def mini_batches(features: dict, size: int) -> list[dict]:
    """The column cut into mini-batches of `size` rows, each cut after its last real token column
    (trailing pads only: a left-padded mini-batch keeps its width), as GradCache cuts them."""
    mask = features["attention_mask"]
    n = len(mask)
    out = []
    for begin in range(0, n, size):
        rows = slice(begin, min(begin + size, n))
        cols = mask[rows].any(0).nonzero()
        width = int(cols.max()) + 1 if len(cols) else mask.shape[1]
        out.append({k: (v[rows, :width] if v.ndim > 1 and v.shape[1] == mask.shape[1] else v[rows])
                    if torch.is_tensor(v) and v.ndim > 0 and v.shape[0] == n else v for k, v in features.items()})
    return out


def computed_tokens(mask: torch.Tensor, mini_batch: int, grouped: bool = False) -> int:
    """Token positions the model actually runs: each mini-batch is cut after its last real
    column (trailing pads only), so this is rows x width per mini-batch."""
    if grouped:
        mask = mask[length_order(mask)]
    total = 0
    for chunk in mask.split(mini_batch):
        cols = chunk.any(0).nonzero()
        total += chunk.shape[0] * (int(cols.max()) + 1 if len(cols) else 0)
    return total


def padding_share(masks: list[torch.Tensor], mini_batch: int, grouped: bool) -> float:
    """Share of the computed token positions that are padding, over the columns of one batch."""
    real = sum(int(m.sum()) for m in masks)
    return 1 - real / max(sum(computed_tokens(m, mini_batch, grouped) for m in masks), 1)
