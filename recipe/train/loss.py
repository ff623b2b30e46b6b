"""InfoNCE over cosine similarities (temperature 0.02), each query against its positive, its hard
negatives and every other document of the global batch, with duplicates of its own positive left
out of its softmax.

What we take from sentence-transformers (see docs/training.md and tests/test_train_loss.py):
- `CachedMultipleNegativesRankingLoss`'s GradCache machinery (Gao et al. 2021, arXiv 2101.06983):
  the batch is embedded in mini-batches twice, so 2048 queries x 3 texts fit in one GPU's memory,
  with the loss and gradients of one plain forward (`MultipleNegativesRankingLoss`);
- `all_gather_with_grad` for the candidates of every process (the backward sums the gathered
  gradients back to their owners; DDP's mean then gives the gradient of the global mean loss).

What we write ourselves, in `infonce`, because the library's loss has no way to leave a
candidate out of one query's softmax: the mask (`excluded`) of the candidates that are not
negatives for a query (the same text as one of its positives, an empty negative slot), applied
before the softmax in the cached and the plain forward alike. Candidate columns are laid out as
the library lays them out: [positives of all processes | first negatives of all processes | ...],
so the target of global row i is column i.

Beyond the paper, both off by default (docs/quality.md has the lab's figures):
- `false_negative_margin` (Qwen3-Embedding): a candidate whose cosine exceeds the positive's by
  more than the margin is taken for an unlabelled positive and left out, one more rule in `excluded`;
- `matryoshka_dims` (Kusupati et al. 2022): the loss is summed over the embeddings cut to each
  width and re-normalised, with weight 1 each, as sentence-transformers' MatryoshkaLoss does. Its
  cached path would call this loss stage once per width (a gather and a mask per width); here the
  candidates are gathered once and each chunk's scores are computed per width.

Also ours: length grouping (recipe/train/grouping.py: each column is embedded longest first, so
a mini-batch holds texts of similar length and carries less padding; the embeddings go back to
their rows before the loss), the in-batch accuracy, and float32 for the loss itself: bf16
embeddings give cosines to about 3 digits, and at scale 50 that is an error of ~0.2 in each
logit. The cast is inside autograd, so gradients reach the bf16 leaves.
"""

from __future__ import annotations

import torch
from sentence_transformers.base.losses.merged_forward import embed_columns
from sentence_transformers.sentence_transformer.losses import (
    CachedMultipleNegativesRankingLoss,
    MultipleNegativesRankingLoss,
)
from sentence_transformers.util import all_gather_with_grad, cos_sim, get_rank, get_world_size

from .batch import ABSENT, TextIds
from .grouping import length_order, mini_batches, take_rows


def excluded(scores: torch.Tensor, rows: torch.Tensor, ids: TextIds | None,
             margin: float | None = None) -> torch.Tensor:
    """The one place the (queries x candidates) mask is built: True leaves a candidate out of that
    query's softmax. `scores` are these queries' scaled cosines to every candidate, `rows` their
    global row numbers (= the columns of their own positives), `margin` the false-negative margin
    on the same (scaled) scale.

    Left out: a candidate whose text is one of the query's positives (its own positive repeated
    by another record, or the positive of another record with the same query text), an empty
    negative slot, and with a margin every candidate scoring above the positive's score + margin.
    Never the query's own positive."""
    mask = torch.zeros_like(scores, dtype=torch.bool)
    if ids is not None:
        candidates, positives = ids.candidates.to(scores.device), ids.positives.to(scores.device)[rows]
        mask |= (candidates == ABSENT)[None, :]
        for column in positives.T:  # usually one: the query's own positive
            mask |= candidates[None, :] == column[:, None]
    if margin is not None:
        own = scores.detach().gather(1, rows[:, None])
        mask |= scores.detach() > own + margin
    mask[torch.arange(len(rows), device=mask.device), rows] = False
    return mask


def rows_per_process(local: int, device) -> list[int]:
    """Every process's number of rows, in rank order."""
    import torch.distributed as dist

    sizes = [torch.zeros(1, dtype=torch.long, device=device) for _ in range(get_world_size())]
    dist.all_gather(sizes, torch.tensor([local], dtype=torch.long, device=device))
    return [int(s) for s in sizes]


def gather_rows(tensor: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """`all_gather_with_grad` of shares whose row counts may differ (by one: recipe/train/data.py's
    `shard`): all_gather needs one shape, so each share is padded to the largest and the padding
    cut out of the result (its rows get no gradient)."""
    most = max(sizes)
    if min(sizes) == most:
        return all_gather_with_grad(tensor)
    padded = torch.cat([tensor, tensor.new_zeros(most - len(tensor), *tensor.shape[1:])])
    gathered = all_gather_with_grad(padded)
    return torch.cat([gathered[r * most:r * most + n] for r, n in enumerate(sizes)])


def infonce(queries: torch.Tensor, docs: list[torch.Tensor], ids: TextIds | None, scale: float, gather: bool,
            chunk: int, with_backward: bool = False, margin: float | None = None,
            dims: list[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """InfoNCE of this process's queries against the candidates of every process, and how many of
    them have their own positive scoring highest, each summed over the queries and divided by the
    mean share of a process: its own number of queries when the global batch splits evenly. The
    mean over processes (DDP's gradient average, the loop's logged mean) is then the global batch's
    mean, also where the shares differ by one. With `with_backward`, back-propagates chunk by chunk
    of `chunk` queries (so no queries x candidates matrix outlives its chunk) and returns the loss
    detached, as GradCache's loss stage does. `margin`: the false-negative margin in cosine;
    `dims`: Matryoshka widths, largest first (the accuracy is read at the first)."""
    local = len(queries)
    offset, share = 0, local
    if gather:
        sizes = rows_per_process(local, queries.device)
        offset, share = sum(sizes[:get_rank()]), sum(sizes) / len(sizes)
        docs = [gather_rows(d, sizes) for d in docs]
    candidates = torch.cat(docs)
    total = torch.zeros((), device=queries.device)
    correct = torch.zeros((), device=queries.device)
    for begin in range(0, local, chunk):
        end = min(begin + chunk, local)
        rows = torch.arange(offset + begin, offset + end, device=queries.device)
        loss, first = 0.0, None
        for dim in dims or [None]:
            # cos_sim normalises, so a cut embedding is compared as its own unit vector
            scores = cos_sim(queries[begin:end, :dim], candidates[:, :dim]) * scale
            scores = scores.masked_fill(excluded(scores, rows, ids, None if margin is None else margin * scale),
                                        float("-inf"))
            loss = loss + torch.nn.functional.cross_entropy(scores, rows, reduction="sum") / share
            first = scores.detach() if first is None else first
        if with_backward:
            loss.backward()
            loss = loss.detach()
        total = total + loss
        correct = correct + (first.argmax(1) == rows).sum()
    return total, correct / share


class CachedInfoNCE(CachedMultipleNegativesRankingLoss):
    """GradCache forward of sentence-transformers, our `infonce` as its loss stage. Call it as
    `loss_fn(features, ids)`: the tokenized columns and the batch's `TextIds` (None: no duplicates)."""

    accuracy: torch.Tensor | None = None
    group_by_length: bool = False
    false_negative_margin: float | None = None
    matryoshka_dims: list[int] | None = None
    _orders: list[torch.Tensor] | None = None  # per column: the rows in the order they were embedded

    def forward(self, sentence_features, labels: TextIds | None = None):
        features = list(sentence_features)
        self._orders = None
        if self.group_by_length:
            self._orders = [length_order(f["attention_mask"]) for f in features]
            features = [take_rows(f, o) for f, o in zip(features, self._orders)]
        return super().forward(features, labels)

    def calculate_loss(self, reps, labels=None, *, with_backward=False):
        columns = [torch.cat([r.float() for r in column]) for column in reps]
        if self._orders is None:
            return self._infonce(columns, labels, with_backward)
        # back to the original rows, so that query i meets positive i. The loss back-propagates
        # chunk by chunk, which an index in the graph would not survive (it frees its saved index
        # after the first chunk), so the rows are restored on fresh leaves and their gradients are
        # handed to the sorted embeddings in one backward at the end.
        restores = [torch.argsort(o).to(c.device) for o, c in zip(self._orders, columns)]
        if not with_backward:
            return self._infonce([c[r] for c, r in zip(columns, restores)], labels, False)
        leaves = [c.detach()[r].requires_grad_() for c, r in zip(columns, restores)]
        loss = self._infonce(leaves, labels, True)
        torch.autograd.backward(columns, [leaf.grad[o.to(leaf.device)] for leaf, o in zip(leaves, self._orders)])
        return loss

    def _infonce(self, columns, ids, with_backward):
        loss, self.accuracy = infonce(columns[0], columns[1:], ids, self.scale, self.gather_across_devices,
                                      self.mini_batch_size, with_backward, self.false_negative_margin,
                                      self.matryoshka_dims)
        return loss


class InfoNCE(MultipleNegativesRankingLoss):
    """The same loss in one plain forward (`cached: false`): one backward through every text's
    activations, no replay. With `group_by_length` each column is embedded longest first in
    mini-batches of `mini_batch_size`, all kept in the graph: the queries and documents of a
    small model's batch padded to the longest text of the batch are mostly pads (two thirds of the
    positions on the miniature's data, docs/miniature.md), and these mini-batches drop them."""

    accuracy: torch.Tensor | None = None
    false_negative_margin: float | None = None
    matryoshka_dims: list[int] | None = None
    group_by_length: bool = False
    mini_batch_size: int = 0

    def forward(self, sentence_features, labels: TextIds | None = None):
        if self.group_by_length:
            embeddings = [self._embed_grouped(f).float() for f in sentence_features]
        else:
            embeddings = [e.float() for e in embed_columns(self.model, sentence_features)]
        loss, self.accuracy = infonce(embeddings[0], embeddings[1:], labels, self.scale,
                                      self.gather_across_devices, len(embeddings[0]),
                                      margin=self.false_negative_margin, dims=self.matryoshka_dims)
        return loss

    def _embed_grouped(self, features: dict) -> torch.Tensor:
        order = length_order(features["attention_mask"])
        parts = [self.model(mb)["sentence_embedding"]
                 for mb in mini_batches(take_rows(features, order), self.mini_batch_size)]
        return torch.cat(parts)[torch.argsort(order).to(parts[0].device)]


def build_loss(model, temperature: float, cached: bool, mini_batch_size: int, gather: bool,
               group_by_length: bool = False, false_negative_margin: float | None = None,
               matryoshka_dims: list[int] | None = None):
    """The recipe's loss; `gather` when more than one process trains (global in-batch negatives);
    `group_by_length` sorts each column by length before GradCache cuts it into mini-batches;
    `false_negative_margin` (cosine) and `matryoshka_dims` as the module docstring says."""
    if cached:
        loss = CachedInfoNCE(model, scale=1.0 / temperature, mini_batch_size=mini_batch_size,
                             gather_across_devices=gather)
    else:
        loss = InfoNCE(model, scale=1.0 / temperature, gather_across_devices=gather)
        loss.mini_batch_size = mini_batch_size
    loss.group_by_length = group_by_length
    loss.false_negative_margin = false_negative_margin
    loss.matryoshka_dims = sorted(matryoshka_dims, reverse=True) if matryoshka_dims else None
    return loss
